//! `fan-out`: `--subscribers` connections subscribe to `<prefix>/fanout`; once every
//! SUBACK is in, one publisher sends `--messages`. The rate is deliveries (distinct
//! messages received, summed over subscribers) / (last arrival anywhere − first publish);
//! latency covers every delivery; loss is summed over subscribers.

use futures_util::{StreamExt, TryStreamExt, stream};
use tokio::time::Instant;

use super::conn::Conn;
use super::publisher::{self, Plan};
use super::receiver::{self, Running};
use super::stream::Broker;
use super::{FanOutArgs, SETUP_CONCURRENCY};
use crate::Common;
use crate::report::Report;

pub(crate) async fn run(common: &Common, args: &FanOutArgs) -> anyhow::Result<Report> {
    super::check_qos(args.qos)?;
    anyhow::ensure!(args.subscribers > 0, "--subscribers must be at least 1");
    let nofile = super::raise_nofile();
    let broker = Broker::resolve(common).await?;
    let setup = super::deadline(common);
    let topic = format!("{}/fanout", common.prefix);
    let persistent = args.persistent;

    let subs: Vec<Conn> = stream::iter(0..args.subscribers)
        .map(|i| {
            let (broker, topic) = (&broker, &topic);
            async move {
                let id = super::client_id("s", i);
                let mut conn = Conn::open_session(broker, &id, 0, !persistent, setup).await?;
                conn.subscribe(topic, args.qos, setup).await?;
                anyhow::Ok(conn)
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect()
        .await
        .map_err(|e| match nofile {
            Some(limit) => e.context(format!(
                "opening {} subscribers (open-file limit {limit})",
                args.subscribers
            )),
            None => e.context(format!("opening {} subscribers", args.subscribers)),
        })?;
    let mut conn = Conn::open(&broker, &super::client_id("p", 0), 0, setup).await?;

    let running = Running::new(1);
    let start = Instant::now();
    let deadline = super::deadline(common);
    // A thousand histograms: two significant digits keep them small.
    let sigfig = if args.subscribers > 100 { 2 } else { 3 };
    let receiving: Vec<_> = subs
        .into_iter()
        .map(|sub| {
            tokio::spawn(receiver::receive(
                sub,
                args.messages,
                sigfig,
                running.clone(),
                deadline,
            ))
        })
        .collect();
    let plan = Plan {
        topic,
        qos: args.qos,
        count: args.messages,
        payload: common.payload,
        window: args.inflight,
        rate: None,
    };
    let publishing = tokio::spawn(async move {
        let published = publisher::publish(&mut conn, &plan, start, deadline).await;
        running.finish();
        (conn, published)
    });
    let (conn, published) = publishing.await?;
    let mut all = Vec::with_capacity(receiving.len());
    for task in receiving {
        all.push(task.await?);
    }
    conn.close().await;
    let merged = super::merge(all, 1, args.messages);

    let elapsed = merged.last.unwrap_or(start).duration_since(start);
    let params = format!(
        "subscribers={} messages={} qos={} payload={} inflight={} persistent={}",
        args.subscribers, args.messages, args.qos, common.payload, args.inflight, args.persistent
    );
    let mut report = Report::new("fan-out", params, "deliveries/s", merged.received, elapsed);
    report.latency_us = merged.latency();
    report.loss = Some(merged.loss);
    let mut errors = super::publisher_extra(&mut report.extra, &[published], args.qos, start);
    errors.extend(merged.errors.iter().cloned());
    super::finish_extra(&mut report.extra, merged.timed_out, errors);
    Ok(report)
}
