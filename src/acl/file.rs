//! The ACL file (`aclfile`): `user <name> <rules>` lines, as ACL LIST prints them.
//!
//! Loading follows Redis's `ACLLoadFromFile`: every line is checked, every problem is
//! reported in one error, and if there is any problem nothing changes. Saving writes a
//! temporary file next to the target and renames it over, so a crash never leaves half a
//! file.

use std::collections::BTreeMap;
use std::io::Write;

use bytes::Bytes;

use super::rules::{self, RuleError, UserRules};
use super::{Acl, AclError, Revoker};

/// An I/O error as C's `strerror` words it (Rust adds " (os error N)").
fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Parses an ACL file into users. `Err` is Redis's error text, without `ERR`.
pub fn parse(path: &str, text: &[u8], pubsub_allchannels: bool) -> Result<BTreeMap<Bytes, UserRules>, String> {
    let mut users: BTreeMap<Bytes, UserRules> = BTreeMap::new();
    let mut errors = String::new();
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        let linenum = i + 1;
        let line = trim(line, b" \t\r\n");
        if line.is_empty() {
            continue;
        }
        // Split on single spaces, as Redis does: no quoting (passwords are stored as
        // hashes, and names and patterns may not hold spaces).
        let argv: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        if argv[0] != b"user" || argv.len() < 2 {
            errors.push_str(&format!(
                "{path}:{linenum} should start with user keyword followed by the username. "
            ));
            continue;
        }
        let name = argv[1];
        if rules::has_spaces(name) {
            errors.push_str(&format!(
                "'{path}:{linenum}: username '{}' contains invalid characters. ",
                String::from_utf8_lossy(name)
            ));
            continue;
        }
        if users.contains_key(name) {
            errors.push_str(&format!(
                "WARNING: Duplicate user '{}' found on line {linenum}. ",
                String::from_utf8_lossy(name)
            ));
            continue;
        }
        let ops: Vec<Bytes> = argv[2..].iter().map(|a| Bytes::copy_from_slice(a)).collect();
        let mut user = UserRules::new(pubsub_allchannels);
        match rules::merge_selector_args(&ops) {
            Err(_) => errors.push_str(&format!(
                "{path}:{linenum}: Unmatched parenthesis in selector definition."
            )),
            Ok(ops) => {
                let mut syntax_error = false;
                for op in ops {
                    let op = trim(&op, b"\t\r\n");
                    match user.apply(op, pubsub_allchannels) {
                        Ok(()) => {}
                        // Unknown commands are named: that says nothing secret.
                        Err(RuleError::Unknown) => errors.push_str(&format!(
                            "{path}:{linenum}: Error in applying operation '{}': {}. ",
                            String::from_utf8_lossy(op),
                            RuleError::Unknown.text()
                        )),
                        // Other errors may quote a password: only the first of a line is
                        // reported, without the rule.
                        Err(e) if !syntax_error => {
                            errors.push_str(&format!("{path}:{linenum}: {}. ", e.text()));
                            syntax_error = true;
                        }
                        Err(_) => {}
                    }
                }
            }
        }
        users.insert(Bytes::copy_from_slice(name), user);
    }
    if errors.is_empty() {
        Ok(users)
    } else {
        errors.push_str("WARNING: ACL errors detected, no change to the previously active ACL rules was performed");
        Err(errors)
    }
}

fn trim<'a>(s: &'a [u8], set: &[u8]) -> &'a [u8] {
    let start = s.iter().position(|b| !set.contains(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !set.contains(b)).map_or(start, |e| e + 1);
    &s[start..end]
}

impl Acl {
    /// The configured `aclfile`, if any.
    pub fn file(&self) -> Option<String> {
        self.settings.get("aclfile").filter(|f| !f.is_empty())
    }

    /// ACL LOAD: replaces every user with the file's. `Ok(true)` when the caller `me`
    /// was logged in as a user that no longer exists and must be closed after its reply.
    /// `Err` is the error reply.
    pub fn load(&self, revoker: &dyn Revoker, me: u64) -> Result<bool, AclError> {
        let path = self.file().ok_or(AclError::NoFile)?;
        let text = std::fs::read(&path).map_err(|e| AclError::Open(path.clone(), strerror(&e)))?;
        let users = parse(&path, &text, self.pubsub_allchannels()).map_err(AclError::File)?;
        Ok(self.replace_users(users, revoker, me))
    }

    /// Loads `aclfile`, if one is configured, before the server starts serving. An error
    /// stops the start, as in Redis.
    pub fn load_at_startup(&self, revoker: &dyn Revoker) -> Result<(), String> {
        if self.file().is_none() {
            return Ok(());
        }
        self.load(revoker, 0).map(|_| ()).map_err(|e| {
            let why = match e {
                AclError::Open(path, err) => format!("Error loading ACLs, opening file '{path}': {err}"),
                AclError::File(report) => report,
                other => format!("{other:?}"),
            };
            format!("Aborting startup because of ACL errors: {why}")
        })
    }

    /// ACL SAVE.
    pub fn save(&self) -> Result<(), AclError> {
        let path = self.file().ok_or(AclError::NoFile)?;
        let mut text = Vec::new();
        for u in self.all() {
            text.extend_from_slice(&Acl::describe(&u));
            text.push(b'\n');
        }
        let tmp = format!("{path}.tmp-{}-{}", std::process::id(), super::log::now_ms());
        let written = std::fs::File::create(&tmp)
            .and_then(|mut f| {
                f.write_all(&text)?;
                f.sync_all()
            })
            .and_then(|()| std::fs::rename(&tmp, &path));
        written.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!("ACL SAVE to '{path}' failed: {e}");
            AclError::Save
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_as_redis() {
        let err = parse(
            "u.acl",
            b"user a on\n\nnot a user\nuser a off\nuser b +nosuch #bad ~x allkeys ~y\n",
            false,
        )
        .unwrap_err();
        assert_eq!(
            err,
            "u.acl:3 should start with user keyword followed by the username. \
             WARNING: Duplicate user 'a' found on line 4. \
             u.acl:5: Error in applying operation '+nosuch': Unknown command or category name in ACL. \
             u.acl:5: The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters. \
             WARNING: ACL errors detected, no change to the previously active ACL rules was performed"
        );
        let ok = parse("u.acl", b"user alice on #34344e4d60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4e6 ~* &* +@all\r\n  \nuser default on nopass ~* &* +@all\n", false).unwrap();
        assert_eq!(ok.len(), 2);
        assert!(ok[&b"alice"[..]].password_ok(b"passwd4"));
    }

    #[test]
    fn strerror_text() {
        let e = std::fs::read("/nonexistent/acl").unwrap_err();
        assert_eq!(strerror(&e), "No such file or directory");
    }
}
