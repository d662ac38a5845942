//! The session actions, error answers and shutdown, on the wire
//! (`reference/happn-3-wire.md` §2, §5, §6).

mod common;

use anyhow::Result;
use common::{Client, meta_of};
use serde_json::{Value, json};

#[tokio::test]
async fn handshake_configures_describes_and_logs_in() -> Result<()> {
    let broker = common::start().await?;
    let mut client = Client::ws(&broker, "/primus?_primuscb=Nabc123").await?;

    let configured = client
        .ok(
            "configure-session",
            None,
            json!({"protocol": "happn_4", "version": "13.12.1", "browser": false}),
            Value::Null,
        )
        .await?;
    assert_eq!(configured["data"], Value::Null);
    assert_eq!(configured["protocol"], "happn_4");
    assert_eq!(configured["_meta"]["action"], "configure-session");

    let described = client
        .ok("describe", None, Value::Null, Value::Null)
        .await?;
    assert_eq!(
        described["data"],
        json!({"name": "pathmq", "secure": false})
    );

    let login = client
        .ok(
            "login",
            None,
            json!({"info": {"_browser": false, "who": "test"}, "protocol": "happn_4"}),
            json!({"timeout": 60000}),
        )
        .await?;
    let session = &login["data"];
    let id = session["id"].as_str().expect("session id");
    assert_eq!(session["protocol"], "happn_4");
    assert_eq!(session["version"], "13.12.1");
    assert_eq!(session["happn"], json!({"name": "pathmq", "secure": false}));
    assert_eq!(session["info"]["who"], "test");
    assert_eq!(session["address"]["ip"], "127.0.0.1");
    assert!(session.get("user").is_none() && session.get("token").is_none());
    // Every later answer names the same session.
    assert_eq!(login["_meta"]["sessionId"], id);
    let described = client
        .ok("describe", None, Value::Null, Value::Null)
        .await?;
    assert_eq!(described["_meta"]["sessionId"], id);
    Ok(())
}

#[tokio::test]
async fn root_path_serves_the_same_protocol() -> Result<()> {
    let broker = common::start().await?;
    let mut client = Client::ws(&broker, "/").await?;
    let session = client.handshake().await?;
    assert!(session["id"].is_string());
    Ok(())
}

/// Guards: a malformed frame is answered with an error and never drops the connection.
#[tokio::test]
async fn bad_frames_get_errors_and_the_connection_stays_usable() -> Result<()> {
    let broker = common::start().await?;
    let mut client = Client::ws(&broker, "/primus").await?;
    client.handshake().await?;

    let expect_error = |frame: &Value, code: u64| {
        assert_eq!(frame["data"], Value::Null, "{frame}");
        assert_eq!(frame["_meta"]["status"], "error", "{frame}");
        assert_eq!(frame["_meta"]["error"]["code"], code, "{frame}");
        assert!(frame["_meta"]["error"]["message"].is_string(), "{frame}");
    };

    client.send_raw("{not json").await?;
    let frame = client.next().await?;
    expect_error(&frame, 400);
    assert_eq!(frame["_meta"]["error"]["name"], "BadRequest");
    assert!(frame["_meta"].get("eventId").is_none());

    client.send_raw("[1,2,3]").await?;
    expect_error(&client.next().await?, 400);

    client.send_raw(r#"{"eventId":77}"#).await?;
    let frame = client.response(77).await?;
    expect_error(&frame, 400);
    assert!(
        frame["_meta"]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("action"))
    );

    let frame = client
        .call("bogus", Some("/x"), Value::Null, Value::Null)
        .await?;
    expect_error(&frame, 400);
    assert_eq!(frame["_meta"]["action"], "bogus");
    assert_eq!(frame["_meta"]["error"]["message"], "unknown action `bogus`");

    // Bad paths: a wildcard in a set, an empty path, `**` before the end.
    let frame = client
        .call("set", Some("/a/*"), json!({}), Value::Null)
        .await?;
    expect_error(&frame, 400);
    let frame = client
        .call("get", Some(""), Value::Null, Value::Null)
        .await?;
    expect_error(&frame, 400);
    let frame = client
        .call("on", Some("/ALL@/a/**/b"), Value::Null, Value::Null)
        .await?;
    expect_error(&frame, 400);
    let frame = client.call("set", None, json!({}), Value::Null).await?;
    expect_error(&frame, 400);
    let frame = client
        .call("set", Some("/a"), json!({}), json!({"consistency": 9}))
        .await?;
    expect_error(&frame, 400);

    // Still usable.
    client.set("/still/here", json!({"ok": true})).await?;
    let got = client
        .ok("get", Some("/still/here"), Value::Null, Value::Null)
        .await?;
    assert_eq!(got["data"]["ok"], true);
    Ok(())
}

/// Guards: actions and options pathmq does not carry yet are refused out loud.
#[tokio::test]
async fn unsupported_actions_and_options_are_answered_with_errors() -> Result<()> {
    let broker = common::start().await?;
    let mut client = Client::ws(&broker, "/primus").await?;
    client.handshake().await?;
    let cases = [
        (
            "change-password",
            None,
            json!({"oldPassword": "a", "newPassword": "b"}),
            Value::Null,
        ),
        ("revoke-token", None, Value::Null, Value::Null),
        ("disconnect-child-sessions", None, Value::Null, Value::Null),
        (
            "get",
            Some("/a/*"),
            Value::Null,
            json!({"options": {"collation": {"locale": "en"}}}),
        ),
    ];
    for (action, path, data, options) in cases {
        let frame = client.call(action, path, data, options).await?;
        let meta = meta_of(&frame);
        assert_eq!(meta["status"], "error", "{action}: {frame}");
        assert_eq!(meta["error"]["code"], 400, "{action}: {frame}");
        assert!(
            meta["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("not supported")),
            "{action}: {frame}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn ack_is_answered() -> Result<()> {
    let broker = common::start().await?;
    let mut client = Client::ws(&broker, "/primus").await?;
    let response = client.ok("ack", None, json!("s-1"), Value::Null).await?;
    assert_eq!(response["data"], "s-1");
    Ok(())
}

#[tokio::test]
async fn shutdown_sends_server_side_disconnect_then_closes() -> Result<()> {
    let broker = common::start().await?;
    let mut ws = Client::ws(&broker, "/primus").await?;
    let mut tcp = Client::tcp(&broker).await?;
    ws.handshake().await?;
    tcp.handshake().await?;

    broker.core.begin_shutdown();
    for client in [&mut ws, &mut tcp] {
        let frame = client.next().await?;
        assert_eq!(frame["_meta"]["type"], "system", "{frame}");
        assert_eq!(frame["eventKey"], "server-side-disconnect");
        assert_eq!(frame["data"]["reason"], "server shutting down");
        assert_eq!(client.read().await?, None, "then the socket closes");
    }
    Ok(())
}

#[tokio::test]
async fn a_socket_that_never_logs_in_is_closed_with_the_reason() -> Result<()> {
    let mut config = pathmq_native::NativeConfig::default();
    config.login_timeout = std::time::Duration::from_millis(200);
    let broker = common::start_with(config).await?;
    let mut silent = Client::ws(&broker, "/").await?;
    let frame = silent.next().await?;
    assert_eq!(frame["eventKey"], "server-side-disconnect", "{frame}");
    assert_eq!(frame["data"]["reason"], "no login within the login timeout");
    assert_eq!(silent.read().await?, None, "then the socket closes");

    // A client that logs in in time stays connected past the timeout.
    let mut prompt = Client::ws(&broker, "/").await?;
    prompt.handshake().await?;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    prompt
        .ok("describe", None, Value::Null, Value::Null)
        .await?;
    Ok(())
}
