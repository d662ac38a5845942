//! MQTT 5 through rumqttc's `v5` client: CONNACK 0x86 for every refused login, SUBACK
//! 0x87 per refused filter, PUBACK/PUBREC 0x87 for a refused PUBLISH at QoS 1/2, a refused
//! QoS 0 PUBLISH dropped, and templated permissions voided by a wildcard.

use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{
    ConnectReturnCode, Filter, Packet, PubAckReason, PubRecReason, SubscribeReasonCode,
};
use rumqttc::v5::{AsyncClient, ConnectionError, Event, MqttOptions};
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;

use super::{ADMIN_PASSWORD, password, secure_broker, secure_broker_with, secure_config, stored};
use crate::support::{TestBroker, WAIT};

/// A connected rumqttc MQTT 5 client; its event loop runs in the background and
/// forwards its events until the connection fails (it is not reconnected).
struct V5 {
    client: AsyncClient,
    events: UnboundedReceiver<Event>,
}

/// Connects `client_id` with `login`; a refused CONNECT answers its CONNACK reason.
async fn connect(
    broker: &TestBroker,
    client_id: &str,
    login: Option<(&str, &str)>,
) -> Result<V5, ConnectReturnCode> {
    let mut options = MqttOptions::new(client_id, broker.mqtt.ip().to_string(), broker.mqtt.port());
    options.set_keep_alive(Duration::from_secs(30));
    if let Some((user, password)) = login {
        options.set_credentials(user, password);
    }
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let first = tokio::time::timeout(WAIT, eventloop.poll())
        .await
        .expect("a CONNACK in time");
    match first {
        Ok(Event::Incoming(Packet::ConnAck(_))) => {}
        Err(ConnectionError::ConnectionRefused(code)) => return Err(code),
        other => panic!("unexpected first event {other:?}"),
    }
    let (tx, events) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            if tx.send(event).is_err() {
                return;
            }
        }
    });
    Ok(V5 { client, events })
}

/// Connects a test user (password `pw-<user>`), which must succeed.
async fn login(broker: &TestBroker, client_id: &str, user: &str) -> V5 {
    connect(broker, client_id, Some((user, &password(user))))
        .await
        .unwrap_or_else(|code| panic!("{user} is refused: {code:?}"))
}

impl V5 {
    /// The next incoming packet `pick` accepts, bounded by [`WAIT`]; panics when the
    /// connection ends first.
    async fn expect<T>(&mut self, what: &str, mut pick: impl FnMut(&Packet) -> Option<T>) -> T {
        let wait = async {
            loop {
                match self.events.recv().await {
                    Some(Event::Incoming(packet)) => {
                        if let Some(found) = pick(&packet) {
                            return found;
                        }
                    }
                    Some(Event::Outgoing(_)) => {}
                    None => panic!("the connection ended while waiting for {what}"),
                }
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }

    /// Sends one SUBSCRIBE with `filters` (QoS 1) and answers the SUBACK's codes.
    async fn subscribe(&mut self, filters: &[&str]) -> Vec<SubscribeReasonCode> {
        let filters = filters.iter().map(|f| Filter::new(*f, QoS::AtLeastOnce));
        self.client.subscribe_many(filters).await.unwrap();
        self.expect("a SUBACK", |p| match p {
            Packet::SubAck(s) => Some(s.return_codes.clone()),
            _ => None,
        })
        .await
    }

    /// Publishes at QoS 1 and answers the PUBACK's reason.
    async fn publish_qos1(&mut self, topic: &str, retain: bool, payload: &str) -> PubAckReason {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.to_owned())
            .await
            .unwrap();
        self.expect("a PUBACK", |p| match p {
            Packet::PubAck(a) => Some(a.reason),
            _ => None,
        })
        .await
    }

    /// The topic and payload of the next PUBLISH received.
    async fn next_publish(&mut self) -> (String, String) {
        self.expect("a PUBLISH", |p| match p {
            Packet::Publish(p) => Some((
                String::from_utf8_lossy(&p.topic).into_owned(),
                String::from_utf8_lossy(&p.payload).into_owned(),
            )),
            _ => None,
        })
        .await
    }
}

const GRANTED: SubscribeReasonCode = SubscribeReasonCode::Success(QoS::AtLeastOnce);
const REFUSED: SubscribeReasonCode = SubscribeReasonCode::NotAuthorized;

#[tokio::test]
async fn refused_logins_get_connack_0x86() {
    let broker = secure_broker().await;
    let too_long = "x".repeat(100);
    for login in [
        None,
        Some(("ann", "wrong-pw")),
        Some(("ann", "")),
        Some(("ann", too_long.as_str())),
        Some(("ANN", "pw-ann")),
        Some(("nobody", "pw-ann")),
        Some(("", "pw-ann")),
        Some(("_ADMIN", "pw-ann")),
    ] {
        let refused = connect(&broker, "dev-1", login).await.err();
        assert_eq!(
            refused,
            Some(ConnectReturnCode::BadUserNamePassword),
            "{login:?}"
        );
    }
    login(&broker, "dev-1", "ann").await;
    assert!(
        connect(&broker, "admin-1", Some(("_ADMIN", ADMIN_PASSWORD)))
            .await
            .is_ok()
    );
}

/// CONNACK 0x87 (not authorized): the password is right but the user may not connect
/// this way, here `_ADMIN` over the network with
/// `disable_default_admin_network_connections`.
#[tokio::test]
async fn admin_network_logins_disabled_get_connack_0x87() {
    let mut config = secure_config();
    config.security.disable_default_admin_network_connections = true;
    let broker = secure_broker_with(config).await;
    let refused = connect(&broker, "admin-1", Some(("_ADMIN", ADMIN_PASSWORD)))
        .await
        .err();
    assert_eq!(refused, Some(ConnectReturnCode::NotAuthorized));
    login(&broker, "ann-1", "ann").await;
}

/// Account lockout: after 4 failed logins even the right password is refused, with
/// CONNACK 0x8A (banned); other users are not affected.
#[tokio::test]
async fn a_locked_out_account_gets_connack_0x8a() {
    let mut config = secure_config();
    config.security.lockout_attempts = 4;
    let broker = secure_broker_with(config).await;
    for _ in 0..4 {
        let refused = connect(&broker, "ann-1", Some(("ann", "wrong-pw")))
            .await
            .err();
        assert_eq!(refused, Some(ConnectReturnCode::BadUserNamePassword));
    }
    let refused = connect(&broker, "ann-1", Some(("ann", "pw-ann")))
        .await
        .err();
    assert_eq!(refused, Some(ConnectReturnCode::Banned));
    login(&broker, "eve-1", "eve").await;
}

/// A refused CONNECT opens no session: it cannot take a live client's id over
/// (MQTT-3.1.4-2 applies to accepted connections only).
#[tokio::test]
async fn a_refused_login_does_not_take_over_the_client_id() {
    let broker = secure_broker().await;
    let mut ann = login(&broker, "ann-1", "ann").await;
    let refused = connect(&broker, "ann-1", Some(("ann", "wrong-pw")))
        .await
        .err();
    assert_eq!(refused, Some(ConnectReturnCode::BadUserNamePassword));
    let refused = connect(&broker, "ann-1", None).await.err();
    assert_eq!(refused, Some(ConnectReturnCode::BadUserNamePassword));
    // Still connected: a taken-over session would have been sent DISCONNECT 0x8E.
    assert_eq!(
        ann.publish_qos1("sensors/ann/t", false, "1").await,
        PubAckReason::Success
    );
}

/// One SUBSCRIBE, several filters: each refused one gets 0x87, `sensors/ann/#` is granted,
/// and only what it covers is delivered.
#[tokio::test]
async fn subscribe_beyond_the_templated_subtree_gets_0x87_per_filter() {
    let broker = secure_broker().await;
    let mut ann = login(&broker, "ann-1", "ann").await;
    let codes = ann
        .subscribe(&[
            "#",
            "sensors/#",
            "sensors/ann/#",
            "sensors/+/t",
            "+/ann/#",
            "sensors/bob/#",
            "sensors",
        ])
        .await;
    assert_eq!(
        codes,
        [
            REFUSED, REFUSED, GRANTED, REFUSED, REFUSED, REFUSED, REFUSED
        ]
    );

    let admin = broker.broker.local_admin_client();
    use pathmq::native::client::{DataApi as _, SetOptions};
    admin
        .set("/sensors/bob/t", json!({"t": 1}), SetOptions::new())
        .await
        .unwrap();
    admin
        .set("/sensors/ann/t", json!({"t": 2}), SetOptions::new())
        .await
        .unwrap();
    let (topic, payload) = ann.next_publish().await;
    assert_eq!(
        (topic.as_str(), payload.as_str()),
        ("sensors/ann/t", "{\"t\":2}")
    );
}

/// A QoS 1 / 2 PUBLISH outside the user's subtree is answered 0x87 and neither stored nor
/// routed; a dashboard allowed only to watch cannot publish.
#[tokio::test]
async fn publish_beyond_the_subtree_gets_0x87_and_is_not_stored() {
    let broker = secure_broker().await;
    let mut dash = login(&broker, "dash-1", "dash").await;
    assert_eq!(dash.subscribe(&["sensors/#"]).await, [GRANTED]);
    let mut ann = login(&broker, "ann-1", "ann").await;

    assert_eq!(
        ann.publish_qos1("sensors/bob/t", true, "{\"t\":1}").await,
        PubAckReason::NotAuthorized
    );
    ann.client
        .publish("sensors/bob/u", QoS::ExactlyOnce, true, "{\"t\":2}")
        .await
        .unwrap();
    let pubrec = ann
        .expect("a PUBREC", |p| match p {
            Packet::PubRec(r) => Some(r.reason),
            _ => None,
        })
        .await;
    assert_eq!(pubrec, PubRecReason::NotAuthorized);
    assert_eq!(
        dash.publish_qos1("sensors/dash/t", true, "{\"t\":3}").await,
        PubAckReason::NotAuthorized,
        "dash may only watch"
    );
    assert_eq!(
        ann.publish_qos1("sensors/ann/t", true, "{\"t\":4}").await,
        PubAckReason::Success
    );

    // dash watches all of `sensors`: the first message it gets is the allowed one.
    let (topic, payload) = dash.next_publish().await;
    assert_eq!(
        (topic.as_str(), payload.as_str()),
        ("sensors/ann/t", "{\"t\":4}")
    );
    for refused in ["/sensors/bob/t", "/sensors/bob/u", "/sensors/dash/t"] {
        assert_eq!(stored(&broker, refused).await, None, "{refused} was stored");
    }
    assert_eq!(
        stored(&broker, "/sensors/ann/t").await,
        Some(json!({"t": 4}))
    );
}

/// A refused QoS 0 PUBLISH has nothing to answer: it is dropped (not stored, not routed)
/// and the connection stays open.
#[tokio::test]
async fn a_refused_qos0_publish_is_dropped() {
    let broker = secure_broker().await;
    let mut dash = login(&broker, "dash-1", "dash").await;
    assert_eq!(dash.subscribe(&["sensors/#"]).await, [GRANTED]);
    let mut ann = login(&broker, "ann-1", "ann").await;
    for (topic, payload) in [
        ("sensors/bob/q", "{\"q\":1}"),
        ("sensors/ann/q", "{\"q\":2}"),
    ] {
        ann.client
            .publish(topic, QoS::AtMostOnce, true, payload)
            .await
            .unwrap();
    }
    // One connection's PUBLISHes are handled in order: the refused one came first.
    let (topic, payload) = dash.next_publish().await;
    assert_eq!(
        (topic.as_str(), payload.as_str()),
        ("sensors/ann/q", "{\"q\":2}")
    );
    assert_eq!(stored(&broker, "/sensors/bob/q").await, None);
    assert_eq!(
        ann.publish_qos1("sensors/ann/t", false, "1").await,
        PubAckReason::Success,
        "the connection is still open"
    );
}

/// `eve`'s room is `*` and `mal`'s is `+`: their `rooms/{{user.custom_data.room}}`
/// permission is voided, not widened. `ann`'s room is `kitchen`: allowed to publish and
/// subscribe there, she gets her messages.
#[tokio::test]
async fn a_wildcard_in_custom_data_voids_the_templated_permission() {
    let broker = secure_broker().await;
    for user in ["eve", "mal"] {
        let mut client = login(&broker, &format!("{user}-1"), user).await;
        let codes = client
            .subscribe(&["rooms/#", "rooms/+/#", "rooms/kitchen/#", "rooms/+"])
            .await;
        assert_eq!(codes, [REFUSED; 4], "{user}");
        assert_eq!(
            client.publish_qos1("rooms/kitchen/light", true, "on").await,
            PubAckReason::NotAuthorized,
            "{user}"
        );
    }
    assert_eq!(stored(&broker, "/rooms/kitchen/light").await, None);

    let mut ann = login(&broker, "ann-1", "ann").await;
    assert_eq!(ann.subscribe(&["rooms/kitchen/#"]).await, [GRANTED]);
    assert_eq!(ann.subscribe(&["rooms/+/#"]).await, [REFUSED]);
    assert_eq!(
        ann.publish_qos1("rooms/kitchen/light", true, "on").await,
        PubAckReason::Success
    );
    let (topic, payload) = ann.next_publish().await;
    assert_eq!(
        (topic.as_str(), payload.as_str()),
        ("rooms/kitchen/light", "on")
    );
}

/// The client id is chosen by the client: one holding a wildcard or a `/` voids the
/// `clients/{{session.client_id}}` permission instead of widening it.
#[tokio::test]
async fn a_wildcard_in_the_client_id_voids_the_templated_permission() {
    let broker = secure_broker().await;
    for client_id in ["+", "#", "*", "ann-1/x"] {
        let mut ann = login(&broker, client_id, "ann").await;
        let codes = ann
            .subscribe(&["clients/#", "clients/+/#", "clients/ann-1/#"])
            .await;
        assert_eq!(codes, [REFUSED; 3], "client id {client_id:?}");
        assert_eq!(
            ann.publish_qos1("clients/ann-1/x", true, "1").await,
            PubAckReason::NotAuthorized,
            "client id {client_id:?}"
        );
        ann.client.disconnect().await.unwrap();
    }
    assert_eq!(stored(&broker, "/clients/ann-1/x").await, None);

    let mut ann = login(&broker, "ann-1", "ann").await;
    assert_eq!(
        ann.subscribe(&["clients/ann-1/#", "clients/#"]).await,
        [GRANTED, REFUSED]
    );
    assert_eq!(
        ann.publish_qos1("clients/ann-1/x", false, "2").await,
        PubAckReason::Success
    );
    let (topic, payload) = ann.next_publish().await;
    assert_eq!((topic.as_str(), payload.as_str()), ("clients/ann-1/x", "2"));
}

/// A durable session belongs to its user: another user's CONNECT with its client id is
/// refused (0x87), with clean start 0 or 1, so the session's queued messages are neither
/// handed over nor discarded; its own user resumes it.
#[tokio::test]
async fn a_durable_session_is_refused_to_another_user() {
    let broker = secure_broker().await;
    let connect_as = |user: &str, clean_start: bool| {
        let mut options = MqttOptions::new(
            "ann-phone",
            broker.mqtt.ip().to_string(),
            broker.mqtt.port(),
        );
        options.set_keep_alive(Duration::from_secs(30));
        options.set_credentials(user, password(user));
        options.set_clean_start(clean_start);
        options.set_session_expiry_interval(Some(600));
        AsyncClient::new(options, 64)
    };
    let first_connack = |mut eventloop: rumqttc::v5::EventLoop| async move {
        let first = tokio::time::timeout(WAIT, eventloop.poll())
            .await
            .expect("a CONNACK in time");
        match first {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => Ok((ack.session_present, eventloop)),
            Err(ConnectionError::ConnectionRefused(code)) => Err(code),
            other => panic!("unexpected first event {other:?}"),
        }
    };
    let (_ann, eventloop) = connect_as("ann", true);
    let (present, eventloop) = first_connack(eventloop).await.expect("ann connects");
    assert!(!present);
    drop(eventloop);
    tokio::time::sleep(Duration::from_millis(100)).await;
    for clean_start in [false, true] {
        let (_dash, eventloop) = connect_as("dash", clean_start);
        let refused = first_connack(eventloop).await.err();
        assert_eq!(
            refused,
            Some(ConnectReturnCode::NotAuthorized),
            "clean start {clean_start}"
        );
    }
    let (_ann, eventloop) = connect_as("ann", false);
    let (present, _eventloop) = first_connack(eventloop).await.expect("ann resumes");
    assert!(present, "ann's session survived dash's attempts");
    broker.broker.shutdown().await;
}
