//! The payload every benchmark message carries: bytes 0..8 the publisher's sequence
//! number, bytes 8..16 the send time in nanoseconds since a process-wide origin (big
//! endian), the rest filler. Publisher and subscriber live in one process, so one
//! monotonic clock serves both ends and latency needs no clock synchronisation.

use std::sync::OnceLock;
use std::time::Instant;

use bytes::{BufMut, BytesMut};

/// The smallest payload: sequence number and timestamp.
pub(crate) const MIN_PAYLOAD: usize = 16;

static ORIGIN: OnceLock<Instant> = OnceLock::new();

/// The process-wide origin of timestamps (fixed on first use).
pub(crate) fn origin() -> Instant {
    *ORIGIN.get_or_init(Instant::now)
}

/// Nanoseconds from [`origin`] to `at` (0 if `at` is earlier).
pub(crate) fn nanos_at(at: Instant) -> u64 {
    at.saturating_duration_since(origin()).as_nanos() as u64
}

/// Appends a `len`-byte payload (`len >= MIN_PAYLOAD`) for message `seq` sent at `sent_ns`.
pub(crate) fn put(buf: &mut BytesMut, seq: u64, sent_ns: u64, len: usize) {
    buf.put_u64(seq);
    buf.put_u64(sent_ns);
    buf.put_bytes(b'x', len.saturating_sub(MIN_PAYLOAD));
}

/// The sequence number and send time of a payload, or `None` if it is too short (not one
/// of ours).
pub(crate) fn read(payload: &[u8]) -> Option<(u64, u64)> {
    let seq = u64::from_be_bytes(payload.get(0..8)?.try_into().ok()?);
    let sent = u64::from_be_bytes(payload.get(8..16)?.try_into().ok()?);
    Some((seq, sent))
}

/// The publisher index at the end of a topic (`bench/fanin/12` → 12); 0 when the last
/// level is not a number (a scenario with a single publisher).
pub(crate) fn publisher_of(topic: &[u8]) -> usize {
    let last = topic.rsplit(|&b| b == b'/').next().unwrap_or_default();
    if last.is_empty() || !last.iter().all(u8::is_ascii_digit) || last.len() > 9 {
        return 0;
    }
    last.iter().fold(0, |n, d| n * 10 + usize::from(d - b'0'))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn payload_round_trips_and_has_the_requested_size() {
        for len in [16, 64, 1000] {
            let mut buf = BytesMut::new();
            put(&mut buf, 123_456_789, 987_654_321, len);
            assert_eq!(buf.len(), len);
            assert_eq!(read(&buf), Some((123_456_789, 987_654_321)));
        }
        assert_eq!(read(b"too short"), None);
    }

    #[test]
    fn timestamps_count_from_the_origin() {
        let o = origin();
        assert_eq!(nanos_at(o), 0);
        assert_eq!(nanos_at(o + Duration::from_micros(5)), 5_000);
        assert_eq!(
            nanos_at(o.checked_sub(Duration::from_millis(1)).unwrap_or(o)),
            0
        );
    }

    #[test]
    fn publisher_index_comes_from_the_last_topic_level() {
        assert_eq!(publisher_of(b"bench/fanin/12"), 12);
        assert_eq!(publisher_of(b"bench/fanin/0"), 0);
        assert_eq!(publisher_of(b"bench/fanout"), 0);
        assert_eq!(publisher_of(b"bench/fanin/"), 0);
        assert_eq!(publisher_of(b"7"), 7);
    }
}
