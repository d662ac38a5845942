//! Request validation for pathmq (`reference/hapta.md`, "Custom rules"): a middleware
//! [`Layer`] that checks every `set` against rules by path — a JSON Schema, and
//! per-group allow-lists of the top-level fields a user may set — and refuses a `set`
//! that breaks one with a 400 naming the field or JSON pointer and the reason.
//!
//! # Configuration
//!
//! The table under `[plugins.validate]` of the broker's config file deserializes into
//! [`ValidateConfig`] (unknown keys are refused):
//!
//! ```toml
//! [[plugins.validate.rules]]
//! path = "/sensors/*"               # a data glob, as in permissions: every descendant
//! # An inline JSON Schema as a TOML table (or a string of JSON text) …
//! schema = { type = "object", properties = { temp = { type = "number" }, unit = { enum = ["C", "F"] } } }
//! # … the fields each group's users may set; "*" as a key: everyone (logged in or not);
//! # "*" in a list: every field.
//! fields = { devices = ["temp", "unit"], admins = ["*"], "*" = [] }
//!
//! [[plugins.validate.rules]]
//! path = "/users/*/profile"
//! schema_file = "schemas/profile.json"  # JSON text, read once when the layer is made
//! ```
//!
//! * **Which requests**: every `set`, including publishes (an MQTT PUBLISH without
//!   retain, a native `publish`/`noStore`) and retained PUBLISHes. Gets, removes and
//!   subscriptions are not checked.
//! * **Which rules**: every rule whose `path` glob matches the set's path, in order; the
//!   first violation is the answer. `*` in a glob matches any run of characters, `/`
//!   included (`/sensors/*` matches `/sensors/a/temp`, not `/sensors`).
//! * **Schemas** are compiled once, when the layer is made ([jsonschema], draft from
//!   `$schema`, 2020-12 by default). They are never fetched: a `$ref` to another
//!   document (HTTP or file) is a construction error. An inline schema is a TOML table,
//!   `true`/`false`, or a string holding JSON text (for what TOML cannot write, such as
//!   `null`). The instance checked is the payload's JSON value as sent (an MQTT
//!   payload `21.5` is the number 21.5); a text or binary payload under a rule with a
//!   schema is refused: `payload is not JSON`.
//! * **Field lists** restrict the top-level fields a set gives, as a native client reads
//!   the record (DESIGN.md §4): a JSON object's keys; `value` for any other JSON value or
//!   text; `value_base64` for binary. A user may set a field when the `"*"` list or the
//!   list of **any** of their groups allows it (the union). A user none of the lists
//!   applies to — in no listed group, and no `"*"` key — may set **nothing** under that
//!   rule. Groups exist only on a secure broker; on an insecure one every session has
//!   only the `"*"` list. The admin user is not exempt: list its group
//!   (`_ADMIN = ["*"]`) if it writes there.
//! * **Merges** (`set` with `merge`) are checked as given: the partial object is
//!   validated by itself (the layer does not read the stored record), so a schema used
//!   with merges should not `require` fields a merge may leave out. An **increment** is
//!   checked as the object it merges in, `{"<gauge>": {"value": <by>}}`.
//! * Field lists restrict what a set *gives*; a `set` without merge replaces the whole
//!   record, so it also removes fields its writer may not set. Use permissions to keep
//!   writers to merges or out of a path.
//!
//! Bad rules are refused when the layer is made, naming the rule as
//! `plugins.validate.rules[<index>]` ([`ValidateConfigError`]).
//!
//! # Registering it
//!
//! ```
//! use pathmq_plugin_validate::{ValidateConfig, ValidateLayer};
//!
//! let config: ValidateConfig = toml::from_str(
//!     r#"
//!     [[rules]]
//!     path = "/sensors/*"
//!     schema = { type = "object", properties = { temp = { type = "number" } } }
//!     "#,
//! )?;
//! let layer = ValidateLayer::new(config)?;
//! // pathmq::Broker::builder().layer(layer).start().await?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What a client breaking a rule gets
//!
//! The set is rejected with [`pathmq_core::Error::BadRequest`] (400) and nothing is
//! stored or published. The message is `<path>: <reason>`, e.g.
//! `/sensors/a/temp: at /temp: "hot" is not of type "number"` or
//! `/sensors/a/temp: field "secret" is not allowed for your groups`. A native client gets
//! a 400 error answer; an MQTT 5 client a PUBACK/PUBREC with reason `0x99` (payload
//! format invalid) and the message as reason string; an MQTT 3.1.1 PUBLISH is dropped.
//! Each rejection is counted in `pathmq_rejected_total`.

mod config;
mod rule;

use async_trait::async_trait;
use pathmq_core::{Error, InboundVerdict, Layer, LayerContext, Request};

pub use config::{RuleConfig, ValidateConfig, ValidateConfigError};

use rule::Rule;

/// The validation middleware (crate docs). Register it with
/// `pathmq::Broker::builder().layer(ValidateLayer::new(config)?)`.
#[derive(Debug)]
pub struct ValidateLayer {
    rules: Vec<Rule>,
}

impl ValidateLayer {
    /// A layer checking sets against `config`'s rules: globs parsed, `schema_file`s read
    /// (blocking, once) and every schema compiled.
    ///
    /// # Errors
    /// [`ValidateConfigError`] naming the rule: a bad glob, a rule that checks nothing,
    /// both `schema` and `schema_file`, a schema file that cannot be read, a schema that
    /// is not JSON or not a valid JSON Schema (or refers to another document). Nothing
    /// is registered then.
    pub fn new(config: ValidateConfig) -> Result<Self, ValidateConfigError> {
        Ok(Self {
            rules: config::compile(&config)?,
        })
    }

    /// How many rules the layer checks.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether the layer has no rules (it then passes everything).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[async_trait]
impl Layer for ValidateLayer {
    fn name(&self) -> &str {
        "validate"
    }

    async fn inbound(&self, cx: &LayerContext<'_>, request: &mut Request) -> InboundVerdict {
        let Request::Set {
            path,
            payload,
            options,
        } = request
        else {
            return InboundVerdict::Continue;
        };
        match rule::check_set(&self.rules, cx, path, payload, options) {
            Ok(()) => InboundVerdict::Continue,
            Err(why) => {
                tracing::debug!(session = %cx.session().id, %why, "set refused by validation");
                InboundVerdict::Reject(Error::BadRequest(why))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use pathmq_core::{Glob, Path, Payload, SessionId, SessionInfo, SetOptions};
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn bad_sets_are_400s_and_other_requests_pass() {
        let config: ValidateConfig = toml::from_str(
            "[[rules]]\npath = \"/s/*\"\nschema = { type = \"object\", required = [\"t\"] }",
        )
        .unwrap();
        let layer = ValidateLayer::new(config).unwrap();
        assert_eq!(layer.len(), 1);
        let info = SessionInfo {
            id: SessionId::new(),
            protocol: "native",
            peer: None,
            client_id: None,
        };
        let cx = LayerContext::new(&info, None);
        let set = |data| Request::Set {
            path: Path::parse("/s/a").unwrap(),
            payload: Payload::json(&data),
            options: SetOptions::default(),
        };
        match layer.inbound(&cx, &mut set(json!({"x": 1}))).await {
            InboundVerdict::Reject(error) => {
                assert_eq!(error.code(), 400);
                assert_eq!(error.to_string(), "/s/a: \"t\" is a required property");
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
        for mut request in [
            set(json!({"t": 1})),
            Request::Get {
                target: Glob::parse("/s/*").unwrap(),
            },
        ] {
            let verdict = layer.inbound(&cx, &mut request).await;
            assert!(matches!(verdict, InboundVerdict::Continue), "{verdict:?}");
        }
    }
}
