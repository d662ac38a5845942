//! Reading configurations: files, defaults, refusals.
use super::*;

#[test]
fn security_profiles_read_from_toml() {
    let c = Config::from_toml(
        r#"
        [security]
        lockout_attempts = 0
        [[security.profiles]]
        name = "devices"
        session = { "user.groups.devices" = { "$exists" = true } }
        policy = { max_connections = 3, inactivity_threshold = "10 minutes" }
        [[security.profiles]]
        name = "web"
        session = { type = { "$eq" = 0 } }
        policy = { ttl = 3600000, sourceIPWhitelist = ["127.0.0.1"] }
        "#,
    )
    .unwrap();
    let profiles = &c.security.profiles;
    assert_eq!(profiles[0].policy.max_connections, Some(3));
    assert_eq!(
        profiles[0].policy.inactivity_threshold,
        Some(std::time::Duration::from_secs(600))
    );
    assert_eq!(
        profiles[1].policy.ttl,
        Some(std::time::Duration::from_secs(3600))
    );
    assert!(c.security.core().lockout.is_none());
    let bad = Config::from_toml(
        "[[security.profiles]]\nname = \"x\"\nsession = { a = { \"$fly\" = 1 } }\n",
    );
    assert!(bad.unwrap_err().to_string().contains("security.profiles"));
}

#[test]
fn empty_file_gives_the_defaults() {
    let c = Config::from_toml("").unwrap();
    assert_eq!(c.http.listen.to_string(), "127.0.0.1:55000");
    assert_eq!(c.mqtt.listen.to_string(), "127.0.0.1:1883");
    assert_eq!(c.storage.path, PathBuf::from("./pathmq-data/pathmq.redb"));
    assert_eq!(c.storage.engine, Engine::Redb);
}

#[test]
fn keys_override_defaults() {
    let c =
        Config::from_toml("[mqtt]\nlisten = \"0.0.0.0:1884\"\n[storage]\nengine = \"memory\"\n")
            .unwrap();
    assert_eq!(c.mqtt.listen.port(), 1884);
    assert!(c.mqtt.enabled);
    assert_eq!(c.storage.engine, Engine::Memory);
}

#[test]
fn a_table_with_only_some_keys_keeps_the_other_defaults() {
    let c = Config::from_toml("[http]\nenabled = false\n").unwrap();
    assert!(!c.http.enabled);
    assert_eq!(c.http.listen.port(), 55000);
    let c = Config::from_toml("[limits]\nheartbeat_interval_ms = 0\n").unwrap();
    assert_eq!(c.limits.heartbeat_interval_ms, 0, "0 turns heartbeats off");
}

#[test]
fn bad_config_names_the_key() {
    let err = Config::from_toml("[mqtt]\nlisten = 5\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("listen"), "{err}");
    let err = Config::from_toml("[limits]\nsesion_queue = 5\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("sesion_queue"), "{err}");
    let err = Config::from_toml("[limits]\nsession_queue = 0\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("limits.session_queue"), "{err}");
    let err = Config::from_toml("[limits]\nmax_payload = 300000000\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("limits.max_payload"), "{err}");
    let err = Config::from_toml("[storage]\nengine = \"mongo\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("mongo"), "{err}");
}

#[test]
fn sys_interval_defaults_to_ten_seconds_and_zero_turns_it_off() {
    assert_eq!(Config::from_toml("").unwrap().mqtt.sys_interval_s, 10);
    let c = Config::from_toml("[mqtt]\nsys_interval_s = 0\n").unwrap();
    assert_eq!(c.mqtt.sys_interval_s, 0);
    let err = Config::from_toml("[mqtt]\nsys_interval_s = 86401\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("mqtt.sys_interval_s"), "{err}");
}

#[test]
fn the_token_cookie_is_configurable() {
    let c = Config::from_toml("").unwrap();
    assert_eq!(c.security.cookie_name, "pathmq_token");
    assert!(!c.security.https_cookie);
    let c = Config::from_toml(
        "[security]\ncookie_name = \"myCookie\"\nhttps_cookie = true\n\
         [[security.profiles]]\nname = \"http\"\nsession = {type = 0}\n\
         policy = {usage_limit = 1000, inactivity_threshold = \"30m\"}\n",
    )
    .unwrap();
    assert_eq!(c.security.cookie_name, "myCookie");
    assert!(c.security.https_cookie);
    for bad in ["", "a b", "a;b", "a=b"] {
        let toml = format!("[security]\ncookie_name = \"{bad}\"\n");
        let err = Config::from_toml(&toml).unwrap_err().to_string();
        assert!(err.contains("security.cookie_name"), "{bad}: {err}");
    }
}

#[test]
fn the_auth_webhook_reads_from_the_security_table() {
    let c = Config::from_toml(
        r#"
        [security.auth_webhook]
        url = "https://auth.example/pathmq"
        timeout_ms = 1500
        headers = { Authorization = "Bearer s3cret" }
        "#,
    )
    .unwrap();
    let webhook = c.security.auth_webhook.as_ref().expect("configured");
    assert_eq!(webhook.timeout_ms, 1500);
    assert!(
        !format!("{:?}", c.security).contains("s3cret"),
        "secrets stay out of logs"
    );
}

#[test]
fn plugins_read_from_the_plugins_table() {
    let c = Config::from_toml(
        r#"
        [plugins.rate_limit]
        default = { limit = 10, every = 1000 }
        [[plugins.validate.rules]]
        path = "/sensors/*"
        schema = { type = "object" }
        "#,
    )
    .unwrap();
    assert!(c.plugins.rate_limit.is_some());
    assert_eq!(c.plugins.validate.unwrap().rules.len(), 1);
    let error = Config::from_toml("[plugins.nope]\nx = 1").unwrap_err();
    assert!(error.to_string().contains("nope"), "{error}");
}
