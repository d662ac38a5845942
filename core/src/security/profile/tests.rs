//! Tests of profile selection, policies and their parsing.

use std::net::SocketAddr;

use serde_json::json;

use super::*;
use crate::security::Right;

fn user(name: &str, groups: &[&str]) -> User {
    User {
        username: name.into(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        ..User::default()
    }
}

fn facts(protocol: &'static str, peer: &str, stateless: bool) -> SessionFacts {
    SessionFacts {
        client_id: None,
        protocol,
        peer: Some(peer.parse::<SocketAddr>().unwrap()),
        stateless,
        takes_over: None,
    }
}

/// The reference's SECURITY PROFILES example, in order.
fn reference_profiles() -> Vec<Profile> {
    serde_json::from_value(json!([
        {"name": "web-session",
         "session": {"$and": [{"user": {"username": {"$eq": "WEB_SESSION"}}, "type": {"$eq": 0}}]},
         "policy": {"ttl": "4 seconds", "inactivity_threshold": 2000}},
        {"name": "rest-device",
         "session": {"$and": [{"user": {"groups": {"REST_DEVICES": {"$exists": true}}}, "type": {"$eq": 0}}]},
         "policy": {"ttl": 2000}},
        {"name": "trusted-device",
         "session": {"$and": [{"user.groups.TRUSTED_DEVICES": {"$exists": true}, "type": {"$eq": 1}}]},
         "policy": {"ttl": 2000, "permissions": {"/TRUSTED_DEVICES/*": {"actions": ["*"]}}}},
        {"name": "specific-device",
         "session": {"$and": [{"type": {"$in": [0, 1]}, "ip_address": {"$eq": "10.0.0.9"}}]},
         "policy": {"ttl": "infinity", "inactivity_threshold": "Infinity",
                    "permissions": {"/SPECIFIC_DEVICE/*": {"actions": ["get", "on"]}}}},
        {"name": "non-reusable",
         "session": {"$and": [{"user.groups.LIMITED_REUSE": {"$exists": true}, "type": {"$in": [0, 1]}}]},
         "policy": {"usage_limit": 2}},
        {"name": "ip address whitelist",
         "session": {"$and": [{"user.username": {"$eq": "LOCAL_ONLY"}}]},
         "policy": {"sourceIPWhitelist": ["127.0.0.1", "::ffff:127.0.0.1"], "max_connections": 3}}
    ]))
    .unwrap()
}

#[test]
fn the_first_matching_profile_wins() {
    let profiles = Profiles::new(reference_profiles()).unwrap();
    let name = |u: &User, f: &SessionFacts| profiles.select(u, f).name.clone();
    let ws = facts("native", "127.0.0.1:5000", false);
    let http = facts("http", "127.0.0.1:5000", true);
    assert_eq!(name(&user("WEB_SESSION", &[]), &http), "web-session");
    // A stateful WEB_SESSION does not match web-session (type 1).
    assert_eq!(name(&user("WEB_SESSION", &[]), &ws), "default");
    assert_eq!(name(&user("d", &["REST_DEVICES"]), &http), "rest-device");
    assert_eq!(
        name(&user("d", &["TRUSTED_DEVICES"]), &ws),
        "trusted-device"
    );
    let remote = facts("mqtt", "10.0.0.9:1000", false);
    assert_eq!(name(&user("d", &[]), &remote), "specific-device");
    assert_eq!(name(&user("d", &["LIMITED_REUSE"]), &ws), "non-reusable");
    assert_eq!(name(&user("LOCAL_ONLY", &[]), &ws), "ip address whitelist");
    assert!(profiles.has_timeouts());
}

#[test]
fn policies_read_durations_and_limits() {
    let profiles = reference_profiles();
    assert_eq!(profiles[0].policy.ttl, Some(Duration::from_secs(4)));
    assert_eq!(
        profiles[0].policy.inactivity_threshold,
        Some(Duration::from_secs(2))
    );
    assert_eq!(profiles[3].policy.ttl, None, "infinity is no limit");
    assert_eq!(profiles[3].policy.inactivity_threshold, None);
    assert_eq!(profiles[4].policy.usage_limit, Some(2));
    assert_eq!(profiles[5].policy.max_connections, Some(3));
    for bad in [
        json!({"ttl": "soon"}),
        json!({"ttl": -5}),
        json!({"fly": 1}),
    ] {
        let parsed = serde_json::from_value::<Policy>(bad.clone());
        // Unknown keys are ignored by Policy; the config layer denies them.
        if bad.get("fly").is_none() {
            assert!(parsed.is_err(), "{bad}");
        }
    }
}

#[test]
fn whitelists_compare_canonical_addresses() {
    let policy = &reference_profiles()[5].policy;
    let ip = |s: &str| Some(s.parse::<std::net::IpAddr>().unwrap());
    assert!(policy.admits(ip("127.0.0.1")));
    assert!(policy.admits(ip("::ffff:127.0.0.1")));
    assert!(!policy.admits(ip("10.0.0.2")));
    assert!(
        policy.admits(None),
        "in-process sessions are not network logins"
    );
}

#[test]
fn policy_permissions_compile_with_templates() {
    let policy = Policy {
        permissions: Some(Permissions::from([(
            "/devices/{{user.username}}/*".into(),
            serde_json::from_value(json!({"actions": ["set"]})).unwrap(),
        )])),
        ..Policy::default()
    };
    let grants = (policy.grants(&user("ann", &[]), &SessionFacts::default()))
        .unwrap()
        .unwrap();
    let path = |p| crate::Path::parse(p).unwrap();
    assert!(grants.allows_path(Right::Set, &path("/devices/ann/t")));
    assert!(!grants.allows_path(Right::Set, &path("/devices/bob/t")));
    assert!(
        Policy::default()
            .grants(&user("ann", &[]), &SessionFacts::default())
            .unwrap()
            .is_none()
    );
}

#[test]
fn bad_profiles_are_refused_by_name() {
    let bad_criteria = Profile {
        name: "p".into(),
        session: Some(json!({"type": {"$fly": 1}})),
        ..Profile::default()
    };
    assert!(matches!(
        Profiles::new(vec![bad_criteria]),
        Err(ProfileError::Criteria { profile, .. }) if profile == "p"
    ));
    let bad_template: Profile = serde_json::from_value(json!({
        "name": "q",
        "policy": {"permissions": {"/a/{{user.nme}}": {"actions": ["get"]}}}
    }))
    .unwrap();
    assert!(matches!(
        Profiles::new(vec![bad_template]),
        Err(ProfileError::Permission { profile, .. }) if profile == "q"
    ));
}
