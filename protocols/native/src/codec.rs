//! Length-prefixed framing for byte streams (DESIGN.md §5; `reference/token-server.md`):
//! each JSON frame is preceded by its length as a 4-byte big-endian integer.
//!
//! A thin wrapper around [`LengthDelimitedCodec`] that does no I/O. The wrapper exists for
//! one reason: `LengthDelimitedCodec` fails the whole stream on a frame over its limit,
//! while a native client is owed an error response and a connection that stays usable.
//! So the wrapper reads each length itself; an oversized frame is yielded as
//! [`StreamFrame::TooLarge`] and its bytes are skipped as they arrive, never buffered.

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

/// The length prefix: 4 bytes, big-endian.
const HEADER: usize = 4;

/// One decoded item.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StreamFrame {
    /// A frame's JSON text.
    Frame(BytesMut),
    /// A frame announced as this many bytes, over the limit; its bytes are being skipped.
    TooLarge(usize),
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// At a length prefix.
    Head,
    /// `inner` has read a prefix and waits for the frame's bytes.
    Body,
    /// Skipping this many more bytes of an oversized frame.
    Discard(usize),
}

/// The codec: frames up to `max` bytes in, any frame out.
#[derive(Debug)]
pub(crate) struct FrameCodec {
    inner: LengthDelimitedCodec,
    max: usize,
    state: State,
}

impl FrameCodec {
    /// A codec accepting inbound frames of at most `max` bytes (the prefix not counted).
    pub(crate) fn new(max: usize) -> Self {
        let inner = LengthDelimitedCodec::builder()
            .length_field_length(HEADER)
            .big_endian()
            // The wrapper enforces the inbound limit; outbound frames (a large `get`) may be
            // bigger than what a client may send.
            .max_frame_length(u32::MAX as usize)
            .new_codec();
        Self {
            inner,
            max,
            state: State::Head,
        }
    }
}

impl Decoder for FrameCodec {
    type Item = StreamFrame;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<StreamFrame>, std::io::Error> {
        loop {
            match self.state {
                State::Discard(left) => {
                    let n = left.min(src.len());
                    src.advance(n);
                    if n < left {
                        self.state = State::Discard(left - n);
                        return Ok(None);
                    }
                    self.state = State::Head;
                }
                State::Head => {
                    let Some(header) = src.get(..HEADER) else {
                        return Ok(None);
                    };
                    let mut len = [0; HEADER];
                    len.copy_from_slice(header);
                    let len = u32::from_be_bytes(len) as usize;
                    if len > self.max {
                        src.advance(HEADER);
                        self.state = State::Discard(len);
                        return Ok(Some(StreamFrame::TooLarge(len)));
                    }
                    return self.body(src);
                }
                State::Body => return self.body(src),
            }
        }
    }
}

impl FrameCodec {
    fn body(&mut self, src: &mut BytesMut) -> Result<Option<StreamFrame>, std::io::Error> {
        match self.inner.decode(src)? {
            Some(frame) => {
                self.state = State::Head;
                Ok(Some(StreamFrame::Frame(frame)))
            }
            None => {
                self.state = State::Body;
                Ok(None)
            }
        }
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = std::io::Error;

    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> Result<(), std::io::Error> {
        self.inner.encode(frame, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    fn decode_all(codec: &mut FrameCodec, src: &mut BytesMut) -> Vec<StreamFrame> {
        let mut out = Vec::new();
        while let Some(item) = codec.decode(src).unwrap() {
            out.push(item);
        }
        out
    }

    #[test]
    fn frames_decode_whole_and_in_pieces() {
        let mut codec = FrameCodec::new(16);
        let mut bytes = framed(b"{\"a\":1}");
        bytes.extend(framed(b"[]"));
        // Byte by byte: the state machine must not mistake body bytes for a prefix.
        let mut src = BytesMut::new();
        let mut out = Vec::new();
        for b in bytes {
            src.extend_from_slice(&[b]);
            out.extend(decode_all(&mut codec, &mut src));
        }
        assert_eq!(
            out,
            [
                StreamFrame::Frame(BytesMut::from(&b"{\"a\":1}"[..])),
                StreamFrame::Frame(BytesMut::from(&b"[]"[..])),
            ]
        );
    }

    /// Guards: an oversized frame must not end the stream; the next frame still decodes.
    #[test]
    fn an_oversized_frame_is_reported_and_skipped() {
        let mut codec = FrameCodec::new(4);
        let mut bytes = framed(b"0123456789");
        bytes.extend(framed(b"ok"));
        let (first, rest) = bytes.split_at(7);
        let mut src = BytesMut::from(first);
        assert_eq!(
            decode_all(&mut codec, &mut src),
            [StreamFrame::TooLarge(10)]
        );
        src.extend_from_slice(rest);
        assert_eq!(
            decode_all(&mut codec, &mut src),
            [StreamFrame::Frame(BytesMut::from(&b"ok"[..]))]
        );
    }

    #[test]
    fn encode_prefixes_the_length() {
        let mut codec = FrameCodec::new(1);
        let mut dst = BytesMut::new();
        codec
            .encode(Bytes::from_static(b"{}xyz"), &mut dst)
            .unwrap();
        assert_eq!(&dst[..], &framed(b"{}xyz")[..]);
    }
}
