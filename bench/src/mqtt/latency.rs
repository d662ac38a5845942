//! `latency`: one publisher at a fixed `--rate` for `--seconds`, one subscriber; the
//! percentiles of (arrival − send time in the payload). Each message is stamped when it is
//! written, not when it was due, so a stalled broker that blocks the publisher's socket
//! shows up as fewer messages, not as latency (no coordinated-omission correction); at
//! QoS 0 and these rates the socket never blocks.

use tokio::time::Instant;

use super::LatencyArgs;
use super::conn::Conn;
use super::publisher::{self, Plan};
use super::receiver::{self, Running};
use super::stream::Broker;
use crate::Common;
use crate::report::Report;

pub(crate) async fn run(common: &Common, args: &LatencyArgs) -> anyhow::Result<Report> {
    super::check_qos(args.qos)?;
    anyhow::ensure!(
        args.rate > 0 && args.seconds > 0,
        "--rate and --seconds must be positive"
    );
    let broker = Broker::resolve(common).await?;
    let setup = super::deadline(common);
    let topic = format!("{}/latency", common.prefix);

    let mut sub = Conn::open(&broker, &super::client_id("s", 0), 0, setup).await?;
    sub.subscribe(&topic, args.qos, setup).await?;
    let mut conn = Conn::open(&broker, &super::client_id("p", 0), 0, setup).await?;

    let count = args.rate * args.seconds;
    let running = Running::new(1);
    let start = Instant::now();
    // The publishing time plus the usual allowance for the rest.
    let deadline = super::deadline(common) + std::time::Duration::from_secs(args.seconds);
    let receiving = tokio::spawn(receiver::receive(sub, count, 3, running.clone(), deadline));
    let plan = Plan {
        topic,
        qos: args.qos,
        count,
        payload: common.payload,
        window: 1_000,
        rate: Some(args.rate as f64),
    };
    let published = publisher::publish(&mut conn, &plan, start, deadline).await;
    running.finish();
    let merged = super::merge(vec![receiving.await?], 1, count);
    conn.close().await;

    let elapsed = merged.last.unwrap_or(start).duration_since(start);
    let params = format!(
        "rate={} seconds={} qos={} payload={}",
        args.rate, args.seconds, args.qos, common.payload
    );
    let mut report = Report::new("latency", params, "msg/s", merged.received, elapsed);
    report.latency_us = merged.latency();
    report.loss = Some(merged.loss);
    let mut errors = super::publisher_extra(&mut report.extra, &[published], args.qos, start);
    errors.extend(merged.errors.iter().cloned());
    super::finish_extra(&mut report.extra, merged.timed_out, errors);
    Ok(report)
}
