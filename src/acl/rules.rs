//! One user's access rules, ported from Redis 7.0's `acl.c`: how ACL SETUSER rules are
//! parsed (`ACLSetUser`, `ACLSetSelector`), how rules are printed back (`ACLDescribeUser`,
//! whose output ACL LIST, ACL GETUSER and the ACL file use), and the permission check that
//! runs before every command (`ACLCheckAllUserCommandPerm`).
//!
//! The port is close on purpose: clients, config files and Redis's own tests depend on the
//! exact error texts and on the exact way rules are printed, which in turn depends on the
//! order in which rules are applied to the command bitmap.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::glob;
use crate::spec::{self as table, Channels, Flags, Spec};

/// Redis's ACL categories in Redis's order: ACL CAT lists them in this order, and the
/// best-fit search that prints command rules tries them in this order.
pub const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// A category's index in [`CATEGORIES`], ignoring case.
pub fn category(name: &[u8]) -> Option<usize> {
    CATEGORIES.iter().position(|c| c.as_bytes().eq_ignore_ascii_case(name))
}

/// Why a rule was refused. Each maps to the text `ACLSetUserStringError` gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleError {
    /// ENOENT: unknown command or category.
    Unknown,
    /// EINVAL.
    Syntax,
    /// EEXIST: a key pattern after `allkeys`.
    KeyAfterAll,
    /// EISDIR: a channel pattern after `allchannels`.
    ChannelAfterAll,
    /// ENODEV: `<pass` or `!hash` for a password the user does not have.
    NoSuchPassword,
    /// EBADMSG: `#hash` that is not 64 lowercase hex digits.
    BadHash,
    /// EALREADY: the same user twice in an ACL file.
    Duplicate,
    /// ECHILD: `+config|get|x`.
    FirstArgOfSubcommand,
}

impl RuleError {
    pub fn text(self) -> &'static str {
        match self {
            RuleError::Unknown => "Unknown command or category name in ACL",
            RuleError::Syntax => "Syntax error",
            RuleError::KeyAfterAll => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
            RuleError::ChannelAfterAll => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
            RuleError::NoSuchPassword => "The password you are trying to remove from the user does not exist",
            RuleError::BadHash => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
            RuleError::Duplicate => "Duplicate user found. A user can only be defined once in config files",
            RuleError::FirstArgOfSubcommand => "Allowing first-arg of a subcommand is not supported",
        }
    }
}

/// Why a command was refused, in Redis's order of precedence (a higher value wins when
/// several selectors refuse for different reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denial {
    Command = 1,
    Key = 2,
    Auth = 3,
    Channel = 4,
}

impl Denial {
    /// The `reason` field of ACL LOG.
    pub fn reason(self) -> &'static str {
        match self {
            Denial::Command => "command",
            Denial::Key => "key",
            Denial::Auth => "auth",
            Denial::Channel => "channel",
        }
    }
}

// ---------------------------------------------------------------------------------------
// Command ids
// ---------------------------------------------------------------------------------------

/// Every command and subcommand of the command table numbered, as Redis numbers commands
/// for its per-user bitmaps. Built once from the static table.
pub struct CommandIndex {
    pub specs: Vec<&'static Spec>,
    parent: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
    /// Top-level commands, in table order.
    top: Vec<usize>,
    /// Category bits of each command (bit j = `CATEGORIES[j]`).
    cats: Vec<u32>,
    /// Id by [`Cmd`](crate::spec::Cmd).
    by_cmd: Vec<usize>,
}

impl CommandIndex {
    fn build() -> CommandIndex {
        let mut ix = CommandIndex {
            specs: Vec::new(),
            parent: Vec::new(),
            children: Vec::new(),
            top: Vec::new(),
            cats: Vec::new(),
            by_cmd: vec![0; table::Cmd::ALL.len()],
        };
        for c in table::commands() {
            let id = ix.push(c, None);
            ix.top.push(id);
            for s in c.subcommands {
                let sid = ix.push(s, Some(id));
                ix.children[id].push(sid);
            }
        }
        ix
    }

    fn push(&mut self, spec: &'static Spec, parent: Option<usize>) -> usize {
        let id = self.specs.len();
        let cats = spec
            .acl
            .iter()
            .filter_map(|a| category(a.strip_prefix('@')?.as_bytes()))
            .fold(0u32, |m, j| m | (1 << j));
        self.specs.push(spec);
        self.parent.push(parent);
        self.children.push(Vec::new());
        self.cats.push(cats);
        self.by_cmd[spec.cmd as usize] = id;
        id
    }

    /// The id of a table entry.
    pub fn id(&self, spec: &Spec) -> usize {
        self.by_cmd[spec.cmd as usize]
    }

    /// Bits in a bitmap: one per command plus Redis's reserved "future commands" bit,
    /// set only by `+@all`/`allcommands`, which decides whether rules print as `+@all ...`
    /// or `-@all ...`.
    fn bits(&self) -> usize {
        self.specs.len() + 1
    }

    fn future_bit(&self) -> usize {
        self.specs.len()
    }

    /// `ACLLookupCommand`: `name` or `name|sub`, ignoring case; a subcommand only of a
    /// container that has it; more than one `|` finds nothing.
    fn lookup(&self, name: &[u8]) -> Option<usize> {
        let mut parts = name.split(|&b| b == b'|');
        let base = table::lookup(parts.next()?)?;
        let spec = match (parts.next(), parts.next()) {
            (None, _) => base,
            (Some(sub), None) if !base.subcommands.is_empty() => base.sub(sub)?,
            _ => return None,
        };
        Some(self.id(spec))
    }

    pub fn in_category(&self, id: usize, cat: usize) -> bool {
        self.cats[id] & (1 << cat) != 0
    }

    /// Commands and subcommands of a category, in table order (ACL CAT).
    pub fn category_members(&self, cat: usize) -> Vec<&'static str> {
        (0..self.specs.len())
            .filter(|&id| self.in_category(id, cat))
            .map(|id| self.specs[id].name)
            .collect()
    }
}

pub fn index() -> &'static CommandIndex {
    static INDEX: OnceLock<CommandIndex> = OnceLock::new();
    INDEX.get_or_init(CommandIndex::build)
}

/// A fixed-size bitmap over command ids.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Bits(Vec<u64>);

impl Bits {
    fn new() -> Bits {
        Bits(vec![0; index().bits().div_ceil(64)])
    }
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn put(&mut self, i: usize, v: bool) {
        if v {
            self.0[i / 64] |= 1 << (i % 64);
        } else {
            self.0[i / 64] &= !(1 << (i % 64));
        }
    }
    fn fill(&mut self, v: bool) {
        self.0.iter_mut().for_each(|w| *w = if v { u64::MAX } else { 0 });
    }
}

// ---------------------------------------------------------------------------------------
// Selectors
// ---------------------------------------------------------------------------------------

const KEY_READ: u8 = 1;
const KEY_WRITE: u8 = 2;
const KEY_ALL: u8 = KEY_READ | KEY_WRITE;

/// A key pattern (`~pat`, `%R~pat`, `%W~pat`), checked against the keys the command
/// table's key specs find in a command.
#[derive(Clone, Debug)]
struct KeyPattern {
    pattern: Bytes,
    flags: u8,
}

impl KeyPattern {
    fn describe(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(match self.flags {
            KEY_READ => b"%R~",
            KEY_WRITE => b"%W~",
            _ => b"~",
        });
        out.extend_from_slice(&self.pattern);
    }
}

/// A set of permissions: the user's root selector, or one added with `(...)`. A command
/// is allowed when any of the user's selectors allows it.
#[derive(Clone, Debug)]
pub struct Selector {
    root: bool,
    allkeys: bool,
    pub allchannels: bool,
    allcommands: bool,
    commands: Bits,
    /// `+select|0` style rules: the first arguments allowed for a command whose bit is
    /// clear, by command id (ordered so that rules print in a stable order).
    firstargs: BTreeMap<usize, Vec<Bytes>>,
    keys: Vec<KeyPattern>,
    pub channels: Vec<Bytes>,
}

/// `ACLStringHasSpaces`: usernames and patterns may hold no whitespace and no NUL, so that
/// rules can be split on spaces when they are read back.
pub fn has_spaces(s: &[u8]) -> bool {
    s.iter().any(|&b| b == 0 || b.is_ascii_whitespace() || b == 0x0b)
}

impl Selector {
    /// A selector with no permissions; `allchannels` comes from `acl-pubsub-default`.
    pub fn new(root: bool, allchannels: bool) -> Selector {
        Selector {
            root,
            allkeys: false,
            allchannels,
            allcommands: false,
            commands: Bits::new(),
            firstargs: BTreeMap::new(),
            keys: Vec::new(),
            channels: Vec::new(),
        }
    }

    fn set_bit(&mut self, id: usize, v: bool) {
        self.commands.put(id, v);
        if !v {
            self.allcommands = false;
        }
    }

    /// `ACLChangeSelectorPerm`: a container's rule also applies to its subcommands.
    fn change_perm(&mut self, id: usize, allow: bool) {
        self.set_bit(id, allow);
        self.firstargs.remove(&id);
        for &sub in &index().children[id] {
            self.set_bit(sub, allow);
        }
    }

    /// `+@cat` / `-@cat`.
    fn set_category(&mut self, cat: usize, allow: bool) {
        let ix = index();
        for &id in &ix.top {
            if ix.in_category(id, cat) {
                self.change_perm(id, allow);
            }
            for &sub in &ix.children[id] {
                if ix.in_category(sub, cat) {
                    self.change_perm(sub, allow);
                }
            }
        }
    }

    fn set_all(&mut self, allow: bool) {
        self.commands.fill(allow);
        self.allcommands = allow;
        self.firstargs.clear();
    }

    fn count_category(&self, cat: usize) -> (u64, u64) {
        let ix = index();
        let (mut on, mut off) = (0, 0);
        for id in 0..ix.specs.len() {
            if ix.in_category(id, cat) {
                if self.commands.get(id) {
                    on += 1;
                } else {
                    off += 1;
                }
            }
        }
        (on, off)
    }

    /// `ACLSetSelector`: one rule that acts on a selector.
    pub fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let ix = index();
        if op.is_empty() {
            return Err(RuleError::Syntax);
        }
        let is = |s: &str| op.eq_ignore_ascii_case(s.as_bytes());
        if is("allkeys") || op == b"~*" {
            self.allkeys = true;
            self.keys.clear();
        } else if is("resetkeys") {
            self.allkeys = false;
            self.keys.clear();
        } else if is("allchannels") || op == b"&*" {
            self.allchannels = true;
            self.channels.clear();
        } else if is("resetchannels") {
            self.allchannels = false;
            self.channels.clear();
        } else if is("allcommands") || is("+@all") {
            self.set_all(true);
        } else if is("nocommands") || is("-@all") {
            self.set_all(false);
        } else if op[0] == b'~' || op[0] == b'%' {
            if self.allkeys {
                return Err(RuleError::KeyAfterAll);
            }
            let (flags, offset) = if op[0] == b'%' {
                let mut flags = 0;
                let mut offset = 1;
                let mut ok = true;
                while offset < op.len() {
                    let c = op[offset].to_ascii_uppercase();
                    if c == b'R' && flags & KEY_READ == 0 {
                        flags |= KEY_READ;
                    } else if c == b'W' && flags & KEY_WRITE == 0 {
                        flags |= KEY_WRITE;
                    } else if op[offset] == b'~' {
                        offset += 1;
                        break;
                    } else {
                        ok = false;
                        break;
                    }
                    offset += 1;
                }
                if flags == 0 || !ok {
                    return Err(RuleError::Syntax);
                }
                (flags, offset)
            } else {
                (KEY_ALL, 1)
            };
            let pattern = &op[offset..];
            if has_spaces(pattern) {
                return Err(RuleError::Syntax);
            }
            match self.keys.iter_mut().find(|k| k.pattern == pattern) {
                Some(k) => k.flags |= flags,
                None => self.keys.push(KeyPattern {
                    pattern: Bytes::copy_from_slice(pattern),
                    flags,
                }),
            }
            self.allkeys = false;
        } else if op[0] == b'&' {
            if self.allchannels {
                return Err(RuleError::ChannelAfterAll);
            }
            let pattern = &op[1..];
            if has_spaces(pattern) {
                return Err(RuleError::Syntax);
            }
            if !self.channels.iter().any(|c| c == pattern) {
                self.channels.push(Bytes::copy_from_slice(pattern));
            }
            self.allchannels = false;
        } else if op[0] == b'+' && op.get(1) != Some(&b'@') {
            let name = &op[1..];
            match name.iter().rposition(|&b| b == b'|') {
                None => {
                    let id = ix.lookup(name).ok_or(RuleError::Unknown)?;
                    self.change_perm(id, true);
                }
                Some(bar) => {
                    let (base, sub) = (&name[..bar], &name[bar + 1..]);
                    let id = ix.lookup(base).ok_or(RuleError::Unknown)?;
                    if ix.parent[id].is_some() {
                        return Err(RuleError::FirstArgOfSubcommand);
                    }
                    if sub.is_empty() {
                        return Err(RuleError::Syntax);
                    }
                    if !ix.specs[id].subcommands.is_empty() {
                        let sid = ix.lookup(name).ok_or(RuleError::Unknown)?;
                        self.change_perm(sid, true);
                    } else {
                        // Redis keeps this for `+select|0`, with a deprecation warning.
                        tracing::warn!(
                            "Deprecation warning: Allowing a first arg of an otherwise blocked command is a misuse of ACL and may get disabled in the future (offender: +{})",
                            String::from_utf8_lossy(name)
                        );
                        let list = self.firstargs.entry(id).or_default();
                        if !list.iter().any(|a| a.eq_ignore_ascii_case(sub)) {
                            list.push(Bytes::copy_from_slice(sub));
                        }
                    }
                }
            }
        } else if op[0] == b'-' && op.get(1) != Some(&b'@') {
            let id = ix.lookup(&op[1..]).ok_or(RuleError::Unknown)?;
            self.change_perm(id, false);
        } else if op[0] == b'+' || op[0] == b'-' {
            let cat = category(&op[2..]).ok_or(RuleError::Unknown)?;
            self.set_category(cat, op[0] == b'+');
        } else {
            return Err(RuleError::Syntax);
        }
        Ok(())
    }

    /// `ACLSelectorCheckKey`: the access a key spec needs (read for `access`, write for
    /// `insert`/`delete`/`update`; none named, as WATCH's `RO`, is met by any pattern
    /// that matches) and whether a pattern grants it.
    fn key_allowed(&self, key: &[u8], spec_flags: &[&str]) -> bool {
        let mut need = 0;
        if spec_flags.contains(&"access") {
            need |= KEY_READ;
        }
        if spec_flags.iter().any(|f| matches!(*f, "insert" | "delete" | "update")) {
            need |= KEY_WRITE;
        }
        self.keys
            .iter()
            .any(|k| k.flags & need == need && glob::matches(&k.pattern, key))
    }

    /// `ACLSelectorCheckCmd`: the command, then its keys, then its channels.
    fn check(&self, id: usize, spec: &Spec, args: &[Bytes]) -> Result<(), (Denial, usize)> {
        if !self.allcommands && !spec.has(Flags::NO_AUTH) && !self.commands.get(id) {
            let ix = index();
            let idx = if ix.parent[id].is_some() { 2 } else { 1 };
            let allowed = match (self.firstargs.get(&id), args.get(idx)) {
                (Some(list), Some(arg)) => list.iter().any(|a| a.eq_ignore_ascii_case(arg)),
                _ => false,
            };
            if !allowed {
                return Err((Denial::Command, 0));
            }
        }
        if !self.allkeys && !spec.keys.is_empty() {
            // Arity has passed; a key layout the specs cannot read has no keys to refuse.
            for (pos, flags) in spec.key_positions(args, false).unwrap_or_default() {
                if !self.key_allowed(&args[pos], flags) {
                    return Err((Denial::Key, pos));
                }
            }
        }
        if !self.allchannels {
            let (last, pattern) = match spec.channels {
                Channels::None => return Ok(()),
                Channels::First => (2, false),
                Channels::All => (args.len(), false),
                Channels::AllPatterns => (args.len(), true),
            };
            for (pos, arg) in args.iter().enumerate().take(last).skip(1) {
                if !channel_allowed(&self.channels, arg, pattern) {
                    return Err((Denial::Channel, pos));
                }
            }
        }
        Ok(())
    }

    /// The command part of a selector's description: `ACLDescribeSelectorCommandRules`.
    ///
    /// It starts from `+@all` or `-@all`, then repeatedly applies the category that best
    /// fits the remaining difference, then fixes single commands, checking as it goes on
    /// a scratch selector that replaying the printed rules gives back the same bitmap.
    pub fn describe_commands(&self) -> String {
        let ix = index();
        let mut rules = String::new();
        let mut fake = Selector::new(false, false);
        let additive = !self.commands.get(ix.future_bit());
        if additive {
            rules.push_str("-@all ");
            fake.set_all(false);
        } else {
            rules.push_str("+@all ");
            fake.set_all(true);
        }
        let mut temp = Selector::new(false, false);
        temp.commands = self.commands.clone();
        let mut applied = [false; CATEGORIES.len()];
        loop {
            let mut best = None;
            let (mut mindiff, mut maxsame) = (u64::MAX, 0);
            for (j, done) in applied.iter().enumerate() {
                if *done {
                    continue;
                }
                let (on, off) = temp.count_category(j);
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                    best = Some(j);
                    mindiff = diff;
                    maxsame = same;
                }
            }
            let Some(best) = best else { break };
            fake.set_category(best, additive);
            temp.set_category(best, !additive);
            rules.push_str(if additive { "+@" } else { "-@" });
            rules.push_str(CATEGORIES[best]);
            rules.push(' ');
            applied[best] = true;
        }
        for &id in &ix.top {
            self.describe_single(id, &mut fake, &mut rules);
        }
        rules.pop();
        debug_assert_eq!(
            fake.commands, self.commands,
            "ACL rules do not replay to the same bitmap: {rules}"
        );
        rules
    }

    fn describe_single(&self, id: usize, fake: &mut Selector, rules: &mut String) {
        let ix = index();
        let userbit = self.commands.get(id);
        if userbit != fake.commands.get(id) {
            rules.push(if userbit { '+' } else { '-' });
            rules.push_str(ix.specs[id].name);
            rules.push(' ');
            fake.change_perm(id, userbit);
        }
        for &sub in &ix.children[id] {
            self.describe_single(sub, fake, rules);
        }
        if !userbit {
            for arg in self.firstargs.get(&id).into_iter().flatten() {
                rules.push('+');
                rules.push_str(ix.specs[id].name);
                rules.push('|');
                rules.push_str(&String::from_utf8_lossy(arg));
                rules.push(' ');
            }
        }
    }

    /// ACL GETUSER's `keys` field.
    pub fn describe_keys(&self) -> Vec<u8> {
        if self.allkeys {
            return b"~*".to_vec();
        }
        let mut out = Vec::new();
        for (i, k) in self.keys.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            k.describe(&mut out);
        }
        out
    }

    /// ACL GETUSER's `channels` field.
    pub fn describe_channels(&self) -> Vec<u8> {
        if self.allchannels {
            return b"&*".to_vec();
        }
        let mut out = Vec::new();
        for (i, c) in self.channels.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.push(b'&');
            out.extend_from_slice(c);
        }
        out
    }

    /// `ACLDescribeSelector`: keys, channels, then commands, as ACL LIST prints them.
    fn describe(&self, out: &mut Vec<u8>) {
        if self.allkeys {
            out.extend_from_slice(b"~* ");
        } else {
            for k in &self.keys {
                k.describe(out);
                out.push(b' ');
            }
        }
        if self.allchannels {
            out.extend_from_slice(b"&* ");
        } else {
            out.extend_from_slice(b"resetchannels ");
            for c in &self.channels {
                out.push(b'&');
                out.extend_from_slice(c);
                out.push(b' ');
            }
        }
        out.extend_from_slice(self.describe_commands().as_bytes());
    }
}

/// `ACLCheckChannelAgainstList`: a channel is allowed when an ACL pattern glob-matches it;
/// a PSUBSCRIBE pattern only when it is literally one of the ACL patterns, because a
/// pattern's matches cannot be compared with another pattern's (`&news.*` must not allow
/// `PSUBSCRIBE *`). Redis compares the two with `strcmp`, which stops at a NUL byte; this
/// compares every byte, which is stricter only for patterns holding NUL.
pub fn channel_allowed(list: &[Bytes], channel: &[u8], is_pattern: bool) -> bool {
    list.iter().any(|p| {
        if is_pattern {
            p[..] == *channel
        } else {
            glob::matches(p, channel)
        }
    })
}

// ---------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------

/// The SHA-256 of a password as 64 lowercase hex digits: the only form passwords are
/// kept in, shown in (ACL GETUSER, ACL LIST) and saved in (ACL SAVE).
pub fn hash_password(password: &[u8]) -> String {
    let digest = Sha256::digest(password);
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push(char::from(b"0123456789abcdef"[(b >> 4) as usize]));
        hex.push(char::from(b"0123456789abcdef"[(b & 15) as usize]));
    }
    hex
}

fn valid_hash(h: &[u8]) -> bool {
    h.len() == 64 && h.iter().all(|&c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// Compares two hashes without an early exit, so the time taken says nothing about how
/// much of a guess was right.
fn same_hash(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// Everything ACL SETUSER can change about a user.
#[derive(Clone, Debug)]
pub struct UserRules {
    pub enabled: bool,
    pub nopass: bool,
    /// `sanitize-payload` (true) or `skip-sanitize-payload` (false), when either was
    /// given. Stored and printed only: fanout has no RESTORE.
    sanitize: Option<bool>,
    /// SHA-256 hashes, hex.
    pub passwords: Vec<String>,
    /// The root selector first, then those added with `(...)`.
    pub selectors: Vec<Selector>,
}

impl UserRules {
    /// A new user: off, no passwords, no commands, channels per `acl-pubsub-default`.
    pub fn new(pubsub_allchannels: bool) -> UserRules {
        UserRules {
            enabled: false,
            nopass: false,
            sanitize: None,
            passwords: Vec::new(),
            selectors: vec![Selector::new(true, pubsub_allchannels)],
        }
    }

    /// The `default` user as Redis creates it: `on nopass ~* &* +@all`, whatever
    /// `acl-pubsub-default` says.
    pub fn default_user() -> UserRules {
        let mut r = UserRules::new(true);
        for op in ["+@all", "~*", "&*", "on", "nopass"] {
            r.apply(op.as_bytes(), true).expect("valid default rules");
        }
        r
    }

    pub fn root(&self) -> &Selector {
        &self.selectors[0]
    }

    /// May run every command on every channel: lets the per-command check skip its lock.
    pub fn unrestricted(&self) -> bool {
        let r = self.root();
        r.allcommands && r.allchannels && r.allkeys
    }

    /// `ACLSetUser`: one rule.
    pub fn apply(&mut self, op: &[u8], pubsub_allchannels: bool) -> Result<(), RuleError> {
        if op.is_empty() {
            return Ok(());
        }
        let is = |s: &str| op.eq_ignore_ascii_case(s.as_bytes());
        if is("on") {
            self.enabled = true;
        } else if is("off") {
            self.enabled = false;
        } else if is("skip-sanitize-payload") {
            self.sanitize = Some(false);
        } else if is("sanitize-payload") {
            self.sanitize = Some(true);
        } else if is("nopass") {
            self.nopass = true;
            self.passwords.clear();
        } else if is("resetpass") {
            self.nopass = false;
            self.passwords.clear();
        } else if op[0] == b'>' || op[0] == b'#' {
            let hash = if op[0] == b'>' {
                hash_password(&op[1..])
            } else if valid_hash(&op[1..]) {
                String::from_utf8_lossy(&op[1..]).into_owned()
            } else {
                return Err(RuleError::BadHash);
            };
            if !self.passwords.contains(&hash) {
                self.passwords.push(hash);
            }
            self.nopass = false;
        } else if op[0] == b'<' || op[0] == b'!' {
            let hash = if op[0] == b'<' {
                hash_password(&op[1..])
            } else if valid_hash(&op[1..]) {
                String::from_utf8_lossy(&op[1..]).into_owned()
            } else {
                return Err(RuleError::BadHash);
            };
            let at = self.passwords.iter().position(|p| *p == hash);
            self.passwords.remove(at.ok_or(RuleError::NoSuchPassword)?);
        } else if op[0] == b'(' && op[op.len() - 1] == b')' {
            let mut s = Selector::new(false, pubsub_allchannels);
            let inner = &op[1..op.len() - 1];
            for word in split_args(inner).ok_or(RuleError::Syntax)? {
                s.apply(&word)?;
            }
            self.selectors.push(s);
        } else if is("clearselectors") {
            self.selectors.truncate(1);
        } else if is("reset") {
            for op in ["resetpass", "resetkeys", "resetchannels"] {
                self.apply(op.as_bytes(), pubsub_allchannels)?;
            }
            if pubsub_allchannels {
                self.apply(b"allchannels", pubsub_allchannels)?;
            }
            for op in ["off", "sanitize-payload", "clearselectors", "-@all"] {
                self.apply(op.as_bytes(), pubsub_allchannels)?;
            }
        } else {
            self.selectors[0].apply(op)?;
        }
        Ok(())
    }

    /// Checks a password against the user's hashes (`ACLCheckUserCredentials`, after
    /// the user was found): disabled users never pass; `nopass` users always do.
    pub fn password_ok(&self, password: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        if self.nopass {
            return true;
        }
        let hashed = hash_password(password);
        // Every stored hash is compared, so the time does not tell which one matched.
        self.passwords
            .iter()
            .fold(false, |ok, p| same_hash(hashed.as_bytes(), p.as_bytes()) | ok)
    }

    /// `ACLCheckAllUserCommandPerm`: allowed when any selector allows it; otherwise the
    /// denial to report is the weightiest, and among equals the one at the last argument.
    pub fn check(&self, spec: &'static Spec, args: &[Bytes]) -> Result<(), (Denial, usize)> {
        let id = index().id(spec);
        let mut worst = (Denial::Command, 0);
        for s in &self.selectors {
            match s.check(id, spec, args) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    if e.0 > worst.0 || (e.0 == worst.0 && e.1 > worst.1) {
                        worst = e;
                    }
                }
            }
        }
        Err(worst)
    }

    /// `ACLDescribeUser`: the rules as ACL LIST prints them after `user <name> `.
    pub fn describe(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(if self.enabled { b"on " } else { b"off " });
        if self.nopass {
            out.extend_from_slice(b"nopass ");
        }
        match self.sanitize {
            Some(false) => out.extend_from_slice(b"skip-sanitize-payload "),
            Some(true) => out.extend_from_slice(b"sanitize-payload "),
            None => {}
        }
        for p in &self.passwords {
            out.push(b'#');
            out.extend_from_slice(p.as_bytes());
            out.push(b' ');
        }
        for s in &self.selectors {
            if s.root {
                s.describe(&mut out);
            } else {
                out.extend_from_slice(b" (");
                s.describe(&mut out);
                out.push(b')');
            }
        }
        out
    }

    /// The flags ACL GETUSER lists.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        match self.sanitize {
            Some(false) => f.push("skip-sanitize-payload"),
            Some(true) => f.push("sanitize-payload"),
            None => {}
        }
        f
    }

    /// Every channel pattern of every selector (the "upcoming" list of
    /// `ACLKillPubsubClientsIfNeeded`), or `None` when some selector allows all channels.
    pub fn channel_union(&self) -> Option<Vec<Bytes>> {
        let mut all = Vec::new();
        for s in &self.selectors {
            if s.allchannels {
                return None;
            }
            all.extend(s.channels.iter().cloned());
        }
        Some(all)
    }
}

/// `ACLMergeSelectorArguments`: a selector may be spread over several arguments
/// (`(+get`, `~key)`); they are joined with spaces. `Err` holds the argument that opened
/// a selector that never closed.
pub fn merge_selector_args(args: &[Bytes]) -> Result<Vec<Vec<u8>>, Bytes> {
    let mut out = Vec::new();
    let mut open: Option<(Vec<u8>, &Bytes)> = None;
    for a in args {
        if let Some((sel, _)) = open.as_mut() {
            sel.push(b' ');
            sel.extend_from_slice(a);
            if a.last() == Some(&b')') {
                out.push(open.take().unwrap().0);
            }
            continue;
        }
        if a.first() == Some(&b'(') && a.last() != Some(&b')') {
            open = Some((a.to_vec(), a));
            continue;
        }
        out.push(a.to_vec());
    }
    match open {
        Some((_, start)) => Err(start.clone()),
        None => Ok(out),
    }
}

/// `sdssplitargs`, as Redis splits ACL rules and ACL file lines: the request parser's
/// splitter, so both follow Redis's quoting rules in one place. `None` for unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    crate::protocol::request::split_words(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(ops: &str) -> UserRules {
        let mut u = UserRules::new(false);
        for op in ops.split(' ').filter(|s| !s.is_empty()) {
            u.apply(op.as_bytes(), false).unwrap_or_else(|e| panic!("{op}: {e:?}"));
        }
        u
    }

    fn commands(ops: &str) -> String {
        user(ops).root().describe_commands()
    }

    #[test]
    fn describe_matches_redis() {
        // Each checked against redis-server 7.0.15 (ACL GETUSER ... commands).
        assert_eq!(commands("reset -@all +@pubsub"), "-@all +@pubsub");
        assert_eq!(commands("reset +@all -@pubsub"), "+@all -@pubsub");
        assert_eq!(commands("reset +@all -client|kill"), "+@all -client|kill");
        // The best fit counts over the whole command table: with READONLY, READWRITE and
        // ASKING in @connection, +client stays closer than +@connection, as in Redis.
        assert_eq!(commands("reset -@all +client"), "-@all +client");
        assert_eq!(commands("reset +@all -client +client|id"), "+@all -client +client|id");
        assert_eq!(commands("reset -@all +@pubsub -publish"), "-@all +@pubsub -publish");
        assert_eq!(commands("reset -@all +select|0"), "-@all +select|0");
        assert_eq!(commands("reset"), "-@all");
        assert_eq!(commands("allcommands"), "+@all");
    }

    #[test]
    fn every_category_round_trips() {
        // Redis's "ACL GETUSER provides reasonable results", for the categories that
        // have commands here (an empty category changes nothing and so prints nothing).
        for (j, cat) in CATEGORIES.iter().enumerate() {
            let plus = commands(&format!("reset +@all -@{cat}"));
            let minus = commands(&format!("reset -@all +@{cat}"));
            if index().category_members(j).is_empty() {
                assert_eq!((plus.as_str(), minus.as_str()), ("+@all", "-@all"));
            } else {
                assert_eq!(plus, format!("+@all -@{cat}"));
                assert_eq!(minus, format!("-@all +@{cat}"));
            }
        }
    }

    #[test]
    fn describe_user() {
        let d = |ops: &str| String::from_utf8(user(ops).describe()).unwrap();
        assert_eq!(
            String::from_utf8(UserRules::default_user().describe()).unwrap(),
            "on nopass ~* &* +@all"
        );
        assert_eq!(d(""), "off resetchannels -@all");
        assert_eq!(d("reset"), "off sanitize-payload resetchannels -@all");
        assert_eq!(
            d("%R ~foo %W~bar ~baz %R~baz %RW~foo"),
            "off %R~ ~foo %W~bar ~baz resetchannels -@all"
        );
        assert_eq!(
            d("on nopass resetchannels &foo +@all"),
            "on nopass resetchannels &foo +@all"
        );
        let mut u = user("on nopass");
        for op in ["(+publish ~k*)", "(&c*)"] {
            u.apply(op.as_bytes(), false).unwrap();
        }
        // Redis 7.0.15 prints "(+get ~k*)" the same way.
        assert_eq!(
            String::from_utf8(u.describe()).unwrap(),
            "on nopass resetchannels -@all (~k* resetchannels -@all +publish) (resetchannels &c* -@all)"
        );
    }

    #[test]
    fn rule_errors() {
        let err = |op: &str| {
            let mut u = UserRules::new(false);
            u.apply(op.as_bytes(), false).unwrap_err()
        };
        assert_eq!(err("+"), RuleError::Unknown);
        assert_eq!(err("+@"), RuleError::Unknown);
        assert_eq!(err("+@nosuch"), RuleError::Unknown);
        assert_eq!(err("+get|x|y"), RuleError::Unknown);
        assert_eq!(err("+config|get|x"), RuleError::FirstArgOfSubcommand);
        assert_eq!(err("+config|nosuch"), RuleError::Unknown);
        assert_eq!(err("+debug|"), RuleError::Syntax);
        assert_eq!(err("bogus"), RuleError::Syntax);
        assert_eq!(err("#abc"), RuleError::BadHash);
        assert_eq!(err("<nope"), RuleError::NoSuchPassword);
        assert_eq!(err("%X~a"), RuleError::Syntax);
        let mut u = UserRules::new(true);
        assert_eq!(u.apply(b"&x", true), Err(RuleError::ChannelAfterAll));
        u.apply(b"allkeys", true).unwrap();
        assert_eq!(u.apply(b"~x", true), Err(RuleError::KeyAfterAll));
    }

    #[test]
    fn passwords() {
        let mut u = user("on >pw1 >pw2");
        assert!(u.password_ok(b"pw1") && u.password_ok(b"pw2") && !u.password_ok(b"pw3"));
        u.apply(b"<pw1", false).unwrap();
        assert!(!u.password_ok(b"pw1"));
        // The hash Redis's tests use for "passwd4".
        let h = "34344e4d60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4e6";
        assert_eq!(hash_password(b"passwd4"), h);
        u.apply(format!("#{h}").as_bytes(), false).unwrap();
        assert!(u.password_ok(b"passwd4"));
        u.apply(b"off", false).unwrap();
        assert!(!u.password_ok(b"passwd4"), "disabled users never authenticate");
    }

    #[test]
    fn channel_rules() {
        let u = user("on +@all resetchannels &foo:1 &bar:*");
        let spec = |n: &str| table::lookup(n.as_bytes()).unwrap();
        let args = |a: &[&str]| {
            a.iter()
                .map(|s| Bytes::copy_from_slice(s.as_bytes()))
                .collect::<Vec<_>>()
        };
        assert!(u.check(spec("publish"), &args(&["publish", "bar:2", "m"])).is_ok());
        assert_eq!(
            u.check(spec("publish"), &args(&["publish", "zap", "m"])),
            Err((Denial::Channel, 1))
        );
        assert_eq!(
            u.check(spec("subscribe"), &args(&["subscribe", "foo:1", "x", "y"])),
            Err((Denial::Channel, 2))
        );
        assert!(u.check(spec("psubscribe"), &args(&["psubscribe", "bar:*"])).is_ok());
        assert!(u.check(spec("psubscribe"), &args(&["psubscribe", "bar:x"])).is_err());
        assert!(u.check(spec("unsubscribe"), &args(&["unsubscribe", "zap"])).is_ok());
    }

    #[test]
    fn selector_arguments() {
        let a = |s: &[&str]| {
            s.iter()
                .map(|x| Bytes::copy_from_slice(x.as_bytes()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            merge_selector_args(&a(&["on", "(+ping", "~k)", "(&c)"])).unwrap(),
            vec![b"on".to_vec(), b"(+ping ~k)".to_vec(), b"(&c)".to_vec()]
        );
        assert_eq!(merge_selector_args(&a(&["(+ping"])).unwrap_err(), "(+ping");
        assert_eq!(
            split_args(b" a \"b c\" 'd\\'e' \"\\x41\"").unwrap(),
            vec![b"a".to_vec(), b"b c".to_vec(), b"d'e".to_vec(), b"A".to_vec()]
        );
        assert!(split_args(b"\"a").is_none());
    }
}
