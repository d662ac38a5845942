//! Passwords: a [`Password`] that never prints, and bcrypt hashing and verification off
//! the runtime ([`PasswordHasher`]; issue 5: bcrypt, cost configurable, default 10).
//!
//! bcrypt is slow on purpose (cost 10 is tens of milliseconds), so it runs on tokio's
//! blocking pool, never on a runtime worker, and at most one hash per CPU at a time: a
//! burst of logins queues for a permit instead of starting hundreds of threads.
//!
//! bcrypt reads only 72 bytes: a password and its terminating NUL. Rather than let two
//! long passwords that share their first 72 bytes be equal, passwords over
//! [`MAX_PASSWORD_LEN`] (71) bytes are refused when hashed ([`PasswordError::TooLong`])
//! and never match when verified.

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use tokio::sync::Semaphore;

/// The default bcrypt cost (issue 5).
pub const DEFAULT_COST: u32 = 10;

/// The lowest cost bcrypt accepts (fast: for tests only).
pub const MIN_COST: u32 = 4;

/// The highest cost bcrypt accepts.
pub const MAX_COST: u32 = 31;

/// The longest password accepted, in bytes: bcrypt reads 72 bytes, the password and its
/// terminating NUL, and ignores everything after them.
pub const MAX_PASSWORD_LEN: usize = 71;

/// A password in clear text, as a login or an administrator gives it.
///
/// Its `Debug` prints `***`; it has no `Display` and no `Serialize`, so it cannot end up
/// in a log line or a stored record by accident. Read it with [`Password::expose`] only
/// where it is hashed or verified.
///
/// ```
/// use pathmq_core::security::Password;
///
/// let password = Password::new("hunter2");
/// assert_eq!(format!("{password:?}"), "***");
/// assert_eq!(password.expose(), "hunter2");
/// ```
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    /// Wraps a clear-text password.
    pub fn new(password: impl Into<String>) -> Self {
        Self(password.into())
    }

    /// The clear text. Only hashing and verification should call this.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the password is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks what [`PasswordHasher::hash`] would refuse, without hashing.
    ///
    /// # Errors
    /// [`PasswordError::Empty`], [`PasswordError::TooLong`].
    pub fn check(&self) -> Result<(), PasswordError> {
        if self.0.is_empty() {
            return Err(PasswordError::Empty);
        }
        if self.0.len() > MAX_PASSWORD_LEN {
            return Err(PasswordError::TooLong { len: self.0.len() });
        }
        Ok(())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Password {
    fn from(password: String) -> Self {
        Self(password)
    }
}

impl From<&str> for Password {
    fn from(password: &str) -> Self {
        Self(password.to_owned())
    }
}

/// Why a password could not be hashed or checked. Nothing was stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// The password is empty.
    #[error("the password is empty")]
    Empty,
    /// The password is longer than bcrypt reads.
    #[error(
        "the password is {len} bytes, the limit is {MAX_PASSWORD_LEN} (bcrypt ignores the rest)"
    )]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The configured cost is outside what bcrypt accepts.
    #[error(
        "bcrypt cost {cost} is out of range: it must be {MIN_COST} to {MAX_COST} (default {DEFAULT_COST})"
    )]
    Cost {
        /// The refused cost.
        cost: u32,
    },
    /// A stored hash is not a bcrypt hash (the record was edited or comes from elsewhere).
    #[error("the stored password hash is not a bcrypt hash")]
    MalformedHash(#[source] bcrypt::BcryptError),
    /// bcrypt failed (the system's random source for the salt).
    #[error("bcrypt failed")]
    Bcrypt(#[source] bcrypt::BcryptError),
    /// The blocking task running bcrypt panicked or was cancelled at shutdown.
    #[error("the password hashing task did not finish")]
    Worker(#[source] tokio::task::JoinError),
}

/// Hashes and verifies passwords with bcrypt on the blocking pool, at most one per CPU at
/// a time. Cheap to clone (the clones share the permits).
#[derive(Clone)]
pub struct PasswordHasher {
    cost: u32,
    /// A hash of a random password at `cost`: what an unknown user's login is checked
    /// against, so that it takes as long as a known user's.
    dummy: Arc<str>,
    permits: Arc<Semaphore>,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("cost", &self.cost)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// A hasher at `cost`. Hashes one random password (the dummy for unknown users), so
    /// it takes as long as one hash.
    ///
    /// # Errors
    /// [`PasswordError::Cost`] when `cost` is outside [`MIN_COST`]..=[`MAX_COST`];
    /// [`PasswordError::Bcrypt`], [`PasswordError::Worker`].
    pub async fn new(cost: u32) -> Result<Self, PasswordError> {
        if !(MIN_COST..=MAX_COST).contains(&cost) {
            return Err(PasswordError::Cost { cost });
        }
        let parallelism = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut hasher = Self {
            cost,
            dummy: Arc::from(""),
            permits: Arc::new(Semaphore::new(parallelism)),
        };
        let dummy = Password::new(uuid::Uuid::new_v4().to_string());
        hasher.dummy = hasher.hash(dummy).await?.into();
        Ok(hasher)
    }

    /// The cost new hashes are made with.
    pub fn cost(&self) -> u32 {
        self.cost
    }

    /// The bcrypt hash (`$2b$<cost>$…`) of `password`, with a random salt.
    ///
    /// # Errors
    /// [`PasswordError::Empty`], [`PasswordError::TooLong`] (nothing hashed);
    /// [`PasswordError::Bcrypt`], [`PasswordError::Worker`].
    pub async fn hash(&self, password: Password) -> Result<String, PasswordError> {
        password.check()?;
        let cost = self.cost;
        self.run(move || bcrypt::non_truncating_hash(password.expose(), cost))
            .await?
            .map_err(PasswordError::Bcrypt)
    }

    /// Whether `password` matches `hash`. With no hash (an unknown user, or a user
    /// without a password) it checks against a dummy hash and answers `false`, taking as
    /// long as a real check, so the answer's timing does not tell which users exist.
    /// A password longer than [`MAX_PASSWORD_LEN`] never matches.
    ///
    /// # Errors
    /// [`PasswordError::MalformedHash`] when `hash` is not a bcrypt hash (checked against
    /// the dummy first, for the same timing); [`PasswordError::Worker`].
    pub async fn verify(
        &self,
        password: Password,
        hash: Option<&str>,
    ) -> Result<bool, PasswordError> {
        let known = hash.is_some();
        let hash: Arc<str> = hash.map_or_else(|| self.dummy.clone(), Arc::from);
        let dummy = self.dummy.clone();
        let outcome = self
            .run(move || {
                if password.expose().len() > MAX_PASSWORD_LEN {
                    // The caller knows its password's length: answering fast tells it
                    // nothing about the user.
                    return Ok(false);
                }
                match bcrypt::non_truncating_verify(password.expose(), &hash) {
                    Ok(matched) => Ok(matched),
                    Err(e) => {
                        let _ = bcrypt::non_truncating_verify(password.expose(), &dummy);
                        Err(PasswordError::MalformedHash(e))
                    }
                }
            })
            .await??;
        Ok(known && outcome)
    }

    /// Runs `job` on the blocking pool under a permit. The permit moves into the job, so
    /// a caller that gives up (a dropped login) does not free it while bcrypt still runs.
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the hasher's semaphore is never closed");
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job()
        })
        .await
        .map_err(PasswordError::Worker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let password = Password::new("s3cret-Value");
        assert_eq!(format!("{password:?}"), "***");
        assert_eq!(format!("{password:#?}"), "***");
        let wrapped = Some(vec![password]);
        assert!(!format!("{wrapped:?}").contains("s3cret"));
    }

    #[tokio::test]
    async fn hashes_and_verifies() {
        let hasher = PasswordHasher::new(MIN_COST).await.unwrap();
        let hash = hasher.hash("right".into()).await.unwrap();
        assert!(hash.starts_with("$2b$04$"), "{hash}");
        assert!(!hash.contains("right"));
        assert!(hasher.verify("right".into(), Some(&hash)).await.unwrap());
        assert!(!hasher.verify("wrong".into(), Some(&hash)).await.unwrap());
        // No hash (an unknown user): checked against the dummy, never a match, even
        // with the dummy's own password unknown to the caller.
        assert!(!hasher.verify("right".into(), None).await.unwrap());
        assert!(!hasher.verify(Password::default(), None).await.unwrap());
    }

    #[tokio::test]
    async fn refuses_what_bcrypt_would_truncate_or_cannot_do() {
        let hasher = PasswordHasher::new(MIN_COST).await.unwrap();
        assert!(matches!(
            hasher.hash(Password::default()).await,
            Err(PasswordError::Empty)
        ));
        let long = "x".repeat(MAX_PASSWORD_LEN + 1);
        assert!(matches!(
            hasher.hash(long.clone().into()).await,
            Err(PasswordError::TooLong { len: 72 })
        ));
        // A 72-byte password does not match the hash of its first 71 bytes.
        let hash = hasher.hash(long[..MAX_PASSWORD_LEN].into()).await.unwrap();
        assert!(!hasher.verify(long.into(), Some(&hash)).await.unwrap());
        assert!(matches!(
            hasher.verify("x".into(), Some("plain text")).await,
            Err(PasswordError::MalformedHash(_))
        ));
        for cost in [0, MIN_COST - 1, MAX_COST + 1] {
            assert!(matches!(
                PasswordHasher::new(cost).await,
                Err(PasswordError::Cost { cost: c }) if c == cost
            ));
        }
    }
}
