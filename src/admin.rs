//! The `pathmq user|group|permission …` subcommands: administration of users, groups and
//! permissions (DESIGN.md §7, docs/SECURITY.md) from the command line.
//!
//! They read the same configuration as the broker (`--config`, `PATHMQ_*`, the storage
//! flags) to find its redb file, open it, change it through the `Directory` and close
//! it. redb lets one process at a time open a file, so they refuse to run while a broker
//! holds it: a running broker is administered from its own process, through
//! `RunningBroker::core().security()` and `Security::directory()`. `/_SYSTEM` paths are
//! never readable or writable over the wire; these two ways are the only ones.
//!
//! | module | commands |
//! |---|---|
//! | `user` | `user add`, `passwd`, `remove`, `list`, `show` |
//! | `group` | `group add`, `remove`, `list`, `show`, `link`, `unlink` |
//! | `permission` | `permission allow`, `prohibit`, `forget`, `list` |
//!
//! Passwords are read from the first line of stdin or from a named environment variable,
//! never from an argument (shell history and `ps` would show it), and are never printed.

use std::io::{BufRead as _, IsTerminal as _, Write};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use pathmq::StartError;
use pathmq::config::{Config, Engine};
use pathmq::core::Store;
use pathmq::core::security::Password;
use pathmq::storage::OpenError;
use serde_json::{Map, Value};

mod group;
mod permission;
mod user;

/// An administration subcommand.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Manage users: add (or update), passwd, remove, list, show. The broker must be
    /// stopped.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Manage groups: add (or update), remove, list, show, link, unlink. The broker must
    /// be stopped.
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// Allow, prohibit, forget or list the permissions of a group or a user. The broker
    /// must be stopped.
    #[command(subcommand)]
    Permission(permission::PermissionCommand),
}

impl Command {
    /// Whether the command changes the directory (and so may create the store file).
    fn writes(&self) -> bool {
        match self {
            Self::User(command) => command.writes(),
            Self::Group(command) => command.writes(),
            Self::Permission(command) => command.writes(),
        }
    }
}

/// Runs `command` on the store `config` names and closes the store. Output goes to
/// stdout, notes to stderr.
///
/// # Errors
/// The memory engine; volatile permissions (`security.persist_permissions = false`) for a
/// permission command; a read-only command on a store file that does not exist; a store
/// that cannot be opened (in use by a running broker, not a redb file); a
/// `DirectoryError` (unknown user or group, invalid name or glob, refused password).
/// What the directory says about the state left holds: a single change either happened
/// or did not; `user add --group` checks the groups before it writes.
pub(crate) async fn run(command: Command, mut config: Config) -> anyhow::Result<()> {
    // The admin password is only needed to create `_ADMIN` when a secure broker starts:
    // these commands neither start a broker nor create `_ADMIN`, so they do not ask for it.
    config.security.secure = false;
    config.validate()?;
    if config.storage.engine == Engine::Memory {
        bail!(
            "the storage engine is `memory`: there is no store to administer outside the \
             broker's process. Use the Rust API there (`RunningBroker::core().security()`), \
             or the redb engine"
        );
    }
    if matches!(command, Command::Permission(_)) && !config.security.persist_permissions {
        bail!(
            "security.persist_permissions is false: permissions live in the broker's memory \
             only and are not stored, so a change made by this command would be lost when it \
             exits. Change them from the broker's process (`RunningBroker::core().security()`), \
             or set security.persist_permissions = true"
        );
    }
    let path = config.storage.path.clone();
    let existed = (path.try_exists())
        .with_context(|| format!("cannot look for the store `{}`", path.display()))?;
    if !existed && !command.writes() {
        bail!(
            "there is no store at `{}`: check --storage-path (storage.path) and --config",
            path.display()
        );
    }
    let store = open_store(&config).await?;
    if !existed {
        eprintln!("note: created a new store at `{}`", path.display());
    }
    let result = run_on(command, store.clone(), &config).await;
    let closed = (store.close().await)
        .with_context(|| format!("cannot close the store `{}`", path.display()));
    result.and(closed)
}

async fn run_on(command: Command, store: Arc<dyn Store>, config: &Config) -> anyhow::Result<()> {
    let directory = pathmq::Broker::open_directory(store, &config.security)
        .await
        .with_context(|| {
            format!(
                "cannot read the users and groups in `{}`",
                config.storage.path.display()
            )
        })?;
    let mut out = std::io::stdout();
    match command {
        Command::User(command) => user::run(command, &directory, &mut out).await?,
        Command::Group(command) => group::run(command, &directory, &mut out).await?,
        Command::Permission(command) => permission::run(command, &directory, &mut out).await?,
    }
    out.flush().context("writing to stdout")
}

/// Opens the configured redb file the way the broker does, and says what to do when a
/// running broker holds it.
async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let path = &config.storage.path;
    match pathmq::Broker::open_store(&config.storage).await {
        Ok(store) => Ok(store),
        Err(StartError::Store(OpenError::Database {
            source:
                redb::DatabaseError::DatabaseAlreadyOpen | redb::DatabaseError::LockProtocolMismatch,
            ..
        })) => bail!(
            "the store `{}` is in use (a running broker has it open): stop the broker first, \
             or administer it from the broker's process with the Rust API \
             (`RunningBroker::core().security()`, then `.directory()`)",
            path.display()
        ),
        Err(error) => {
            Err(error).with_context(|| format!("cannot open the store `{}`", path.display()))
        }
    }
}

/// Reads a password from the first line of stdin (`from_stdin`, without its line end) or
/// from the environment variable `from_env`; `None` when neither is given. The password
/// is never printed; [`Password`] does not even print in `Debug`.
///
/// # Errors
/// stdin is empty or unreadable; the variable is not set or not UTF-8 (the error names
/// the variable, not its value).
pub(crate) fn read_password(
    username: &str,
    from_stdin: bool,
    from_env: Option<&str>,
) -> anyhow::Result<Option<Password>> {
    if let Some(var) = from_env {
        let password = std::env::var(var).map_err(|error| match error {
            std::env::VarError::NotPresent => {
                anyhow::anyhow!("the environment variable `{var}` (--password-env) is not set")
            }
            std::env::VarError::NotUnicode(_) => {
                anyhow::anyhow!("the environment variable `{var}` (--password-env) is not UTF-8")
            }
        })?;
        return Ok(Some(Password::from(password)));
    }
    if !from_stdin {
        return Ok(None);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("password for `{username}` (one line; the terminal shows what you type): ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    let read = (stdin.lock().read_line(&mut line)).context("reading the password from stdin")?;
    if read == 0 {
        bail!("no password on stdin: --password-stdin reads its first line");
    }
    let end = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(end);
    Ok(Some(Password::from(line)))
}

/// Parses `--custom-data`: a JSON object.
///
/// # Errors
/// Not JSON, or JSON but not an object.
pub(crate) fn parse_custom_data(text: &str) -> anyhow::Result<Map<String, Value>> {
    match serde_json::from_str(text).context("--custom-data is not valid JSON")? {
        Value::Object(map) => Ok(map),
        _ => bail!("--custom-data must be a JSON object, like '{{\"room\": \"7\"}}'"),
    }
}

/// Writes `value` as pretty JSON and a line end.
pub(crate) fn write_json(
    out: &mut impl Write,
    value: &impl serde::Serialize,
) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).context("writing JSON")?;
    writeln!(out)?;
    Ok(())
}

/// `a, b, c`, or `-` for none.
pub(crate) fn comma_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let list: Vec<&str> = items.into_iter().collect();
    if list.is_empty() {
        "-".to_owned()
    } else {
        list.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_data_must_be_an_object() {
        assert_eq!(parse_custom_data(r#"{"a": 1}"#).unwrap()["a"], 1);
        assert!(parse_custom_data("[1]").is_err());
        assert!(parse_custom_data("{").is_err());
    }

    #[test]
    fn comma_list_says_none_with_a_dash() {
        assert_eq!(comma_list([]), "-");
        assert_eq!(comma_list(["a", "b"]), "a, b");
    }
}
