//! The directory of users and groups (reference: SECURITY USERS AND GROUPS, USER
//! PERMISSIONS, VOLATILE PERMISSIONS; DESIGN.md §7): their records in the store, a cache
//! that authorization reads (it never reads the store), password checks, the `_ADMIN`
//! user and group, and a feed of changes for sessions to recompute their grants.
//!
//! Users are stored as JSON at [`USERS_PREFIX`]`/<username>`, groups at
//! [`GROUPS_PREFIX`]`/<name>`, in the shapes of [`super::model`]. Writes go to the store
//! first and to the cache only once the store has them, one write at a time; reads are
//! served from the cache.
//!
//! Permissions are merged, never replaced, when a user or group is upserted
//! ([`merge_permissions`]). Permission globs are normalised like data globs (`a/*` is
//! stored as `/a/*`, `*` as `/*`).
//!
//! **Volatile permissions** ([`DirectoryConfig::persist_permissions`] `= false`,
//! reference: VOLATILE PERMISSIONS): users and groups are stored without their
//! permissions, and permission changes live in the cache only. After a restart the users
//! (username, password hash, `custom_data`, group links) and the groups (name,
//! `custom_data`) are back, with no permissions; permissions found in records written by
//! an earlier persisting run are ignored, and dropped from a record when it is next
//! written. [`Directory::ensure_admin`] gives `_ADMIN` its rights again at every start.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Mutex, broadcast};

use super::model::{Group, PermissionEntry, Permissions, Right, User};
use super::password::{Password, PasswordError, PasswordHasher};
use super::{GROUPS_PREFIX, USERS_PREFIX};
use crate::{Glob, Path, Payload, Store, Write};

mod rules;
mod types;

pub use rules::merge_permissions;
use rules::{check_name, name_matches, normalize_glob, normalize_permissions, remove_permission};
pub use types::*;

/// The cached directory.
#[derive(Default)]
struct Cache {
    users: HashMap<String, User>,
    groups: HashMap<String, Group>,
}

/// What users and groups share, for the store and cache plumbing.
trait Entity: Clone + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static {
    const KIND: &'static str;
    const PREFIX: &'static str;
    fn name(&self) -> &str;
    fn permissions_mut(&mut self) -> &mut Permissions;
    fn cached(cache: &Cache) -> &HashMap<String, Self>;
    fn cached_mut(cache: &mut Cache) -> &mut HashMap<String, Self>;
    fn change(name: String, deleted: bool) -> DirectoryChange;
    fn unknown(name: &str) -> DirectoryError;
}

impl Entity for User {
    const KIND: &'static str = "user";
    const PREFIX: &'static str = USERS_PREFIX;
    fn name(&self) -> &str {
        &self.username
    }
    fn permissions_mut(&mut self) -> &mut Permissions {
        &mut self.permissions
    }
    fn cached(cache: &Cache) -> &HashMap<String, Self> {
        &cache.users
    }
    fn cached_mut(cache: &mut Cache) -> &mut HashMap<String, Self> {
        &mut cache.users
    }
    fn change(username: String, deleted: bool) -> DirectoryChange {
        if deleted {
            DirectoryChange::UserDeleted { username }
        } else {
            DirectoryChange::UserChanged { username }
        }
    }
    fn unknown(name: &str) -> DirectoryError {
        DirectoryError::UnknownUser {
            username: name.to_owned(),
        }
    }
}

impl Entity for Group {
    const KIND: &'static str = "group";
    const PREFIX: &'static str = GROUPS_PREFIX;
    fn name(&self) -> &str {
        &self.name
    }
    fn permissions_mut(&mut self) -> &mut Permissions {
        &mut self.permissions
    }
    fn cached(cache: &Cache) -> &HashMap<String, Self> {
        &cache.groups
    }
    fn cached_mut(cache: &mut Cache) -> &mut HashMap<String, Self> {
        &mut cache.groups
    }
    fn change(name: String, deleted: bool) -> DirectoryChange {
        if deleted {
            DirectoryChange::GroupDeleted { name }
        } else {
            DirectoryChange::GroupChanged { name }
        }
    }
    fn unknown(name: &str) -> DirectoryError {
        DirectoryError::UnknownGroup {
            name: name.to_owned(),
        }
    }
}

/// The record path of a (checked) name.
fn record_path<T: Entity>(name: &str) -> Result<Path, DirectoryError> {
    check_name(T::KIND, name)?;
    Path::parse(&format!("{}/{name}", T::PREFIX)).map_err(|_| DirectoryError::InvalidName {
        kind: T::KIND,
        name: name.to_owned(),
        reason: "it does not make a valid path",
    })
}

/// Users and groups, cached from the store. Share it in an `Arc`.
pub struct Directory {
    store: Arc<dyn Store>,
    config: DirectoryConfig,
    hasher: PasswordHasher,
    cache: RwLock<Cache>,
    /// One write at a time: a write reads the cache, writes the store, then the cache.
    /// An async mutex, held across the store write; the cache lock never is.
    writer: Mutex<()>,
    changes: broadcast::Sender<DirectoryChange>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cache = self.cache.read();
        f.debug_struct("Directory")
            .field("config", &self.config)
            .field("users", &cache.users.len())
            .field("groups", &cache.groups.len())
            .finish_non_exhaustive()
    }
}

impl Directory {
    /// Loads every user and group from `store` into the cache.
    ///
    /// # Errors
    /// [`DirectoryError::Config`] for a bcrypt cost out of range;
    /// [`DirectoryError::Store`] when the store cannot be read;
    /// [`DirectoryError::Corrupt`] for an unreadable record. Nothing is written.
    pub async fn open(
        store: Arc<dyn Store>,
        config: DirectoryConfig,
    ) -> Result<Self, DirectoryError> {
        let hasher = PasswordHasher::new(config.bcrypt_cost)
            .await
            .map_err(DirectoryError::Config)?;
        let cache = Cache {
            users: load(&*store, config.persist_permissions).await?,
            groups: load(&*store, config.persist_permissions).await?,
        };
        tracing::debug!(
            users = cache.users.len(),
            groups = cache.groups.len(),
            persist_permissions = config.persist_permissions,
            "security directory loaded"
        );
        Ok(Self {
            store,
            config,
            hasher,
            cache: RwLock::new(cache),
            writer: Mutex::new(()),
            changes: broadcast::channel(CHANGES_CAPACITY).0,
        })
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> DirectoryConfig {
        self.config
    }

    /// Every change from now on. A receiver more than 1,024 changes behind misses the
    /// oldest and gets `RecvError::Lagged`: it should then recompute everything.
    pub fn subscribe_changes(&self) -> broadcast::Receiver<DirectoryChange> {
        self.changes.subscribe()
    }

    /// Creates or updates a user (reference: upsertUser): hashes the new password (or
    /// keeps the stored hash when none is given, or the same password is given again:
    /// a changed password refuses the user's older tokens), replaces `custom_data`, merges
    /// `permissions` ([`merge_permissions`]) and keeps the user's groups. Returns the user
    /// as stored.
    ///
    /// # Errors
    /// [`DirectoryError::InvalidName`], [`DirectoryError::InvalidPermissionPath`],
    /// [`DirectoryError::Password`] (empty, over 71 bytes, hashing failed),
    /// [`DirectoryError::Store`]: the user is unchanged.
    pub async fn upsert_user(&self, input: UserInput) -> Result<User, DirectoryError> {
        let UserInput {
            username,
            password,
            custom_data,
            permissions,
        } = input;
        check_name(User::KIND, &username)?;
        let permissions = normalize_permissions(permissions)?;
        // The same password again (a provisioning script run twice) keeps the stored
        // hash, and the user's tokens.
        let stored = self.get_user(&username).and_then(|u| u.password_hash);
        let hash = match (password, stored) {
            (Some(password), Some(stored))
                if matches!(
                    self.hasher.verify(password.clone(), Some(&stored)).await,
                    Ok(true)
                ) =>
            {
                None
            }
            (Some(password), _) => Some(self.hash(&username, password).await?),
            (None, _) => None,
        };
        let _writer = self.writer.lock().await;
        let old = self.get_user(&username);
        let mut user = old.clone().unwrap_or_else(|| User {
            username,
            ..User::default()
        });
        if old.is_none() || hash.is_some() {
            user.tokens_after_ms = crate::now_ms();
        }
        if hash.is_some() {
            user.password_hash = hash;
        }
        user.custom_data = custom_data;
        merge_permissions(&mut user.permissions, permissions);
        self.save(old.as_ref(), user.clone()).await?;
        Ok(user)
    }

    /// Sets a user's password.
    ///
    /// # Errors
    /// [`DirectoryError::UnknownUser`], [`DirectoryError::Password`],
    /// [`DirectoryError::Store`]: the password is unchanged.
    pub async fn set_password(
        &self,
        username: &str,
        password: Password,
    ) -> Result<(), DirectoryError> {
        check_name(User::KIND, username)?;
        let hash = self.hash(username, password).await?;
        self.edit::<User>(username, |user| {
            user.password_hash = Some(hash);
            user.tokens_after_ms = crate::now_ms();
        })
        .await
        .map(drop)
    }

    /// Sets `_ADMIN`'s password (the explicit way: [`Directory::ensure_admin`] never
    /// changes it).
    ///
    /// # Errors
    /// As [`Directory::set_password`].
    pub async fn reset_admin_password(&self, password: Password) -> Result<(), DirectoryError> {
        self.set_password(ADMIN_USER, password).await
    }

    /// The user, if any.
    pub fn get_user(&self, username: &str) -> Option<User> {
        self.cache.read().users.get(username).cloned()
    }

    /// The users whose names match `pattern` (`*` matches any run of characters, e.g.
    /// `TEST*`; `None` for all), ordered by name (reference: listUsers).
    pub fn list_users(&self, pattern: Option<&str>) -> Vec<User> {
        list(&self.cache.read().users, pattern)
    }

    /// The names of the users in `group`, ordered (reference: listUserNamesByGroup).
    pub fn list_usernames_in_group(&self, group: &str) -> Vec<String> {
        let mut names: Vec<String> = (self.cache.read().users.values())
            .filter(|user| user.groups.contains(group))
            .map(|user| user.username.clone())
            .collect();
        names.sort();
        names
    }

    /// The user and the groups they belong to that exist, read together (one consistent
    /// view): what a session's grants are computed from.
    pub fn user_and_groups(&self, username: &str) -> Option<(User, Vec<Group>)> {
        let cache = self.cache.read();
        let user = cache.users.get(username)?.clone();
        let groups = (user.groups.iter())
            .filter_map(|name| cache.groups.get(name).cloned())
            .collect();
        Some((user, groups))
    }

    /// The groups of `names` that exist, in name order.
    pub fn groups_named(&self, names: &std::collections::BTreeSet<String>) -> Vec<Group> {
        let cache = self.cache.read();
        names
            .iter()
            .filter_map(|name| cache.groups.get(name).cloned())
            .collect()
    }

    /// Deletes a user. Answers whether it existed.
    ///
    /// # Errors
    /// [`DirectoryError::Reserved`] for `_ADMIN`; [`DirectoryError::InvalidName`];
    /// [`DirectoryError::Store`]: the user is unchanged.
    pub async fn delete_user(&self, username: &str) -> Result<bool, DirectoryError> {
        if username == ADMIN_USER {
            return Err(reserved(username, "the admin user cannot be deleted"));
        }
        let _writer = self.writer.lock().await;
        self.delete::<User>(username).await
    }

    /// Creates or updates a group (reference: upsertGroup): replaces `custom_data` and
    /// merges `permissions` into the stored ones ([`merge_permissions`]: prohibits remove
    /// the actions they name). Returns the group as stored.
    ///
    /// # Errors
    /// [`DirectoryError::InvalidName`], [`DirectoryError::InvalidPermissionPath`],
    /// [`DirectoryError::Store`]: the group is unchanged.
    pub async fn upsert_group(&self, group: Group) -> Result<Group, DirectoryError> {
        check_name(Group::KIND, &group.name)?;
        let permissions = normalize_permissions(group.permissions)?;
        let _writer = self.writer.lock().await;
        let old = self.get_group(&group.name);
        let mut new = old.clone().unwrap_or_else(|| Group {
            name: group.name,
            ..Group::default()
        });
        new.custom_data = group.custom_data;
        merge_permissions(&mut new.permissions, permissions);
        self.save(old.as_ref(), new.clone()).await?;
        Ok(new)
    }

    /// The group, if any.
    pub fn get_group(&self, name: &str) -> Option<Group> {
        self.cache.read().groups.get(name).cloned()
    }

    /// The groups whose names match `pattern` (as [`Directory::list_users`]), ordered.
    pub fn list_groups(&self, pattern: Option<&str>) -> Vec<Group> {
        list(&self.cache.read().groups, pattern)
    }

    /// Deletes a group, unlinking it from its members first. Answers whether it existed.
    ///
    /// # Errors
    /// [`DirectoryError::Reserved`] for `_ADMIN`; [`DirectoryError::InvalidName`];
    /// [`DirectoryError::Store`]: the group still exists, and the members unlinked before
    /// the failure stay unlinked (calling again finishes the job).
    pub async fn delete_group(&self, name: &str) -> Result<bool, DirectoryError> {
        if name == ADMIN_GROUP {
            return Err(reserved(name, "the admin group cannot be deleted"));
        }
        check_name(Group::KIND, name)?;
        let _writer = self.writer.lock().await;
        // Members first: a link left behind would grant the permissions of any group
        // later created under the same name.
        for username in self.list_usernames_in_group(name) {
            if let Some(old) = self.get_user(&username) {
                let mut user = old.clone();
                user.groups.remove(name);
                self.save(Some(&old), user).await?;
            }
        }
        self.delete::<Group>(name).await
    }

    /// Adds `username` to `group` (reference: linkGroup). Answers whether it was not
    /// already a member.
    ///
    /// # Errors
    /// [`DirectoryError::UnknownGroup`], [`DirectoryError::UnknownUser`],
    /// [`DirectoryError::Store`]: nothing changed.
    pub async fn link_group(&self, username: &str, group: &str) -> Result<bool, DirectoryError> {
        check_name(Group::KIND, group)?;
        let _writer = self.writer.lock().await;
        if self.get_group(group).is_none() {
            return Err(Group::unknown(group));
        }
        self.edit_locked::<User>(username, |user| {
            user.groups.insert(group.to_owned());
        })
        .await
    }

    /// Removes `username` from `group` (reference: unlinkGroup). Answers whether it was
    /// a member.
    ///
    /// # Errors
    /// [`DirectoryError::Reserved`] for `_ADMIN` from `_ADMIN`;
    /// [`DirectoryError::UnknownUser`], [`DirectoryError::Store`]: nothing changed.
    pub async fn unlink_group(&self, username: &str, group: &str) -> Result<bool, DirectoryError> {
        if username == ADMIN_USER && group == ADMIN_GROUP {
            return Err(reserved(
                username,
                "the admin user stays in the admin group",
            ));
        }
        self.edit::<User>(username, |user| {
            user.groups.remove(group);
        })
        .await
    }

    /// Allows (`allow = true`) or prohibits `action` on `glob` for the group (reference:
    /// upsertPermission; a prohibit also removes the allowed actions it covers, as
    /// [`merge_permissions`]). Answers whether anything changed.
    ///
    /// # Errors
    /// [`DirectoryError::InvalidPermissionPath`], [`DirectoryError::UnknownGroup`],
    /// [`DirectoryError::Store`]: nothing changed.
    pub async fn upsert_group_permission(
        &self,
        group: &str,
        glob: &str,
        action: Right,
        allow: bool,
    ) -> Result<bool, DirectoryError> {
        let update = permission_update(glob, action, allow)?;
        self.edit::<Group>(group, |g| merge_permissions(&mut g.permissions, update))
            .await
    }

    /// Forgets `action` (allowed or prohibited) on `glob` for the group, or everything on
    /// `glob` for `None` (reference: removePermission). Answers whether anything changed.
    ///
    /// # Errors
    /// As [`Directory::upsert_group_permission`].
    pub async fn remove_group_permission(
        &self,
        group: &str,
        glob: &str,
        action: Option<Right>,
    ) -> Result<bool, DirectoryError> {
        let glob = normalize_glob(glob)?;
        self.edit::<Group>(group, |g| {
            remove_permission(&mut g.permissions, &glob, action);
        })
        .await
    }

    /// [`Directory::upsert_group_permission`] for one user's own permissions (reference:
    /// USER PERMISSIONS).
    ///
    /// # Errors
    /// [`DirectoryError::InvalidPermissionPath`], [`DirectoryError::UnknownUser`],
    /// [`DirectoryError::Store`]: nothing changed.
    pub async fn upsert_user_permission(
        &self,
        username: &str,
        glob: &str,
        action: Right,
        allow: bool,
    ) -> Result<bool, DirectoryError> {
        let update = permission_update(glob, action, allow)?;
        self.edit::<User>(username, |u| merge_permissions(&mut u.permissions, update))
            .await
    }

    /// [`Directory::remove_group_permission`] for one user's own permissions.
    ///
    /// # Errors
    /// As [`Directory::upsert_user_permission`].
    pub async fn remove_user_permission(
        &self,
        username: &str,
        glob: &str,
        action: Option<Right>,
    ) -> Result<bool, DirectoryError> {
        let glob = normalize_glob(glob)?;
        self.edit::<User>(username, |u| {
            remove_permission(&mut u.permissions, &glob, action);
        })
        .await
    }

    /// Checks a login. Unknown users, wrong passwords and users without a password all
    /// get [`AuthError::BadCredentials`] after the same bcrypt work. Returns the user as
    /// it is once the check is done.
    ///
    /// # Errors
    /// [`AuthError::BadCredentials`]; [`AuthError::Unavailable`] when the hashing task
    /// failed.
    pub async fn verify(&self, username: &str, password: Password) -> Result<User, AuthError> {
        let hash = self
            .cache
            .read()
            .users
            .get(username)
            .and_then(|u| u.password_hash.clone());
        match self.hasher.verify(password, hash.as_deref()).await {
            Ok(true) => {}
            Ok(false) => return Err(AuthError::BadCredentials),
            Err(PasswordError::MalformedHash(e)) => {
                tracing::warn!(username, error = %e, "stored password hash is not a bcrypt hash");
                return Err(AuthError::BadCredentials);
            }
            Err(e) => return Err(AuthError::Unavailable(e)),
        }
        // The password may have changed, or the user gone, while bcrypt ran.
        match self.get_user(username) {
            Some(user) if user.password_hash == hash => Ok(user),
            _ => Err(AuthError::BadCredentials),
        }
    }

    /// Creates the `_ADMIN` group (every action on every path, `*` on `/*`) and the
    /// `_ADMIN` user (with `password`, in that group) when they do not exist (reference:
    /// SECURITY SERVER). When they exist they are kept, and the password is **not** reset
    /// ([`Directory::reset_admin_password`] does that); only the group's `*` on `/*` and
    /// the user's membership are given back if they were lost (volatile permissions lose
    /// them at every restart), and an admin stored without a password gets this one.
    /// Call it at every start.
    ///
    /// # Errors
    /// [`DirectoryError::Password`] when `password` is empty or over 71 bytes, even if
    /// the user exists (a configuration error shows at once); [`DirectoryError::Store`]:
    /// what was created before the failure stays.
    pub async fn ensure_admin(&self, password: Password) -> Result<AdminSetup, DirectoryError> {
        password
            .check()
            .map_err(|source| DirectoryError::Password {
                username: ADMIN_USER.to_owned(),
                source,
            })?;
        // Hashed before taking the writer lock, when it will (most likely) be needed.
        let hash = match self.get_user(ADMIN_USER) {
            Some(admin) if admin.password_hash.is_some() => None,
            _ => Some(self.hash(ADMIN_USER, password.clone()).await?),
        };
        let _writer = self.writer.lock().await;

        let old_group = self.get_group(ADMIN_GROUP);
        let mut group = old_group.clone().unwrap_or_else(|| Group {
            name: ADMIN_GROUP.to_owned(),
            ..Group::default()
        });
        let all = PermissionEntry {
            actions: [Right::All].into(),
            prohibit: Default::default(),
        };
        merge_permissions(
            &mut group.permissions,
            Permissions::from([("/*".to_owned(), all)]),
        );
        self.save(old_group.as_ref(), group).await?;

        let old_user = self.get_user(ADMIN_USER);
        let user_created = old_user.is_none();
        let mut user = old_user.clone().unwrap_or_else(|| User {
            username: ADMIN_USER.to_owned(),
            ..User::default()
        });
        if user.password_hash.is_none() {
            // A new admin, or one stored without a password (which could never log in).
            user.password_hash = Some(match hash {
                Some(hash) => hash,
                None => self.hash(ADMIN_USER, password).await?,
            });
        }
        user.groups.insert(ADMIN_GROUP.to_owned());
        self.save(old_user.as_ref(), user).await?;
        if user_created {
            tracing::info!("created the {ADMIN_USER} user and group");
        }
        Ok(AdminSetup {
            user_created,
            group_created: old_group.is_none(),
        })
    }

    async fn hash(&self, username: &str, password: Password) -> Result<String, DirectoryError> {
        self.hasher
            .hash(password)
            .await
            .map_err(|source| DirectoryError::Password {
                username: username.to_owned(),
                source,
            })
    }

    /// Changes an existing user or group with `change`, under the writer lock.
    async fn edit<T: Entity>(
        &self,
        name: &str,
        change: impl FnOnce(&mut T),
    ) -> Result<bool, DirectoryError> {
        let _writer = self.writer.lock().await;
        self.edit_locked(name, change).await
    }

    /// [`Directory::edit`], with the writer lock already held.
    async fn edit_locked<T: Entity>(
        &self,
        name: &str,
        change: impl FnOnce(&mut T),
    ) -> Result<bool, DirectoryError> {
        check_name(T::KIND, name)?;
        let old = T::cached(&self.cache.read()).get(name).cloned();
        let Some(old) = old else {
            return Err(T::unknown(name));
        };
        let mut new = old.clone();
        change(&mut new);
        self.save(Some(&old), new).await
    }

    /// What is written to the store for `entity`: without permissions when they are
    /// volatile.
    fn stored_form<T: Entity>(&self, entity: &T) -> T {
        let mut stored = entity.clone();
        if !self.config.persist_permissions {
            stored.permissions_mut().clear();
        }
        stored
    }

    /// Writes `new` over `old` (what the cache holds now) to the store when its stored
    /// form changed, then to the cache, and announces it. Call with the writer lock held.
    /// Answers whether anything changed.
    async fn save<T: Entity>(&self, old: Option<&T>, new: T) -> Result<bool, DirectoryError> {
        if old == Some(&new) {
            return Ok(false);
        }
        let stored = self.stored_form(&new);
        if old.map(|old| self.stored_form(old)).as_ref() != Some(&stored) {
            let path = record_path::<T>(new.name())?;
            let value = serde_json::to_value(&stored).expect("users and groups serialise to JSON");
            let write = Write {
                path,
                payload: Payload::json(&value),
                merge: false,
                modified_by: None,
                increment: None,
                properties: None,
            };
            self.store
                .set(write, None)
                .await
                .map_err(|source| DirectoryError::Store {
                    what: format!("saving {} `{}` (it is unchanged)", T::KIND, new.name()),
                    source,
                })?;
        }
        let name = new.name().to_owned();
        T::cached_mut(&mut self.cache.write()).insert(name.clone(), new);
        let _ = self.changes.send(T::change(name, false));
        Ok(true)
    }

    /// Removes a user or group from the store, then from the cache, and announces it.
    /// Call with the writer lock held.
    async fn delete<T: Entity>(&self, name: &str) -> Result<bool, DirectoryError> {
        let path = record_path::<T>(name)?;
        if !T::cached(&self.cache.read()).contains_key(name) {
            return Ok(false);
        }
        let glob = Glob::parse(path.as_str()).expect("a record path is a glob");
        self.store
            .remove(&glob, None)
            .await
            .map_err(|source| DirectoryError::Store {
                what: format!("deleting {} `{name}` (it still exists)", T::KIND),
                source,
            })?;
        T::cached_mut(&mut self.cache.write()).remove(name);
        let _ = self.changes.send(T::change(name.to_owned(), true));
        Ok(true)
    }
}

fn reserved(name: &str, what: &'static str) -> DirectoryError {
    DirectoryError::Reserved {
        name: name.to_owned(),
        what,
    }
}

/// The one-entry update of an allow or prohibit of `action` on `glob`.
fn permission_update(
    glob: &str,
    action: Right,
    allow: bool,
) -> Result<Permissions, DirectoryError> {
    let mut entry = PermissionEntry::default();
    if allow {
        entry.actions.insert(action);
    } else {
        entry.prohibit.insert(action);
    }
    Ok(Permissions::from([(normalize_glob(glob)?, entry)]))
}

fn list<T: Entity>(entities: &HashMap<String, T>, pattern: Option<&str>) -> Vec<T> {
    let mut found: Vec<T> = (entities.iter())
        .filter(|(name, _)| name_matches(pattern, name))
        .map(|(_, entity)| entity.clone())
        .collect();
    found.sort_by(|a, b| a.name().cmp(b.name()));
    found
}

/// Reads every user or group record; with volatile permissions, without permissions.
async fn load<T: Entity>(
    store: &dyn Store,
    persist_permissions: bool,
) -> Result<HashMap<String, T>, DirectoryError> {
    let glob = Glob::parse(&format!("{}/*", T::PREFIX)).expect("the prefixes are valid globs");
    let records = store
        .scan(&glob)
        .await
        .map_err(|source| DirectoryError::Store {
            what: format!("loading the {}s (the directory did not open)", T::KIND),
            source,
        })?;
    let mut loaded = HashMap::with_capacity(records.len());
    for record in records {
        let key = &record.path.as_str()[T::PREFIX.len() + 1..];
        if key.contains('/') {
            continue; // below a record: not one of ours
        }
        let corrupt = |source| DirectoryError::Corrupt {
            path: record.path.to_string(),
            source,
        };
        let value = record
            .payload
            .as_json()
            .ok_or_else(|| corrupt(serde::de::Error::custom("the payload is not JSON")))?;
        let mut entity: T = serde_json::from_value(value).map_err(corrupt)?;
        if entity.name() != key {
            return Err(corrupt(serde::de::Error::custom(format!(
                "it names `{}`, not `{key}`",
                entity.name()
            ))));
        }
        if !persist_permissions {
            entity.permissions_mut().clear();
        }
        loaded.insert(key.to_owned(), entity);
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests;
