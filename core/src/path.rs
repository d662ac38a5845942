//! Record paths (DESIGN.md §3).
//!
//! A [`Path`] names one record: `/`-separated segments that always start with one `/`.
//! `a/b` and `/a/b` are the same record. An MQTT topic maps to a path by prefixing `/`
//! (topic `a/b` ↔ path `/a/b`, topic `/a/b` ↔ path `//a/b`), so the segments of a path
//! are exactly the levels of its topic.

use std::fmt;
use std::sync::Arc;

/// The longest path accepted, in bytes (the MQTT topic limit, 65,535, plus the leading `/`).
pub const MAX_PATH_LEN: usize = 65_536;

/// Why a path, pattern or glob was refused. The input is never stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The path was empty, or `/` alone, which names no record.
    #[error("path is empty: a path names a record, like `/sensors/kitchen`")]
    Empty,
    /// The path is longer than [`MAX_PATH_LEN`] bytes.
    #[error("path is {len} bytes, the limit is {MAX_PATH_LEN}")]
    TooLong {
        /// The length of the refused path, in bytes.
        len: usize,
    },
    /// The path holds a character that is not allowed in it.
    #[error("path `{path}` contains {what}")]
    BadCharacter {
        /// The refused path.
        path: String,
        /// What was found, e.g. "a NUL character".
        what: &'static str,
    },
    /// A wildcard was used where it is not allowed (a data path for `set`, an MQTT topic name).
    #[error("path `{path}` contains the wildcard `{wildcard}`, which is not allowed here")]
    Wildcard {
        /// The refused path.
        path: String,
        /// The wildcard found.
        wildcard: char,
    },
    /// A subscription pattern or MQTT topic filter breaks a wildcard rule.
    #[error("pattern `{pattern}` is invalid: {reason}")]
    BadPattern {
        /// The refused pattern.
        pattern: String,
        /// The rule it breaks (with the MQTT clause where one applies).
        reason: &'static str,
    },
}

/// The path of one record: starts with exactly one `/`, holds no `*` and no NUL.
///
/// Cheap to clone (an `Arc<str>`). Ordered and compared as text, which is also the order
/// of the store's keys.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Path(Arc<str>);

impl Path {
    /// Parses a native path: `a/b` becomes `/a/b`.
    ///
    /// # Errors
    /// [`PathError::Empty`] for `""` or `"/"`, [`PathError::TooLong`],
    /// [`PathError::BadCharacter`] for NUL, [`PathError::Wildcard`] for `*`, and for the
    /// MQTT wildcards `+` and `#`, which no MQTT topic name may hold (MQTT 3.3.2-2): a
    /// record under such a path could never be delivered to an MQTT subscriber.
    pub fn parse(s: &str) -> Result<Self, PathError> {
        let normalized = normalize(s)?;
        if let Some(c) = normalized.chars().find(|c| matches!(c, '*' | '+' | '#')) {
            return Err(PathError::Wildcard {
                path: normalized,
                wildcard: c,
            });
        }
        Ok(Self(normalized.into()))
    }

    /// Maps an MQTT topic name to its path by prefixing `/` (MQTT 4.7.1: topic names hold no
    /// `+` or `#`).
    ///
    /// # Errors
    /// [`PathError::Empty`] for an empty topic (MQTT 4.7.3), [`PathError::Wildcard`] for `+`
    /// or `#`, and for `*`: MQTT allows it in a topic name, but in pathmq `*` is the data
    /// wildcard of `get` and `remove`, so a record named with it could not be addressed
    /// alone. [`PathError::BadCharacter`] for NUL (MQTT 4.7.3), [`PathError::TooLong`].
    pub fn from_topic(topic: &str) -> Result<Self, PathError> {
        if topic.is_empty() {
            return Err(PathError::Empty);
        }
        if let Some(c) = topic.chars().find(|c| matches!(c, '+' | '#' | '*')) {
            return Err(PathError::Wildcard {
                path: topic.to_owned(),
                wildcard: c,
            });
        }
        let mut s = String::with_capacity(topic.len() + 1);
        s.push('/');
        s.push_str(topic);
        check_chars(&s)?;
        Ok(Self(s.into()))
    }

    /// The path one level below this one: `/a` + `b` → `/a/b`.
    ///
    /// # Errors
    /// As [`Path::parse`]; and [`PathError::BadCharacter`] when `segment` is empty or
    /// holds a `/` (it must be exactly one level).
    pub fn child(&self, segment: &str) -> Result<Self, PathError> {
        let path = format!("{}/{segment}", self.0);
        if segment.is_empty() || segment.contains('/') {
            return Err(PathError::BadCharacter {
                path,
                what: "an empty segment or a `/` where one segment was expected",
            });
        }
        Self::parse(&path)
    }

    /// The path as text, always starting with `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The MQTT topic name of this path: the path without its leading `/`.
    pub fn to_topic(&self) -> &str {
        &self.0[1..]
    }

    /// The segments (MQTT topic levels) of the path: `/a/b` → `["a", "b"]`,
    /// `//a` → `["", "a"]`.
    pub fn segments(&self) -> std::str::Split<'_, char> {
        self.0[1..].split('/')
    }

    /// The first segment of the path.
    pub fn first_segment(&self) -> &str {
        self.segments().next().unwrap_or("")
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Path({:?})", &*self.0)
    }
}

impl AsRef<str> for Path {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Adds the leading `/` and checks length and characters shared by paths, patterns, globs.
pub(crate) fn normalize(s: &str) -> Result<String, PathError> {
    if s.is_empty() || s == "/" {
        return Err(PathError::Empty);
    }
    let s = if s.starts_with('/') {
        s.to_owned()
    } else {
        format!("/{s}")
    };
    check_chars(&s)?;
    Ok(s)
}

fn check_chars(s: &str) -> Result<(), PathError> {
    if s.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong { len: s.len() });
    }
    if s.contains('\0') {
        return Err(PathError::BadCharacter {
            path: s.replace('\0', "\\0"),
            what: "a NUL character",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_normalizes_the_leading_slash() {
        assert_eq!(Path::parse("a/b").unwrap(), Path::parse("/a/b").unwrap());
        assert_eq!(Path::parse("a/b").unwrap().as_str(), "/a/b");
    }

    #[test]
    fn topics_map_to_paths_and_back() {
        let cases = [
            ("a/b", "/a/b"),
            ("/a/b", "//a/b"),
            ("a/b/", "/a/b/"),
            ("$SYS/x", "/$SYS/x"),
        ];
        for (topic, path) in cases {
            let p = Path::from_topic(topic).unwrap();
            assert_eq!(p.as_str(), path, "topic {topic}");
            assert_eq!(p.to_topic(), topic);
        }
        let p = Path::from_topic("/a/b").unwrap();
        assert_eq!(p.segments().collect::<Vec<_>>(), ["", "a", "b"]);
    }

    #[test]
    fn mqtt_wildcards_are_refused_in_native_paths() {
        for (path, wildcard) in [("/a/#", '#'), ("/a+b", '+'), ("/a/+/c", '+')] {
            match Path::parse(path) {
                Err(PathError::Wildcard { wildcard: w, .. }) => assert_eq!(w, wildcard, "{path}"),
                other => panic!("{path}: {other:?}"),
            }
        }
    }

    #[test]
    fn bad_paths_are_refused_with_the_reason() {
        assert_eq!(Path::parse(""), Err(PathError::Empty));
        assert_eq!(Path::parse("/"), Err(PathError::Empty));
        assert!(matches!(
            Path::parse("/a/*"),
            Err(PathError::Wildcard { wildcard: '*', .. })
        ));
        assert!(matches!(
            Path::parse("/a\0b"),
            Err(PathError::BadCharacter { .. })
        ));
        assert!(matches!(
            Path::from_topic("a/+"),
            Err(PathError::Wildcard { wildcard: '+', .. })
        ));
        assert!(matches!(
            Path::from_topic("a/#"),
            Err(PathError::Wildcard { wildcard: '#', .. })
        ));
        assert_eq!(Path::from_topic(""), Err(PathError::Empty));
        let long = "a".repeat(MAX_PATH_LEN + 1);
        assert!(matches!(Path::parse(&long), Err(PathError::TooLong { .. })));
    }
}
