//! The `[token]` table: its documented TOML, its defaults, refused values and the
//! identities that may fill `{{username}}`.

use super::*;

/// The table as `TokenConfig`'s docs show it.
const DOCUMENTED: &str = r#"
enabled = true
listen = "127.0.0.1:8090"
tls = true
require_certificate = true
inbound = "/tokens/{{username}}/in"
mode = "publish"
replies = "/tokens/{{username}}/out"
max_token = 1048576
write_timeout_ms = 10000
"#;

fn parse(text: &str) -> Result<TokenConfig, toml::de::Error> {
    toml::from_str(text)
}

#[test]
fn the_documented_table_reads_and_matches_the_defaults_but_enabled() {
    let config = parse(DOCUMENTED).unwrap();
    let expected = TokenConfig {
        enabled: true,
        ..TokenConfig::default()
    };
    assert_eq!(config, expected);
    assert!(config.validate().is_ok());
}

#[test]
fn an_empty_table_is_the_defaults_and_set_mode_reads() {
    assert_eq!(parse("").unwrap(), TokenConfig::default());
    assert_eq!(parse("mode = \"set\"").unwrap().mode, Mode::Set);
    assert!(parse("mode = \"store\"").is_err());
}

#[test]
fn unknown_keys_are_refused_by_name() {
    let error = parse("max_tokens = 5").unwrap_err().to_string();
    assert!(error.contains("max_tokens"), "{error}");
}

#[test]
fn bad_values_are_refused_with_what_is_wrong() {
    let refused = |change: fn(&mut TokenConfig)| {
        let mut config = TokenConfig::default();
        change(&mut config);
        Settings::new(config).unwrap_err()
    };
    type Change = fn(&mut TokenConfig);
    let cases: [(Change, &str); 8] = [
        (|c| c.max_token = 0, "max_token = 0"),
        (|c| c.write_timeout_ms = 0, "write_timeout_ms"),
        (|c| c.tls = false, "require_certificate"),
        (
            |c| c.inbound = "/tokens/{{user}}/in".into(),
            "only {{username}}",
        ),
        (|c| c.inbound = "/tokens/{{username}}/*".into(), "inbound"),
        (|c| c.inbound = String::new(), "inbound"),
        (|c| c.replies = "/a/**/b".into(), "replies"),
        (|c| c.replies = "/a/}}".into(), "only {{username}}"),
    ];
    for (change, expected) in cases {
        let message = refused(change).to_string();
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
    }
}

#[test]
fn templates_fill_every_placeholder_and_replies_may_be_off_or_a_pattern() {
    let mut config = TokenConfig {
        inbound: "/d/{{username}}/{{username}}-in".into(),
        replies: String::new(),
        ..TokenConfig::default()
    };
    let settings = Settings::new(config.clone()).unwrap();
    assert_eq!(settings.inbound.render("cam"), "/d/cam/cam-in");
    assert!(settings.replies.is_none());
    config.replies = "/d/{{username}}/out/**".into();
    config.require_certificate = false;
    config.tls = false;
    let settings = Settings::new(config).unwrap();
    let replies = settings.replies.unwrap().render("cam");
    assert_eq!(replies, "/d/cam/out/**");
}

#[test]
fn identities_that_could_reach_other_paths_are_refused() {
    let cases = [
        ("device-1", true),
        ("Device One", true),
        ("127.0.0.1:53211", true),
        ("[::1]:53211", true),
        ("élan", true),
        ("", false),
        ("a/b", false),
        ("..", true),
        ("dev+1", false),
        ("dev#", false),
        ("*", false),
        ("a\0b", false),
        ("a\nb", false),
    ];
    for (name, ok) in cases {
        assert_eq!(check_username(name).is_ok(), ok, "{name:?}");
    }
    assert!(check_username(&"x".repeat(MAX_USERNAME_LEN)).is_ok());
    assert!(check_username(&"x".repeat(MAX_USERNAME_LEN + 1)).is_err());
}
