//! `/auth/login` and `/auth/logout`: the token in the body and a cookie, the refusals
//! (401 for bad credentials, lockout and tokens, 403 for policy, 400/405/413 for bad
//! requests), and an insecure broker's clear 400.

use serde_json::json;

use super::{
    ADMIN_PASSWORD, TestBroker, login_json, request, secure_broker, secure_broker_with,
    secure_config, token_of,
};

#[tokio::test]
async fn a_login_hands_out_a_token_in_the_body_and_a_cookie() {
    let broker = secure_broker().await;
    let reply = login_json(&broker, json!({"username": "ann", "password": "pw-ann"})).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = reply.json();
    assert_eq!(body["message"], "login successful");
    assert_eq!(body["error"], serde_json::Value::Null);
    let token = body["data"].as_str().expect("a token");
    assert!(token.starts_with("eyJ"), "{token}");
    let cookie = reply.header("set-cookie").expect("a cookie");
    let expected = format!("pathmq_token={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age=");
    assert!(cookie.starts_with(&expected), "{cookie}");
    assert!(!cookie.contains("Secure"), "{cookie}");
    assert_eq!(reply.header("cache-control"), Some("no-store"));

    // The same login as a form; the reference's GET with a query string is refused for a
    // password (it would end up in access logs; login CSRF).
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let reply = request(
        broker.http,
        "POST",
        "/auth/login",
        &form,
        "username=ann&password=pw-ann",
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let reply = request(
        broker.http,
        "GET",
        "/auth/login?username=ann&password=pw-ann",
        &[],
        "",
    )
    .await;
    assert_eq!(reply.status, 400, "{reply:?}");

    // A token logs in too, and keeps its token.
    let again = login_json(&broker, json!({"token": token})).await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.json()["data"], token);
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn bad_credentials_are_401_and_bad_requests_400() {
    let broker = secure_broker().await;
    for (what, body) in [
        ("no credentials", json!({})),
        ("a username alone", json!({"username": "ann"})),
        (
            "a wrong password",
            json!({"username": "ann", "password": "wrong"}),
        ),
        (
            "an unknown user",
            json!({"username": "nobody", "password": "pw-ann"}),
        ),
    ] {
        let reply = login_json(&broker, body).await;
        let error = reply.error(401);
        assert_eq!(error["name"], "AccessDenied", "{what}");
        assert_eq!(reply.json()["message"], "login failed", "{what}");
        assert!(reply.header("www-authenticate").is_some(), "{what}");
    }
    // Unknown user and wrong password are not told apart.
    let wrong = login_json(&broker, json!({"username": "ann", "password": "x"})).await;
    let unknown = login_json(&broker, json!({"username": "nobody", "password": "x"})).await;
    assert_eq!(wrong.error(401)["message"], unknown.error(401)["message"]);
    let bare = request(broker.http, "GET", "/auth/login", &[], "").await;
    bare.error(401);

    let json = [("Content-Type", "application/json")];
    let bad = request(broker.http, "POST", "/auth/login", &json, "{not json").await;
    bad.error(400);
    let big = format!("{{\"username\": \"{}\"}}", "a".repeat(20_000));
    request(broker.http, "POST", "/auth/login", &json, &big)
        .await
        .error(413);
    let put = request(broker.http, "PUT", "/auth/login", &[], "").await;
    put.error(405);
    assert_eq!(put.header("allow"), Some("GET, POST"));
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn a_locked_out_user_is_refused_even_with_the_right_password() {
    let broker = secure_broker().await;
    for _ in 0..4 {
        let reply = login_json(&broker, json!({"username": "ann", "password": "wrong"})).await;
        reply.error(401);
    }
    let reply = login_json(&broker, json!({"username": "ann", "password": "pw-ann"})).await;
    let error = reply.error(401);
    assert!(
        error["message"].as_str().unwrap().contains("locked"),
        "{error}"
    );
    let retry: u64 = reply
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(retry > 0);
    // Others are not locked out.
    token_of(&broker, "bob", "pw-bob").await;
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn admin_over_the_network_can_be_disabled_403() {
    let mut config = secure_config();
    config.security.disable_default_admin_network_connections = true;
    let broker = secure_broker_with(config).await;
    let reply = login_json(
        &broker,
        json!({"username": "_ADMIN", "password": ADMIN_PASSWORD}),
    )
    .await;
    let error = reply.error(403);
    assert!(
        error["message"].as_str().unwrap().contains("_ADMIN"),
        "{error}"
    );
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn logout_revokes_the_token_and_clears_the_cookie() {
    let broker = secure_broker().await;
    let token = token_of(&broker, "ann", "pw-ann").await;
    let cookie = format!("pathmq_token={token}");
    // GET is not a logout (a link could log a user out).
    let get = request(
        broker.http,
        "GET",
        "/auth/logout",
        &[("Cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(get.status, 405, "{get:?}");

    let reply = request(
        broker.http,
        "POST",
        "/auth/logout",
        &[("Cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.json(),
        json!({"message": "logout successful", "data": null, "error": null})
    );
    let cleared = reply.header("set-cookie").expect("the cookie is cleared");
    assert!(cleared.starts_with("pathmq_token=; Path=/;") && cleared.contains("Max-Age=0"));

    let again = request(
        broker.http,
        "POST",
        "/auth/logout",
        &[("Cookie", &cookie)],
        "",
    )
    .await;
    assert!(
        again.error(401)["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    let none = request(broker.http, "POST", "/auth/logout", &[], "").await;
    none.error(401);
    let relogin = login_json(&broker, json!({"token": token})).await;
    relogin.error(401);
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn an_https_cookie_is_renamed_and_secure() {
    let mut config = secure_config();
    config.security.cookie_name = "myCookie".into();
    config.security.https_cookie = true;
    let broker = secure_broker_with(config).await;
    let reply = login_json(&broker, json!({"username": "ann", "password": "pw-ann"})).await;
    let token = reply.json()["data"].as_str().unwrap().to_owned();
    let cookie = reply.header("set-cookie").unwrap();
    assert!(
        cookie.starts_with(&format!("myCookie_https={token};")),
        "{cookie}"
    );
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    let named = format!("myCookie_https={token}");
    let ok = request(
        broker.http,
        "GET",
        "/secure/route/x",
        &[("Cookie", &named)],
        "",
    )
    .await;
    assert_eq!(ok.status, 200, "{ok:?}");
    let default = format!("pathmq_token={token}");
    let other = request(
        broker.http,
        "GET",
        "/secure/route/x",
        &[("Cookie", &default)],
        "",
    )
    .await;
    other.error(401);
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn an_insecure_broker_says_security_is_off() {
    let broker: TestBroker = crate::support::start().await;
    let reply = login_json(&broker, json!({"username": "ann", "password": "x"})).await;
    let error = reply.error(400);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("security is off"),
        "{error}"
    );
    broker.broker.shutdown().await;
}
