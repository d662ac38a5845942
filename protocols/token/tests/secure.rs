//! On a secure broker the certificate's CN logs in as that user: a known user with the
//! permissions sends and receives, an unknown one is refused, and one that may not write
//! its inbound path (403) is closed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::{Server, Tls, next_event, write};
use pathmq_core::security::{
    Directory, DirectoryConfig, PermissionEntry, Right, Security, SecurityConfig, SessionFacts,
    UserInput,
};
use pathmq_core::{Core, Payload, Session, Store};
use pathmq_token::TokenConfig;

/// A secure core with users `device-1` (set and on below its own tokens path), `reader`
/// (on only) and `observer` (everything below `/tokens`), serving the token protocol.
async fn secure_server() -> (Server, Arc<Security>) {
    let store: Arc<dyn Store> = Arc::new(pathmq_storage::MemoryStore::new());
    let directory = Directory::open(store.clone(), DirectoryConfig::default())
        .await
        .unwrap();
    for (username, glob, rights) in [
        (
            "device-1",
            "/tokens/device-1/*",
            &[Right::Set, Right::On][..],
        ),
        ("reader", "/tokens/reader/*", &[Right::On]),
        ("observer", "/tokens/*", &[Right::All]),
    ] {
        let entry = PermissionEntry {
            actions: rights.iter().copied().collect(),
            prohibit: BTreeSet::new(),
        };
        let input = UserInput {
            username: username.into(),
            permissions: BTreeMap::from([(glob.to_owned(), entry)]),
            ..UserInput::default()
        };
        directory.upsert_user(input).await.unwrap();
    }
    let security = Security::open(directory, store.clone(), SecurityConfig::default())
        .await
        .unwrap();
    let security = Arc::new(security);
    let core = Core::builder_arc(store).security(security.clone()).build();
    let server = Server::start_on(core, TokenConfig::default(), Tls::Required).await;
    (server, security)
}

/// An in-process session logged in as `observer`.
fn observer(server: &Server, security: &Security) -> Session {
    let session = server.core.open_session("test", None, None);
    let facts = SessionFacts {
        protocol: "test",
        ..SessionFacts::default()
    };
    session.set_identity(security.trusted_identity("observer", &facts).unwrap());
    session
}

#[tokio::test]
async fn a_known_user_sends_and_receives() {
    let (server, security) = secure_server().await;
    let observer = observer(&server, &security);
    common::subscribe(&observer, "/tokens/*/in").await;
    let mut client = server.connect_as("device-1").await;
    client.send(b"Hello!").await.unwrap();
    let event = next_event(&observer).await;
    assert_eq!(
        (event.path.as_str(), &event.payload.bytes[..]),
        ("/tokens/device-1/in", &b"Hello!"[..])
    );
    let reply = Payload::detect("I am happy to see you!".into());
    write(&observer, "/tokens/device-1/out", reply, false).await;
    assert_eq!(&client.recv().await[..], b"I am happy to see you!");
    assert_eq!(
        security.connection_count("device-1"),
        1,
        "logged in as its CN"
    );
}

#[tokio::test]
async fn an_unknown_user_is_refused() {
    let (server, _security) = secure_server().await;
    let mut client = server.connect_as("stranger").await;
    let _ = client.send(b"x").await;
    client.closed().await.unwrap();
    assert_eq!(
        server.core.stats().sessions_opened,
        0,
        "refused before a session opened"
    );
}

#[tokio::test]
async fn a_user_that_may_not_write_its_inbound_path_is_closed() {
    let (server, security) = secure_server().await;
    let observer = observer(&server, &security);
    common::subscribe(&observer, "/tokens/*/in").await;
    let mut client = server.connect_as("reader").await;
    client.send(b"not allowed").await.unwrap();
    client.closed().await.unwrap();
    assert_eq!(server.core.stats().sessions_opened, 2, "it had logged in");
    let nothing = futures_util::FutureExt::now_or_never(observer.recv());
    assert!(nothing.is_none(), "the token was not published");
}
