//! `pathmq group add|remove|list|show|link|unlink`.

use std::io::Write;

use anyhow::bail;
use clap::Subcommand;
use pathmq::core::security::{Directory, Group};
use serde_json::Value;

use super::{comma_list, parse_custom_data, write_json};

/// A `pathmq group …` command.
#[derive(Debug, Subcommand)]
pub(crate) enum GroupCommand {
    /// Add a group, or update its custom data (kept when not given). Permissions are set
    /// with `pathmq permission`.
    Add {
        /// The group's name.
        name: String,
        /// Replace the group's custom data with this JSON object.
        #[arg(long, value_name = "JSON")]
        custom_data: Option<String>,
    },
    /// Remove a group (not `_ADMIN`); its members leave it first.
    Remove {
        /// The group's name.
        name: String,
    },
    /// List groups: name, members and custom data.
    List {
        /// Only names matching this pattern (`*` matches any run of characters).
        pattern: Option<String>,
        /// Print a JSON array of groups, as `group show` prints them.
        #[arg(long)]
        json: bool,
    },
    /// Show one group as JSON: custom data, permissions, members.
    Show {
        /// The group's name.
        name: String,
    },
    /// Add a user to a group.
    Link {
        /// The user's login name.
        user: String,
        /// The group's name.
        group: String,
    },
    /// Remove a user from a group.
    Unlink {
        /// The user's login name.
        user: String,
        /// The group's name.
        group: String,
    },
}

impl GroupCommand {
    pub(super) fn writes(&self) -> bool {
        !matches!(self, Self::List { .. } | Self::Show { .. })
    }
}

pub(super) async fn run(
    command: GroupCommand,
    directory: &Directory,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        GroupCommand::Add { name, custom_data } => {
            let custom_data = custom_data.as_deref().map(parse_custom_data).transpose()?;
            let old = directory.get_group(&name);
            let created = old.is_none();
            let custom_data = match (custom_data, old) {
                (Some(data), _) => data,
                (None, Some(old)) => old.custom_data,
                (None, None) => Default::default(),
            };
            directory
                .upsert_group(Group {
                    name: name.clone(),
                    custom_data,
                    ..Group::default()
                })
                .await?;
            let verb = if created { "created" } else { "updated" };
            writeln!(out, "group `{name}` {verb}")?;
        }
        GroupCommand::Remove { name } => {
            if !directory.delete_group(&name).await? {
                bail!("there is no group `{name}`");
            }
            writeln!(out, "group `{name}` removed")?;
        }
        GroupCommand::List { pattern, json } => {
            let groups = directory.list_groups(pattern.as_deref());
            if json {
                let groups: Vec<Value> = (groups.iter())
                    .map(|group| group_json(directory, group))
                    .collect();
                write_json(out, &groups)?;
            } else {
                for group in &groups {
                    let members = directory.list_usernames_in_group(&group.name);
                    write!(
                        out,
                        "{}  members: {}",
                        group.name,
                        comma_list(members.iter().map(String::as_str))
                    )?;
                    if !group.custom_data.is_empty() {
                        let data = Value::from(group.custom_data.clone());
                        write!(out, "  custom_data: {data}")?;
                    }
                    writeln!(out)?;
                }
            }
        }
        GroupCommand::Show { name } => match directory.get_group(&name) {
            Some(group) => write_json(out, &group_json(directory, &group))?,
            None => bail!("there is no group `{name}`"),
        },
        GroupCommand::Link { user, group } => {
            if directory.link_group(&user, &group).await? {
                writeln!(out, "user `{user}` added to group `{group}`")?;
            } else {
                writeln!(out, "user `{user}` was already in group `{group}`")?;
            }
        }
        GroupCommand::Unlink { user, group } => {
            if directory.unlink_group(&user, &group).await? {
                writeln!(out, "user `{user}` removed from group `{group}`")?;
            } else {
                writeln!(out, "user `{user}` was not in group `{group}`")?;
            }
        }
    }
    Ok(())
}

/// A group as JSON with its members: `{"name", "custom_data", "permissions", "members"}`.
fn group_json(directory: &Directory, group: &Group) -> Value {
    let mut value = serde_json::to_value(group).unwrap_or_default();
    if let Value::Object(map) = &mut value {
        let members = directory.list_usernames_in_group(&group.name);
        map.insert("members".into(), members.into());
    }
    value
}
