//! Raw MQTT bytes over a `TcpStream` (STYLE 30: conformance on the wire), for the will,
//! MQTT 3.1 and keep alive tests: packets built by hand, whole packets read back, every
//! wait bounded by [`crate::support::WAIT`].
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::support::WAIT;

/// A will in a hand-built CONNECT.
pub struct RawWill<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub qos: u8,
    pub retain: bool,
    /// MQTT 5 will properties, encoded (without their length); ignored below level 5.
    pub properties: &'a [u8],
}

/// A client speaking raw bytes.
pub struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Raw {
        let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connects");
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes `bytes`.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// The next whole packet, or `None` when the server closed the connection.
    pub async fn packet(&mut self) -> Option<Vec<u8>> {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some(len) = whole_packet_len(&self.buf) {
                    return Some(self.buf.drain(..len).collect());
                }
                let mut chunk = [0u8; 4096];
                match self.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await
        .expect("timed out waiting for a packet")
    }

    /// Waits until the server closes the connection; packets before that are skipped.
    pub async fn expect_closed(&mut self) {
        while self.packet().await.is_some() {}
    }
}

/// The length of the whole packet at the start of `buf`, once it is all there.
fn whole_packet_len(buf: &[u8]) -> Option<usize> {
    let mut remaining = 0usize;
    for i in 1..5 {
        let byte = *buf.get(i)?;
        remaining |= usize::from(byte & 0x7F) << (7 * (i - 1));
        if byte & 0x80 == 0 {
            let len = i + 1 + remaining;
            return (buf.len() >= len).then_some(len);
        }
    }
    panic!("bad remaining length from the server: {buf:?}");
}

/// A UTF-8 string or binary data with its u16 length.
pub fn string(s: impl AsRef<[u8]>) -> Vec<u8> {
    let s = s.as_ref();
    let mut out = (s.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(s);
    out
}

/// A packet: `byte1`, the remaining length, `body`.
pub fn packet(byte1: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![byte1];
    let mut n = body.len();
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// A clean-session CONNECT at `level` (3: `MQIsdp`, 4 and 5: `MQTT`), with an optional
/// will. Level 5 gets empty CONNECT properties.
pub fn connect(level: u8, client_id: &str, keep_alive: u16, will: Option<&RawWill<'_>>) -> Vec<u8> {
    let mut body = string(if level == 3 { "MQIsdp" } else { "MQTT" });
    body.push(level);
    let mut flags = 0x02;
    if let Some(will) = will {
        flags |= 0x04 | (will.qos << 3) | if will.retain { 0x20 } else { 0 };
    }
    body.push(flags);
    body.extend_from_slice(&keep_alive.to_be_bytes());
    if level == 5 {
        body.push(0);
    }
    body.extend(string(client_id));
    if let Some(will) = will {
        if level == 5 {
            assert!(will.properties.len() < 128, "one-byte property length");
            body.push(will.properties.len() as u8);
            body.extend_from_slice(will.properties);
        }
        body.extend(string(will.topic));
        body.extend(string(will.payload));
    }
    packet(0x10, &body)
}

/// A SUBSCRIBE of one filter; level 5 adds an empty property block.
pub fn subscribe(level: u8, pkid: u16, filter: &str, qos: u8) -> Vec<u8> {
    let mut body = pkid.to_be_bytes().to_vec();
    if level == 5 {
        body.push(0);
    }
    body.extend(string(filter));
    body.push(qos);
    packet(0x82, &body)
}

/// A PUBLISH; level 5 adds an empty property block.
pub fn publish(level: u8, topic: &str, qos: u8, pkid: u16, payload: &[u8]) -> Vec<u8> {
    let mut body = string(topic);
    if qos > 0 {
        body.extend_from_slice(&pkid.to_be_bytes());
    }
    if level == 5 {
        body.push(0);
    }
    body.extend_from_slice(payload);
    packet(0x30 | (qos << 1), &body)
}
