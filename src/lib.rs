//! pathmq: a real-time JSON path database and pub/sub broker.
//!
//! IoT devices publish over MQTT 3.1.1/5; apps read, write and subscribe over the native
//! JSON protocol on WebSocket; Rust programs embed the broker. This facade crate starts a
//! broker from a [`Config`](config::Config) and re-exports the crates it is made of:
//!
//! | crate | re-exported as | owns |
//! |---|---|---|
//! | `pathmq-core` | [`core`] | message model, paths, routing, sessions, pipeline, traits |
//! | `pathmq-storage` | [`storage`] | redb and in-memory stores |
//! | `pathmq-mqtt` | [`mqtt`] | MQTT 3.1.1 and 5 |
//! | `pathmq-native` | [`native`] | the native JSON protocol |
//! | `pathmq-token` | [`token`] | the token protocol (length-prefixed frames over TLS) |
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = pathmq::config::Config::default();
//! config.storage.engine = pathmq::config::Engine::Memory;
//! let broker = pathmq::Broker::builder().config(config).start().await?;
//! // ... serve until told to stop ...
//! broker.shutdown().await;
//! # Ok(()) }
//! ```

mod broker;
pub mod config;

pub use broker::{Broker, ProtocolListener, RunningBroker, StartError};
pub use pathmq_core as core;
pub use pathmq_mqtt as mqtt;
pub use pathmq_native as native;
pub use pathmq_storage as storage;
pub use pathmq_token as token;
