//! MQTT over WebSocket (MQTT 5 §6): binary messages carry the byte stream, a message may
//! hold part of a packet or several, and the `mqtt` subprotocol is echoed.

mod common;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use common::{Broker, connect, packets, publish, start, subscribe, within};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(broker: &Broker) -> Ws {
    let mut request = format!("ws://{}/mqtt", broker.http_addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "mqtt".parse().unwrap());
    let (ws, response) = within(
        "the WebSocket upgrade",
        tokio_tungstenite::connect_async(request),
    )
    .await
    .unwrap();
    assert_eq!(
        response.headers().get("Sec-WebSocket-Protocol").unwrap(),
        "mqtt"
    );
    ws
}

/// Reads binary messages until `count` whole packets arrived.
async fn read_packets(ws: &mut Ws, count: usize) -> Vec<Vec<u8>> {
    let mut bytes = Vec::new();
    within("packets over WebSocket", async {
        loop {
            let got = packets(&bytes);
            if got.len() >= count {
                return got;
            }
            match ws.next().await {
                Some(Ok(Message::Binary(b))) => bytes.extend_from_slice(&b),
                Some(Ok(_)) => {}
                other => panic!("WebSocket ended: {other:?}"),
            }
        }
    })
    .await
}

#[tokio::test]
async fn mqtt_over_websocket_with_split_and_joined_packets() {
    let broker = start().await;
    let mut ws = open(&broker).await;
    // A CONNECT split across two messages.
    let hello = connect(4, "ws-client", 30);
    let (a, b) = hello.split_at(5);
    ws.send(Message::Binary(a.to_vec().into())).await.unwrap();
    ws.send(Message::Binary(b.to_vec().into())).await.unwrap();
    assert_eq!(
        read_packets(&mut ws, 1).await,
        [vec![0x20, 0x02, 0x00, 0x00]]
    );
    // A SUBSCRIBE and a PUBLISH to it in one message.
    let mut both = subscribe(4, 1, "ws/+", 1);
    both.extend(publish(4, "ws/t", 0, 0, false, &[0, 1, 2, 0xFF]));
    ws.send(Message::Binary(both.into())).await.unwrap();
    let got = read_packets(&mut ws, 2).await;
    assert_eq!(got[0], [0x90, 0x03, 0x00, 0x01, 0x01]);
    assert_eq!(got[1], publish(4, "ws/t", 0, 0, false, &[0, 1, 2, 0xFF]));
}

#[tokio::test]
async fn websocket_and_tcp_clients_share_the_broker() {
    let broker = start().await;
    let mut ws = open(&broker).await;
    ws.send(Message::Binary(connect(5, "ws5", 30).into()))
        .await
        .unwrap();
    read_packets(&mut ws, 1).await;
    ws.send(Message::Binary(subscribe(5, 1, "mix/#", 0).into()))
        .await
        .unwrap();
    read_packets(&mut ws, 1).await;
    let (tcp, _incoming) = common::v4_client(&broker, "tcp").await;
    tcp.publish("mix/a", rumqttc::QoS::AtMostOnce, false, "from tcp")
        .await
        .unwrap();
    let got = read_packets(&mut ws, 1).await;
    assert_eq!(got[0], publish(5, "mix/a", 0, 0, false, b"from tcp"));
}

#[tokio::test]
async fn text_messages_close_the_connection() {
    let broker = start().await;
    let mut ws = open(&broker).await;
    ws.send(Message::Binary(connect(4, "txt", 30).into()))
        .await
        .unwrap();
    read_packets(&mut ws, 1).await;
    ws.send(Message::text("not mqtt")).await.unwrap();
    let end = within("the close", async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    });
    end.await;
}
