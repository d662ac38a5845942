//! Routes the embedding program adds (`Broker::http_route`), guarded by `@HTTP`
//! permissions (reference: WEB PATH LEVEL SECURITY): the token as a cookie, `?token=` or
//! `Authorization: Bearer`; 401 without a valid token, 403 without the permission;
//! `_ADMIN` everywhere; usage limits of stateless profiles counted per token.

use pathmq::native::client::{Client, ClientConfig, DataApi as _, SetOptions};
use serde_json::json;

use super::{
    ADMIN_PASSWORD, request, secure_broker, secure_broker_with, secure_config, token_of,
    with_bearer,
};

#[tokio::test]
async fn a_token_reaches_the_routes_its_permissions_allow() {
    let broker = secure_broker().await;
    let ann = token_of(&broker, "ann", "pw-ann").await;
    let route = "/secure/route/test";

    let cookie = format!("pathmq_token={ann}");
    let reply = request(broker.http, "GET", route, &[("Cookie", &cookie)], "").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.json(),
        json!({"secure": "value", "user": "ann", "path": route})
    );
    let other_cookies = format!("theme=dark; pathmq_token={ann}; lang=en");
    let reply = request(broker.http, "GET", route, &[("Cookie", &other_cookies)], "").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let query = format!("{route}?token={ann}");
    let reply = request(broker.http, "GET", &query, &[], "").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let reference_query = format!("{route}?pathmq_token={ann}");
    let reply = request(broker.http, "GET", &reference_query, &[], "").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(with_bearer(&broker, "GET", route, &ann).await.status, 200);

    // Methods are permissions of their own.
    with_bearer(&broker, "POST", route, &ann).await.error(403);
    assert_eq!(
        with_bearer(&broker, "HEAD", route, &ann).await.status,
        403,
        "no `head`"
    );
    let another = "/secure/another/route/test";
    with_bearer(&broker, "GET", another, &ann).await.error(403);
    assert_eq!(with_bearer(&broker, "PUT", another, &ann).await.status, 200);
    assert_eq!(
        with_bearer(&broker, "POST", another, &ann).await.status,
        200
    );
    with_bearer(&broker, "DELETE", another, &ann)
        .await
        .error(403);
    with_bearer(&broker, "POST", "/secure/another/route/other", &ann)
        .await
        .error(403);

    // A refusal names the user, the method and the `@HTTP` path.
    let error = with_bearer(&broker, "POST", route, &ann).await.error(403);
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("`ann` may not post `/@HTTP/secure/route/test`"),
        "{message}"
    );

    // No route, or a path that does not decode cleanly.
    let missing = with_bearer(&broker, "GET", "/not/a/route", &ann).await;
    assert_eq!(missing.status, 404);
    let sneaky = "/secure/route/%2e%2e/another/route/test";
    with_bearer(&broker, "GET", sneaky, &ann).await.error(400);
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn no_token_is_401_and_no_permission_403() {
    let broker = secure_broker().await;
    let route = "/secure/route/test";
    let none = request(broker.http, "GET", route, &[], "").await;
    let error = none.error(401);
    assert_eq!(none.json()["message"], "authentication required");
    assert!(
        error["message"].as_str().unwrap().contains("pathmq_token"),
        "{error}"
    );
    assert_eq!(
        none.header("www-authenticate"),
        Some("Bearer realm=\"pathmq\"")
    );
    let basic = request(
        broker.http,
        "GET",
        route,
        &[("Authorization", "Basic YW5uOnB3")],
        "",
    )
    .await;
    basic.error(401);

    let bob = token_of(&broker, "bob", "pw-bob").await;
    let refused = with_bearer(&broker, "GET", route, &bob).await;
    refused.error(403);
    assert_eq!(refused.json()["message"], "access denied");

    // `_ADMIN` (`*` on `/*`) reaches every route with every method.
    let admin = token_of(&broker, "_ADMIN", ADMIN_PASSWORD).await;
    for (method, target) in [
        ("GET", route),
        ("DELETE", route),
        ("PATCH", "/secure/another/route/test"),
        ("GET", "/secure/another/route/anything"),
    ] {
        let reply = with_bearer(&broker, method, target, &admin).await;
        assert_eq!(reply.status, 200, "{method} {target}: {reply:?}");
    }
    broker.broker.shutdown().await;
}

/// `@HTTP` permissions grant nothing on data: `ann` may `GET /secure/route/test` but not
/// read a record at `/@HTTP/secure/route/test`, while her data permission still holds.
#[tokio::test]
async fn http_permissions_are_not_data_permissions() {
    let broker = secure_broker().await;
    let admin = broker.broker.local_admin_client();
    for path in ["/@HTTP/secure/route/test", "/data/x"] {
        admin
            .set(path, json!({"v": 1}), SetOptions::new())
            .await
            .unwrap();
    }
    let token = token_of(&broker, "ann", "pw-ann").await;
    let url = format!("ws://{}/", broker.http);
    let ann = Client::connect(ClientConfig::websocket(&url).token(&token))
        .await
        .expect("the HTTP token logs in over the native protocol");
    assert!(ann.get("/data/x").await.unwrap().is_some());
    let refused = ann.get("/@HTTP/secure/route/test").await;
    assert_eq!(refused.err().and_then(|e| e.code()), Some(403));
    broker.broker.shutdown().await;
}

/// A stateless profile's `usage_limit` counts the requests of one token across requests;
/// a new login gets a new count.
#[tokio::test]
async fn stateless_usage_limits_count_per_token() {
    let mut config = secure_config();
    let profile = json!({
        "name": "http-twice",
        "session": {"type": 0},
        "policy": {"usage_limit": 2}
    });
    config.security.profiles = vec![serde_json::from_value(profile).unwrap()];
    let broker = secure_broker_with(config).await;
    let route = "/secure/route/test";
    let token = token_of(&broker, "ann", "pw-ann").await;
    for _ in 0..2 {
        assert_eq!(with_bearer(&broker, "GET", route, &token).await.status, 200);
    }
    let spent = with_bearer(&broker, "GET", route, &token).await.error(401);
    assert!(
        spent["message"].as_str().unwrap().contains("usage limit"),
        "{spent}"
    );
    let fresh = token_of(&broker, "ann", "pw-ann").await;
    assert_eq!(with_bearer(&broker, "GET", route, &fresh).await.status, 200);
    broker.broker.shutdown().await;
}
