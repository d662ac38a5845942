//! `pathmq user add|passwd|remove|list|show`.

use std::io::Write;

use anyhow::bail;
use clap::{ArgGroup, Subcommand};
use pathmq::core::security::{Directory, User, UserInput};
use serde_json::Value;

use super::{comma_list, parse_custom_data, read_password, write_json};

/// A `pathmq user …` command.
#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Add a user, or update one: a new password, custom data or groups. What is not
    /// given is kept.
    Add {
        /// The login name.
        name: String,
        /// Read the password from the first line of stdin (its line end is not part of it).
        #[arg(long, conflicts_with = "password_env")]
        password_stdin: bool,
        /// Read the password from this environment variable.
        #[arg(long, value_name = "VAR")]
        password_env: Option<String>,
        /// Replace the user's custom data with this JSON object (templates read it as
        /// `{{user.custom_data.<key>}}`).
        #[arg(long, value_name = "JSON")]
        custom_data: Option<String>,
        /// Add the user to this group (which must exist); repeat for several.
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
    },
    /// Set a user's password.
    #[command(group(ArgGroup::new("password").required(true).args(["password_stdin", "password_env"])))]
    Passwd {
        /// The login name.
        name: String,
        /// Read the password from the first line of stdin (its line end is not part of it).
        #[arg(long)]
        password_stdin: bool,
        /// Read the password from this environment variable.
        #[arg(long, value_name = "VAR")]
        password_env: Option<String>,
    },
    /// Remove a user (not `_ADMIN`).
    Remove {
        /// The login name.
        name: String,
    },
    /// List users: name, groups and custom data (never the password hash).
    List {
        /// Only names matching this pattern (`*` matches any run of characters).
        pattern: Option<String>,
        /// Print a JSON array of users, as `user show` prints them.
        #[arg(long)]
        json: bool,
    },
    /// Show one user as JSON: groups, custom data, own permissions, whether it has a
    /// password (never the hash).
    Show {
        /// The login name.
        name: String,
    },
}

impl UserCommand {
    pub(super) fn writes(&self) -> bool {
        !matches!(self, Self::List { .. } | Self::Show { .. })
    }
}

pub(super) async fn run(
    command: UserCommand,
    directory: &Directory,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            name,
            password_stdin,
            password_env,
            custom_data,
            groups,
        } => {
            let password = read_password(&name, password_stdin, password_env.as_deref())?;
            let custom_data = custom_data.as_deref().map(parse_custom_data).transpose()?;
            // Checked before anything is written: a missing group leaves no user behind.
            if let Some(group) = groups.iter().find(|g| directory.get_group(g).is_none()) {
                bail!("there is no group `{group}`: create it with `pathmq group add {group}`");
            }
            let old = directory.get_user(&name);
            let created = old.is_none();
            let custom_data = match (custom_data, old) {
                (Some(data), _) => data,
                (None, Some(old)) => old.custom_data,
                (None, None) => Default::default(),
            };
            let user = directory
                .upsert_user(UserInput {
                    username: name.clone(),
                    password,
                    custom_data,
                    ..UserInput::default()
                })
                .await?;
            for group in &groups {
                directory.link_group(&name, group).await?;
            }
            let verb = if created { "created" } else { "updated" };
            writeln!(out, "user `{name}` {verb}")?;
            if user.password_hash.is_none() {
                eprintln!(
                    "note: `{name}` has no password, so it cannot log in with one: set it with \
                     `pathmq user passwd {name} --password-stdin`"
                );
            }
        }
        UserCommand::Passwd {
            name,
            password_stdin,
            password_env,
        } => {
            let Some(password) = read_password(&name, password_stdin, password_env.as_deref())?
            else {
                bail!("give --password-stdin or --password-env VAR");
            };
            directory.set_password(&name, password).await?;
            writeln!(out, "password of user `{name}` changed")?;
        }
        UserCommand::Remove { name } => {
            if !directory.delete_user(&name).await? {
                bail!("there is no user `{name}`");
            }
            writeln!(out, "user `{name}` removed")?;
        }
        UserCommand::List { pattern, json } => {
            let users = directory.list_users(pattern.as_deref());
            if json {
                let users: Vec<Value> = users.iter().map(user_json).collect();
                write_json(out, &users)?;
            } else {
                for user in &users {
                    write!(
                        out,
                        "{}  groups: {}",
                        user.username,
                        comma_list(user.groups.iter().map(String::as_str))
                    )?;
                    if !user.custom_data.is_empty() {
                        write!(
                            out,
                            "  custom_data: {}",
                            Value::from(user.custom_data.clone())
                        )?;
                    }
                    writeln!(out)?;
                }
            }
        }
        UserCommand::Show { name } => match directory.get_user(&name) {
            Some(user) => write_json(out, &user_json(&user))?,
            None => bail!("there is no user `{name}`"),
        },
    }
    Ok(())
}

/// A user as JSON without its password hash: `{"username", "custom_data", "groups",
/// "permissions", "has_password"}`.
fn user_json(user: &User) -> Value {
    let mut value = serde_json::to_value(user).unwrap_or_default();
    if let Value::Object(map) = &mut value {
        map.remove("password_hash");
        map.insert("has_password".into(), user.password_hash.is_some().into());
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_of_a_user_has_no_hash() {
        let user = User {
            username: "ann".into(),
            password_hash: Some("$2b$04$secret".into()),
            ..User::default()
        };
        let json = user_json(&user).to_string();
        assert!(
            !json.contains("$2b$") && !json.contains("password_hash"),
            "{json}"
        );
        assert!(json.contains(r#""has_password":true"#), "{json}");
    }
}
