//! Security end to end (DESIGN.md §7, issue 5): logins and permissions over MQTT
//! (rumqttc) and the native protocol (the Rust client), with the attack cases tried.

mod support;

use std::time::Duration;

use pathmq::core::security::{Group, PermissionEntry, Permissions, Right, UserInput};
use pathmq::native::client::{Client, ClientConfig, DataApi, OnOptions, SetOptions};
use rumqttc::{ConnectReturnCode, ConnectionError, MqttOptions, QoS};
use serde_json::json;
use support::*;

const ADMIN_PASSWORD: &str = "admin-secret";

async fn secure_broker() -> TestBroker {
    let config = secure_config(ADMIN_PASSWORD);
    let broker = start_with(config).await;
    let directory = broker.broker.core().security().expect("secure").directory();
    let entry = |rights: &[Right]| PermissionEntry {
        actions: rights.iter().copied().collect(),
        ..PermissionEntry::default()
    };
    // Devices write and watch their own subtree only.
    directory
        .upsert_group(Group {
            name: "devices".into(),
            // As in the reference's templated example: the subtree and its root (MQTT
            // `sensors/ann/#` also matches `sensors/ann`).
            permissions: Permissions::from([
                (
                    "/sensors/{{user.username}}".into(),
                    entry(&[Right::Set, Right::On, Right::Get]),
                ),
                (
                    "/sensors/{{user.username}}/*".into(),
                    entry(&[Right::Set, Right::On, Right::Get]),
                ),
                (
                    "/rooms/{{user.custom_data.room}}/*".into(),
                    entry(&[Right::Set]),
                ),
            ]),
            ..Group::default()
        })
        .await
        .unwrap();
    for (name, room) in [("ann", json!("kitchen")), ("eve", json!("*"))] {
        let mut input = UserInput {
            username: name.into(),
            password: Some(format!("pw-{name}").into()),
            ..UserInput::default()
        };
        input.custom_data.insert("room".into(), room);
        directory.upsert_user(input).await.unwrap();
        directory.link_group(name, "devices").await.unwrap();
    }
    broker
}

/// The CONNACK return code of an MQTT 3.1.1 connection attempt.
async fn mqtt_connect(
    broker: &TestBroker,
    client_id: &str,
    login: Option<(&str, &str)>,
) -> Result<(rumqttc::AsyncClient, rumqttc::EventLoop), ConnectReturnCode> {
    let mut options = MqttOptions::new(client_id, "127.0.0.1", broker.mqtt.port());
    options.set_keep_alive(Duration::from_secs(30));
    if let Some((user, password)) = login {
        options.set_credentials(user, password);
    }
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 16);
    let first = tokio::time::timeout(WAIT, eventloop.poll())
        .await
        .expect("CONNACK in time");
    match first {
        Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => Ok((client, eventloop)),
        Err(ConnectionError::ConnectionRefused(code)) => Err(code),
        other => panic!("unexpected first event {other:?}"),
    }
}

#[tokio::test]
async fn mqtt_logins_are_checked() {
    let broker = secure_broker().await;
    for (login, expected) in [
        (None, ConnectReturnCode::BadUserNamePassword),
        (
            Some(("ann", "wrong")),
            ConnectReturnCode::BadUserNamePassword,
        ),
        (
            Some(("nobody", "pw-ann")),
            ConnectReturnCode::BadUserNamePassword,
        ),
    ] {
        let refused = mqtt_connect(&broker, "dev-1", login).await.err();
        assert_eq!(refused, Some(expected), "{login:?}");
    }
    assert!(
        mqtt_connect(&broker, "dev-1", Some(("ann", "pw-ann")))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn mqtt_devices_reach_only_their_subtree() {
    let broker = secure_broker().await;
    let (client, mut eventloop) = mqtt_connect(&broker, "ann-1", Some(("ann", "pw-ann")))
        .await
        .expect("ann connects");
    client
        .subscribe("sensors/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    client
        .subscribe("sensors/ann/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    let mut codes = Vec::new();
    while codes.len() < 2 {
        let suback = poll_v4(&mut eventloop, |e| match e {
            rumqttc::Event::Incoming(rumqttc::Packet::SubAck(s)) => Some(s.return_codes.clone()),
            _ => None,
        })
        .await;
        codes.extend(suback);
    }
    assert_eq!(
        codes,
        [
            rumqttc::SubscribeReasonCode::Failure,
            rumqttc::SubscribeReasonCode::Success(QoS::AtLeastOnce)
        ],
        "`sensors/#` is refused, `sensors/ann/#` granted"
    );

    // A publish outside the subtree is dropped (3.1.1 cannot say so); one inside arrives.
    client
        .publish(
            "sensors/bob/t",
            QoS::AtLeastOnce,
            true,
            b"{\"t\":1}".to_vec(),
        )
        .await
        .unwrap();
    client
        .publish(
            "sensors/ann/t",
            QoS::AtLeastOnce,
            true,
            b"{\"t\":2}".to_vec(),
        )
        .await
        .unwrap();
    let publish = poll_v4(&mut eventloop, v4_publish).await;
    assert_eq!(publish.topic, "sensors/ann/t");
    let admin = broker.broker.local_admin_client();
    assert!(
        admin.get("/sensors/bob/t").await.unwrap().is_none(),
        "the refused publish was stored"
    );
}

#[tokio::test]
async fn native_requests_need_a_login_and_a_permission() {
    let broker = secure_broker().await;
    let url = format!("ws://{}/", broker.http);

    let refused = Client::connect(ClientConfig::websocket(&url).credentials("ann", "wrong")).await;
    assert!(refused.is_err(), "a wrong password logs in");

    let ann = Client::connect(ClientConfig::websocket(&url).credentials("ann", "pw-ann"))
        .await
        .expect("ann logs in");
    ann.set("/sensors/ann/t", json!({"t": 1}), SetOptions::new())
        .await
        .expect("ann writes her own subtree");
    let code = |e: pathmq::native::client::ClientError| e.code();
    let forbidden = ann
        .set("/sensors/bob/t", json!({}), SetOptions::new())
        .await;
    assert_eq!(forbidden.err().and_then(code), Some(403));
    let sweep = ann.get_many("/sensors/*", Default::default()).await;
    assert_eq!(
        sweep.err().and_then(code),
        Some(403),
        "a glob read beyond her subtree"
    );
    let wide = ann.on("/sensors/**", OnOptions::new()).await;
    assert_eq!(wide.err().and_then(code), Some(403));
    assert!(ann.on("/sensors/ann/**", OnOptions::new()).await.is_ok());

    // `room` is `*` in eve's data: the templated permission is voided, not widened.
    let eve = Client::connect(ClientConfig::websocket(&url).credentials("eve", "pw-eve"))
        .await
        .expect("eve logs in");
    let widened = eve
        .set("/rooms/kitchen/light", json!({}), SetOptions::new())
        .await;
    assert_eq!(widened.err().and_then(code), Some(403));

    // `/_SYSTEM` is never reachable over the wire, not even by `_ADMIN`.
    let admin =
        Client::connect(ClientConfig::websocket(&url).credentials("_ADMIN", ADMIN_PASSWORD))
            .await
            .expect("_ADMIN logs in");
    assert!(admin.get("/sensors/ann/t").await.unwrap().is_some());
    let system = admin.get_many("/_SYSTEM/*", Default::default()).await;
    assert_eq!(system.err().and_then(code), Some(403));
    // A glob over everything leaves `/_SYSTEM` out of reads, counts and removes.
    let everything = admin.get_many("/*", Default::default()).await.unwrap();
    assert!(
        everything
            .iter()
            .all(|i| !i.meta.path.starts_with("/_SYSTEM")),
        "{everything:?}"
    );
    assert_eq!(
        admin.count("/*", Default::default()).await.unwrap(),
        everything.len() as u64
    );
    let all = admin
        .on("/**", OnOptions::new().initial_callback(true).depth(10))
        .await
        .unwrap();
    assert!(
        all.initial()
            .iter()
            .all(|i| !i.meta.path.starts_with("/_SYSTEM"))
    );
    admin.remove_many("/*", Default::default()).await.unwrap();
    Client::connect(ClientConfig::websocket(&url).credentials("ann", "pw-ann"))
        .await
        .expect("users survive a remove of everything");
}

#[tokio::test]
async fn a_native_client_that_never_logs_in_is_refused() {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;

    let broker = secure_broker().await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/", broker.http))
        .await
        .expect("websocket");
    let request = json!({"action": "get", "eventId": 1, "path": "/sensors/ann/t"});
    ws.send(Message::text(request.to_string())).await.unwrap();
    let answer = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(Ok(Message::Text(text))) = ws.next().await {
                let frame: serde_json::Value = serde_json::from_str(&text).unwrap();
                if frame["_meta"]["eventId"] == 1 {
                    return frame;
                }
            }
        }
    })
    .await
    .expect("an answer");
    assert_eq!(answer["_meta"]["error"]["code"], 401, "{answer}");
}

/// Reference: UNCONFIGURED SESSION CLEANUP. A socket that never logs in is told why and
/// closed after `security.login_timeout_ms`.
#[tokio::test]
async fn sockets_that_never_log_in_are_cleaned_up() {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;

    let mut config = secure_config(ADMIN_PASSWORD);
    config.security.login_timeout_ms = 300;
    let broker = start_with(config).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/", broker.http))
        .await
        .expect("websocket");
    let started = std::time::Instant::now();
    let reason = tokio::time::timeout(WAIT, async {
        let mut reason = None;
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Text(text) = message
                && let Ok(frame) = serde_json::from_str::<serde_json::Value>(&text)
                && frame["eventKey"] == "server-side-disconnect"
            {
                reason = Some(frame["data"]["reason"].clone());
            }
        }
        reason
    })
    .await
    .expect("the socket is closed in time");
    assert!(started.elapsed() >= Duration::from_millis(250));
    let reason = reason.expect("a server-side-disconnect before the close");
    assert!(reason.to_string().contains("login"), "{reason}");
}

/// A permission taken away applies to sessions already logged in, and a deleted user's
/// session is logged out (the directory's change feed recomputes live sessions' grants).
#[tokio::test]
async fn permission_changes_reach_live_sessions() {
    use pathmq::native::client::ClientError;

    let broker = secure_broker().await;
    let url = format!("ws://{}/", broker.http);
    let ann = Client::connect(ClientConfig::websocket(&url).credentials("ann", "pw-ann"))
        .await
        .expect("ann logs in");
    ann.set("/sensors/ann/t", json!({"t": 1}), SetOptions::new())
        .await
        .expect("allowed at first");

    let directory = broker.broker.core().security().unwrap().directory();
    directory
        .upsert_group_permission("devices", "/sensors/{{user.username}}/*", Right::Set, false)
        .await
        .unwrap();
    // The refresh runs on the change feed: wait (bounded) until it has.
    let refused = tokio::time::timeout(WAIT, async {
        loop {
            match ann
                .set("/sensors/ann/t", json!({"t": 2}), SetOptions::new())
                .await
            {
                Err(ClientError::Server { code: 403, .. }) => return,
                _ => tokio::task::yield_now().await,
            }
        }
    })
    .await;
    assert!(refused.is_ok(), "the revoked permission still applies");

    directory.delete_user("ann").await.unwrap();
    let logged_out = tokio::time::timeout(WAIT, async {
        loop {
            match ann.get("/sensors/ann/t").await {
                Err(ClientError::Server { code: 401, .. }) => return,
                _ => tokio::task::yield_now().await,
            }
        }
    })
    .await;
    assert!(logged_out.is_ok(), "a deleted user's session still works");
}

/// Reference: NESTED PERMISSIONS FOR GET AND SET, "Nested listener behaviour example":
/// with `allow_nested_permissions`, a user allowed `get`/`on` on `/test/path/1`,
/// `/test/path/2/3` and `/test/path/4/5/6` reads and hears exactly those under
/// `/test/path/**`; when a permission goes, its events stop, and when one comes, they
/// start.
#[tokio::test]
async fn nested_permissions_filter_reads_and_events() {
    let mut config = secure_config(ADMIN_PASSWORD);
    config.security.allow_nested_permissions = true;
    let broker = start_with(config).await;
    let directory = broker.broker.core().security().unwrap().directory();
    let get_on = PermissionEntry {
        actions: [Right::Get, Right::On].into(),
        ..PermissionEntry::default()
    };
    let permissions = ["/test/path/1", "/test/path/2/3", "/test/path/4/5/6"]
        .map(|p| (p.to_owned(), get_on.clone()));
    directory
        .upsert_group(Group {
            name: "TEST".into(),
            permissions: Permissions::from(permissions),
            ..Group::default()
        })
        .await
        .unwrap();
    directory
        .upsert_user(UserInput {
            username: "nested".into(),
            password: Some("pw-nested".into()),
            ..UserInput::default()
        })
        .await
        .unwrap();
    directory.link_group("nested", "TEST").await.unwrap();
    let admin = broker.broker.local_admin_client();
    let all = [
        "/test/path/1",
        "/test/path/2/3",
        "/test/path/4/5/6",
        "/test/path/7",
        "/test/path/xyz",
    ];
    for path in all {
        admin
            .set(path, json!({"v": path}), SetOptions::new())
            .await
            .unwrap();
    }

    let url = format!("ws://{}/", broker.http);
    let user = Client::connect(ClientConfig::websocket(&url).credentials("nested", "pw-nested"))
        .await
        .expect("logs in");
    let mut read: Vec<String> = (user.get_many("/test/path/**", Default::default()).await)
        .expect("a nested read is allowed")
        .into_iter()
        .map(|item| item.path().to_owned())
        .collect();
    read.sort();
    assert_eq!(read, ["/test/path/1", "/test/path/2/3", "/test/path/4/5/6"]);
    assert_eq!(
        user.count("/test/path/**", Default::default())
            .await
            .unwrap(),
        3
    );
    let outside = user.get_many("/other/**", Default::default()).await;
    assert_eq!(
        outside.err().and_then(|e| e.code()),
        Some(403),
        "no permission below at all"
    );

    let mut events = user
        .on("/test/path/**", OnOptions::new())
        .await
        .expect("a nested on is allowed");
    let next = async |events: &mut pathmq::native::client::Subscription| {
        tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("an event in time")
            .expect("open")
            .meta
            .path
    };
    for path in all {
        admin
            .set(path, json!({"v": 2}), SetOptions::new())
            .await
            .unwrap();
    }
    for expected in ["/test/path/1", "/test/path/2/3", "/test/path/4/5/6"] {
        assert_eq!(next(&mut events).await, expected);
    }
    // Losing `/test/path/1` and gaining `/test/path/xyz` change what the listener hears.
    directory
        .remove_group_permission("TEST", "/test/path/1", None)
        .await
        .unwrap();
    directory
        .upsert_group_permission("TEST", "/test/path/xyz", Right::On, true)
        .await
        .unwrap();
    tokio::time::timeout(WAIT, async {
        loop {
            admin
                .set("/test/path/xyz", json!({"v": 3}), SetOptions::new())
                .await
                .unwrap();
            if next(&mut events).await == "/test/path/xyz" {
                return;
            }
        }
    })
    .await
    .expect("the new permission reaches the listener");
    admin
        .set("/test/path/1", json!({"v": 4}), SetOptions::new())
        .await
        .unwrap();
    admin
        .set("/test/path/2/3", json!({"v": 4}), SetOptions::new())
        .await
        .unwrap();
    let mut heard = next(&mut events).await;
    while heard == "/test/path/xyz" {
        heard = next(&mut events).await;
    }
    assert_eq!(
        heard, "/test/path/2/3",
        "the lost permission's event was delivered"
    );
}

/// The Rust client's token: a password login answers one, another client logs in with
/// it, and `logout` (revoke-token) ends every session using it.
#[tokio::test]
async fn the_rust_client_logs_in_with_a_token_and_logs_out() {
    let broker = secure_broker().await;
    let url = format!("ws://{}/", broker.http);
    let ann = Client::connect(ClientConfig::websocket(&url).credentials("ann", "pw-ann"))
        .await
        .expect("ann logs in");
    let token = ann.token().expect("a secure login answers a token");
    let mut config = ClientConfig::websocket(&url).token(token.clone());
    config.reconnect.enabled = false;
    let by_token = Client::connect(config).await.expect("the token logs in");
    by_token
        .set("/sensors/ann/t", json!({"t": 1}), SetOptions::new())
        .await
        .expect("with ann's permissions");
    assert_eq!(by_token.token().as_deref(), Some(token.as_str()));

    by_token.logout().await.expect("revoke-token");
    let ended = tokio::time::timeout(WAIT, async {
        loop {
            if ann.get("/sensors/ann/t").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the other session using the token still works"
    );
    let mut reuse = ClientConfig::websocket(&url).token(token);
    reuse.reconnect.enabled = false;
    assert!(
        Client::connect(reuse).await.is_err(),
        "a revoked token logs in"
    );
}

/// A password change, or a user deleted and created again under the same name, does not
/// inherit the tokens issued before it.
#[tokio::test]
async fn old_tokens_do_not_survive_a_password_change_or_a_new_user_of_the_name() {
    let broker = secure_broker().await;
    let url = format!("ws://{}/", broker.http);
    let directory = broker.broker.security().expect("secure").directory();
    let token_of = |password: &'static str| {
        let url = url.clone();
        async move {
            let client =
                Client::connect(ClientConfig::websocket(&url).credentials("ann", password))
                    .await
                    .expect("ann logs in");
            client.token().expect("a token")
        }
    };
    let by_token = |token: String| {
        let mut config = ClientConfig::websocket(&url).token(token);
        config.reconnect.enabled = false;
        Client::connect(config)
    };
    let before = token_of("pw-ann").await;
    assert!(by_token(before.clone()).await.is_ok(), "the token logs in");
    tokio::time::sleep(Duration::from_millis(5)).await;
    directory
        .set_password("ann", "pw-ann-2".into())
        .await
        .unwrap();
    assert!(
        by_token(before).await.is_err(),
        "a token from before the password change"
    );
    let after = token_of("pw-ann-2").await;
    assert!(by_token(after.clone()).await.is_ok());

    directory.delete_user("ann").await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    directory
        .upsert_user(UserInput {
            username: "ann".into(),
            password: Some("pw-new-ann".into()),
            ..UserInput::default()
        })
        .await
        .unwrap();
    assert!(by_token(after).await.is_err(), "the earlier ann's token");
}
