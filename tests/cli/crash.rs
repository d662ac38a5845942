//! Persistent sessions survive `kill -9` (DESIGN.md §6: a QoS 1 PUBACK / QoS 2 PUBREC is
//! sent once the message is in every recipient's queue, and the queues of offline
//! sessions are in redb). The real binary on free ports and a temporary store; a raw
//! MQTT 3.1.1 subscriber with CleanSession 0 and a raw publisher (blocking sockets,
//! every read under a timeout); SIGKILL right after the last acknowledgement; a restart
//! on the same file. Every PUBACKed QoS 1 message must arrive at least once and every
//! completed QoS 2 one exactly once [MQTT-4.3.2, MQTT-4.3.3], in order per topic
//! [MQTT-4.6.0-5], to the resumed session (Session Present 1 [MQTT-3.2.2-2]).

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::BIN;

/// Every read and every wait here is bounded by this.
const WAIT: Duration = Duration::from_secs(20);

/// QoS 1 and QoS 2 messages published while the subscriber is away.
const QOS1: usize = 500;
const QOS2: usize = 200;

/// The `pathmq` binary on a free MQTT port with the store `file`; killed (SIGKILL) when
/// dropped, so a failing test leaves no process behind.
struct Broker {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl Broker {
    fn start(file: &Path) -> Broker {
        let mut child = Command::new(BIN)
            .args([
                "--http-disabled",
                "--mqtt-listen",
                "127.0.0.1:0",
                "--log-format",
                "text",
            ])
            .arg("--storage-path")
            .arg(file)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Drains stderr for the whole run (a full pipe would block the broker) and
        // reports the MQTT port from the "MQTT listening" line.
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let log = Arc::new(Mutex::new(String::new()));
        let (ports, port) = mpsc::channel();
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in stderr.lines() {
                let Ok(line) = line else { return };
                if line.contains("MQTT listening")
                    && let Some(rest) = line.split("127.0.0.1:").nth(1)
                {
                    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    let _ = ports.send(digits.parse::<u16>().ok());
                }
                let mut log = kept.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let port = port.recv_timeout(WAIT);
        let mut broker = Broker {
            child,
            port: 0,
            log,
        };
        match port {
            Ok(Some(port)) => broker.port = port,
            _ => panic!("no MQTT port logged:\n{}", broker.log()),
        }
        broker
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL (what `Child::kill` sends on Unix) and reap.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw MQTT 3.1.1 client on a blocking socket.
struct Client {
    stream: TcpStream,
}

impl Client {
    /// Connects `client_id` with CleanSession = `clean`; returns the client and the
    /// CONNACK's session present flag (panics unless the CONNECT is accepted).
    fn connect(port: u16, client_id: &str, clean: bool) -> (Client, bool) {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut client = Client { stream };
        let mut body = string(b"MQTT");
        body.extend([4, if clean { 0x02 } else { 0x00 }, 0, 120]);
        body.extend(string(client_id.as_bytes()));
        client.send(0x10, &body);
        let connack = client.packet().expect("a CONNACK");
        assert_eq!(
            (connack.0, connack.1.len(), connack.1.get(1)),
            (0x20, 2, Some(&0)),
            "{client_id} accepted"
        );
        (client, connack.1[0] & 1 == 1)
    }

    /// Writes a packet: `byte1`, the remaining length, `body`.
    fn send(&mut self, byte1: u8, body: &[u8]) {
        let mut packet = vec![byte1];
        let mut n = body.len();
        loop {
            let byte = (n % 128) as u8;
            n /= 128;
            packet.push(if n > 0 { byte | 0x80 } else { byte });
            if n == 0 {
                break;
            }
        }
        packet.extend_from_slice(body);
        self.stream.write_all(&packet).unwrap();
    }

    /// The next packet as (first byte, body), or `None` once the server closed the
    /// connection. A read that times out fails the test.
    fn packet(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut byte1 = [0u8];
        match self.stream.read(&mut byte1) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
            Err(e) => panic!("reading a packet: {e}"),
        }
        let (mut len, mut shift) = (0usize, 0);
        loop {
            let mut byte = [0u8];
            self.stream.read_exact(&mut byte).unwrap();
            len |= usize::from(byte[0] & 0x7F) << shift;
            shift += 7;
            if byte[0] & 0x80 == 0 {
                break;
            }
        }
        let mut body = vec![0; len];
        self.stream.read_exact(&mut body).unwrap();
        Some((byte1[0], body))
    }

    /// SUBSCRIBE to one filter; panics unless the SUBACK grants `qos`.
    fn subscribe(&mut self, pkid: u16, filter: &str, qos: u8) {
        let mut body = pkid.to_be_bytes().to_vec();
        body.extend(string(filter.as_bytes()));
        body.push(qos);
        self.send(0x82, &body);
        let suback = self.packet().expect("a SUBACK");
        let [hi, lo] = pkid.to_be_bytes();
        assert_eq!(suback, (0x90, vec![hi, lo, qos]), "{filter} granted");
    }

    /// Publishes at QoS 1 or 2 and completes the flow (PUBACK, or PUBREC, PUBREL,
    /// PUBCOMP).
    fn publish(&mut self, topic: &str, qos: u8, pkid: u16, payload: &[u8]) {
        let mut body = string(topic.as_bytes());
        body.extend(pkid.to_be_bytes());
        body.extend_from_slice(payload);
        self.send(0x30 | (qos << 1), &body);
        let id = pkid.to_be_bytes().to_vec();
        if qos == 1 {
            assert_eq!(self.packet(), Some((0x40, id)), "PUBACK {pkid}");
        } else {
            assert_eq!(self.packet(), Some((0x50, id.clone())), "PUBREC {pkid}");
            self.send(0x62, &id);
            assert_eq!(self.packet(), Some((0x70, id)), "PUBCOMP {pkid}");
        }
    }

    /// DISCONNECT, then waits for the server to close.
    fn disconnect(mut self) {
        self.send(0xE0, &[]);
        while self.packet().is_some() {}
    }
}

/// A UTF-8 string or binary data with its u16 length.
fn string(s: &[u8]) -> Vec<u8> {
    let mut out = (s.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(s);
    out
}

/// A PUBLISH body's topic, packet identifier (0 at QoS 0) and payload.
fn parse_publish(byte1: u8, body: &[u8]) -> (String, u16, String) {
    let len = usize::from(u16::from_be_bytes([body[0], body[1]]));
    let topic = String::from_utf8(body[2..2 + len].to_vec()).unwrap();
    let mut at = 2 + len;
    let mut pkid = 0;
    if (byte1 >> 1) & 3 > 0 {
        pkid = u16::from_be_bytes([body[at], body[at + 1]]);
        at += 2;
    }
    (
        topic,
        pkid,
        String::from_utf8_lossy(&body[at..]).into_owned(),
    )
}

/// Reads the resumed session's messages, acknowledging each (PUBACK; PUBREC then PUBCOMP
/// for the PUBREL), until `done` says enough; returns the QoS 1 and QoS 2 payloads in
/// arrival order. Bounded by [`WAIT`] per read and by `deadline` overall.
fn receive(
    client: &mut Client,
    deadline: Instant,
    mut done: impl FnMut(&[String], &[String]) -> bool,
) -> (Vec<String>, Vec<String>) {
    let (mut one, mut two) = (Vec::new(), Vec::new());
    while !done(&one, &two) {
        assert!(
            Instant::now() < deadline,
            "in time: {} QoS 1 and {} QoS 2 messages so far",
            one.len(),
            two.len()
        );
        let (byte1, body) = client
            .packet()
            .expect("the resumed session stays connected");
        match byte1 >> 4 {
            3 => {
                let (topic, pkid, payload) = parse_publish(byte1, &body);
                let qos = (byte1 >> 1) & 3;
                match (topic.as_str(), qos) {
                    ("crash/q1", 1) => {
                        client.send(0x40, &pkid.to_be_bytes());
                        one.push(payload);
                    }
                    ("crash/q2", 2) => {
                        assert_eq!(byte1 & 0x08, 0, "no DUP: the session was offline");
                        client.send(0x50, &pkid.to_be_bytes());
                        two.push(payload);
                    }
                    other => panic!("unexpected PUBLISH {other:?}"),
                }
            }
            6 => client.send(0x70, &body[..2]),
            other => panic!("unexpected packet type {other}: {body:?}"),
        }
    }
    (one, two)
}

/// `kill -9` after 500 PUBACKed QoS 1 and 200 completed QoS 2 messages for an offline
/// persistent session; after a restart on the same file the session resumes and gets
/// every QoS 1 message at least once, every QoS 2 message exactly once, each topic in
/// order.
#[test]
fn acknowledged_messages_for_an_offline_session_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data").join("pathmq.redb");
    let broker = Broker::start(&file);

    let (mut subscriber, present) = Client::connect(broker.port, "crash-sub", false);
    assert!(!present, "a new session [MQTT-3.2.2-3]");
    subscriber.subscribe(1, "crash/q1", 1);
    subscriber.subscribe(2, "crash/q2", 2);
    subscriber.disconnect();

    let (mut publisher, _) = Client::connect(broker.port, "crash-pub", true);
    let started = Instant::now();
    for i in 0..QOS1 {
        publisher.publish("crash/q1", 1, i as u16 + 1, i.to_string().as_bytes());
    }
    for i in 0..QOS2 {
        publisher.publish("crash/q2", 2, i as u16 + 1, i.to_string().as_bytes());
    }
    let published_in = started.elapsed();
    // SIGKILL at once: only what the broker made durable before acknowledging survives.
    broker.kill();

    let broker = Broker::start(&file);
    let (mut subscriber, present) = Client::connect(broker.port, "crash-sub", false);
    assert!(
        present,
        "the session survived kill -9 [MQTT-3.2.2-2]:\n{}",
        broker.log()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let (one, two) = receive(&mut subscriber, deadline, |one, two| {
        one.iter().collect::<BTreeSet<_>>().len() == QOS1 && two.len() >= QOS2
    });

    // QoS 1: at least once; without repeats, in publish order.
    let mut seen = BTreeSet::new();
    let firsts: Vec<usize> = (one.iter())
        .filter(|p| seen.insert(p.as_str()))
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(
        firsts,
        (0..QOS1).collect::<Vec<_>>(),
        "every PUBACKed QoS 1 message, in order ({} deliveries; publishing took \
         {published_in:?})",
        one.len()
    );
    // QoS 2: exactly once, in order.
    let expected: Vec<String> = (0..QOS2).map(|i| i.to_string()).collect();
    assert_eq!(two, expected, "every completed QoS 2 message exactly once");
    // And no further copy of a QoS 2 message is pending: the next one is a marker.
    let (mut publisher, _) = Client::connect(broker.port, "crash-pub", true);
    publisher.publish("crash/q2", 2, 1, b"marker");
    let (_, two) = receive(&mut subscriber, deadline, |_, two| !two.is_empty());
    assert_eq!(two, ["marker"], "no duplicate QoS 2 delivery");
    subscriber.disconnect();
    broker.kill();
}
