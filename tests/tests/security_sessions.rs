//! Session tokens and policies end to end (DESIGN.md §7; `reference/happn-3.md` SECURITY
//! PROFILES, SECURITY OPTIONS, ANONYMOUS USER; `reference/websocket-session-manager.md`),
//! over the native protocol (a raw WebSocket, which shows the `login` answer's `token`)
//! and MQTT 3.1.1 and 5 (rumqttc):
//!
//! * [`tokens`]: token logins, forged/foreign/expired/revoked tokens, revocation ending
//!   live sessions and surviving a restart, rolling tokens;
//! * [`profiles`]: `max_connections`, `ttl`, `inactivity_threshold`, `usage_limit`,
//!   policy `permissions`, `sourceIPWhitelist`;
//! * [`logins`]: account lockout, the anonymous user, `_ADMIN` over the network.

mod support;

#[path = "security_sessions/common.rs"]
mod common;
#[path = "security_sessions/logins.rs"]
mod logins;
#[path = "security_sessions/mqtt.rs"]
mod mqtt;
#[path = "security_sessions/native.rs"]
mod native;
#[path = "security_sessions/profiles.rs"]
mod profiles;
#[path = "security_sessions/tokens.rs"]
mod tokens;
