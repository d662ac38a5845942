//! `pathmq permission allow|prohibit|forget|list (--group G | --user U) …`.

use std::io::Write;

use anyhow::bail;
use clap::builder::{PossibleValuesParser, TypedValueParser as _};
use clap::{Args, Subcommand};
use pathmq::core::security::{Directory, Permissions, Right};

use super::{comma_list, write_json};

/// A `pathmq permission …` command. A glob is a path where `*` matches any run of
/// characters, `/` included, and may hold templates (`{{user.username}}`,
/// `{{user.custom_data.<key>}}`, `{{session.client_id}}`); quote it for the shell, and
/// quote the action `*` too.
#[derive(Debug, Subcommand)]
pub(crate) enum PermissionCommand {
    /// Allow an action on a path glob (removes a prohibit of that action on it).
    Allow {
        #[command(flatten)]
        target: Target,
        /// The path glob, e.g. '/sensors/{{user.username}}/*'.
        glob: String,
        /// get, set (MQTT PUBLISH), remove, on (MQTT SUBSCRIBE) or '*' (every action).
        #[arg(value_parser = action_parser())]
        action: Right,
    },
    /// Prohibit an action on a path glob: any matching prohibit wins over any allow.
    Prohibit {
        #[command(flatten)]
        target: Target,
        /// The path glob.
        glob: String,
        /// get, set, remove, on or '*'.
        #[arg(value_parser = action_parser())]
        action: Right,
    },
    /// Forget an action (allowed or prohibited) on a path glob, or the whole glob.
    Forget {
        #[command(flatten)]
        target: Target,
        /// The path glob.
        glob: String,
        /// get, set, remove, on or '*'; without it the glob is forgotten.
        #[arg(value_parser = action_parser())]
        action: Option<Right>,
    },
    /// List the permissions of a group or of a user's own (not those of its groups).
    List {
        #[command(flatten)]
        target: Target,
        /// Print them as a JSON object: glob → {"actions", "prohibit"}.
        #[arg(long)]
        json: bool,
    },
}

/// Whose permissions: exactly one of `--group` and `--user`.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct Target {
    /// The permissions of this group.
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,
    /// The own permissions of this user.
    #[arg(long, value_name = "USER")]
    user: Option<String>,
}

/// [`Target`] resolved.
enum Owner<'a> {
    Group(&'a str),
    User(&'a str),
}

impl Target {
    fn owner(&self) -> Owner<'_> {
        match (&self.group, &self.user) {
            (Some(group), _) => Owner::Group(group),
            (None, Some(user)) => Owner::User(user),
            (None, None) => unreachable!("clap requires --group or --user"),
        }
    }

    fn describe(&self) -> String {
        match self.owner() {
            Owner::Group(group) => format!("group `{group}`"),
            Owner::User(user) => format!("user `{user}`"),
        }
    }
}

fn action_parser() -> impl clap::builder::TypedValueParser<Value = Right> {
    // The data rights, `*`, and the HTTP methods of `@HTTP` permissions.
    PossibleValuesParser::new(Right::NAMES)
        .map(|action| Right::parse(&action).expect("one of Right::NAMES"))
}

impl PermissionCommand {
    pub(super) fn writes(&self) -> bool {
        !matches!(self, Self::List { .. })
    }
}

pub(super) async fn run(
    command: PermissionCommand,
    directory: &Directory,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        PermissionCommand::Allow {
            target,
            glob,
            action,
        } => upsert(directory, out, &target, &glob, action, true).await,
        PermissionCommand::Prohibit {
            target,
            glob,
            action,
        } => upsert(directory, out, &target, &glob, action, false).await,
        PermissionCommand::Forget {
            target,
            glob,
            action,
        } => {
            let changed = match target.owner() {
                Owner::Group(group) => {
                    (directory.remove_group_permission(group, &glob, action)).await?
                }
                Owner::User(user) => {
                    (directory.remove_user_permission(user, &glob, action)).await?
                }
            };
            let what = action.map_or("every action".to_owned(), |a| format!("`{}`", a.as_str()));
            let whom = target.describe();
            match changed {
                true => writeln!(out, "{whom}: forgot {what} on `{glob}`")?,
                false => writeln!(out, "{whom}: nothing to forget ({what} on `{glob}`)")?,
            }
            Ok(())
        }
        PermissionCommand::List { target, json } => {
            let permissions = own_permissions(directory, &target)?;
            if json {
                return write_json(out, &permissions);
            }
            for (glob, entry) in &permissions {
                let allowed = comma_list(entry.actions.iter().map(|r| r.as_str()));
                let prohibited = comma_list(entry.prohibit.iter().map(|r| r.as_str()));
                writeln!(out, "{glob}  allow: {allowed}  prohibit: {prohibited}")?;
            }
            Ok(())
        }
    }
}

async fn upsert(
    directory: &Directory,
    out: &mut impl Write,
    target: &Target,
    glob: &str,
    action: Right,
    allow: bool,
) -> anyhow::Result<()> {
    let changed = match target.owner() {
        Owner::Group(group) => {
            (directory.upsert_group_permission(group, glob, action, allow)).await?
        }
        Owner::User(user) => (directory.upsert_user_permission(user, glob, action, allow)).await?,
    };
    let whom = target.describe();
    let verb = if allow { "allowed" } else { "prohibited" };
    let action = action.as_str();
    match changed {
        true => writeln!(out, "{whom}: `{action}` {verb} on `{glob}`")?,
        false => writeln!(out, "{whom}: `{action}` was already {verb} on `{glob}`")?,
    }
    Ok(())
}

fn own_permissions(directory: &Directory, target: &Target) -> anyhow::Result<Permissions> {
    match target.owner() {
        Owner::Group(group) => match directory.get_group(group) {
            Some(group) => Ok(group.permissions),
            None => bail!("there is no group `{group}`"),
        },
        Owner::User(user) => match directory.get_user(user) {
            Some(user) => Ok(user.permissions),
            None => bail!("there is no user `{user}`"),
        },
    }
}
