//! Session tokens (DESIGN.md §7; reference: SECURITY CLIENT, WEB PATH LEVEL SECURITY,
//! USING A BEARER TOKEN AUTHORIZATION HEADER): JSON Web Tokens signed with HS256
//! (`jsonwebtoken`), handed out at every login and accepted in place of a password (native
//! `login {token}`, MQTT password, HTTP cookie, `?token=`, `Authorization: Bearer`).
//!
//! A token's claims are `{sub: <username>, jti: <uuid>, iat, exp}` (seconds since the
//! epoch). The signing secret is the configured one, or 32 random bytes generated at
//! first start and stored at [`SECRET_PATH`] (reserved: never readable over the wire), so
//! tokens stay valid across restarts. A revoked token's id is stored at
//! [`REVOKED_PREFIX`]`/<jti>` until the token would have expired anyway; revocations are
//! loaded at start, and expired ones are dropped then.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{Glob, Path, Payload, Store, StoreError, Write};

/// Where the generated signing secret is kept: `{"secret": "<base64url, 32 bytes>"}`.
pub const SECRET_PATH: &str = "/_SYSTEM/security/token_secret";

/// Where revoked token ids are kept: `<prefix>/<jti>` → `{"username", "exp"}`.
pub const REVOKED_PREFIX: &str = "/_SYSTEM/security/revoked";

/// What a token says: who, which token, when issued and until when (seconds since the
/// Unix epoch; `exp` rounded up, and `exp_ms` exact, which decides).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The username.
    pub sub: String,
    /// The token's id: what a revocation names.
    pub jti: String,
    /// Issued at, s.
    pub iat: u64,
    /// Issued at, ms (0 in tokens of older versions).
    #[serde(default)]
    pub iat_ms: u64,
    /// Expires at, s (rounded up: the standard claim, for other readers).
    pub exp: u64,
    /// Expires at, ms: the exact expiry this broker checks.
    #[serde(default)]
    pub exp_ms: u64,
}

impl Claims {
    /// Whether the token has expired at `now_ms` (ms since the epoch).
    pub fn expired(&self, now_ms: u64) -> bool {
        let exp_ms = match self.exp_ms {
            0 => self.exp.saturating_mul(1000),
            ms => ms,
        };
        now_ms >= exp_ms
    }
}

/// Why a token was refused, or could not be made or revoked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a token signed with our secret (malformed, forged, another algorithm).
    #[error("invalid token")]
    Invalid,
    /// Past its `exp`.
    #[error("token expired")]
    Expired,
    /// Revoked (logout, `revoke-token`, rolling tokens).
    #[error("token revoked")]
    Revoked,
    /// The secret or a revocation could not be read or written.
    #[error("{what}: {source}")]
    Store {
        /// What was being done.
        what: &'static str,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// The configured or stored secret is unusable.
    #[error("token secret: {0}")]
    Secret(String),
}

/// Signs and checks tokens, and keeps the revocations. Share it in an `Arc`.
pub struct Tokens {
    store: Arc<dyn Store>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Revoked token ids → their `exp`.
    revoked: RwLock<HashMap<String, u64>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("revoked", &self.revoked.read().len())
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// Opens the token service: the `configured` secret (at least 32 bytes), or the one
    /// stored at [`SECRET_PATH`], or a new random one stored there; and the revocations.
    ///
    /// # Errors
    /// [`TokenError::Secret`] for a configured secret under 32 bytes or a stored one that
    /// is unreadable; [`TokenError::Store`] when the store fails. Nothing is written then.
    pub async fn open(store: Arc<dyn Store>, configured: Option<&str>) -> Result<Self, TokenError> {
        let secret = match configured {
            Some(secret) if secret.len() < 32 => {
                return Err(TokenError::Secret(
                    "the configured token secret must be at least 32 bytes".into(),
                ));
            }
            Some(secret) => secret.as_bytes().to_vec(),
            None => stored_secret(&*store).await?,
        };
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub", "jti"]);
        let revoked = load_revoked(&*store).await?;
        Ok(Self {
            store,
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
            validation,
            revoked: RwLock::new(revoked),
        })
    }

    /// A new token for `username`, valid for `ttl` (at most 100 years).
    pub fn issue(&self, username: &str, ttl: Duration) -> (String, Claims) {
        let now_ms = crate::now_ms();
        let ttl = ttl.clamp(
            Duration::from_millis(1),
            Duration::from_secs(100 * 365 * 86_400),
        );
        let exp_ms = now_ms + u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX / 2);
        let claims = Claims {
            sub: username.to_owned(),
            jti: uuid::Uuid::new_v4().simple().to_string(),
            iat: now_ms / 1000,
            iat_ms: now_ms,
            exp: exp_ms.div_ceil(1000),
            exp_ms,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail");
        (token, claims)
    }

    /// The claims of `token` when it is ours, unexpired and not revoked.
    ///
    /// # Errors
    /// [`TokenError::Invalid`], [`TokenError::Expired`], [`TokenError::Revoked`].
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|error| match error.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?
            .claims;
        if claims.expired(crate::now_ms()) {
            return Err(TokenError::Expired);
        }
        if self.is_revoked(&claims.jti) {
            return Err(TokenError::Revoked);
        }
        Ok(claims)
    }

    /// Forgets, in memory, the revocations of tokens that have expired anyway (they are
    /// refused as expired): the set stays as small as the live revoked tokens. Their
    /// records are dropped from the store at the next start.
    pub fn prune_expired(&self) {
        let now = now_s();
        self.revoked.write().retain(|_, exp| *exp > now);
    }

    /// Whether the token `jti` was revoked.
    pub fn is_revoked(&self, jti: &str) -> bool {
        self.revoked.read().contains_key(jti)
    }

    /// Revokes the token of `claims` for good: stored first, then refused by
    /// [`Tokens::verify`]. Answers whether it was not revoked already.
    ///
    /// # Errors
    /// [`TokenError::Store`]: the token is not revoked.
    pub async fn revoke(&self, claims: &Claims) -> Result<bool, TokenError> {
        if self.is_revoked(&claims.jti) {
            return Ok(false);
        }
        let path = Path::parse(&format!("{REVOKED_PREFIX}/{}", claims.jti))
            .map_err(|e| TokenError::Secret(format!("token id `{}`: {e}", claims.jti)))?;
        let write = Write {
            path,
            payload: Payload::json(&json!({"username": claims.sub, "exp": claims.exp})),
            merge: false,
            modified_by: None,
            increment: None,
            properties: None,
        };
        self.store
            .set(write, None)
            .await
            .map_err(|source| TokenError::Store {
                what: "storing a token revocation (the token is still valid)",
                source,
            })?;
        self.revoked.write().insert(claims.jti.clone(), claims.exp);
        Ok(true)
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now_s() -> u64 {
    crate::now_ms() / 1000
}

/// The stored secret, or a new one stored now.
async fn stored_secret(store: &dyn Store) -> Result<Vec<u8>, TokenError> {
    let path = Path::parse(SECRET_PATH).expect("a valid path");
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let stored = store.get(&path).await.map_err(|source| TokenError::Store {
        what: "reading the token secret",
        source,
    })?;
    if let Some(record) = stored {
        let text = record
            .payload
            .as_json()
            .and_then(|v| v.get("secret").and_then(|s| s.as_str().map(str::to_owned)));
        return match text.map(|t| engine.decode(t)) {
            Some(Ok(secret)) if secret.len() >= 32 => Ok(secret),
            _ => Err(TokenError::Secret(format!(
                "the stored secret at {SECRET_PATH} is unreadable"
            ))),
        };
    }
    let mut secret = vec![0u8; 32];
    getrandom::fill(&mut secret)
        .map_err(|e| TokenError::Secret(format!("no random bytes for a secret: {e}")))?;
    let write = Write {
        path,
        payload: Payload::json(&json!({"secret": engine.encode(&secret)})),
        merge: false,
        modified_by: None,
        increment: None,
        properties: None,
    };
    store
        .set(write, None)
        .await
        .map_err(|source| TokenError::Store {
            what: "storing a new token secret",
            source,
        })?;
    tracing::info!("generated and stored a new token signing secret");
    Ok(secret)
}

/// The revocations still in force; expired ones are removed from the store.
async fn load_revoked(store: &dyn Store) -> Result<HashMap<String, u64>, TokenError> {
    let glob = Glob::parse(&format!("{REVOKED_PREFIX}/*")).expect("a valid glob");
    let records = store
        .scan(&glob)
        .await
        .map_err(|source| TokenError::Store {
            what: "loading token revocations",
            source,
        })?;
    let now = now_s();
    let mut revoked = HashMap::new();
    for record in records {
        let jti = record.path.as_str()[REVOKED_PREFIX.len() + 1..].to_owned();
        let exp = (record.payload.as_json())
            .and_then(|v| v.get("exp").and_then(serde_json::Value::as_u64))
            .unwrap_or(u64::MAX);
        if exp <= now {
            let glob = Glob::parse(record.path.as_str()).expect("a record path is a glob");
            if let Err(error) = store.remove(&glob, None).await {
                tracing::warn!(%error, "could not drop an expired token revocation");
            }
        } else {
            revoked.insert(jti, exp);
        }
    }
    Ok(revoked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::mem_store::MemStore;

    async fn tokens(store: &Arc<dyn Store>) -> Tokens {
        Tokens::open(store.clone(), None).await.unwrap()
    }

    #[tokio::test]
    async fn issued_tokens_verify_across_restarts_until_revoked() {
        let store: Arc<dyn Store> = Arc::new(MemStore::default());
        let first = tokens(&store).await;
        let (token, claims) = first.issue("ann", Duration::from_secs(60));
        assert_eq!(first.verify(&token).unwrap(), claims);
        // A restart reads the stored secret: the token is still good.
        let second = tokens(&store).await;
        assert_eq!(second.verify(&token).unwrap().sub, "ann");
        assert!(second.revoke(&claims).await.unwrap());
        assert!(!second.revoke(&claims).await.unwrap());
        assert!(matches!(second.verify(&token), Err(TokenError::Revoked)));
        // The revocation survives a restart.
        let third = tokens(&store).await;
        assert!(matches!(third.verify(&token), Err(TokenError::Revoked)));
    }

    #[tokio::test]
    async fn forged_expired_and_foreign_tokens_are_refused() {
        let store: Arc<dyn Store> = Arc::new(MemStore::default());
        let ours = tokens(&store).await;
        let theirs = Tokens::open(
            Arc::new(MemStore::default()),
            Some("another-secret-of-at-least-32-bytes!"),
        )
        .await
        .unwrap();
        let (foreign, _) = theirs.issue("_ADMIN", Duration::from_secs(60));
        assert!(matches!(ours.verify(&foreign), Err(TokenError::Invalid)));
        assert!(matches!(
            ours.verify("not.a.token"),
            Err(TokenError::Invalid)
        ));
        // The payload of a good token with `sub` changed: the signature no longer holds.
        let (token, _) = ours.issue("ann", Duration::from_secs(60));
        let parts: Vec<&str> = token.split('.').collect();
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = String::from_utf8(engine.decode(parts[1]).unwrap()).unwrap();
        let forged_payload = engine.encode(payload.replace("\"ann\"", "\"_ADMIN\""));
        let forged = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
        assert!(matches!(ours.verify(&forged), Err(TokenError::Invalid)));
        // `alg: none` is refused.
        let none = format!("{}.{}.", engine.encode(r#"{"alg":"none"}"#), parts[1]);
        assert!(matches!(ours.verify(&none), Err(TokenError::Invalid)));
        // Expired: signed by us with an `exp` in the past.
        let past = Claims {
            sub: "ann".into(),
            jti: "x".into(),
            iat: 1,
            iat_ms: 1000,
            exp: 2,
            exp_ms: 0,
        };
        let expired =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &past, &ours.encoding).unwrap();
        assert!(matches!(ours.verify(&expired), Err(TokenError::Expired)));
        assert!(matches!(
            Tokens::open(store, Some("short")).await,
            Err(TokenError::Secret(_))
        ));
    }
}
