//! The CONNECT handshake: the first packet under the connect timeout, its checks, the
//! client id, the core session and the CONNACK (MQTT §3.1, §3.2).

use pathmq_core::Peer;
use std::collections::{HashMap, HashSet, VecDeque};

use bytes::BytesMut;
use std::sync::Arc;

use pathmq_core::Core;
use pathmq_core::durable::{Attach, AttachError, Attached};
use pathmq_core::security::{
    Credentials, Identity, LoginError, Security, SessionFacts, TokenError,
};
use tracing::Instrument as _;

use super::{CLOSE_TIMEOUT, Connection, will};
use crate::MqttConfig;
use crate::codec::{self, ConnectError};
use crate::error::ProtocolError;
use crate::inflight::Inflight;
use crate::packet::{ConnAck, Connect, Reply, Version};
use crate::transport::Transport;

/// Why no CONNECT was accepted.
enum First {
    /// The connection closed or failed first.
    Closed(Option<std::io::Error>),
    /// The first packet was refused.
    Refused(ConnectError),
}

/// Serves one connection from its first byte to its end: reads the CONNECT within
/// `config.connect_timeout` (or closes), checks it, opens the core session under the
/// client id (taking it over from an older connection, MQTT-3.1.4-2), sends the CONNACK
/// and runs the connection. A refused CONNECT gets the CONNACK its version can express
/// (MQTT-3.2.2-5: then the connection closes); shutdown during the handshake just closes.
pub(crate) async fn serve<T: Transport + 'static>(
    mut transport: T,
    core: Core,
    config: &MqttConfig,
    peer: Peer,
) {
    let shutdown = core.shutdown_token().clone();
    // CONNECT packets are small; the buffer grows for a larger one.
    let mut buf = BytesMut::with_capacity(128);
    let first = tokio::select! {
        () = shutdown.cancelled() => None,
        first = tokio::time::timeout(
            config.connect_timeout,
            read_connect(&mut transport, &mut buf, config.max_packet_size),
        ) => Some(first),
    };
    let (version, mut connect) = match first {
        None => return close(transport).await,
        Some(Err(_elapsed)) => {
            tracing::debug!(
                timeout_ms = config.connect_timeout.as_millis() as u64,
                "no CONNECT in time; closing"
            );
            return close(transport).await;
        }
        Some(Ok(Err(First::Closed(error)))) => {
            tracing::debug!(?error, "connection closed before CONNECT");
            return close(transport).await;
        }
        Some(Ok(Err(First::Refused(refused)))) => {
            return Box::pin(refuse(transport, refused.version, &refused.error)).await;
        }
        Some(Ok(Ok(connect))) => connect,
    };
    if let Err(error) = check(version, &connect, core.config().max_payload) {
        return Box::pin(refuse(transport, Some(version), &error)).await;
    }
    let (keep_alive, server_keep_alive) =
        match keep_alive(version, connect.keep_alive, config.max_keepalive) {
            Ok(negotiated) => negotiated,
            Err(error) => return Box::pin(refuse(transport, Some(version), &error)).await,
        };
    let assigned = connect.client_id.is_empty();
    let client_id = if assigned {
        format!("pathmq-{}", uuid::Uuid::new_v4().simple())
    } else {
        std::mem::take(&mut connect.client_id)
    };
    // Logged in before the session opens: a refused client takes over nobody's client id.
    let identity = match core.security() {
        None => None,
        // Boxed: the login's future (bcrypt off the runtime) would otherwise stay in the
        // connection task's future for the whole connection.
        Some(security) => {
            match Box::pin(login(&core, security, &mut connect, &client_id, &peer)).await {
                Ok(identity) => Some(identity),
                Err(error) => return Box::pin(refuse(transport, Some(version), &error)).await,
            }
        }
    };
    // 3.1.x: clean session 0 keeps the session as long as the broker allows; MQTT 5: as
    // asked (0 when absent), at most that long.
    let asked_expiry = match version {
        Version::V5 => connect.session_expiry,
        Version::V3 | Version::V4 if connect.clean_start => 0,
        Version::V3 | Version::V4 => u32::MAX,
    };
    let session_expiry = asked_expiry.min(config.max_session_expiry);
    let attach = Attach {
        protocol: "mqtt",
        peer: Some(peer.addr),
        client_id: client_id.clone(),
        clean_start: connect.clean_start,
        expiry_s: session_expiry,
        username: identity.as_ref().map(|i| i.username.clone()),
    };
    // Boxed: waiting for an old connection to let go is rare and its future large.
    let Attached {
        session,
        present,
        unacked,
        awaiting_pubrel,
    } = match Box::pin(core.attach(attach)).await {
        Ok(attached) => attached,
        Err(error) => {
            // On its own task: an await here would widen every connection's future.
            core.tasks().spawn(refuse_attach(transport, version, error));
            return;
        }
    };
    let unacked = welcome(&session, identity, unacked);
    let subscriptions: HashMap<Box<str>, u8> = session
        .mqtt_subscriptions()
        .into_iter()
        .map(|(pattern, qos)| (pattern.into_boxed_str(), qos))
        .collect();
    let span = tracing::info_span!(
        "mqtt",
        client_id = %client_id,
        session = %session.id(),
        version = ?version,
    );
    let connack = ConnAck {
        code: 0,
        // MQTT-3.2.2-2/3; MQTT 3.1 has no such flag (the byte is reserved, 0).
        session_present: present && version != Version::V3,
        assigned_client_id: (assigned && version == Version::V5).then_some(client_id),
        receive_maximum: config.receive_maximum.max(1),
        max_packet_size: u32::try_from(config.max_packet_size).unwrap_or(u32::MAX),
        // The client asked for a longer session than the broker keeps: say what it gets.
        session_expiry: (version == Version::V5 && asked_expiry != session_expiry)
            .then_some(session_expiry),
        server_keep_alive,
        topic_alias_maximum: match version {
            Version::V5 => config.topic_alias_maximum,
            Version::V3 | Version::V4 => 0,
        },
    };
    // The will waits at most until the session ends (MQTT 5 §3.1.3.2.2).
    let will = connect.will.take().map(|mut will| {
        will.delay = will.delay.min(session_expiry);
        will
    });
    let window = match version {
        Version::V3 | Version::V4 => config.max_inflight,
        Version::V5 => connect.receive_maximum.unwrap_or(u16::MAX),
    };
    // Built in its box: the task's future then holds a pointer, not the connection.
    let mut connection = Box::new(Connection {
        transport,
        version,
        session,
        shutdown,
        read_buf: buf,
        write_buf: BytesMut::new(),
        max_packet_size: config.max_packet_size,
        client_max_packet_size: connect.max_packet_size,
        receive_maximum: config.receive_maximum.max(1),
        keep_alive,
        deadline: None,
        subscriptions,
        inflight: Inflight::new(window),
        log_ticket: 0,
        max_session_expiry: config.max_session_expiry,
        connect_session_expiry: match version {
            Version::V5 => connect.session_expiry,
            Version::V3 | Version::V4 => 0,
        },
        problem_information: connect.request_problem_information,
        aliases: crate::alias::Aliases::new(
            connack.topic_alias_maximum,
            connect.topic_alias_maximum,
        ),
        pending: VecDeque::new(),
        awaiting_pubrel: awaiting_pubrel.into_iter().collect::<HashSet<u16>>(),
        will,
    });
    connection.reply(&Reply::ConnAck(&connack));
    connection.resend(unacked);
    span.in_scope(|| {
        tracing::debug!(
            keep_alive,
            will = connection.will.is_some(),
            username = ?connect.username,
            "connected"
        );
    });
    // Boxed: the task's own future then keeps only the (dead) handshake state, not a
    // second copy of the connection; an idle connection's memory is mostly this box.
    Box::pin(connection.run()).instrument(span).await;
}

/// Gives the attached `session` its `identity`, and keeps of what a resumed session
/// kept (`unacked`) only what that user may read now (DESIGN.md §7; the rest is done
/// with).
fn welcome(
    session: &pathmq_core::Session,
    identity: Option<Arc<Identity>>,
    mut unacked: Vec<pathmq_core::durable::DurableMessage>,
) -> Vec<pathmq_core::durable::DurableMessage> {
    if let Some(identity) = identity {
        session.set_identity(identity);
    }
    unacked.retain(|message| {
        let visible = session.may_receive(&message.event.path);
        if !visible {
            session.acknowledged(message.seq);
        }
        visible
    });
    unacked
}

/// Refuses a CONNECT whose client id holds another user's session: CONNACK not
/// authorized (MQTT 5 `0x87`, 3.1.1 return code 5).
async fn refuse_attach<T: Transport>(transport: T, version: Version, error: AttachError) {
    let refusal = ProtocolError::NotAuthorized {
        reason: error.to_string(),
    };
    refuse(transport, Some(version), &refusal).await;
}

/// Checks the CONNECT's user name and password on a secure broker (DESIGN.md §7: MQTT
/// logs in through the same directory as the native protocol; a token is accepted as the
/// password). On a TLS listener that uses the client certificate's identity as the
/// username, the certificate's CN is the user and the CONNECT's user name and password
/// are ignored (Mosquitto's `use_identity_as_username`). The password is taken out of the
/// CONNECT, so it is not kept.
async fn login(
    core: &Core,
    security: &Security,
    connect: &mut Connect,
    client_id: &str,
    peer: &Peer,
) -> Result<Arc<Identity>, ProtocolError> {
    let password = connect.password.take();
    let credentials = match peer.certificate_username() {
        Some(username) => {
            connect.username = Some(username.to_owned());
            Credentials::Certificate {
                username: username.to_owned(),
            }
        }
        None => {
            let username = connect.username.as_deref();
            let Some(credentials) = Credentials::from_username_password(username, password) else {
                tracing::info!(client_id, "CONNECT without credentials refused");
                return Err(ProtocolError::BadCredentials);
            };
            credentials
        }
    };
    let username = connect.username.as_deref();
    let facts = SessionFacts {
        client_id: Some(client_id.to_owned()),
        protocol: "mqtt",
        peer: Some(peer.addr),
        stateless: false,
        takes_over: core.client_id_user(client_id),
    };
    match security.login(credentials, &facts).await {
        Ok(identity) => {
            tracing::info!(client_id, username = %identity.username, "MQTT client logged in");
            Ok(identity)
        }
        Err(error) => {
            // The user name is logged, never the password or token.
            tracing::info!(client_id, username, %error, "CONNECT refused by security");
            Err(match error {
                LoginError::Token(TokenError::Store { .. } | TokenError::Secret(_)) => {
                    ProtocolError::ServerUnavailable {
                        reason: error.to_string(),
                    }
                }
                LoginError::BadCredentials | LoginError::Token(_) => ProtocolError::BadCredentials,
                LoginError::LockedOut { .. } => ProtocolError::Banned {
                    reason: error.to_string(),
                },
                LoginError::TooManyConnections { .. } => ProtocolError::QuotaExceeded {
                    reason: error.to_string(),
                },
                LoginError::AccessDenied(_) => ProtocolError::NotAuthorized {
                    reason: error.to_string(),
                },
                other => ProtocolError::ServerUnavailable {
                    reason: other.to_string(),
                },
            })
        }
    }
}

/// Reads until a whole first packet is buffered and decodes it as a CONNECT.
async fn read_connect<T: Transport>(
    transport: &mut T,
    buf: &mut BytesMut,
    max: usize,
) -> Result<(Version, Connect), First> {
    loop {
        if let Some(connect) = codec::decode_connect(buf, max).map_err(First::Refused)? {
            return Ok(connect);
        }
        match transport.read(buf).await {
            Ok(0) => return Err(First::Closed(None)),
            Ok(_) => {}
            Err(error) => return Err(First::Closed(Some(error))),
        }
    }
}

/// The checks of a decoded CONNECT that the codec cannot make; `max_payload`: the core's
/// limit, which a will payload must respect.
fn check(version: Version, connect: &Connect, max_payload: usize) -> Result<(), ProtocolError> {
    if connect.client_id.is_empty() {
        match version {
            Version::V3 => return Err(ProtocolError::EmptyClientIdV31),
            Version::V4 if !connect.clean_start => return Err(ProtocolError::ClientIdRejected),
            _ => {}
        }
    }
    if let Some(will) = &connect.will {
        will::check(will, max_payload)?;
    }
    if let Some(method) = &connect.authentication_method {
        return Err(ProtocolError::BadAuthenticationMethod {
            method: method.clone(),
        });
    }
    if connect.receive_maximum == Some(0) {
        return Err(ProtocolError::ZeroReceiveMaximum);
    }
    if connect.max_packet_size == Some(0) {
        return Err(ProtocolError::ZeroMaximumPacketSize);
    }
    Ok(())
}

/// The keep alive the server uses for a client asking for `asked` seconds, and the MQTT 5
/// Server Keep Alive to announce when it differs (see `MqttConfig::max_keepalive`; `max` 0:
/// no maximum). MQTT 5: more than `max`, or 0, becomes `max`, announced
/// [MQTT-3.2.2-21/22]. 3.1.x: more than `max` is refused; 0 is kept.
///
/// # Errors
/// [`ProtocolError::KeepAliveTooLong`] for a 3.1.x client asking for more than `max`.
fn keep_alive(version: Version, asked: u16, max: u16) -> Result<(u16, Option<u16>), ProtocolError> {
    if max == 0 || (asked != 0 && asked <= max) {
        return Ok((asked, None));
    }
    match version {
        Version::V5 => Ok((max, Some(max))),
        Version::V3 | Version::V4 if asked > max => Err(ProtocolError::KeepAliveTooLong {
            keep_alive: asked,
            max,
        }),
        Version::V3 | Version::V4 => Ok((asked, None)),
    }
}

/// Answers a refused CONNECT with the CONNACK `version` can express (none when `version`
/// is unknown or 3.1.1 has no code for the error), then closes. Callers box it: refusals
/// are rare, and its future would otherwise widen every connection task's future.
async fn refuse<T: Transport>(mut transport: T, version: Option<Version>, error: &ProtocolError) {
    tracing::debug!(%error, reason_code = error.reason_code(), "CONNECT refused");
    if let Some(version) = version {
        let connack = ConnAck {
            code: error.reason_code(),
            ..ConnAck::default()
        };
        let mut buf = BytesMut::new();
        codec::encode(version, &mut buf, &Reply::ConnAck(&connack));
        if !buf.is_empty() {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, transport.write(&mut buf)).await;
        }
    }
    close(transport).await;
}

async fn close<T: Transport>(mut transport: T) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, transport.close()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_is_capped_for_mqtt5_and_refused_beyond_the_maximum_for_3_1_x() {
        // No maximum: as asked.
        assert_eq!(keep_alive(Version::V5, 0, 0), Ok((0, None)));
        assert_eq!(keep_alive(Version::V4, 9999, 0), Ok((9999, None)));
        // Within the maximum: as asked.
        assert_eq!(keep_alive(Version::V5, 30, 60), Ok((30, None)));
        assert_eq!(keep_alive(Version::V3, 60, 60), Ok((60, None)));
        // MQTT 5 beyond it, or 0: the maximum, announced.
        assert_eq!(keep_alive(Version::V5, 61, 60), Ok((60, Some(60))));
        assert_eq!(keep_alive(Version::V5, 0, 60), Ok((60, Some(60))));
        // 3.1.x beyond it: refused (return code 2); 0 is kept.
        for version in [Version::V3, Version::V4] {
            let refused = keep_alive(version, 61, 60).unwrap_err();
            assert_eq!(refused.reason_code(), 0x85);
            assert_eq!(keep_alive(version, 0, 60), Ok((0, None)));
        }
    }
}
