//! An example plugin (docs/PLUGINS.md): **read-only paths**. Writes (`set`, `remove`, an
//! MQTT PUBLISH) under the configured path globs are refused with 403 unless the user is
//! in one of the writer groups; reads and subscriptions are untouched.
//!
//! ```toml
//! # in a program's own config, deserialized into ReadOnlyConfig
//! paths = ["/config/*", "/firmware/*"]   # data globs: `*` matches the rest of the path
//! writers = ["admins"]                   # groups that may still write there
//! ```
//!
//! Registered with one call on the broker builder:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use pathmq_example_readonly::{ReadOnlyConfig, ReadOnlyLayer};
//!
//! let config = ReadOnlyConfig {
//!     paths: vec!["/config/*".into()],
//!     writers: vec!["admins".into()],
//! };
//! let broker = pathmq::Broker::builder()
//!     .layer(ReadOnlyLayer::new(&config)?)
//!     .start()
//!     .await?;
//! # broker.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! What the clients see: a native request gets error 403 (`AccessDenied`) naming the
//! path; an MQTT 5 PUBLISH gets PUBACK/PUBREC reason `0x87` (not authorized); an MQTT
//! 3.1.1 PUBLISH is acknowledged and dropped (3.1.1 has no way to refuse it), counted in
//! `pathmq_rejected_total`.

use pathmq_core::{
    Error, Glob, InboundVerdict, Layer, LayerContext, PathError, Request, async_trait,
};
use serde::Deserialize;

/// The layer's configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadOnlyConfig {
    /// Data globs of the read-only paths, e.g. `/config/*` (every path below `/config`).
    pub paths: Vec<String>,
    /// Groups whose users may still write there (on a secure broker; an insecure broker
    /// has no users, so nobody may).
    #[serde(default)]
    pub writers: Vec<String>,
}

/// The read-only-paths layer. Build it with [`ReadOnlyLayer::new`].
#[derive(Debug)]
pub struct ReadOnlyLayer {
    paths: Vec<Glob>,
    writers: Vec<String>,
}

impl ReadOnlyLayer {
    /// The layer for `config`.
    ///
    /// # Errors
    /// A path that is not a valid data glob ([`PathError`]); nothing is built.
    pub fn new(config: &ReadOnlyConfig) -> Result<Self, PathError> {
        let paths = (config.paths.iter())
            .map(|p| Glob::parse(p))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            paths,
            writers: config.writers.clone(),
        })
    }

    /// Whether a write to `target` (a path, or a glob for a remove) may touch a read-only
    /// path: conservatively, when either one's fixed prefix starts with the other's.
    fn protects(&self, target: &Glob) -> bool {
        let target = target.literal_prefix();
        self.paths.iter().any(|glob| {
            let fixed = glob.literal_prefix();
            match glob.has_wildcard() {
                true => target.starts_with(fixed) || fixed.starts_with(target),
                false => target == fixed,
            }
        })
    }
}

#[async_trait]
impl Layer for ReadOnlyLayer {
    fn name(&self) -> &str {
        "readonly"
    }

    async fn inbound(&self, cx: &LayerContext<'_>, request: &mut Request) -> InboundVerdict {
        let target = match request {
            Request::Set { path, .. } => match Glob::parse(path.as_str()) {
                Ok(glob) => glob,
                Err(_) => return InboundVerdict::Continue,
            },
            Request::Remove { target, .. } | Request::RemoveMatching { target, .. } => {
                target.clone()
            }
            // Reads and subscriptions pass.
            _ => return InboundVerdict::Continue,
        };
        if !self.protects(&target) || self.writers.iter().any(|g| cx.in_group(g)) {
            return InboundVerdict::Continue;
        }
        InboundVerdict::Reject(Error::Forbidden(format!("{target} is read-only")))
    }
}

#[cfg(test)]
mod tests {
    use pathmq_core::{Path, Payload, SessionId, SessionInfo, SetOptions};

    use super::*;

    fn layer() -> ReadOnlyLayer {
        ReadOnlyLayer::new(&ReadOnlyConfig {
            paths: vec!["/config/*".into(), "/motd".into()],
            writers: vec!["admins".into()],
        })
        .unwrap()
    }

    fn set(path: &str) -> Request {
        Request::Set {
            path: Path::parse(path).unwrap(),
            payload: Payload::json(&serde_json::json!({"x": 1})),
            options: SetOptions::default(),
        }
    }

    #[tokio::test]
    async fn writes_under_read_only_paths_are_refused_without_a_writer_group() {
        let info = SessionInfo {
            id: SessionId::new(),
            protocol: "native",
            peer: None,
            client_id: None,
        };
        let cx = LayerContext::new(&info, None);
        let layer = layer();
        for path in ["/config/a", "/config/a/b", "/motd"] {
            let verdict = layer.inbound(&cx, &mut set(path)).await;
            assert!(
                matches!(verdict, InboundVerdict::Reject(Error::Forbidden(_))),
                "{path}"
            );
        }
        for path in ["/configs", "/motd/x", "/data/a"] {
            let verdict = layer.inbound(&cx, &mut set(path)).await;
            assert!(matches!(verdict, InboundVerdict::Continue), "{path}");
        }
    }

    #[test]
    fn a_bad_glob_is_refused_when_built() {
        let config = ReadOnlyConfig {
            paths: vec!["/bad\0path".into()],
            writers: Vec::new(),
        };
        assert!(ReadOnlyLayer::new(&config).is_err());
    }
}
