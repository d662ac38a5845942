//! SECURITY PROFILES: the example configuration (first matching profile wins, and what its
//! policy does) and the default policies.

use std::time::Duration;

use pathmq::core::security::{Group, Profile, Right, SessionFacts};
use serde_json::{Value, json};

use super::support::start_with;
use super::*;

/// The reference's example `profiles`, as written there but for JSON: `Infinity` is
/// `"infinity"`, `60000 * 10` is `600000`.
fn reference_profiles() -> Value {
    json!([
        {
            "name": "web-session",
            "session": {"$and": [{"user": {"username": {"$eq": "WEB_SESSION"}}, "type": {"$eq": 0}}]},
            "policy": {"ttl": "4 seconds", "inactivity_threshold": 2000}
        },
        {
            "name": "rest-device",
            "session": {"$and": [{"user": {"groups": {"REST_DEVICES": {"$exists": true}}}, "type": {"$eq": 0}}]},
            "policy": {"ttl": 2000}
        },
        {
            "name": "trusted-device",
            "session": {"$and": [{"user": {"groups": {"TRUSTED_DEVICES": {"$exists": true}}}, "type": {"$eq": 1}}]},
            "policy": {"ttl": 2000, "permissions": {"/TRUSTED_DEVICES/*": {"actions": ["*"]}}}
        },
        {
            "name": "specific-device",
            "session": {"$and": [{"type": {"$in": [0, 1]}, "ip_address": {"$eq": "127.0.0.1"}}]},
            "policy": {
                "ttl": "infinity",
                "inactivity_threshold": "infinity",
                "permissions": {"/SPECIFIC_DEVICE/*": {"actions": ["get", "on"]}}
            }
        },
        {
            "name": "non-reusable",
            "session": {"$and": [{"user": {"groups": {"LIMITED_REUSE": {"$exists": true}}}, "type": {"$in": [0, 1]}}]},
            "policy": {"usage_limit": 2}
        },
        {
            "name": "default-stateful",
            "session": {"$and": [{"type": {"$eq": 1}}]},
            "policy": {"ttl": "infinity", "inactivity_threshold": "infinity"}
        },
        {
            "name": "default-stateless",
            "session": {"$and": [{"type": {"$eq": 0}}]},
            "policy": {"ttl": 600000, "inactivity_threshold": "infinity"}
        },
        {
            "name": "ip address whitelist",
            "session": {"$and": [{"user": {"username": {"$eq": "WEB_SESSION"}}}]},
            "policy": {"sourceIPWhitelist": ["127.0.0.1", "::ffff:127.0.0.1"]}
        }
    ])
}

fn profiles(value: Value) -> Vec<Profile> {
    serde_json::from_value(value).expect("the reference's profile shapes")
}

/// A group granting everything, so that only a profile's policy limits its members.
async fn add_group(broker: &TestBroker, name: &str) {
    let group = Group {
        name: name.into(),
        permissions: [("/*".to_owned(), allow(&[Right::All]))].into(),
        ..Group::default()
    };
    directory(broker).upsert_group(group).await.unwrap();
}

/// A user in `groups` (each granting everything), password `pw`.
async fn add_member(broker: &TestBroker, username: &str, groups: &[&str]) {
    add_user(broker, username, "pw", json!({})).await;
    for group in groups {
        directory(broker).link_group(username, group).await.unwrap();
    }
}

/// A password login over the wire: the wire and the login answer.
async fn wire_login(broker: &TestBroker, username: &str) -> (Wire, Value) {
    let (wire, answer) = Wire::login(broker, json!({"username": username, "password": "pw"})).await;
    (
        wire,
        answer.unwrap_or_else(|e| panic!("{username} logs in: {e}")),
    )
}

/// SECURITY PROFILES, the example configuration: profiles are matched in order and the
/// first match gives the session its policy; a policy's `permissions` limit the session
/// whatever its user may do.
///
/// pathmq's token secret must be at least 32 bytes (the example's `"TESTTOKENSECRET"` is
/// refused at start), and it signs tokens with HS256: there is no `keyPair`
/// (`[security] token_secret`, src/config.rs).
#[tokio::test]
async fn security_profiles() {
    let mut config = secure_config();
    config.security.profiles = profiles(reference_profiles());
    config.security.token_secret = Some("TESTTOKENSECRET".into());
    let short = pathmq::Broker::builder()
        .config(config.clone())
        .start()
        .await;
    let error = short.err().expect("a 15-byte token secret is refused");
    assert!(error.to_string().contains("32 bytes"), "{error}");

    config.security.token_secret = Some("TESTTOKENSECRET-but-at-least-32-bytes".into());
    let broker = start_with(config).await;
    for group in [
        "REST_DEVICES",
        "TRUSTED_DEVICES",
        "LIMITED_REUSE",
        "EVERYTHING",
    ] {
        add_group(&broker, group).await;
    }
    add_member(&broker, "WEB_SESSION", &["EVERYTHING"]).await;
    add_member(&broker, "rest", &["REST_DEVICES"]).await;
    add_member(&broker, "trusted", &["TRUSTED_DEVICES"]).await;
    add_member(&broker, "limited", &["LIMITED_REUSE"]).await;
    add_member(&broker, "plain", &["EVERYTHING"]).await;

    // Which profile each kind of session gets: type 0 is stateless (an HTTP request with
    // a token), 1 a connection.
    let security = broker.broker.core().security().unwrap();
    let select = |username: &str, stateless: bool, ip: &str| {
        let user = directory(&broker).get_user(username).unwrap();
        let facts = SessionFacts {
            protocol: if stateless { "http" } else { "native" },
            peer: Some(format!("{ip}:40000").parse().unwrap()),
            stateless,
            ..SessionFacts::default()
        };
        security.profiles().select(&user, &facts)
    };
    let far = "10.0.0.9";
    let cases = [
        ("WEB_SESSION", true, far, "web-session"),
        ("rest", true, far, "rest-device"),
        ("trusted", false, "127.0.0.1", "trusted-device"),
        ("trusted", true, far, "default-stateless"),
        ("plain", false, "127.0.0.1", "specific-device"),
        ("plain", true, "127.0.0.1", "specific-device"),
        ("plain", false, "[::ffff:127.0.0.1]", "specific-device"),
        ("limited", false, far, "non-reusable"),
        // Order matters: `specific-device` comes first for a local session.
        ("limited", false, "127.0.0.1", "specific-device"),
        ("plain", false, far, "default-stateful"),
        ("plain", true, far, "default-stateless"),
        ("WEB_SESSION", false, far, "default-stateful"),
    ];
    for (user, stateless, ip, expected) in cases {
        let profile = select(user, stateless, ip);
        assert_eq!(
            profile.name, expected,
            "{user} stateless={stateless} from {ip}"
        );
    }
    let web = select("WEB_SESSION", true, far);
    assert_eq!(
        web.policy.ttl,
        Some(Duration::from_secs(4)),
        "\"4 seconds\""
    );
    assert_eq!(
        web.policy.inactivity_threshold,
        Some(Duration::from_secs(2))
    );
    let local = select("plain", false, "127.0.0.1");
    assert_eq!(
        (local.policy.ttl, local.policy.inactivity_threshold),
        (None, None)
    );
    assert_eq!(select("limited", false, far).policy.usage_limit, Some(2));

    // End to end, over loopback: `plain` may do anything, but its session is limited to
    // read-only access to `/SPECIFIC_DEVICE/*`.
    let (mut plain, answer) = wire_login(&broker, "plain").await;
    assert_eq!(
        answer["policy"],
        json!({"profile": "specific-device", "ttl": null, "inactivity_threshold": null})
    );
    let set = plain
        .request("set", Some("/SPECIFIC_DEVICE/x"), json!({}))
        .await;
    assert_eq!(
        set.unwrap_err()["code"],
        403,
        "the policy allows get and on only"
    );
    assert!(
        plain
            .request("get", Some("/SPECIFIC_DEVICE/x"), json!(null))
            .await
            .is_ok()
    );
    let other = plain.request("get", Some("/other"), json!(null)).await;
    assert_eq!(other.unwrap_err()["code"], 403);

    // `trusted` gets `trusted-device`: stale after 2 s, `/TRUSTED_DEVICES/*` only.
    let (mut trusted, answer) = wire_login(&broker, "trusted").await;
    assert_eq!(answer["policy"]["profile"], "trusted-device");
    assert_eq!(answer["policy"]["ttl"], 2000);
    let set = trusted
        .request("set", Some("/TRUSTED_DEVICES/x"), json!({"ok": 1}))
        .await;
    assert!(set.is_ok(), "{set:?}");
    let set = trusted.request("set", Some("/other"), json!({})).await;
    assert_eq!(set.unwrap_err()["code"], 403);
}

/// Sends `get`s until one is refused or the connection ends (bounded by [`WAIT`]): what
/// the broker said.
async fn until_ended(wire: &mut Wire) -> Value {
    let ended = tokio::time::timeout(WAIT, async {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if let Err(error) = wire.request("get", Some("/x"), json!(null)).await {
                return error;
            }
        }
    })
    .await;
    ended.expect("the session ends")
}

/// SECURITY PROFILES, the example's policies at work: `ttl`, `inactivity_threshold` and
/// `usage_limit` end a session; `sourceIPWhitelist` refuses a login from elsewhere. (The
/// example's own values are seconds; these are shorter. Its `ip address whitelist` profile
/// comes last there, after profiles every session matches, so it is first here.)
#[tokio::test]
async fn security_profiles_policies() {
    let mut config = secure_config();
    config.security.profiles = profiles(json!([
        {"name": "ip address whitelist",
         "session": {"$and": [{"user": {"username": {"$eq": "WEB_SESSION"}}}]},
         "policy": {"sourceIPWhitelist": ["127.0.0.1", "::ffff:127.0.0.1"]}},
        {"name": "elsewhere only",
         "session": {"user": {"username": {"$eq": "far"}}},
         "policy": {"sourceIPWhitelist": ["10.1.2.3"]}},
        {"name": "short-lived",
         "session": {"user": {"username": {"$eq": "ttl"}}},
         "policy": {"ttl": "300ms"}},
        {"name": "idle",
         "session": {"user": {"username": {"$eq": "idle"}}},
         "policy": {"inactivity_threshold": 300}},
        {"name": "non-reusable",
         "session": {"$and": [{"user": {"groups": {"LIMITED_REUSE": {"$exists": true}}}, "type": {"$in": [0, 1]}}]},
         "policy": {"usage_limit": 2}}
    ]));
    let broker = start_with(config).await;
    add_group(&broker, "LIMITED_REUSE").await;
    add_group(&broker, "EVERYTHING").await;
    for user in ["WEB_SESSION", "far", "ttl", "idle"] {
        add_member(&broker, user, &["EVERYTHING"]).await;
    }
    add_member(&broker, "limited", &["LIMITED_REUSE"]).await;

    let (_, answer) = wire_login(&broker, "WEB_SESSION").await;
    assert_eq!(answer["policy"]["profile"], "ip address whitelist");
    let (code, name, message) = refused_login(&broker, "far", "pw").await;
    assert_eq!((code, name.as_str()), (403, "AccessDenied"), "{message}");
    assert!(message.contains("127.0.0.1"), "{message}");

    let (mut ttl, answer) = wire_login(&broker, "ttl").await;
    assert_eq!(answer["policy"]["ttl"], 300);
    assert!(ttl.request("get", Some("/x"), json!(null)).await.is_ok());
    let ended = until_ended(&mut ttl).await;
    assert!(ended["closed"] == true || ended["code"] == 401, "{ended}");

    let (mut idle, _) = wire_login(&broker, "idle").await;
    assert!(idle.request("get", Some("/x"), json!(null)).await.is_ok());
    tokio::time::sleep(Duration::from_millis(600)).await;
    let ended = idle
        .request("get", Some("/x"), json!(null))
        .await
        .unwrap_err();
    assert!(ended["closed"] == true || ended["code"] == 401, "{ended}");

    // "you can only use this session call twice"
    let (mut limited, answer) = wire_login(&broker, "limited").await;
    assert_eq!(answer["policy"]["profile"], "non-reusable");
    for _ in 0..2 {
        assert!(
            limited
                .request("get", Some("/x"), json!(null))
                .await
                .is_ok()
        );
    }
    let third = limited
        .request("get", Some("/x"), json!(null))
        .await
        .unwrap_err();
    assert_eq!(third["code"], 401, "{third}");
    assert!(
        third["message"]
            .as_str()
            .unwrap_or_default()
            .contains("usage_limit"),
        "{third}"
    );
}

/// SECURITY PROFILES, the default policies: a session no profile matches has no `ttl` and
/// no inactivity timeout, so its token "can be reused forever (unless the user in the
/// token is deleted)".
///
/// pathmq names the default profile `default` for both kinds of session
/// (`pathmq_core::security::profile` module docs) rather than `default-stateful` and
/// `default-stateless`. Tokens still carry an expiry, `[security] token_ttl_ms` (24 h by
/// default).
#[tokio::test]
async fn security_profiles_default_policies() {
    let broker = secure_broker().await;
    add_user(&broker, "ann", "pw", json!({})).await;
    let (_, answer) = wire_login(&broker, "ann").await;
    assert_eq!(
        answer["policy"],
        json!({"profile": "default", "ttl": null, "inactivity_threshold": null})
    );
    let token = answer["token"].as_str().expect("a token").to_owned();
    for _ in 0..2 {
        let (_, again) = Wire::login(&broker, json!({"token": token})).await;
        assert_eq!(
            again.expect("the token is reusable")["user"]["username"],
            "ann"
        );
    }
    directory(&broker).delete_user("ann").await.unwrap();
    let (_, gone) = Wire::login(&broker, json!({"token": token})).await;
    assert_eq!(
        gone.unwrap_err()["code"],
        401,
        "the token's user is deleted"
    );
}
