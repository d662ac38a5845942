//! What the load generator can read about the broker besides its answers, best effort:
//! pathmq's `/metrics` counters (on the same HTTP port as the WebSocket). Another broker
//! simply yields `None`. The broker's CPU time is [`crate::report::BrokerCpu`].

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::Common;

/// How long reading `/metrics` may take.
const METRICS_TIMEOUT: Duration = Duration::from_secs(2);
/// The most of a `/metrics` answer that is read.
const METRICS_MAX: u64 = 1 << 20;

/// The value of counter `name` (e.g. `pathmq_dropped_total`) in the broker's Prometheus
/// text at `/metrics`; `None` when there is no such endpoint or counter.
pub(crate) async fn metric(common: &Common, name: &str) -> Option<u64> {
    let read = async {
        let mut stream = TcpStream::connect((common.host.as_str(), common.port))
            .await
            .ok()?;
        let request = format!(
            "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            common.host
        );
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut body = String::new();
        stream
            .take(METRICS_MAX)
            .read_to_string(&mut body)
            .await
            .ok()?;
        Some(body)
    };
    let body = tokio::time::timeout(METRICS_TIMEOUT, read).await.ok()??;
    value_of(&body, name)
}

/// The value on the line `<name> <value>` of a Prometheus text.
fn value_of(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .filter_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .find_map(|value| value.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_values_are_found_by_exact_name() {
        let text = "# HELP pathmq_dropped_total x\n# TYPE pathmq_dropped_total counter\n\
                    pathmq_dropped_total_other 9\npathmq_dropped_total 42\n";
        assert_eq!(value_of(text, "pathmq_dropped_total"), Some(42));
        assert_eq!(value_of(text, "pathmq_delivered_total"), None);
    }
}
