//! pathmq protocol plugin: the token protocol of `token-server`
//! (`reference/token-server.md`), written against `pathmq-core`'s public API only, as a
//! third party would (DESIGN.md §8).
//!
//! # The protocol
//!
//! A client connects over TLS, presenting a client certificate the broker's client CA
//! verified, and sends **tokens**: opaque byte strings, each framed as a 4-byte
//! big-endian length followed by that many bytes. The server sends tokens back in the
//! same framing. There is nothing else on the wire: no handshake, no acknowledgements, no
//! error frames.
//!
//! ```text
//! +----------------+----------------------+
//! | length: u32 BE | payload: length bytes |   (both directions)
//! +----------------+----------------------+
//! ```
//!
//! # Mapping
//!
//! * **Identity.** `{{username}}` in the path templates is the verified certificate's
//!   subject CN. A CN that is empty, longer than 256 bytes, or holds `/`, `*`, `+`, `#`
//!   or a control character is refused (it could reach other paths). A client without a
//!   certificate is refused unless `require_certificate = false`; its identity is then its
//!   address (`127.0.0.1:53211`), which a replier can read from the inbound path.
//! * **Login.** On a secure broker the CN logs in as that user with no password
//!   (`Credentials::Certificate`): an unknown user is refused. Without a certificate
//!   (when allowed) the client logs in as the anonymous user. The user needs `set` on its
//!   inbound path and `on` on its replies pattern. On a broker without security the
//!   session just opens.
//! * **Inbound.** Each received token is a `set` of its bytes, unchanged, on the inbound
//!   path (`Payload::detect`: MQTT subscribers receive exactly the bytes; native ones the
//!   usual JSON view), published only (`mode = "publish"`, the default) or stored too
//!   (`mode = "set"`). Tokens are handled in the order they arrive. MQTT subscribers get
//!   them at up to QoS 1, as from native writers.
//! * **Errors.** The core's answer is not sent back (the protocol has no error frame): a
//!   401 or 403 closes the connection (the client could never succeed), any other error
//!   (400, 413, 429, 500) drops that token with a log line. A token above `max_token`, or
//!   one cut short by the end of the stream, closes the connection with a log line.
//! * **Replies.** At connect the session subscribes to the replies pattern (an exact
//!   path by default; any native pattern such as `/tokens/{{username}}/out/**` works).
//!   The payload bytes of every set event there, as published, go to the client as a
//!   token: an MQTT publisher's exact bytes, a native `set`'s JSON text. Remove events
//!   send nothing. An event above `max_token` is not sent (logged).
//! * **Flow.** Events wait in the session's bounded queue (the core's overflow policy
//!   applies); a client that reads nothing for `write_timeout_ms` is dropped, so a slow
//!   client never stalls others.
//! * **Shutdown.** On broker shutdown (or when the core ends the session: policy ttl,
//!   revoked token, queue overflow with the `disconnect` policy) the stream is closed
//!   cleanly with a TLS `close_notify`; the protocol has no frame to say why, the log
//!   does.
//!
//! # Configuration
//!
//! [`TokenConfig`], the `[token]` table:
//!
//! ```toml
//! [token]
//! enabled = true
//! listen = "127.0.0.1:8090"
//! tls = true
//! require_certificate = true
//! inbound = "/tokens/{{username}}/in"
//! mode = "publish"
//! replies = "/tokens/{{username}}/out"
//! max_token = 1048576
//! write_timeout_ms = 10000
//! ```
//!
//! The certificate and the client CA are the broker's `[tls]` settings
//! (`client_ca_path`; set `require_client_certificate = true` so that a client without a
//! certificate is refused in the TLS handshake already).
//!
//! # Registering it
//!
//! ```no_run
//! use std::sync::Arc;
//! use pathmq_core::transport::{Limits, TlsAcceptor, run_tls};
//! use pathmq_token::{Token, TokenConfig};
//!
//! # async fn serve(core: pathmq_core::Core, acceptor: TlsAcceptor) -> Result<(), Box<dyn std::error::Error>> {
//! let config = TokenConfig::default();
//! let listen = config.listen;
//! let token = Arc::new(Token::new(config)?);
//! // With the `pathmq` facade:
//! //   pathmq::Broker::builder()
//! //       .listener(pathmq::ProtocolListener::new("token", listen, token).tls(true))
//! // On a bare core, with a TLS acceptor of your own (client CA set):
//! let listener = tokio::net::TcpListener::bind(listen).await?;
//! run_tls(listener, acceptor, token, core, Limits::default()).await;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use pathmq_core::{BoxIo, Core, Peer, Protocol, async_trait};
use tracing::Instrument as _;

mod config;
mod connection;
mod handshake;

pub use config::{
    MAX_TOKEN_LIMIT, MAX_USERNAME_LEN, Mode, TokenConfig, TokenConfigError, USERNAME_PLACEHOLDER,
};

/// The protocol's name: in logs, and as its sessions' [`pathmq_core::SessionInfo::protocol`].
pub const PROTOCOL: &str = "token";

/// The token protocol: serves byte streams (TLS or plain TCP) handed to it by a
/// transport. Cheap to share (`Arc<Token>`); one serves every connection of a listener.
#[derive(Debug)]
pub struct Token {
    settings: Arc<config::Settings>,
}

impl Token {
    /// The protocol with `config`.
    ///
    /// # Errors
    /// [`TokenConfigError`]: a template that does not make a valid path or pattern, or
    /// holds an unknown placeholder; `max_token` of 0 or above 4 GiB − 1; a zero write
    /// timeout; `require_certificate` without `tls`. Nothing is started.
    pub fn new(config: TokenConfig) -> Result<Self, TokenConfigError> {
        Ok(Self {
            settings: Arc::new(config::Settings::new(config)?),
        })
    }

    /// The configuration it was made with.
    pub fn config(&self) -> &TokenConfig {
        &self.settings.config
    }
}

#[async_trait]
impl Protocol for Token {
    fn name(&self) -> &'static str {
        PROTOCOL
    }

    async fn serve_io(&self, core: Core, io: BoxIo, peer: Peer) {
        let settings = &self.settings;
        let client = match handshake::identify(settings, &peer) {
            Ok(client) => client,
            Err(refusal) => {
                tracing::info!(%peer, reason = %refusal, "token client refused");
                return settings.close(io).await;
            }
        };
        let session = match handshake::open(&core, &client, &peer).await {
            Ok(session) => session,
            Err(refusal) => {
                tracing::info!(%peer, username = %client.username, reason = %refusal, "token client refused");
                return settings.close(io).await;
            }
        };
        let span = tracing::info_span!(
            "token",
            session = %session.id(),
            username = %client.username,
            %peer,
        );
        connection::Connection::new(io, session, client.inbound, settings)
            .run()
            .instrument(span)
            .await;
    }
}
