//! Authentication providers (DESIGN.md §7 "pluggable auth providers"; reference:
//! AUTHENTICATION PROVIDER(S), CREATING CUSTOM AUTH PROVIDERS): other places a password
//! login can be checked than the directory, such as a static file of device credentials
//! (`plugins/auth-file`) or a company's user service.
//!
//! The directory is always the first provider. A password login whose username the
//! directory does not know is offered to the registered providers in order; the first
//! that accepts it decides who the session is. A login naming a provider (`authType` in
//! the native login, as the reference) goes to that provider only (`"pathmq"` names the
//! directory).
//!
//! A provider's user is a [`User`] without a password hash: its `groups` name groups of
//! the directory (their permissions apply), and its own `permissions` and `custom_data`
//! apply as a directory user's would. Tokens issued to a provider's user are checked like
//! any other; a token login and a grant refresh look the user up again with
//! [`AuthProvider::user`].

use super::model::{SessionFacts, User};
use super::password::Password;

/// The name of the built-in provider, the directory (for `authType`).
pub const BUILT_IN_PROVIDER: &str = "pathmq";

/// Why a provider could not answer (its backend is down, its file unreadable): the login
/// is refused with a 500, never accepted.
#[derive(Debug, thiserror::Error)]
#[error("auth provider `{provider}` is unavailable: {reason}")]
pub struct ProviderError {
    /// The provider's name.
    pub provider: String,
    /// What went wrong (never a password).
    pub reason: String,
}

/// A place password logins are checked. Implementations must not log or keep the
/// password, and should take as long for an unknown user as for a wrong password.
#[async_trait::async_trait]
pub trait AuthProvider: Send + Sync + std::fmt::Debug + 'static {
    /// The provider's name: what `authType` names, and what logs say.
    fn name(&self) -> &str;

    /// Checks `username` and `password` for a session described by `facts`: the user when
    /// accepted, `None` when the username is unknown here or the password is wrong.
    ///
    /// # Errors
    /// [`ProviderError`] when the provider cannot answer.
    async fn login(
        &self,
        username: &str,
        password: Password,
        facts: &SessionFacts,
    ) -> Result<Option<User>, ProviderError>;

    /// The user as it is now, for token logins and grant refreshes; `None` when gone.
    fn user(&self, username: &str) -> Option<User>;
}
