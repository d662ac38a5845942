//! How long a session outlives its connection: the MQTT 5 Session Expiry Interval
//! (§3.1.2.11.2), its default 0, and the server's maximum `mqtt.max_session_expiry_s`,
//! which 3.1.1 persistent sessions get and which caps what MQTT 5 clients ask for
//! (§3.2.2.3.2). These tests wait for real time to pass (a few seconds): the broker's
//! network connections cannot run on a paused clock.

use std::time::Duration;

use rumqttc::QoS;
use rumqttc::v5::mqttbytes::QoS as Q5;

use crate::support::*;
use crate::*;

/// Longer than the 2 s expiry of these tests, with room for a slow timer.
const PAST_EXPIRY: Duration = Duration::from_millis(3_500);

/// "If the Session Expiry Interval is absent the value 0 is used. If it is set to 0, or
/// is absent, the Session ends when the Network Connection is closed" (§3.1.2.11.2): a
/// Clean Start 0 connect without the property keeps nothing.
#[tokio::test]
async fn mqtt5_session_expiry_0_ends_the_session_with_the_connection() {
    let broker = start().await;
    let mut publisher = Publisher::new(&broker, "zero-pub").await;
    for (id, expiry) in [("zero-absent", None), ("zero-0", Some(0))] {
        let options = || options_v5(&broker, id, false, expiry);
        let (client, mut eventloop, connack) = connect_v5(options()).await;
        assert!(!connack.session_present);
        subscribe_v5(&client, &mut eventloop, "zero/t", Q5::AtLeastOnce).await;
        disconnect_v5(client, eventloop).await;
        publisher.send("zero/t", QoS::AtLeastOnce, "lost").await;

        let (client, mut eventloop, connack) = connect_v5(options()).await;
        assert!(
            !connack.session_present,
            "expiry {expiry:?}: the session ended with its connection"
        );
        subscribe_v5(&client, &mut eventloop, "zero/t", Q5::AtLeastOnce).await;
        publisher.send("zero/t", QoS::AtLeastOnce, "marker").await;
        let p = poll_v5(&mut eventloop, v5_publish).await;
        assert_eq!(
            &p.payload[..],
            b"marker",
            "expiry {expiry:?}: nothing queued"
        );
        disconnect_v5(client, eventloop).await;
    }
    broker.broker.shutdown().await;
}

/// A session with a Session Expiry Interval of 2 s is resumed when its client comes
/// back in time [MQTT-3.1.2-23, MQTT-3.2.2-3] and is gone, with its subscription and
/// its queue, once it has been disconnected for longer: Session Present 0, nothing
/// delivered.
#[tokio::test]
async fn mqtt5_session_expires_after_its_interval_and_resumes_before() {
    let broker = start().await;
    let mut publisher = Publisher::new(&broker, "expiring-pub").await;
    let options = || options_v5(&broker, "expiring", false, Some(2));
    let (client, mut eventloop, _) = connect_v5(options()).await;
    subscribe_v5(&client, &mut eventloop, "expiring/t", Q5::AtLeastOnce).await;
    disconnect_v5(client, eventloop).await;
    publisher.send("expiring/t", QoS::AtLeastOnce, "kept").await;

    let (client, mut eventloop, connack) = connect_v5(options()).await;
    assert!(connack.session_present, "back within 2 s: resumed");
    let p = poll_v5(&mut eventloop, v5_publish).await;
    assert_eq!(&p.payload[..], b"kept");
    disconnect_v5(client, eventloop).await;
    publisher.send("expiring/t", QoS::AtLeastOnce, "lost").await;

    tokio::time::sleep(PAST_EXPIRY).await;
    let (client, mut eventloop, connack) = connect_v5(options()).await;
    assert!(!connack.session_present, "expired: a new session");
    subscribe_v5(&client, &mut eventloop, "expiring/t", Q5::AtLeastOnce).await;
    publisher
        .send("expiring/t", QoS::AtLeastOnce, "marker")
        .await;
    let p = poll_v5(&mut eventloop, v5_publish).await;
    assert_eq!(&p.payload[..], b"marker", "the expired queue is gone");
    disconnect_v5(client, eventloop).await;
    broker.broker.shutdown().await;
}

/// `mqtt.max_session_expiry_s = 2`: an MQTT 5 client asking for an hour is told 2 s in
/// the CONNACK's Session Expiry Interval ("the server uses this property to inform the
/// Client that it is using a value other than that sent by the Client", §3.2.2.3.2), and
/// its session expires after 2 s; a 3.1.1 CleanSession = 0 session, which has no
/// interval of its own, expires after 2 s too. Both are resumed when back in time.
#[tokio::test]
async fn max_session_expiry_caps_mqtt5_and_bounds_3_1_1_sessions() {
    let mut config = memory_config();
    config.mqtt.max_session_expiry_s = 2;
    let broker = start_with(config).await;
    let v5 = || options_v5(&broker, "capped-v5", false, Some(3_600));
    let v4 = || options_v4(&broker, "capped-v4", false);

    let (client, mut eventloop, connack) = connect_v5(v5()).await;
    let granted = connack.properties.and_then(|p| p.session_expiry_interval);
    assert_eq!(
        granted,
        Some(2),
        "the server's maximum, told in the CONNACK"
    );
    subscribe_v5(&client, &mut eventloop, "capped/v5", Q5::AtLeastOnce).await;
    disconnect_v5(client, eventloop).await;
    let (client, mut eventloop, _) = connect_v4(v4()).await;
    subscribe_v4(&client, &mut eventloop, "capped/v4", QoS::AtLeastOnce).await;
    disconnect_v4(client, eventloop).await;

    // Back at once: both sessions are there.
    let (client, eventloop, connack) = connect_v5(v5()).await;
    assert!(connack.session_present, "MQTT 5 resumed within 2 s");
    disconnect_v5(client, eventloop).await;
    let (client, eventloop, present) = connect_v4(v4()).await;
    assert!(present, "3.1.1 resumed within 2 s");
    disconnect_v4(client, eventloop).await;

    tokio::time::sleep(PAST_EXPIRY).await;
    let (client, eventloop, connack) = connect_v5(v5()).await;
    assert!(!connack.session_present, "MQTT 5 session expired after 2 s");
    disconnect_v5(client, eventloop).await;
    let (client, eventloop, present) = connect_v4(v4()).await;
    assert!(!present, "3.1.1 session expired after 2 s");
    disconnect_v4(client, eventloop).await;
    broker.broker.shutdown().await;
}
