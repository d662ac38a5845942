//! `native-set`: `--connections` × `--count` stored sets of about `--payload` bytes, each
//! to its own path `/<prefix>/set/<connection>/<i>`, up to `--pipeline` in flight per
//! connection. The rate counts answered sets: pathmq answers a stored set once it is
//! durable (group commit), so answered means committed.

use std::sync::Arc;

use tokio::time::Instant;

use super::client::{self, Plan, Tally};
use super::wire::{Body, Template, now_ns};
use super::{SetArgs, connect_all, path_prefix, phase_timeout, pipelined_report};
use crate::Common;
use crate::report::BrokerCpu;
use crate::report::Report;

/// Runs `native-set`.
///
/// # Errors
/// Setting up failed (a connection or a login). What happens after — error answers,
/// timeouts, closed connections — is in the report.
pub(crate) async fn set(common: &Common, args: &SetArgs) -> anyhow::Result<Report> {
    let connections = connect_all(common, args.connections).await?;
    let prefix = path_prefix(common, "set");
    let body = Body::Fixed {
        payload: common.payload,
    };
    let cpu = BrokerCpu::start(common.pid);
    let deadline = Instant::now() + phase_timeout(common);
    let start = now_ns();
    let tasks = connections
        .into_iter()
        .enumerate()
        .map(|(c, ws)| {
            let plan = Plan {
                template: Arc::new(Template::new("set", &format!("{prefix}{c}/"), &body)),
                count: args.count,
                pipeline: args.pipeline,
                offset: 0,
                modulo: u64::MAX,
                deadline,
                count_empty: false,
            };
            tokio::spawn(client::drive(ws, plan))
        })
        .collect();
    let tally = Tally::join(tasks).await;

    let params = format!(
        "connections={} pipeline={} count={} payload={}",
        args.connections, args.pipeline, args.count, common.payload
    );
    let mut report = pipelined_report("native-set", params, "sets/s", &tally, start);
    cpu.finish(&mut report.extra);
    Ok(report)
}
