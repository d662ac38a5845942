//! The load generator's side of the native wire format (`reference/happn-3-wire.md`),
//! cut down to what a benchmark needs and kept off the allocator on the hot path:
//!
//! * requests are written from a [`Template`] serialised once, with only the `eventId`,
//!   the path's last segment and (for fan-out) the sequence number and send time filled
//!   in per request — no `serde_json::Value` is built per request;
//! * answers are read by [`classify`], which finds the last `"eventId":N` (the object
//!   form's `_meta`, or the array form's trailing meta object) and whether the status is
//!   `error`, without parsing the rest;
//! * events are read by [`stamp`], which finds the `seq` and `t` the fan-out writer put
//!   in the data.
//!
//! No I/O here: bytes in, bytes out.

use std::sync::OnceLock;
use std::time::Instant;

use bytes::{BufMut as _, BytesMut};

/// Nanoseconds since the first call in this process: the clock of fan-out send stamps
/// (`t`), which the same process reads back when the event arrives.
pub(crate) fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// What a request carries as `data`.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// No `data` (a `get`).
    None,
    /// The same JSON object in every request, about `payload` bytes: `{"pad":"xx…"}`.
    Fixed { payload: usize },
    /// `{"seq":N,"t":<now_ns>,"pad":"xx…"}`, about `payload` bytes: what fan-out events
    /// are measured by.
    Stamped { payload: usize },
}

/// Bytes of `{"seq":,"t":,"pad":""}` around the numbers and the padding.
const STAMPED_FRAME: usize = r#"{"seq":,"t":,"pad":""}"#.len();
/// Bytes assumed for a sequence number and a send time when sizing the padding: a
/// six-digit sequence and an eleven-digit nanosecond stamp (up to 100 s into the run).
const STAMPED_DIGITS: usize = 6 + 11;

/// One request, serialised once around its variable parts:
/// `{"action":"<action>","eventId":<id>,"path":"<path prefix><index>"[,"data":<body>]}`.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    /// `{"action":"set","eventId":`
    head: Vec<u8>,
    /// `,"path":"/bench/set/0/`
    path: Vec<u8>,
    /// What follows the path's index for [`Body::None`] and [`Body::Fixed`]: `"}` or
    /// `","data":{"pad":"xx"}}`. For [`Body::Stamped`], `","data":{"seq":`.
    tail: Vec<u8>,
    /// For [`Body::Stamped`]: the padding, written as `,"pad":"<pad>"}}`.
    stamped_pad: Option<Vec<u8>>,
}

impl Template {
    /// A template for `action` on paths `<path_prefix><index>`, carrying `body`. The
    /// prefix is JSON-escaped here, once.
    pub(crate) fn new(action: &str, path_prefix: &str, body: &Body) -> Self {
        let head = format!(r#"{{"action":{},"eventId":"#, json_string(action)).into_bytes();
        let quoted = json_string(path_prefix);
        // The quoted prefix without its closing quote: the index follows.
        let path = format!(r#","path":{}"#, &quoted[..quoted.len() - 1]).into_bytes();
        let (tail, stamped_pad) = match *body {
            Body::None => (br#""}"#.to_vec(), None),
            Body::Fixed { payload } => {
                let data = format!(r#"{{"pad":"{}"}}"#, pad(payload, r#"{"pad":""}"#.len()));
                (format!(r#"","data":{data}}}"#).into_bytes(), None)
            }
            Body::Stamped { payload } => {
                let pad = pad(payload, STAMPED_FRAME + STAMPED_DIGITS);
                (
                    br#"","data":{"seq":"#.to_vec(),
                    Some(format!(r#","pad":"{pad}"}}}}"#).into_bytes()),
                )
            }
        };
        Self {
            head,
            path,
            tail,
            stamped_pad,
        }
    }

    /// An upper bound of one request's length, for reserving a batch's buffer.
    pub(crate) fn max_len(&self) -> usize {
        // Three numbers of at most 20 digits, and `,"t":`.
        let stamped = self.stamped_pad.as_ref().map_or(0, |p| p.len() + 25);
        self.head.len() + self.path.len() + self.tail.len() + 40 + stamped
    }

    /// Appends one request to `buf`: `event_id`, the path ending in `index`, and for a
    /// stamped body the sequence number `seq` and the send time `t_ns`.
    pub(crate) fn write(&self, buf: &mut BytesMut, event_id: u64, index: u64, seq: u64, t_ns: u64) {
        buf.put_slice(&self.head);
        put_u64(buf, event_id);
        buf.put_slice(&self.path);
        put_u64(buf, index);
        buf.put_slice(&self.tail);
        if let Some(pad) = &self.stamped_pad {
            put_u64(buf, seq);
            buf.put_slice(br#","t":"#);
            put_u64(buf, t_ns);
            buf.put_slice(pad);
        }
    }
}

/// `n` bytes of padding for a body of about `payload` bytes of which `frame` are not
/// padding (at least one byte).
fn pad(payload: usize, frame: usize) -> String {
    "x".repeat(payload.saturating_sub(frame).max(1))
}

/// `text` as a JSON string literal, quotes included.
fn json_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// Appends the decimal digits of `n`.
pub(crate) fn put_u64(buf: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.put_slice(&digits[at..]);
}

/// A frame from the server, as far as the load generator cares.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Inbound<'a> {
    /// The answer to request `event_id`; `ok` is false for `_meta.status: "error"`.
    Answer { event_id: u64, ok: bool },
    /// A server heartbeat `"primus::ping::<stamp>"`, to answer `"primus::pong::<stamp>"`.
    Ping(&'a str),
    /// Anything else: an event, a system message.
    Other,
}

/// Reads what a frame is without parsing it: a heartbeat string, or a frame holding
/// `"eventId":N` (an answer), or something else.
///
/// Only the meta is looked at: in the array form it is the last element, so it is
/// searched from the end; in the object form it is searched from the start, where
/// pathmq puts `_meta` (keys in order), and benchmark data never holds `eventId` or
/// `status` anyway. Events carry `publicationId`, never `eventId`.
pub(crate) fn classify(frame: &str) -> Inbound<'_> {
    if let Some(stamp) = frame
        .strip_prefix("\"primus::ping::")
        .and_then(|rest| rest.strip_suffix('"'))
    {
        return Inbound::Ping(stamp);
    }
    let array = frame.starts_with('[');
    let find = |needle: &str| {
        let at = if array {
            frame.rfind(needle)
        } else {
            frame.find(needle)
        };
        at.map(|at| &frame[at + needle.len()..])
    };
    match find(r#""eventId":"#).and_then(number_after) {
        Some(event_id) => Inbound::Answer {
            event_id,
            ok: find(r#""status":""#).is_none_or(|status| !status.starts_with("error")),
        },
        None => Inbound::Other,
    }
}

/// The `seq` and `t` a fan-out writer put in an event's data (see [`Body::Stamped`]);
/// `None` for a frame that has none.
pub(crate) fn stamp(frame: &str) -> Option<(u64, u64)> {
    let seq = frame.find(r#""seq":"#)?;
    let t = frame.find(r#""t":"#)?;
    Some((
        number_after(&frame[seq + r#""seq":"#.len()..])?,
        number_after(&frame[t + r#""t":"#.len()..])?,
    ))
}

/// The non-negative integer at the start of `text` (after optional spaces).
fn number_after(text: &str) -> Option<u64> {
    let text = text.trim_start();
    let end = text
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(text.len());
    text[..end].parse().ok()
}

/// The heartbeat answer to a `"primus::ping::<stamp>"`.
pub(crate) fn pong(stamp: &str) -> String {
    format!("\"primus::pong::{stamp}\"")
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn written(template: &Template, id: u64, index: u64, seq: u64, t: u64) -> Value {
        let mut buf = BytesMut::new();
        template.write(&mut buf, id, index, seq, t);
        assert!(buf.len() <= template.max_len(), "max_len is an upper bound");
        serde_json::from_slice(&buf).expect("a template writes JSON")
    }

    #[test]
    fn set_template_writes_the_request_with_a_payload_of_about_the_size() {
        let template = Template::new("set", "/b\"x/set/3/", &Body::Fixed { payload: 64 });
        let request = written(&template, 17, 42, 0, 0);
        assert_eq!(request["action"], "set");
        assert_eq!(request["eventId"], 17);
        assert_eq!(request["path"], "/b\"x/set/3/42");
        assert_eq!(request["data"].to_string().len(), 64);
    }

    #[test]
    fn get_template_has_no_data() {
        let request = written(&Template::new("get", "/b/get/", &Body::None), 3, 999, 0, 0);
        assert_eq!(
            request,
            json!({"action": "get", "eventId": 3, "path": "/b/get/999"})
        );
    }

    #[test]
    fn stamped_template_carries_sequence_and_time() {
        let template = Template::new("set", "/b/fan/", &Body::Stamped { payload: 64 });
        let request = written(&template, 5, 0, 123_456, 12_345_678_901);
        assert_eq!(request["data"]["seq"], 123_456);
        assert_eq!(request["data"]["t"], 12_345_678_901_u64);
        assert_eq!(request["data"].to_string().len(), 64);
        assert_eq!(
            stamp(&request.to_string()),
            Some((123_456, 12_345_678_901)),
            "what the writer stamps, a subscriber reads back"
        );
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        for n in [0, 7, 10, 99, 1_000_000, u64::MAX] {
            let mut buf = BytesMut::new();
            put_u64(&mut buf, n);
            assert_eq!(&buf[..], n.to_string().as_bytes());
        }
    }

    #[test]
    fn answers_are_found_in_object_and_array_form() {
        // As pathmq writes them (serde_json maps sort their keys).
        let set = r#"{"_meta":{"action":"set","created":1,"eventId":42,"modified":1,"path":"/b/1","published":true,"sessionId":"s","status":"ok","type":"response"},"data":{"pad":"xx"},"protocol":"happn_4"}"#;
        assert_eq!(
            classify(set),
            Inbound::Answer {
                event_id: 42,
                ok: true
            }
        );
        let array = r#"[{"a":1,"_meta":{"path":"/x"}},{"action":"get","eventId":9,"published":false,"status":"ok","type":"response"}]"#;
        assert_eq!(
            classify(array),
            Inbound::Answer {
                event_id: 9,
                ok: true
            }
        );
        let error = r#"{"_meta":{"action":"set","error":{"code":400,"message":"m","name":"BadRequest"},"eventId":7,"status":"error","type":"response"},"data":null,"protocol":"happn_4"}"#;
        assert_eq!(
            classify(error),
            Inbound::Answer {
                event_id: 7,
                ok: false
            }
        );
    }

    #[test]
    fn heartbeats_and_events_are_not_answers() {
        assert_eq!(
            classify(r#""primus::ping::1700000000000""#),
            Inbound::Ping("1700000000000")
        );
        assert_eq!(pong("1700000000000"), r#""primus::pong::1700000000000""#);
        let event = r#"{"data":{"pad":"x","seq":3,"t":99},"_meta":{"action":"/SET@/b/fan/0","channel":"/ALL@/b/fan/*","publicationId":"s-4","type":"data"},"protocol":"happn_4"}"#;
        assert_eq!(classify(event), Inbound::Other);
        assert_eq!(stamp(event), Some((3, 99)));
        assert_eq!(stamp(r#"{"_meta":{"type":"system"}}"#), None);
    }
}
