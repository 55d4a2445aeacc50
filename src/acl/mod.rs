//! Access control lists: Redis 7.0's users and their permissions.
//!
//! * [`rules`]: one user's rules: parsing ACL SETUSER rules, printing them back, and the
//!   permission check made before every command.
//! * [`log`]: ACL LOG, the record of refused commands, channels and logins.
//! * [`file`]: ACL LOAD / ACL SAVE and the `aclfile` read at start-up.
//!
//! Every connection is logged in as a [`User`], `default` at first. The `default` user is
//! `on nopass ~* &* +@all` unless configured otherwise; `requirepass` sets its password,
//! as in Redis.
//!
//! # Revoking channels from connected subscribers
//!
//! When ACL SETUSER narrows a user's channels, ACL DELUSER deletes a user, or ACL LOAD
//! replaces the users, Redis disconnects the subscribers that hold a subscription they may
//! no longer have (`ACLKillPubsubClientsIfNeeded`), before it replies. fanout does the
//! same, synchronously, so that a CLIENT LIST sent after the reply no longer shows them.
//!
//! Subscriptions live in each connection's `Session`, which other connections cannot
//! reach. Rather than keep a second copy of every connection's subscriptions for a rare
//! admin command (idle subscribers are counted in bytes), the change works from what is
//! shared: the client table says which connections are logged in as the user and hold
//! subscriptions (each client's info names its user), and the subscription registry says
//! who is subscribed to what. The scan walks
//! the registry's channels, shard channels and patterns that the new rules refuse and
//! kills the user's connections found there: it costs one pass over the registry, and
//! only when the user has subscribers and its channels were narrowed.
//!
//! The ACL decides (which user, which channels remain allowed); the disconnecting is done
//! by the shared server context through the [`Revoker`] it implements, so this module
//! knows nothing of clients or subscriptions and sits below them.
//!
//! A user's rules sit behind a `RwLock`. Subscribing holds it shared from the permission
//! check until the subscription is in the registry, and ACL changes take it exclusively
//! while they swap the rules and scan. So a subscribe that races an ACL change is either
//! seen by the scan, or checked against the new rules: it can never slip in between.
//! Logging in (AUTH, HELLO AUTH) also holds the new user's lock while it records the user
//! on the connection, so a user deleted at that moment cannot keep a connection. Other
//! commands, PUBLISH included, only read the rules; for a user allowed everything (the
//! usual `default`) they skip even the lock, reading one atomic flag.
//!
//! Like Redis, disabling a user (`off`) only stops new logins: connections already logged
//! in keep working. Unlike Redis, ACL LOAD also applies the revocation check to `default`
//! (Redis copies the new rules in without it).

pub mod file;
pub mod log;
pub mod rules;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use bytes::Bytes;

use crate::config::Settings;
use crate::spec::Spec;
pub use rules::channel_allowed;
use rules::{Denial, UserRules};

/// A user. Connections hold it for as long as they are logged in as it; ACL SETUSER
/// changes its rules in place, so they apply to those connections at once.
pub struct User {
    pub name: Bytes,
    state: RwLock<UserState>,
    /// The rules allow every command on every channel: the permission check can say yes
    /// without taking the lock.
    open: AtomicBool,
}

pub struct UserState {
    pub rules: UserRules,
    /// Deleted (ACL DELUSER, or replaced by ACL LOAD): nobody may log in as it any more.
    removed: bool,
}

impl User {
    fn new(name: Bytes, rules: UserRules) -> Arc<User> {
        Arc::new(User {
            name,
            open: AtomicBool::new(rules.unrestricted()),
            state: RwLock::new(UserState { rules, removed: false }),
        })
    }

    /// The user's rules, for reading.
    pub fn state(&self) -> RwLockReadGuard<'_, UserState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn state_mut(&self) -> std::sync::RwLockWriteGuard<'_, UserState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// May this user run this command with these arguments? `Err` holds the denial and
    /// the position of the refused argument.
    pub fn check(&self, spec: &'static Spec, args: &[Bytes]) -> Result<(), (Denial, usize)> {
        if self.open.load(Ordering::Acquire) {
            return Ok(());
        }
        self.state().rules.check(spec, args)
    }

    /// [`User::check`] for the commands that add subscriptions (the command table's
    /// `SUBSCRIBES` flag), which an ACL change may have to find and revoke: `Ok` keeps
    /// the rules locked (shared) until the caller drops it, once the subscription is
    /// recorded.
    pub fn check_and_hold(
        &self,
        spec: &'static Spec,
        args: &[Bytes],
    ) -> Result<RwLockReadGuard<'_, UserState>, (Denial, usize)> {
        let st = self.state();
        st.rules.check(spec, args)?;
        Ok(st)
    }
}

impl fmt::Display for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.name))
    }
}

/// All users, and the ACL log. One per server.
pub struct Acl {
    settings: Arc<Settings>,
    /// By name; a `BTreeMap` lists them in byte order, as Redis's radix tree does.
    users: RwLock<BTreeMap<Bytes, Arc<User>>>,
    /// Never replaced: ACL LOAD copies the new rules into it, as Redis does.
    default: Arc<User>,
    /// `default` is off or needs a password: new connections start unauthenticated.
    default_needs_auth: AtomicBool,
    default_nopass: AtomicBool,
    pub log: log::AclLog,
}

impl Acl {
    pub fn new(settings: Arc<Settings>) -> Acl {
        let default = User::new(Bytes::from_static(b"default"), UserRules::default_user());
        let acl = Acl {
            users: RwLock::new(BTreeMap::from([(default.name.clone(), default.clone())])),
            default,
            default_needs_auth: AtomicBool::new(false),
            default_nopass: AtomicBool::new(true),
            log: log::AclLog::default(),
            settings,
        };
        acl.set_default_password(acl.settings.requirepass().as_deref());
        acl
    }

    fn users(&self) -> RwLockReadGuard<'_, BTreeMap<Bytes, Arc<User>>> {
        self.users.read().unwrap_or_else(|e| e.into_inner())
    }

    fn users_mut(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<Bytes, Arc<User>>> {
        self.users.write().unwrap_or_else(|e| e.into_inner())
    }

    /// `acl-pubsub-default allchannels`: new users may use every channel.
    fn pubsub_allchannels(&self) -> bool {
        self.settings.get("acl-pubsub-default").as_deref() == Some("allchannels")
    }

    /// Most entries ACL LOG keeps (`acllog-max-len`).
    pub fn log_max_len(&self) -> usize {
        self.settings
            .get("acllog-max-len")
            .and_then(|v| v.parse().ok())
            .unwrap_or(128)
    }

    pub fn default_user(&self) -> Arc<User> {
        self.default.clone()
    }

    /// Redis's `authRequired` before the connection's own flag: the `default` user is off
    /// or has passwords.
    pub fn default_needs_auth(&self) -> bool {
        self.default_needs_auth.load(Ordering::Acquire)
    }

    /// The `default` user takes any password (AUTH with one argument is then an error,
    /// and protected mode applies).
    pub fn default_nopass(&self) -> bool {
        self.default_nopass.load(Ordering::Acquire)
    }

    /// Keeps the lock-free copies of a user's state in step; called with its lock held.
    fn refresh(&self, user: &User, st: &UserState) {
        user.open.store(st.rules.unrestricted(), Ordering::Release);
        if std::ptr::eq(user, &*self.default) {
            let r = &st.rules;
            self.default_nopass.store(r.nopass, Ordering::Release);
            self.default_needs_auth
                .store(!(r.nopass && r.enabled), Ordering::Release);
        }
    }

    pub fn user(&self, name: &[u8]) -> Option<Arc<User>> {
        self.users().get(name).cloned()
    }

    /// `requirepass`: the `default` user's only password, or `nopass` when empty
    /// (`ACLUpdateDefaultUserPassword`).
    pub fn set_default_password(&self, password: Option<&[u8]>) {
        let mut st = self.default.state_mut();
        let all = self.pubsub_allchannels();
        let _ = st.rules.apply(b"resetpass", all);
        match password {
            Some(pw) => {
                let mut op = b">".to_vec();
                op.extend_from_slice(pw);
                let _ = st.rules.apply(&op, all);
            }
            None => {
                let _ = st.rules.apply(b"nopass", all);
            }
        }
        self.refresh(&self.default, &st);
    }

    /// Checks a user's credentials and, if they are good, calls `record` with the user
    /// (to record it on the connection) while the user's lock is held, so a user deleted
    /// at that moment cannot keep a connection. `None` for an unknown or disabled user or
    /// a wrong password.
    pub fn authenticate(&self, name: &[u8], password: &[u8], record: impl FnOnce(&Arc<User>)) -> Option<Arc<User>> {
        let user = self.user(name)?;
        let st = user.state();
        if st.removed || !st.rules.password_ok(password) {
            return None;
        }
        record(&user);
        drop(st);
        Some(user)
    }

    /// ACL SETUSER: applies every rule to a copy of the user (a new one if it does not
    /// exist) and only then, if all were valid, makes the copy current. Connections that
    /// now hold channels they may not use are disconnected, except `me`, the caller,
    /// which is told to close after its reply (`Ok(true)`).
    pub fn set_user(&self, name: &[u8], ops: &[Bytes], revoker: &dyn Revoker, me: u64) -> Result<bool, AclError> {
        if rules::has_spaces(name) {
            return Err(AclError::UsernameSpaces);
        }
        let ops = rules::merge_selector_args(ops).map_err(AclError::UnmatchedParenthesis)?;
        let all = self.pubsub_allchannels();
        let mut users = self.users_mut();
        let existing = users.get(name).cloned();
        let mut rules = match &existing {
            Some(u) => u.state().rules.clone(),
            None => UserRules::new(all),
        };
        for op in &ops {
            rules
                .apply(op, all)
                .map_err(|e| AclError::Modifier(Bytes::from(op.clone()), e))?;
        }
        let Some(user) = existing else {
            let name = Bytes::copy_from_slice(name);
            users.insert(name.clone(), User::new(name, rules));
            return Ok(false);
        };
        let mut st = user.state_mut();
        let old = std::mem::replace(&mut st.rules, rules);
        self.refresh(&user, &st);
        Ok(kill_revoked(&user, &old, &st.rules, revoker, me))
    }

    /// Marks a user deleted and disconnects every connection logged in as it (Redis's
    /// `ACLFreeUserAndKillClients`).
    fn remove_user(&self, user: &Arc<User>, revoker: &dyn Revoker, me: u64) -> bool {
        user.state_mut().removed = true;
        revoker.disconnect_user(user, me)
    }

    /// ACL DELUSER: the number deleted, and whether the caller's own user was one.
    pub fn del_users(&self, names: &[Bytes], revoker: &dyn Revoker, me: u64) -> Result<(i64, bool), AclError> {
        if names.iter().any(|n| &n[..] == b"default") {
            return Err(AclError::DefaultUndeletable);
        }
        let mut users = self.users_mut();
        let (mut deleted, mut killed_me) = (0, false);
        for n in names {
            if let Some(u) = users.remove(n) {
                killed_me |= self.remove_user(&u, revoker, me);
                deleted += 1;
            }
        }
        Ok((deleted, killed_me))
    }

    /// Every user, in name order.
    pub fn all(&self) -> Vec<Arc<User>> {
        self.users().values().cloned().collect()
    }

    /// One ACL LIST line: `user <name> <rules>`.
    pub fn describe(user: &User) -> Vec<u8> {
        let mut line = b"user ".to_vec();
        line.extend_from_slice(&user.name);
        line.push(b' ');
        line.extend_from_slice(&user.state().rules.describe());
        line
    }

    /// Replaces every user (ACL LOAD, or the `aclfile` at start-up). `default` keeps its
    /// identity and takes the new rules, so its connections stay; every other user is
    /// deleted and its connections closed, as in Redis, even when the file defines a user
    /// of the same name. fanout also disconnects `default` connections whose channels the
    /// new rules revoke, as ACL SETUSER would; Redis leaves them.
    fn replace_users(&self, mut new: BTreeMap<Bytes, UserRules>, revoker: &dyn Revoker, me: u64) -> bool {
        let mut users = self.users_mut();
        let default_rules = new.remove(&b"default"[..]).unwrap_or_else(UserRules::default_user);
        let mut killed_me = {
            let mut st = self.default.state_mut();
            let old = std::mem::replace(&mut st.rules, default_rules);
            self.refresh(&self.default, &st);
            kill_revoked(&self.default, &old, &st.rules, revoker, me)
        };
        for (name, u) in std::mem::take(&mut *users) {
            if name != "default" {
                killed_me |= self.remove_user(&u, revoker, me);
            }
        }
        users.insert(self.default.name.clone(), self.default.clone());
        for (name, rules) in new {
            users.insert(name.clone(), User::new(name, rules));
        }
        killed_me
    }
}

/// Why an ACL command failed. `commands::errors` renders each to Redis's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclError {
    /// ACL SETUSER with a name holding spaces or NUL.
    UsernameSpaces,
    /// A `(` selector with no `)`; carries the arguments from where it starts.
    UnmatchedParenthesis(Bytes),
    /// A rule ACL SETUSER refused, and why.
    Modifier(Bytes, rules::RuleError),
    DefaultUndeletable,
    /// ACL LOAD/SAVE with no `aclfile` configured.
    NoFile,
    /// The `aclfile` could not be opened (path, `strerror` text).
    Open(String, String),
    /// The `aclfile` holds bad lines (Redis's report of each).
    File(String),
    /// ACL SAVE failed (logged with the reason).
    Save,
}

/// What an ACL change needs done to the connections it affects. The shared server context
/// implements it; both methods run with the user's lock held exclusively and return
/// whether `me`, the caller's own connection, is one of those to close (it is then told
/// to close after its reply instead).
pub trait Revoker {
    /// Disconnects `user`'s connections subscribed to a channel, shard channel or
    /// pattern that `allowed` (channel patterns, see [`channel_allowed`]) does not cover.
    fn revoke_channels(&self, user: &Arc<User>, allowed: &[Bytes], me: u64) -> bool;
    /// Disconnects every connection logged in as `user`.
    fn disconnect_user(&self, user: &Arc<User>, me: u64) -> bool;
}

/// `ACLKillPubsubClientsIfNeeded`: only when the new rules do not keep every channel
/// pattern of the old ones does the revoker scan for subscribers to disconnect.
fn kill_revoked(user: &Arc<User>, old: &UserRules, new: &UserRules, revoker: &dyn Revoker, me: u64) -> bool {
    let Some(allowed) = new.channel_union() else {
        return false;
    };
    if old
        .channel_union()
        .is_some_and(|o| o.iter().all(|c| allowed.contains(c)))
    {
        return false;
    }
    revoker.revoke_channels(user, &allowed, me)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    /// The guarantee revocation rests on: an ACL change waits for a subscribe that has
    /// passed its permission check but not yet registered its subscription.
    #[test]
    fn an_acl_change_waits_for_a_subscribe_in_progress() {
        struct Nobody;
        impl Revoker for Nobody {
            fn revoke_channels(&self, _: &Arc<User>, _: &[Bytes], _: u64) -> bool {
                false
            }
            fn disconnect_user(&self, _: &Arc<User>, _: u64) -> bool {
                false
            }
        }
        let broker = Nobody;
        let acl = &Acl::new(Arc::new(Settings::default()));
        acl.set_user(b"u", &[b("on"), b("+@all"), b("&*")], &broker, 0).unwrap();
        let user = acl.user(b"u").unwrap();
        let spec = crate::spec::lookup(b"subscribe").unwrap();
        let held = user.check_and_hold(spec, &[b("subscribe"), b("ch")]).unwrap();
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                acl.set_user(b"u", &[b("resetchannels")], &broker, 0).unwrap();
                done.store(true, Ordering::SeqCst);
            });
            std::thread::sleep(std::time::Duration::from_millis(100));
            assert!(
                !done.load(Ordering::SeqCst),
                "SETUSER ran while a subscribe was in progress"
            );
            drop(held);
        });
        assert!(done.load(Ordering::SeqCst));
        // And the next subscribe sees the new rules.
        assert_eq!(
            user.check_and_hold(spec, &[b("subscribe"), b("ch")]).err(),
            Some((Denial::Channel, 1))
        );
        // The default user, allowed everything, passes without the lock.
        assert!(acl.default_user().check(spec, &[b("subscribe"), b("ch")]).is_ok());
    }
}
