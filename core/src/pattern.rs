//! Subscription patterns and data globs (DESIGN.md §3).
//!
//! The two wildcard languages differ on purpose, as in the reference:
//!
//! | | subscriptions ([`Pattern`]) | data operations ([`Glob`]) |
//! |---|---|---|
//! | native `*` / MQTT `+` | exactly one whole segment | `*` matches any run of characters, `/` included |
//! | native `**` | every descendant of the prefix (optionally up to a depth) | as `*` |
//! | MQTT `#` | the parent and every descendant (MQTT 4.7.1.2) | – |
//!
//! A partial segment such as `/a/te*` is a literal in a subscription and a glob in data
//! operations. A pattern whose first segment is a wildcard does not match paths whose
//! first segment starts with `$` (MQTT 4.7.2).

use std::fmt;

use crate::path::{Path, PathError, normalize};

/// One segment of a subscription pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// A literal segment, matched exactly.
    Literal(Box<str>),
    /// Native `*` or MQTT `+`: exactly one whole segment.
    One,
    /// Native `**` or MQTT `#` (always the last segment).
    Many {
        /// MQTT `#` also matches the parent level itself; native `**` does not.
        include_parent: bool,
    },
}

/// A subscription pattern: a native path with `*`/`**`, or an MQTT topic filter with `+`/`#`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Pattern {
    source: Box<str>,
    segments: Vec<Segment>,
}

impl Pattern {
    /// Parses a native subscription path. `*` as a whole segment matches one segment, `**`
    /// as the last segment matches every descendant; the bare pattern `*` (the reference's
    /// `on('*')`) matches every path.
    ///
    /// # Errors
    /// [`PathError::Empty`], [`PathError::TooLong`], [`PathError::BadCharacter`], and
    /// [`PathError::BadPattern`] when `**` is not the last segment.
    pub fn native(s: &str) -> Result<Self, PathError> {
        if s == "*" || s == "/**" || s == "**" {
            return Ok(Self {
                source: "/**".into(),
                segments: vec![Segment::Many {
                    include_parent: false,
                }],
            });
        }
        let normalized = normalize(s)?;
        let parts: Vec<&str> = normalized[1..].split('/').collect();
        let last = parts.len() - 1;
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            segments.push(match *part {
                "*" => Segment::One,
                "**" if i == last => Segment::Many {
                    include_parent: false,
                },
                "**" => {
                    return Err(PathError::BadPattern {
                        pattern: normalized,
                        reason: "`**` must be the last segment",
                    });
                }
                literal => Segment::Literal(literal.into()),
            });
        }
        Ok(Self {
            source: normalized.into(),
            segments,
        })
    }

    /// Parses an MQTT topic filter (MQTT 4.7): levels map to segments (`a/+/c` ↔ `/a/*/c`).
    ///
    /// # Errors
    /// [`PathError::Empty`] (MQTT 4.7.3), [`PathError::BadCharacter`] for NUL,
    /// [`PathError::TooLong`], [`PathError::BadPattern`] when `#` is not alone in the last
    /// level (MQTT 4.7.1.2) or `+` is not alone in its level (MQTT 4.7.1.3).
    pub fn mqtt(filter: &str) -> Result<Self, PathError> {
        if filter.is_empty() {
            return Err(PathError::Empty);
        }
        let source = format!("/{filter}");
        if source.len() > crate::path::MAX_PATH_LEN {
            return Err(PathError::TooLong { len: source.len() });
        }
        if filter.contains('\0') {
            return Err(PathError::BadCharacter {
                path: filter.replace('\0', "\\0"),
                what: "a NUL character",
            });
        }
        let levels: Vec<&str> = filter.split('/').collect();
        let last = levels.len() - 1;
        let mut segments = Vec::with_capacity(levels.len());
        for (i, level) in levels.iter().enumerate() {
            let bad = |reason| PathError::BadPattern {
                pattern: filter.to_owned(),
                reason,
            };
            segments.push(match *level {
                "+" => Segment::One,
                "#" if i == last => Segment::Many {
                    include_parent: true,
                },
                "#" => return Err(bad("`#` must be the last level [MQTT-4.7.1-2]")),
                l if l.contains('#') => {
                    return Err(bad("`#` must occupy a whole level [MQTT-4.7.1-2]"));
                }
                l if l.contains('+') => {
                    return Err(bad("`+` must occupy a whole level [MQTT-4.7.1-3]"));
                }
                literal => Segment::Literal(literal.into()),
            });
        }
        Ok(Self {
            source: source.into(),
            segments,
        })
    }

    /// The pattern as given, with its leading `/` (an MQTT filter `a/#` reads `/a/#`).
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The parsed segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Whether this pattern has no wildcard (it names one path).
    pub fn is_exact(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Literal(_)))
    }

    /// Whether `path` matches, with `depth` limiting how many levels below its prefix a
    /// native `**` reaches (`None`: unlimited). The subscription index gives the same
    /// answers faster; this is the reference implementation its tests compare against.
    pub fn matches(&self, path: &Path, depth: Option<usize>) -> bool {
        let segs: Vec<&str> = path.segments().collect();
        if starts_with_wildcard(&self.segments) && segs[0].starts_with('$') {
            return false;
        }
        for (i, seg) in self.segments.iter().enumerate() {
            match seg {
                Segment::Many { include_parent } => {
                    let below = segs.len().saturating_sub(i);
                    let min = if *include_parent { 0 } else { 1 };
                    return below >= min && depth.is_none_or(|d| below <= d);
                }
                Segment::One => {
                    if i >= segs.len() {
                        return false;
                    }
                }
                Segment::Literal(l) => {
                    if segs.get(i) != Some(&&**l) {
                        return false;
                    }
                }
            }
        }
        segs.len() == self.segments.len()
    }

    /// A glob covering every path this pattern can match, for reading stored records
    /// (MQTT retained messages on SUBSCRIBE): the literal prefix up to the first wildcard.
    pub fn covering_glob(&self) -> Glob {
        let mut prefix = String::from("/");
        for (i, seg) in self.segments.iter().enumerate() {
            match seg {
                Segment::Literal(l) => {
                    if i > 0 {
                        prefix.push('/');
                    }
                    prefix.push_str(l);
                }
                // MQTT `#` also matches the parent itself, so the glob stops before the `/`.
                Segment::Many {
                    include_parent: true,
                } => {
                    prefix.push('*');
                    return Glob::from_normalized(prefix);
                }
                _ => {
                    if i > 0 {
                        prefix.push('/');
                    }
                    prefix.push('*');
                    return Glob::from_normalized(prefix);
                }
            }
        }
        Glob::from_normalized(prefix)
    }
}

pub(crate) fn starts_with_wildcard(segments: &[Segment]) -> bool {
    !matches!(segments.first(), Some(Segment::Literal(_)))
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", &*self.source)
    }
}

/// A data glob for `get`, `count` and `remove`: `*` matches any run of characters, `/`
/// included (`/w/*` matches `/w/a` and `/w/a/b`). Without `*` it names one path.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Glob(Box<str>);

impl Glob {
    /// Parses a data glob, adding the leading `/`.
    ///
    /// # Errors
    /// [`PathError::Empty`], [`PathError::TooLong`], [`PathError::BadCharacter`].
    pub fn parse(s: &str) -> Result<Self, PathError> {
        if s == "*" {
            return Ok(Self("/*".into()));
        }
        Ok(Self(normalize(s)?.into()))
    }

    fn from_normalized(s: String) -> Self {
        Self(s.into())
    }

    /// The glob as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the glob has a `*` (otherwise it names exactly one path).
    pub fn has_wildcard(&self) -> bool {
        self.0.contains('*')
    }

    /// The text before the first `*`: every match starts with it, so a store scans only
    /// that key range.
    pub fn literal_prefix(&self) -> &str {
        match self.0.find('*') {
            Some(i) => &self.0[..i],
            None => &self.0,
        }
    }

    /// Whether `path` matches the glob.
    pub fn matches(&self, path: &str) -> bool {
        glob_match(self.0.as_bytes(), path.as_bytes())
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", &*self.0)
    }
}

/// Iterative wildcard match with single-star backtracking: linear in practice, never
/// exponential.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> Path {
        Path::parse(s).unwrap()
    }

    fn topic(s: &str) -> Path {
        Path::from_topic(s).unwrap()
    }

    /// MQTT 3.1.1 §4.7 and MQTT 5 §4.7 examples, plus the `$` rule.
    #[test]
    fn mqtt_filters_match_as_the_spec_examples_say() {
        let cases: &[(&str, &str, bool)] = &[
            ("sport/tennis/player1/#", "sport/tennis/player1", true),
            (
                "sport/tennis/player1/#",
                "sport/tennis/player1/ranking",
                true,
            ),
            (
                "sport/tennis/player1/#",
                "sport/tennis/player1/score/wimbledon",
                true,
            ),
            ("sport/#", "sport", true),
            ("#", "sport/tennis", true),
            ("sport/tennis/+", "sport/tennis/player1", true),
            ("sport/tennis/+", "sport/tennis/player1/ranking", false),
            ("sport/+", "sport", false),
            ("sport/+", "sport/", true),
            ("+/+", "/finance", true),
            ("/+", "/finance", true),
            ("+", "/finance", false),
            ("+/tennis/#", "sport/tennis", true),
            ("a/b", "a/b", true),
            ("a/b", "a/b/c", false),
            ("a/b", "a", false),
            ("#", "$SYS/broker", false),
            ("+/monitor/Clients", "$SYS/monitor/Clients", false),
            ("$SYS/#", "$SYS/monitor/Clients", true),
            ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
        ];
        for (filter, t, expected) in cases {
            let p = Pattern::mqtt(filter).unwrap();
            assert_eq!(
                p.matches(&topic(t), None),
                *expected,
                "filter {filter} topic {t}"
            );
        }
    }

    #[test]
    fn invalid_mqtt_filters_are_refused() {
        for bad in [
            "",
            "sport/tennis#",
            "sport/tennis/#/ranking",
            "sport+",
            "a/b+/c",
            "a\0b",
        ] {
            assert!(Pattern::mqtt(bad).is_err(), "{bad:?} should be refused");
        }
        for good in ["+", "#", "+/tennis/#", "/", "//", "a//b"] {
            assert!(Pattern::mqtt(good).is_ok(), "{good:?} should parse");
        }
    }

    /// Reference (happn-3 `on`) semantics: `*` is one segment, `**` any descendant.
    #[test]
    fn native_patterns_match_as_the_reference_says() {
        let cases: &[(&str, Option<usize>, &str, bool)] = &[
            ("/a/*", None, "/a/b", true),
            ("/a/*", None, "/a/b/c", false),
            ("/a/*", None, "/a", false),
            ("/a/*/c", None, "/a/b/c", true),
            ("/a/**", None, "/a/b", true),
            ("/a/**", None, "/a/b/c/d", true),
            ("/a/**", None, "/a", false),
            ("/a/**", Some(1), "/a/b", true),
            ("/a/**", Some(1), "/a/b/c", false),
            ("/a/**", Some(2), "/a/b/c", true),
            ("/a/te*", None, "/a/test", false),
            ("/a/te*", None, "/a/te*", false),
            ("*", None, "/anything/at/all", true),
            ("/*", None, "/one", true),
            ("/*", None, "/one/two", false),
            ("/*", None, "/$SYS", false),
            ("/a/b", None, "/a/b", true),
        ];
        for (pattern, depth, p, expected) in cases {
            let pat = Pattern::native(pattern).unwrap();
            // `/a/te*` holds a literal `*`, which no Path can; compare against the segment.
            if p.contains('*') {
                continue;
            }
            assert_eq!(
                pat.matches(&path(p), *depth),
                *expected,
                "pattern {pattern} depth {depth:?} path {p}"
            );
        }
        assert!(Pattern::native("/a/**/b").is_err());
    }

    #[test]
    fn globs_match_across_segments() {
        let cases: &[(&str, &str, bool)] = &[
            ("/w/*", "/w/a", true),
            ("/w/*", "/w/a/b", true),
            ("/w/*", "/w/ab/c/d", true),
            ("/w/*", "/w", false),
            ("/w/*", "/x/a", false),
            ("/a/te*", "/a/test", true),
            ("/a/*/c", "/a/b/x/c", true),
            ("/a/*/c", "/a/b/x/d", false),
            ("*", "/anything", true),
            ("/a/b", "/a/b", true),
            ("/a/b", "/a/bc", false),
            ("/*a*b*", "/xaybz", true),
        ];
        for (glob, p, expected) in cases {
            assert_eq!(
                Glob::parse(glob).unwrap().matches(p),
                *expected,
                "glob {glob} path {p}"
            );
        }
        assert_eq!(Glob::parse("/a/b*").unwrap().literal_prefix(), "/a/b");
        assert!(!Glob::parse("/a/b").unwrap().has_wildcard());
    }

    #[test]
    fn covering_globs_reach_every_match() {
        let cases = [
            ("a/+/c", "/a/*"),
            ("a/b", "/a/b"),
            ("#", "/*"),
            ("a/#", "/a*"),
        ];
        for (filter, glob) in cases {
            assert_eq!(
                Pattern::mqtt(filter).unwrap().covering_glob().as_str(),
                glob
            );
        }
    }
}
