//! `native-get`: sets `--keys` paths `/<prefix>/get/<k>` (about `--payload` bytes each,
//! not measured), then `--connections` × `--count` gets of them round-robin, up to
//! `--pipeline` in flight per connection. Gets that find nothing are counted as `empty`.

use std::sync::Arc;

use anyhow::ensure;
use tokio::time::Instant;

use super::client::{self, Plan, Tally};
use super::wire::{Body, Template, now_ns};
use super::{GetArgs, connect_all, path_prefix, phase_timeout, pipelined_report};
use crate::Common;
use crate::report::BrokerCpu;
use crate::report::Report;

/// Runs `native-get`.
///
/// # Errors
/// Setting up failed: a connection or a login, or the working set could not be stored
/// in full within `--timeout`. The measured phase's failures are in the report.
pub(crate) async fn get(common: &Common, args: &GetArgs) -> anyhow::Result<Report> {
    ensure!(args.keys > 0, "--keys must be at least 1");
    let mut connections = connect_all(common, args.connections + 1).await?;
    let prefix = path_prefix(common, "get");

    // The working set, on a connection of its own.
    let store = Plan {
        template: Arc::new(Template::new(
            "set",
            &prefix,
            &Body::Fixed {
                payload: common.payload,
            },
        )),
        count: args.keys,
        pipeline: args.pipeline,
        offset: 0,
        modulo: u64::MAX,
        deadline: Instant::now() + phase_timeout(common),
        count_empty: false,
    };
    let loader = connections
        .pop()
        .expect("connect_all opened connections + 1");
    let stored = client::drive(loader, store).await;
    ensure!(
        stored.answered == args.keys,
        "storing the working set failed: {} of {} sets answered ok, {} errors (first: {}), {}",
        stored.answered,
        args.keys,
        stored.errors,
        stored.first_error.as_deref().unwrap_or("none"),
        stored.closed_reason.as_deref().unwrap_or("connection open"),
    );

    let template = Arc::new(Template::new("get", &prefix, &Body::None));
    let cpu = BrokerCpu::start(common.pid);
    let deadline = Instant::now() + phase_timeout(common);
    let start = now_ns();
    let tasks = connections
        .into_iter()
        .enumerate()
        .map(|(c, ws)| {
            let plan = Plan {
                template: template.clone(),
                count: args.count,
                pipeline: args.pipeline,
                // Connections start at different keys so they do not read in lockstep.
                offset: c as u64 * (args.keys / args.connections.max(1) as u64),
                modulo: args.keys,
                deadline,
                count_empty: true,
            };
            tokio::spawn(client::drive(ws, plan))
        })
        .collect();
    let tally = Tally::join(tasks).await;

    let params = format!(
        "connections={} pipeline={} count={} keys={} payload={}",
        args.connections, args.pipeline, args.count, args.keys, common.payload
    );
    let mut report = pipelined_report("native-get", params, "gets/s", &tally, start);
    report.extra.insert("empty".into(), tally.empty.into());
    cpu.finish(&mut report.extra);
    Ok(report)
}
