//! A fake broker for client tests: it speaks just enough of the native protocol over
//! length-prefixed TCP to let a client log in (or refuse it), then answers nothing, so
//! that timeouts and refused logins can be shown without waiting on a real broker.

use std::net::SocketAddr;

use anyhow::Result;
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

/// A broker on TCP that answers `configure-session` and `login` (the login refused with
/// `refuse` when given) and nothing else.
pub(crate) async fn fake_broker(refuse: Option<u16>) -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let mut framed = Framed::new(stream, LengthDelimitedCodec::new());
        while let Some(Ok(frame)) = framed.next().await {
            let Ok(request) = serde_json::from_slice::<Value>(&frame) else {
                continue;
            };
            let meta = json!({"type": "response", "status": "ok", "eventId": request["eventId"]});
            let answer = match (request["action"].as_str(), refuse) {
                (Some("configure-session"), _) => json!({"data": null, "_meta": meta}),
                (Some("login"), None) => json!({"data": {"id": "fake"}, "_meta": meta}),
                (Some("login"), Some(code)) => json!({"data": null, "_meta": {
                    "type": "response", "status": "error", "eventId": request["eventId"],
                    "error": {"name": "AccessDenied", "code": code, "message": "Invalid credentials"}}}),
                _ => continue,
            };
            if framed.send(Bytes::from(answer.to_string())).await.is_err() {
                return;
            }
        }
    });
    Ok(addr)
}
