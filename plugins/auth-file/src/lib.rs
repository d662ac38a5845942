//! An auth provider that checks MQTT and native password logins against a static TOML
//! file of users: the example of writing one ([`pathmq_core::security::AuthProvider`],
//! DESIGN.md §7 "pluggable auth providers"). Typical use: a fleet's device credentials
//! provisioned as a file next to the broker, while people are managed in the directory.
//!
//! ```toml
//! # users.toml: password hashes only (bcrypt, `$2b$`/`$2y$`/`$2a$`), never passwords.
//! [[users]]
//! username = "sensor-1"
//! password_hash = "$2b$10$…"          # e.g. `htpasswd -nbBC 10 "" secret | cut -d: -f2`
//! groups = ["devices"]                # groups of the directory: their permissions apply
//! custom_data = { room = "kitchen" }  # read by templates: {{user.custom_data.room}}
//!
//! [users.permissions]                 # this user's own permissions, as a directory user's
//! "/sensors/sensor-1/*" = { actions = ["set"] }
//! ```
//!
//! Register it with `pathmq::Broker::builder().auth_provider(FileAuthProvider::load(path)
//! .await?)`, or set `security.auth_file` in the broker's config. The file is read once;
//! restart the broker to reload it. A username the directory also has is the directory's
//! (the directory is asked first).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use pathmq_core::security::{
    AuthProvider, Password, PasswordError, PasswordHasher, Permissions, ProviderError,
    SessionFacts, Template, User,
};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The provider's default name (what `authType` names).
pub const NAME: &str = "file";

/// Why the file could not be used. Nothing is registered then.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (with the line).
        message: String,
    },
    /// A user entry is wrong.
    #[error("{path}: user `{username}`: {problem}")]
    User {
        /// The file.
        path: PathBuf,
        /// The user.
        username: String,
        /// What is wrong.
        problem: String,
    },
    /// The dummy hash for unknown users could not be made.
    #[error("preparing password checks: {0}")]
    Hasher(#[source] PasswordError),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    users: Vec<FileUser>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUser {
    username: String,
    password_hash: String,
    #[serde(default)]
    groups: BTreeSet<String>,
    #[serde(default)]
    custom_data: Map<String, Value>,
    #[serde(default)]
    permissions: Permissions,
}

/// Users from a file, checked with bcrypt off the runtime.
pub struct FileAuthProvider {
    name: String,
    /// Users by name, each with its hash.
    users: HashMap<String, (User, String)>,
    hasher: PasswordHasher,
}

impl std::fmt::Debug for FileAuthProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileAuthProvider")
            .field("name", &self.name)
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

impl FileAuthProvider {
    /// Reads and checks the users file at `path` (module docs for its shape).
    ///
    /// # Errors
    /// [`FileError::Read`], [`FileError::Parse`] (with the line), [`FileError::User`] for
    /// a duplicate or empty username, a hash that is not bcrypt, a bad permission glob or
    /// template; [`FileError::Hasher`].
    pub async fn load(path: impl AsRef<Path>) -> Result<Self, FileError> {
        let path = path.as_ref().to_path_buf();
        let text = tokio::fs::read_to_string(&path)
            .await
            .map_err(|source| FileError::Read {
                path: path.clone(),
                source,
            })?;
        Self::from_toml(&text, &path).await
    }

    /// [`FileAuthProvider::load`] from text; `path` is only named in errors.
    ///
    /// # Errors
    /// As [`FileAuthProvider::load`].
    pub async fn from_toml(text: &str, path: &Path) -> Result<Self, FileError> {
        let file: UsersFile = toml::from_str(text).map_err(|e| FileError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let problem = |username: &str, problem: String| FileError::User {
            path: path.to_path_buf(),
            username: username.to_owned(),
            problem,
        };
        let mut users = HashMap::with_capacity(file.users.len());
        let mut costs = HashMap::<u32, usize>::new();
        for entry in file.users {
            let name = entry.username.clone();
            if name.is_empty() || name.contains(['/', '*', '\0']) {
                return Err(problem(&name, "invalid username".into()));
            }
            if name.starts_with('_') {
                return Err(problem(
                    &name,
                    "names starting with `_` are reserved (`_ADMIN`, `_ANONYMOUS`)".into(),
                ));
            }
            let cost = bcrypt_cost(&entry.password_hash).ok_or_else(|| {
                problem(&name, "password_hash is not a bcrypt hash ($2b$…)".into())
            })?;
            *costs.entry(cost).or_default() += 1;
            for glob in entry.permissions.keys() {
                Template::parse(glob).map_err(|e| problem(&name, e.to_string()))?;
            }
            let user = User {
                username: name.clone(),
                password_hash: None,
                custom_data: entry.custom_data,
                groups: entry.groups,
                permissions: entry.permissions,
                ..User::default()
            };
            if users
                .insert(name.clone(), (user, entry.password_hash))
                .is_some()
            {
                return Err(problem(&name, "listed twice".into()));
            }
        }
        // Unknown users are checked against a dummy at the file's usual cost, so they take
        // as long as a wrong password.
        let cost = (costs.into_iter())
            .max_by_key(|(_, n)| *n)
            .map_or(10, |(cost, _)| cost);
        let hasher = PasswordHasher::new(cost.clamp(4, 31))
            .await
            .map_err(FileError::Hasher)?;
        tracing::info!(users = users.len(), file = %path.display(), "auth file loaded");
        Ok(Self {
            name: NAME.to_owned(),
            users,
            hasher,
        })
    }

    /// Renames the provider (for `authType`), e.g. to register two files.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// How many users the file has.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the file has no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// The cost of a bcrypt hash `$2b$10$…`.
fn bcrypt_cost(hash: &str) -> Option<u32> {
    let mut parts = hash.split('$');
    let (Some(""), Some("2a" | "2b" | "2y"), Some(cost), Some(rest)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    (rest.len() == 53).then_some(())?;
    cost.parse().ok()
}

#[async_trait::async_trait]
impl AuthProvider for FileAuthProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn login(
        &self,
        username: &str,
        password: Password,
        _facts: &SessionFacts,
    ) -> Result<Option<User>, ProviderError> {
        let found = self.users.get(username);
        let hash = found.map(|(_, hash)| hash.as_str());
        match self.hasher.verify(password, hash).await {
            Ok(true) => Ok(found.map(|(user, _)| user.clone())),
            Ok(false) => Ok(None),
            Err(error) => Err(ProviderError {
                provider: self.name.clone(),
                reason: error.to_string(),
            }),
        }
    }

    fn user(&self, username: &str) -> Option<User> {
        self.users.get(username).map(|(user, _)| user.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(password: &str) -> String {
        bcrypt::hash(password, 4).unwrap()
    }

    async fn provider(text: &str) -> Result<FileAuthProvider, FileError> {
        FileAuthProvider::from_toml(text, Path::new("users.toml")).await
    }

    #[tokio::test]
    async fn users_log_in_with_their_file_password_only() {
        let text = format!(
            r#"
            [[users]]
            username = "sensor-1"
            password_hash = "{}"
            groups = ["devices"]
            custom_data = {{ room = "kitchen" }}
            [users.permissions]
            "/sensors/sensor-1/*" = {{ actions = ["set"] }}
            "#,
            hash("s3cret")
        );
        let provider = provider(&text).await.unwrap();
        let facts = SessionFacts::default();
        let user = (provider.login("sensor-1", "s3cret".into(), &facts).await)
            .unwrap()
            .unwrap();
        assert!(user.groups.contains("devices"));
        assert_eq!(user.custom_data["room"], "kitchen");
        assert!(user.password_hash.is_none());
        let wrong = provider.login("sensor-1", "nope".into(), &facts).await;
        assert!(wrong.unwrap().is_none());
        let unknown = provider.login("sensor-2", "s3cret".into(), &facts).await;
        assert!(unknown.unwrap().is_none());
        assert!(provider.user("sensor-1").is_some() && provider.user("x").is_none());
        assert_eq!(provider.name(), "file");
    }

    #[tokio::test]
    async fn bad_files_are_refused_with_the_user_and_line() {
        let good = hash("x");
        for (text, expect) in [
            ("[[users]]\nusername = \"a\"\n".to_owned(), "password_hash"),
            (
                "[[users]]\nusername = \"a\"\npassword_hash = \"plain\"\n".to_owned(),
                "not a bcrypt hash",
            ),
            (
                format!(
                    "[[users]]\nusername = \"a\"\npassword_hash = \"{good}\"\n\
                     [[users]]\nusername = \"a\"\npassword_hash = \"{good}\"\n"
                ),
                "listed twice",
            ),
            (
                format!(
                    "[[users]]\nusername = \"a\"\npassword_hash = \"{good}\"\n\
                     [users.permissions]\n\"/x/{{{{user.nme}}}}\" = {{ actions = [\"get\"] }}\n"
                ),
                "unknown variable",
            ),
            ("[[users]]\nusername = 3\n".to_owned(), "line"),
        ] {
            let error = provider(&text).await.unwrap_err().to_string();
            assert!(error.contains(expect), "{expect}: {error}");
        }
    }
}
