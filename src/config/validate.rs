//! The checks of a configuration that its types cannot express.

use pathmq_core::security::Profiles;

use super::{Config, ConfigError, MAX_PAYLOAD_LIMIT, MAX_SYS_INTERVAL_S};

impl Config {
    /// Checks ranges that types cannot express.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = |key, value: u64| {
            if value == 0 {
                Err(ConfigError::Invalid {
                    key,
                    problem: "must be greater than 0".into(),
                })
            } else {
                Ok(())
            }
        };
        positive("limits.max_connections", self.limits.max_connections as u64)?;
        positive(
            "mqtt.max_queued_messages",
            self.mqtt.max_queued_messages as u64,
        )?;
        if self.security.secure
            && self
                .security
                .admin_password
                .as_deref()
                .unwrap_or("")
                .is_empty()
        {
            return Err(ConfigError::Invalid {
                key: "security.admin_password",
                problem: "security.secure is true, so an admin password is required: set \
                          PATHMQ_ADMIN_PASSWORD (or security.admin_password in the config file)"
                    .into(),
            });
        }
        if !(4..=31).contains(&self.security.bcrypt_cost) {
            return Err(ConfigError::Invalid {
                key: "security.bcrypt_cost",
                problem: format!("must be from 4 to 31, not {}", self.security.bcrypt_cost),
            });
        }
        if self
            .security
            .token_secret
            .as_ref()
            .is_some_and(|s| s.len() < 32)
        {
            return Err(ConfigError::Invalid {
                key: "security.token_secret",
                problem: "must be at least 32 bytes (or unset: one is generated)".into(),
            });
        }
        positive("security.token_ttl_ms", self.security.token_ttl_ms)?;
        positive("security.login_timeout_ms", self.security.login_timeout_ms)?;
        if self.security.lockout_attempts > 0 {
            positive("security.lockout_retry_ms", self.security.lockout_retry_ms)?;
        }
        let cookie_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        let cookie_name = &self.security.cookie_name;
        if cookie_name.is_empty() || !cookie_name.chars().all(cookie_char) {
            return Err(ConfigError::Invalid {
                key: "security.cookie_name",
                problem: format!(
                    "`{cookie_name}` is not a cookie name: use letters, digits, `-`, `_`, `.` (RFC 6265)"
                ),
            });
        }
        if let Err(error) = Profiles::new(self.security.profiles.clone()) {
            return Err(ConfigError::Invalid {
                key: "security.profiles",
                problem: error.to_string(),
            });
        }
        positive(
            "limits.handshake_timeout_ms",
            self.limits.handshake_timeout_ms,
        )?;
        positive("limits.session_queue", self.limits.session_queue as u64)?;
        positive("limits.ack_timeout_ms", self.limits.ack_timeout_ms)?;
        positive("limits.max_payload", self.limits.max_payload as u64)?;
        if self.limits.max_payload > MAX_PAYLOAD_LIMIT {
            return Err(ConfigError::Invalid {
                key: "limits.max_payload",
                problem: format!(
                    "{} is over {MAX_PAYLOAD_LIMIT} bytes (256 MiB, the MQTT packet maximum)",
                    self.limits.max_payload
                ),
            });
        }
        if self.mqtt.max_packet_size < 64 || self.mqtt.max_packet_size > 268_435_455 {
            return Err(ConfigError::Invalid {
                key: "mqtt.max_packet_size",
                problem: format!(
                    "{} is outside 64..=268435455 bytes (the MQTT maximum)",
                    self.mqtt.max_packet_size
                ),
            });
        }
        if self.mqtt.sys_interval_s > MAX_SYS_INTERVAL_S {
            return Err(ConfigError::Invalid {
                key: "mqtt.sys_interval_s",
                problem: format!(
                    "{} is over {MAX_SYS_INTERVAL_S} seconds (a day); 0 turns $SYS topics off",
                    self.mqtt.sys_interval_s
                ),
            });
        }
        self.validate_tls()?;
        if let Err(error) = self.token.validate() {
            return Err(ConfigError::Invalid {
                key: "token",
                problem: error.to_string(),
            });
        }
        if self.token.enabled && self.token.max_token > self.limits.max_payload {
            return Err(ConfigError::Invalid {
                key: "token.max_token",
                problem: format!(
                    "{} bytes is over limits.max_payload ({} bytes): a token is a payload",
                    self.token.max_token, self.limits.max_payload
                ),
            });
        }
        if self.token.enabled
            && self.token.tls
            && self.token.require_certificate
            && self.tls.client_ca_path.is_none()
        {
            return Err(ConfigError::Invalid {
                key: "tls.client_ca_path",
                problem: "the token listener requires client certificates: set the CA they \
                          are verified against (or token.require_certificate = false)"
                    .into(),
            });
        }
        if self.name.is_empty() {
            return Err(ConfigError::Invalid {
                key: "name",
                problem: "must not be empty".into(),
            });
        }
        Ok(())
    }

    fn validate_tls(&self) -> Result<(), ConfigError> {
        let tls = &self.tls;
        let invalid = |key, problem: &str| {
            Err(ConfigError::Invalid {
                key,
                problem: problem.into(),
            })
        };
        match (&tls.cert, &tls.key) {
            (Some(_), None) => return invalid("tls.key", "tls.cert is set, so tls.key must be"),
            (None, Some(_)) => return invalid("tls.cert", "tls.key is set, so tls.cert must be"),
            (Some(_), Some(_)) if tls.cert_path.is_some() || tls.key_path.is_some() => {
                return invalid(
                    "tls.cert_path",
                    "give the certificate either as PEM text (cert, key) or as files (cert_path, key_path), not both",
                );
            }
            _ => {}
        }
        if tls.client_ca_path.is_none() {
            if tls.use_identity_as_username {
                return invalid(
                    "tls.use_identity_as_username",
                    "needs tls.client_ca_path (client certificates are verified against it)",
                );
            }
            if tls.require_client_certificate {
                return invalid(
                    "tls.require_client_certificate",
                    "needs tls.client_ca_path (client certificates are verified against it)",
                );
            }
        }
        Ok(())
    }

    /// Whether any listener serves TLS.
    pub fn uses_tls(&self) -> bool {
        (self.mqtt_tls.enabled)
            || (self.token.enabled && self.token.tls)
            || (self.http.enabled && self.http.tls)
            || (self.native_tcp.enabled && self.native_tcp.tls)
    }
}
