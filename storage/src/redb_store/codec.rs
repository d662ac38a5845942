//! The stored form of a record: the value under its path in the `records` table.
//!
//! Version 1 (a record without MQTT 5 properties) or 2 (with them), all integers
//! big-endian:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | version, `1` |
//! | 1 | 1 | payload format, [`Format::tag`] |
//! | 2 | 8 | `created`, ms since the Unix epoch, `u64` |
//! | 10 | 8 | `modified`, ms since the Unix epoch, `u64` |
//! | 18 | 1 | `modified_by` present: `0` no, `1` yes |
//! | 19 | 8 | only when present: length `n` of `modified_by` in bytes, `u64` |
//! | 27 | n | only when present: `modified_by`, UTF-8 |
//! | … | 8 | version 2 only: length `m` of the properties, `u64` |
//! | … | m | version 2 only: the MQTT 5 properties, JSON ([`MessageProperties::to_stored`]) |
//! | … | rest | the payload bytes, exactly as written |
//!
//! The path is the key, so it is not repeated in the value. Decoding never panics: bad
//! bytes are a [`StoreError::Corrupt`] naming the path.

use bytes::Bytes;
use std::sync::Arc;

use pathmq_core::{Format, MessageProperties, Path, Payload, Record, StoreError};

/// The encoding version of a record without properties.
pub(super) const VERSION: u8 = 1;
/// The encoding version of a record with MQTT 5 properties.
const VERSION_PROPERTIES: u8 = 2;

/// Why a stored value could not be decoded.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum DecodeError {
    #[error("value is empty")]
    Empty,
    #[error("unknown encoding version {0} (this build reads versions 1 and 2)")]
    Version(u8),
    #[error("unreadable properties: {0}")]
    Properties(String),
    #[error("value ends inside the {field} field ({len} bytes)")]
    Truncated { field: &'static str, len: usize },
    #[error("unknown payload format tag {0}")]
    Format(u8),
    #[error("bad modified_by flag {0} (expected 0 or 1)")]
    Flag(u8),
    #[error("modified_by is not UTF-8")]
    ModifiedBy,
}

/// The stored bytes of `record` (its path is the key and is not included).
pub(super) fn encode(record: &Record) -> Vec<u8> {
    let by = record.modified_by.as_deref();
    let by_len = by.map_or(0, |s| 8 + s.len());
    let properties = record.properties.as_ref().map(|p| p.to_stored());
    let props_len = properties.as_ref().map_or(0, |p| 8 + p.len());
    let mut out = Vec::with_capacity(19 + by_len + props_len + record.payload.bytes.len());
    out.push(match properties {
        Some(_) => VERSION_PROPERTIES,
        None => VERSION,
    });
    out.push(record.payload.format.tag());
    out.extend_from_slice(&record.created.to_be_bytes());
    out.extend_from_slice(&record.modified.to_be_bytes());
    match by {
        None => out.push(0),
        Some(by) => {
            out.push(1);
            out.extend_from_slice(&(by.len() as u64).to_be_bytes());
            out.extend_from_slice(by.as_bytes());
        }
    }
    if let Some(properties) = properties {
        out.extend_from_slice(&(properties.len() as u64).to_be_bytes());
        out.extend_from_slice(&properties);
    }
    out.extend_from_slice(&record.payload.bytes);
    out
}

/// The record stored at `path` with value `bytes`.
///
/// # Errors
/// [`StoreError::Corrupt`] naming `path` when the bytes are not a version-1 record.
pub(super) fn decode(path: Path, bytes: &[u8]) -> Result<Record, StoreError> {
    match decode_fields(bytes) {
        Ok((payload, created, modified, modified_by, properties)) => Ok(Record {
            path,
            payload,
            created,
            modified,
            modified_by,
            properties,
        }),
        Err(e) => Err(StoreError::Corrupt {
            path: path.as_str().to_owned(),
            reason: e.to_string(),
        }),
    }
}

/// The record under the table key `key`: [`decode`] after checking that the key is a path.
///
/// # Errors
/// [`StoreError::Corrupt`] naming the key when it is not a valid path or the value does
/// not decode.
pub(super) fn decode_entry(key: &str, bytes: &[u8]) -> Result<Record, StoreError> {
    decode(parse_key(key)?, bytes)
}

/// The path stored as the table key `key`.
///
/// # Errors
/// [`StoreError::Corrupt`] naming the key when it is not a valid path.
pub(super) fn parse_key(key: &str) -> Result<Path, StoreError> {
    match Path::parse(key) {
        Ok(path) if path.as_str() == key => Ok(path),
        Ok(_) => Err(corrupt_key(
            key,
            "the key does not start with `/`".to_owned(),
        )),
        Err(e) => Err(corrupt_key(key, format!("the key is not a path: {e}"))),
    }
}

fn corrupt_key(key: &str, reason: String) -> StoreError {
    StoreError::Corrupt {
        path: key.to_owned(),
        reason,
    }
}

/// The fields of a value: payload, created, modified, modified_by, properties.
type Fields = (
    Payload,
    u64,
    u64,
    Option<String>,
    Option<Arc<MessageProperties>>,
);

fn decode_fields(bytes: &[u8]) -> Result<Fields, DecodeError> {
    let mut r = Reader { bytes, pos: 0 };
    let version = r.u8("version").map_err(|_| DecodeError::Empty)?;
    if version != VERSION && version != VERSION_PROPERTIES {
        return Err(DecodeError::Version(version));
    }
    let tag = r.u8("format")?;
    let format = Format::from_tag(tag).ok_or(DecodeError::Format(tag))?;
    let created = r.u64("created")?;
    let modified = r.u64("modified")?;
    let modified_by = match r.u8("modified_by flag")? {
        0 => None,
        1 => {
            let len = r.u64("modified_by length")?;
            let raw = r.take("modified_by", len)?;
            let s = std::str::from_utf8(raw).map_err(|_| DecodeError::ModifiedBy)?;
            Some(s.to_owned())
        }
        flag => return Err(DecodeError::Flag(flag)),
    };
    let properties = match version {
        VERSION_PROPERTIES => {
            let len = r.u64("properties length")?;
            let raw = r.take("properties", len)?;
            let properties =
                MessageProperties::from_stored(raw).map_err(DecodeError::Properties)?;
            Some(Arc::new(properties))
        }
        _ => None,
    };
    let payload = Payload {
        format,
        bytes: Bytes::copy_from_slice(r.rest()),
    };
    Ok((payload, created, modified, modified_by, properties))
}

/// A cursor over the value; every read checks the remaining length.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// The next `len` bytes.
    fn take(&mut self, field: &'static str, len: u64) -> Result<&'a [u8], DecodeError> {
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| self.pos.checked_add(len))
            .filter(|end| *end <= self.bytes.len());
        let Some(end) = end else {
            return Err(DecodeError::Truncated {
                field,
                len: self.bytes.len(),
            });
        };
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// Everything not read yet.
    fn rest(&self) -> &'a [u8] {
        &self.bytes[self.pos..]
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(field, 1)?[0])
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let raw = self.take(field, 8)?;
        let mut buf = [0u8; 8];
        buf.copy_from_slice(raw);
        Ok(u64::from_be_bytes(buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(format: Format, bytes: &'static [u8], by: Option<&str>) -> Record {
        Record {
            path: Path::parse("/a/b").unwrap(),
            payload: Payload {
                format,
                bytes: Bytes::from_static(bytes),
            },
            created: 1_700_000_000_000,
            modified: u64::MAX,
            modified_by: by.map(str::to_owned),
            properties: None,
        }
    }

    fn reason(bytes: &[u8]) -> String {
        match decode(Path::parse("/bad").unwrap(), bytes) {
            Err(StoreError::Corrupt { path, reason }) => {
                assert_eq!(path, "/bad");
                reason
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn records_round_trip_byte_exactly() {
        let cases = [
            record(Format::Json, b"{\"a\":1}", Some("alice")),
            record(Format::Text, b"h\xc3\xa9llo", None),
            record(Format::Binary, &[0, 0xff, 1, 0], Some("")),
            record(Format::Binary, b"", Some("\u{1F600}")),
        ];
        for r in cases {
            let bytes = encode(&r);
            assert_eq!(bytes[0], VERSION);
            assert_eq!(decode(r.path.clone(), &bytes).unwrap(), r);
        }
    }

    #[test]
    fn mqtt_properties_round_trip_in_version_2() {
        let mut with = record(Format::Text, b"xy", None);
        with.properties = Some(Arc::new(MessageProperties {
            content_type: Some("text/plain".into()),
            expires_at_ms: Some(7),
            user_properties: vec![("k".into(), "v".into())],
            ..MessageProperties::default()
        }));
        let bytes = encode(&with);
        assert_eq!(bytes[0], 2);
        let back = decode(with.path.clone(), &bytes).unwrap();
        assert_eq!(back, with);
        assert_eq!(
            encode(&record(Format::Text, b"xy", None))[0],
            1,
            "without: version 1"
        );
    }

    #[test]
    fn layout_is_as_documented() {
        let bytes = encode(&record(Format::Text, b"xy", Some("u")));
        let mut expected = vec![1, 1];
        expected.extend_from_slice(&1_700_000_000_000u64.to_be_bytes());
        expected.extend_from_slice(&u64::MAX.to_be_bytes());
        expected.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 1, b'u', b'x', b'y']);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn bad_bytes_are_corrupt_naming_the_path() {
        let good = encode(&record(Format::Json, b"1", Some("bob")));
        assert!(reason(&[]).contains("empty"));
        assert!(reason(&[3]).contains("version 3"));
        assert!(reason(&[1, 9]).contains("format tag 9"));
        assert!(reason(&good[..9]).contains("created"));
        assert!(reason(&good[..17]).contains("modified"));
        let mut flag = good.clone();
        flag[18] = 7;
        assert!(reason(&flag).contains("flag 7"));
        // A length that runs past the end, and one too large for any address space.
        let mut long = good.clone();
        long[19..27].copy_from_slice(&1000u64.to_be_bytes());
        assert!(reason(&long).contains("modified_by"));
        long[19..27].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(reason(&long).contains("modified_by"));
        let mut utf8 = good.clone();
        utf8[27] = 0xff;
        assert!(reason(&utf8).contains("UTF-8"));
    }

    #[test]
    fn every_prefix_of_a_value_decodes_or_fails_cleanly() {
        let good = encode(&record(Format::Text, b"payload", Some("someone")));
        for end in 0..good.len() {
            let _ = decode(Path::parse("/p").unwrap(), &good[..end]);
        }
    }

    #[test]
    fn keys_must_be_paths() {
        assert_eq!(parse_key("/a").unwrap().as_str(), "/a");
        assert!(matches!(parse_key("a"), Err(StoreError::Corrupt { path, .. }) if path == "a"));
        assert!(matches!(parse_key("/a/*"), Err(StoreError::Corrupt { .. })));
        assert!(matches!(parse_key(""), Err(StoreError::Corrupt { .. })));
    }
}
