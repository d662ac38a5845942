//! The `[plugins]` table: the middleware plugins of this repository the binary enables
//! from its config file (docs/PLUGINS.md). Each runs, in this order, before the layers an
//! embedding program adds with `Broker::layer`.

use serde::Deserialize;

/// Middleware plugins enabled from the config file.
///
/// ```toml
/// [plugins.rate_limit]            # plugins/rate-limit: token buckets
/// per = ["session", "user"]
/// default = { limit = 10, every = 1000 }
/// actions.set = { limit = 100, every = 1000 }
///
/// [[plugins.validate.rules]]      # plugins/validate: JSON Schema and field lists
/// path = "/sensors/*"
/// schema = { type = "object", properties = { temp = { type = "number" } } }
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PluginsConfig {
    /// Rate limits per session, user and action (`pathmq-plugin-rate-limit`); over the
    /// limit: native 429, MQTT 5 DISCONNECT 0x96, MQTT 3.1.1 dropped. Default off.
    pub rate_limit: Option<pathmq_plugin_rate_limit::RateLimitConfig>,
    /// Validation rules on `set` (`pathmq-plugin-validate`): a JSON Schema and a field
    /// allow-list per group; a violation is a 400 (MQTT 5: 0x99). Default off.
    pub validate: Option<pathmq_plugin_validate::ValidateConfig>,
}
