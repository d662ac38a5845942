//! A client that reads nothing stalls nobody: its events wait in its own session's
//! queue and its connection's task blocks alone, while other clients are served.

mod common;

use bytes::Bytes;
use common::{Server, next_event, write};
use pathmq_core::Payload;
use pathmq_token::TokenConfig;

#[tokio::test]
async fn a_client_that_does_not_read_does_not_stall_the_others() {
    let server = Server::start(TokenConfig::default()).await;
    let watcher = server.watch("/tokens/*/in").await;
    let mut slow = server.connect_as("slow").await;
    let mut fast = server.connect_as("fast").await;
    for client in [&mut slow, &mut fast] {
        client.send(b"ready").await.unwrap();
        next_event(&watcher).await;
    }
    // Far more than the socket buffers hold: the slow connection's writes block.
    let big = Payload::detect(Bytes::from(vec![b'x'; 256 * 1024]));
    let flood = server.writer();
    for _ in 0..64 {
        write(&flood, "/tokens/slow/out", big.clone(), false).await;
    }
    let other = server.writer();
    for i in 0..100 {
        let payload = Payload::detect(Bytes::from(format!("n{i}")));
        write(&other, "/tokens/fast/out", payload, false).await;
        assert_eq!(fast.recv().await, format!("n{i}"));
    }
    // The fast client's tokens still go in too.
    fast.send(b"still here").await.unwrap();
    assert_eq!(&next_event(&watcher).await.payload.bytes[..], b"still here");
    drop(slow);
}
