//! MQTT 3.1.1 and 5 connections (rumqttc) whose CONNACK refusal code, and the way they
//! end (MQTT 5 DISCONNECT reason), can be observed.

use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

use super::common::password;
use crate::support::{TestBroker, WAIT};

/// An MQTT connection (3.1.1 or 5) whose event loop runs in a task forwarding each event,
/// and the error that ends it; it is not reconnected.
pub(crate) struct Mqtt<C, E, X> {
    pub(crate) client: C,
    events: UnboundedReceiver<Result<E, X>>,
    task: JoinHandle<()>,
}

/// A connected MQTT 3.1.1 client.
pub(crate) type V4 = Mqtt<rumqttc::AsyncClient, rumqttc::Event, rumqttc::ConnectionError>;
/// A connected MQTT 5 client.
pub(crate) type V5 =
    Mqtt<rumqttc::v5::AsyncClient, rumqttc::v5::Event, rumqttc::v5::ConnectionError>;

impl<C, E: std::fmt::Debug, X: std::fmt::Debug> Mqtt<C, E, X> {
    /// The first event `pick` accepts, bounded by [`WAIT`]; panics if the connection
    /// ends first.
    pub(crate) async fn expect<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&E) -> Option<T>,
    ) -> T {
        let wait = async {
            loop {
                match self.events.recv().await {
                    Some(Ok(event)) => {
                        if let Some(found) = pick(&event) {
                            return found;
                        }
                    }
                    Some(Err(error)) => panic!("the connection ended ({error:?}) before {what}"),
                    None => panic!("the connection ended before {what}"),
                }
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }

    /// The error that ends the connection, waited for at most `within`; `None` if it is
    /// still up then.
    pub(crate) async fn ending(&mut self, within: Duration) -> Option<X> {
        tokio::time::timeout(within, async {
            loop {
                match self.events.recv().await {
                    Some(Ok(_)) => {}
                    Some(Err(error)) => return error,
                    None => panic!("the event task ended without an error"),
                }
            }
        })
        .await
        .ok()
    }

    /// Drops the connection without a DISCONNECT, as a crashed client would.
    pub(crate) fn crash(self) {
        self.task.abort();
    }
}

impl<C, E, X> Drop for Mqtt<C, E, X> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What became of an MQTT 3.1.1 CONNECT with `login` (user name, password; rumqttc
/// leaves out an empty one).
pub(crate) async fn v4_connect(
    broker: &TestBroker,
    client_id: &str,
    login: Option<(&str, &str)>,
) -> Result<V4, rumqttc::ConnectReturnCode> {
    use rumqttc::{ConnectionError, Event, Packet};
    let mut options = rumqttc::MqttOptions::new(client_id, "127.0.0.1", broker.mqtt.port());
    options.set_keep_alive(Duration::from_secs(30));
    if let Some((user, password)) = login {
        options.set_credentials(user, password);
    }
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 64);
    match tokio::time::timeout(WAIT, eventloop.poll())
        .await
        .expect("a CONNACK in time")
    {
        Ok(Event::Incoming(Packet::ConnAck(_))) => {}
        Err(ConnectionError::ConnectionRefused(code)) => return Err(code),
        other => panic!("unexpected first MQTT 3.1.1 event {other:?}"),
    }
    let (tx, events) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            let event = eventloop.poll().await;
            let end = event.is_err();
            if tx.send(event).is_err() || end {
                return;
            }
        }
    });
    Ok(Mqtt {
        client,
        events,
        task,
    })
}

/// What became of an MQTT 5 CONNECT with `login`.
pub(crate) async fn v5_connect(
    broker: &TestBroker,
    client_id: &str,
    login: Option<(&str, &str)>,
) -> Result<V5, rumqttc::v5::mqttbytes::v5::ConnectReturnCode> {
    use rumqttc::v5::mqttbytes::v5::Packet;
    use rumqttc::v5::{ConnectionError, Event};
    let mut options = rumqttc::v5::MqttOptions::new(client_id, "127.0.0.1", broker.mqtt.port());
    options.set_keep_alive(Duration::from_secs(30));
    if let Some((user, password)) = login {
        options.set_credentials(user, password);
    }
    let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(options, 64);
    match tokio::time::timeout(WAIT, eventloop.poll())
        .await
        .expect("a CONNACK in time")
    {
        Ok(Event::Incoming(Packet::ConnAck(_))) => {}
        Err(ConnectionError::ConnectionRefused(code)) => return Err(code),
        other => panic!("unexpected first MQTT 5 event {other:?}"),
    }
    let (tx, events) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            let event = eventloop.poll().await;
            let end = event.is_err();
            if tx.send(event).is_err() || end {
                return;
            }
        }
    });
    Ok(Mqtt {
        client,
        events,
        task,
    })
}

/// An MQTT 3.1.1 client of `user` with its password; panics if refused.
pub(crate) async fn v4_login(broker: &TestBroker, client_id: &str, user: &str) -> V4 {
    v4_connect(broker, client_id, Some((user, &password(user))))
        .await
        .unwrap_or_else(|code| panic!("{user} is refused over MQTT 3.1.1: {code:?}"))
}

/// An MQTT 5 client of `user` with its password; panics if refused.
pub(crate) async fn v5_login(broker: &TestBroker, client_id: &str, user: &str) -> V5 {
    v5_connect(broker, client_id, Some((user, &password(user))))
        .await
        .unwrap_or_else(|code| panic!("{user} is refused over MQTT 5: {code:?}"))
}

impl V4 {
    /// Subscribes to `filter` at QoS 1 and answers the SUBACK's code.
    pub(crate) async fn subscribe(&mut self, filter: &str) -> rumqttc::SubscribeReasonCode {
        self.client
            .subscribe(filter, rumqttc::QoS::AtLeastOnce)
            .await
            .unwrap();
        self.expect("a SUBACK", |e| match e {
            rumqttc::Event::Incoming(rumqttc::Packet::SubAck(s)) => Some(s.return_codes[0]),
            _ => None,
        })
        .await
    }
}

impl V5 {
    /// Subscribes to `filter` at QoS 1 and answers the SUBACK's reason.
    pub(crate) async fn subscribe(
        &mut self,
        filter: &str,
    ) -> rumqttc::v5::mqttbytes::v5::SubscribeReasonCode {
        use rumqttc::v5::mqttbytes::v5::Packet;
        self.client
            .subscribe(filter, rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
            .await
            .unwrap();
        self.expect("a SUBACK", |e| match e {
            rumqttc::v5::Event::Incoming(Packet::SubAck(s)) => Some(s.return_codes[0]),
            _ => None,
        })
        .await
    }

    /// Publishes `payload` at QoS 1 (retained, so a stored message can be checked) and
    /// answers the PUBACK's reason.
    pub(crate) async fn publish(
        &mut self,
        topic: &str,
        payload: &str,
    ) -> rumqttc::v5::mqttbytes::v5::PubAckReason {
        use rumqttc::v5::mqttbytes::v5::Packet;
        self.client
            .publish(
                topic,
                rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                true,
                payload.to_owned(),
            )
            .await
            .unwrap();
        self.expect("a PUBACK", |e| match e {
            rumqttc::v5::Event::Incoming(Packet::PubAck(a)) => Some(a.reason),
            _ => None,
        })
        .await
    }

    /// The DISCONNECT reason the server ends the connection with, waited for at most
    /// `within`; panics if it ends otherwise or not in time.
    pub(crate) async fn server_disconnect(
        &mut self,
        within: Duration,
    ) -> rumqttc::v5::mqttbytes::v5::DisconnectReasonCode {
        let started = Instant::now();
        match self.ending(within).await {
            Some(rumqttc::v5::ConnectionError::MqttState(
                rumqttc::v5::StateError::ServerDisconnect { reason_code, .. },
            )) => reason_code,
            Some(other) => panic!("the connection ended without a DISCONNECT: {other:?}"),
            None => panic!(
                "no DISCONNECT within {within:?} (waited {:?})",
                started.elapsed()
            ),
        }
    }
}
