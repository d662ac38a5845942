//! `fan-in`: `--publishers` connections each publish `--messages` to their own topic
//! `<prefix>/fanin/<i>`; one subscriber on `<prefix>/fanin/+` receives them all. The rate
//! is distinct messages received / (last arrival − first publish).

use futures_util::{StreamExt, TryStreamExt, stream};
use tokio::time::Instant;

use super::conn::Conn;
use super::publisher::{self, Plan};
use super::receiver::{self, Running};
use super::stream::Broker;
use super::{FanInArgs, SETUP_CONCURRENCY};
use crate::Common;
use crate::report::Report;

pub(crate) async fn run(common: &Common, args: &FanInArgs) -> anyhow::Result<Report> {
    super::check_qos(args.qos)?;
    anyhow::ensure!(args.publishers > 0, "--publishers must be at least 1");
    super::raise_nofile();
    let broker = Broker::resolve(common).await?;
    let setup = super::deadline(common);

    let mut sub = Conn::open(&broker, &super::client_id("s", 0), 0, setup).await?;
    sub.subscribe(&format!("{}/fanin/+", common.prefix), args.qos, setup)
        .await?;
    let pubs: Vec<Conn> = stream::iter(0..args.publishers)
        .map(|i| {
            let broker = &broker;
            async move { Conn::open(broker, &super::client_id("p", i), 0, setup).await }
        })
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await?;

    let expected = args.publishers as u64 * args.messages;
    let running = Running::new(args.publishers);
    let start = Instant::now();
    let deadline = super::deadline(common);
    let receiving = tokio::spawn(receiver::receive(
        sub,
        expected,
        3,
        running.clone(),
        deadline,
    ));
    let publishing: Vec<_> = pubs
        .into_iter()
        .enumerate()
        .map(|(i, mut conn)| {
            let plan = Plan {
                topic: format!("{}/fanin/{i}", common.prefix),
                qos: args.qos,
                count: args.messages,
                payload: common.payload,
                window: args.inflight,
                rate: None,
            };
            let running = running.clone();
            tokio::spawn(async move {
                let published = publisher::publish(&mut conn, &plan, start, deadline).await;
                running.finish();
                (conn, published)
            })
        })
        .collect();
    let mut published = Vec::with_capacity(publishing.len());
    let mut conns = Vec::with_capacity(publishing.len());
    for task in publishing {
        let (conn, p) = task.await?;
        conns.push(conn);
        published.push(p);
    }
    let merged = super::merge(vec![receiving.await?], args.publishers, args.messages);
    // Publishers stay connected until the subscriber is done, so no broker sees a
    // publisher vanish while its messages are still being routed.
    for conn in conns {
        conn.close().await;
    }

    let elapsed = merged.last.unwrap_or(start).duration_since(start);
    let params = format!(
        "publishers={} messages={} qos={} payload={} inflight={}",
        args.publishers, args.messages, args.qos, common.payload, args.inflight
    );
    let mut report = Report::new("fan-in", params, "msg/s", merged.received, elapsed);
    report.latency_us = merged.latency();
    report.loss = Some(merged.loss);
    let mut errors = super::publisher_extra(&mut report.extra, &published, args.qos, start);
    errors.extend(merged.errors.iter().cloned());
    super::finish_extra(&mut report.extra, merged.timed_out, errors);
    Ok(report)
}
