//! pathmq core: the message model, paths and patterns, the subscription index, sessions,
//! the request pipeline with its middleware queue, and the traits that protocols
//! ([`Protocol`]), middleware ([`Layer`]) and storage ([`Store`]) implement.
//!
//! This crate depends on no protocol, storage or plugin crate (DESIGN.md §1): they depend
//! on it. See `docs/ARCHITECTURE.md` for the data flow.
//!
//! ```
//! use pathmq_core::{Path, Pattern};
//!
//! let pattern = Pattern::mqtt("sensors/+/temp").unwrap();
//! assert!(pattern.matches(&Path::parse("/sensors/kitchen/temp").unwrap(), None));
//! assert!(!pattern.matches(&Path::from_topic("sensors/kitchen/hum").unwrap(), None));
//! ```

mod acks;
pub mod durable;
mod error;
mod event;
mod layer;
mod path;
mod pattern;
mod payload;
mod pipeline;
mod protocol;
mod publish;
pub mod query;
mod request;
mod reserved;
mod router;
pub mod security;
mod session;
pub mod session_log;
mod share;
mod stats;
mod store;
mod sys;
pub mod transport;

pub use acks::Publication;
pub use error::Error;
pub use event::{
    CloseReason, Event, EventFilter, EventKind, Matches, MessageProperties, MqttDelivery, Outbound,
};
pub use layer::{InboundVerdict, Layer, LayerContext, OutboundVerdict};
pub use path::{MAX_PATH_LEN, Path, PathError};
pub use pattern::{Glob, Pattern, Segment};
pub use payload::{Format, Payload, Record, now_ms};
pub use pipeline::{Core, CoreBuilder, CoreConfig};
pub use protocol::{BoxIo, HttpResource, Io, Peer, Protocol, WebSocket};
pub use publish::PublishResult;
pub use query::{Criteria, Query, QueryError};
pub use request::{
    Action, Consistency, Off, OnOptions, RESERVED_META_KEYS, Request, Response, SetOptions,
    without_reserved_keys,
};
pub use router::{Router, SHARDS, Subscription, SubscriptionId};
pub use session::{Delivery, OverflowPolicy, Session, SessionId, SessionInfo, SessionQueue};
pub use stats::{COUNTED_PROTOCOLS, LatencyHistogram, ProtocolStats, Stats};
pub use store::{Increment, OnCommit, Store, StoreError, Write};

pub use async_trait::async_trait;
