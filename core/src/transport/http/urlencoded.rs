//! Percent-encoding as HTTP uses it (RFC 3986 §2.1): decoding request paths, query
//! strings and `application/x-www-form-urlencoded` bodies (where `+` is a space).

/// `text` with its `%XX` escapes decoded, and `+` read as a space when `plus_is_space`
/// (query strings and form bodies, not paths). `None` when an escape is malformed or the
/// result is not UTF-8.
pub(super) fn decode(text: &str, plus_is_space: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The value of the first `name=value` pair of a query string or form body, decoded;
/// `None` when there is none or it does not decode.
pub(super) fn value(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(key, _)| decode(key, true).is_some_and(|key| key == name))
        .and_then(|(_, value)| decode(value, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_plus_decode() {
        assert_eq!(decode("a%20b+c", true).as_deref(), Some("a b c"));
        assert_eq!(decode("a%20b+c", false).as_deref(), Some("a b+c"));
        assert_eq!(decode("%E2%9C%93", false).as_deref(), Some("✓"));
        assert_eq!(decode("%2", false), None, "a cut escape");
        assert_eq!(decode("%zz", false), None, "not hex");
        assert_eq!(decode("%ff", false), None, "not UTF-8");
    }

    #[test]
    fn values_are_found_by_decoded_name() {
        let query = "username=ann&password=p%26w+d&flag&token=";
        assert_eq!(value(query, "username").as_deref(), Some("ann"));
        assert_eq!(value(query, "password").as_deref(), Some("p&w d"));
        assert_eq!(value(query, "flag").as_deref(), Some(""));
        assert_eq!(value(query, "token").as_deref(), Some(""));
        assert_eq!(value(query, "missing"), None);
        assert_eq!(
            value("a=1&a=2", "a").as_deref(),
            Some("1"),
            "the first wins"
        );
    }
}
