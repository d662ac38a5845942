//! The `auth-webhook` plugin end to end (DESIGN.md §7 "pluggable auth providers"): MQTT
//! and native clients of a secure broker log in through an HTTP webhook, with the
//! permissions of their directory groups and of the webhook's answer; a wrong password is
//! refused as bad credentials; a webhook that is down refuses logins as "server
//! unavailable"; and accepted logins are cached, so token logins find the user.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use pathmq::core::security::{Group, PermissionEntry, Permissions, Right};
use pathmq::native::client::{Client, ClientConfig, DataApi, SetOptions};
use pathmq_plugin_auth_webhook::{WebhookAuthProvider, WebhookConfig};
use rumqttc::{ConnectReturnCode, ConnectionError, MqttOptions, QoS};
use serde_json::{Value, json};
use support::*;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};

/// The webhook's own secret, sent by the broker as `Authorization`.
const HOOK_SECRET: &str = "Bearer hook-secret";

/// A webhook on `127.0.0.1:0`, one HTTP/1.1 request per connection: it accepts
/// `sensor-1`/`hook-pw` (group `devices`, room `kitchen`, its own permission on its room),
/// refuses everything else, and answers 403 to a call without [`HOOK_SECRET`].
struct Hook {
    addr: SocketAddr,
    calls: Arc<AtomicUsize>,
}

impl Hook {
    async fn start() -> Hook {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hook = Hook {
            addr: listener.local_addr().unwrap(),
            calls: Arc::default(),
        };
        let calls = hook.calls.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let calls = calls.clone();
                tokio::spawn(async move {
                    let _ = answer(stream, &calls).await;
                });
            }
        });
        hook
    }

    fn url(&self) -> String {
        format!("http://{}/pathmq", self.addr)
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// Reads one request (headers, then a `content-length` body) and answers it.
async fn answer(stream: tokio::net::TcpStream, calls: &AtomicUsize) -> std::io::Result<()> {
    let mut stream = BufReader::new(stream);
    let (mut length, mut authorized) = (0, false);
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "authorization" => authorized = value.trim() == HOOK_SECRET,
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await?;
    calls.fetch_add(1, Ordering::SeqCst);
    let login: Value = serde_json::from_slice(&body).unwrap_or_default();
    let (status, reply) = if !authorized {
        ("403 Forbidden", json!({"ok": false}))
    } else if login["username"] == "sensor-1" && login["password"] == "hook-pw" {
        let own = json!({"/rooms/{{user.custom_data.room}}/*": {"actions": ["set", "get"]}});
        let reply = json!({"ok": true, "groups": ["devices"],
            "custom_data": {"room": "kitchen"}, "permissions": own});
        ("200 OK", reply)
    } else {
        ("200 OK", json!({"ok": false}))
    };
    let reply = reply.to_string();
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        reply.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}

/// A secure broker whose logins go to the webhook at `url`, with the directory group
/// `devices`: `set` and `get` on `/sensors/<username>/*`.
async fn broker_with_webhook(url: String) -> TestBroker {
    let config = WebhookConfig::new(url).header("Authorization", HOOK_SECRET);
    let provider = WebhookAuthProvider::new(config).expect("a valid webhook config");
    let builder = pathmq::Broker::builder()
        .config(secure_config("admin-secret"))
        .auth_provider(provider);
    let broker = start_builder(builder).await;
    let directory = broker.broker.core().security().unwrap().directory();
    let entry = PermissionEntry {
        actions: [Right::Set, Right::Get].into(),
        ..PermissionEntry::default()
    };
    directory
        .upsert_group(Group {
            name: "devices".into(),
            permissions: Permissions::from([("/sensors/{{user.username}}/*".into(), entry)]),
            ..Group::default()
        })
        .await
        .unwrap();
    broker
}

/// Connects a 3.1.1 client as `user`/`password`: `Ok` after it published a retained
/// value to `sensors/<user>/t` (PUBACK seen), or the CONNACK's refusal.
async fn mqtt_login(
    broker: &TestBroker,
    user: &str,
    password: &str,
) -> Result<(), ConnectReturnCode> {
    let mut options = MqttOptions::new(format!("c-{user}"), "127.0.0.1", broker.mqtt.port());
    options.set_credentials(user, password);
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 8);
    let first = tokio::time::timeout(WAIT, eventloop.poll())
        .await
        .expect("CONNACK in time");
    match first {
        Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {}
        Err(ConnectionError::ConnectionRefused(code)) => return Err(code),
        other => panic!("unexpected first event {other:?}"),
    }
    let topic = format!("sensors/{user}/t");
    (client.publish(topic, QoS::AtLeastOnce, true, b"{\"t\":1}".to_vec()))
        .await
        .unwrap();
    poll_v4(&mut eventloop, |event| {
        matches!(event, rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))).then_some(())
    })
    .await;
    Ok(())
}

#[tokio::test]
async fn mqtt_clients_log_in_through_the_webhook_and_are_cached() {
    let hook = Hook::start().await;
    let broker = broker_with_webhook(hook.url()).await;
    assert_eq!(mqtt_login(&broker, "sensor-1", "hook-pw").await, Ok(()));
    assert_eq!(hook.calls(), 1);
    let admin = broker.broker.local_admin_client();
    assert!(
        admin.get("/sensors/sensor-1/t").await.unwrap().is_some(),
        "the webhook user's directory group permission applies"
    );
    for (user, password) in [("sensor-1", "wrong"), ("sensor-2", "hook-pw")] {
        assert_eq!(
            mqtt_login(&broker, user, password).await,
            Err(ConnectReturnCode::BadUserNamePassword),
            "{user}/{password}"
        );
    }
    assert_eq!(hook.calls(), 3);
    assert_eq!(mqtt_login(&broker, "sensor-1", "hook-pw").await, Ok(()));
    assert_eq!(hook.calls(), 3, "the second login came from the cache");
}

#[tokio::test]
async fn native_clients_log_in_through_the_webhook_with_its_permissions() {
    let hook = Hook::start().await;
    let broker = broker_with_webhook(hook.url()).await;
    let url = format!("ws://{}/", broker.http);
    let sensor = Client::connect(ClientConfig::websocket(&url).credentials("sensor-1", "hook-pw"))
        .await
        .expect("the webhook user logs in");
    for path in ["/sensors/sensor-1/x", "/rooms/kitchen/x"] {
        let set = sensor.set(path, json!({"v": 1}), SetOptions::new()).await;
        assert!(
            set.is_ok(),
            "{path}: group and answer permissions apply: {set:?}"
        );
    }
    for path in ["/sensors/sensor-2/x", "/rooms/hall/x"] {
        let set = sensor.set(path, json!({}), SetOptions::new()).await;
        assert_eq!(set.err().and_then(|e| e.code()), Some(403), "{path}");
    }

    // A token login asks the provider for the user, which answers from its cache.
    let token = sensor.token().expect("a token from the password login");
    let again = Client::connect(ClientConfig::websocket(&url).token(token))
        .await
        .expect("a token login of a cached webhook user");
    let get = again.get("/sensors/sensor-1/x").await;
    assert!(get.is_ok(), "{get:?}");
    assert_eq!(hook.calls(), 1, "the token login did not call the webhook");

    assert_eq!(login_status(&url, "sensor-1", "wrong").await, 401);
}

#[tokio::test]
async fn a_webhook_that_is_down_refuses_logins_as_server_unavailable() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let broker = broker_with_webhook(format!("http://{addr}/pathmq")).await;
    assert_eq!(
        mqtt_login(&broker, "sensor-1", "hook-pw").await,
        Err(ConnectReturnCode::ServiceUnavailable)
    );
    let url = format!("ws://{}/", broker.http);
    assert_eq!(login_status(&url, "sensor-1", "hook-pw").await, 500);
}

/// The status of one native `login` as `user`/`password` on a new connection.
async fn login_status(url: &str, user: &str, password: &str) -> u16 {
    let mut native = Native::open(url).await;
    let data = json!({"username": user, "password": password});
    match native.request("login", None, data, None).await {
        Ok(_) => 200,
        Err(meta) => meta["error"]["code"].as_u64().unwrap_or(0) as u16,
    }
}
