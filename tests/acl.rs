//! ACL users and their channel permissions, through raw RESP and the `redis` crate.
//!
//! Mirrors the pub/sub cases of Redis 7.0's `tests/unit/acl.tcl`, plus the exact error
//! texts, reply shapes and ACL file format, each checked against redis-server 7.0.15.

mod common;

use common::*;

const NOPERM_CHANNEL: &str = "NOPERM this user has no permissions to access one of the channels used as arguments";
const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

fn noperm_command(name: &str) -> String {
    format!("NOPERM this user has no permissions to run the '{name}' command")
}

/// Sends a command and asserts the reply is `+OK`.
async fn ok(c: &mut RawConn, args: &[&str]) {
    let r = c.call(args).await;
    assert_eq!(r, Frame::Simple("OK".into()), "{args:?}");
}

/// A raw connection logged in as `user`.
async fn login(s: &TestServer, user: &str, pass: &str) -> RawConn {
    let mut c = s.raw().await;
    ok(&mut c, &["AUTH", user, pass]).await;
    c
}

/// Reads one subscribe-family confirmation and checks it.
async fn confirmed(c: &mut RawConn, kind: &str, name: &str, count: i64) {
    let f = c.read_frame().await;
    assert_eq!(
        f.items(),
        &[Frame::bulk(kind), Frame::bulk(name), Frame::Int(count)],
        "confirmation"
    );
}

async fn client_list(c: &mut RawConn) -> String {
    c.call(&["CLIENT", "LIST"]).await.text()
}

/// The `field` of an ACL GETUSER reply (RESP2: a flat list of names and values).
fn getuser_field(reply: &Frame, field: &str) -> Frame {
    let items = reply.items();
    let i = items
        .iter()
        .position(|f| *f == Frame::bulk(field))
        .unwrap_or_else(|| panic!("no field {field} in {reply:?}"));
    items[i + 1].clone()
}

/// A unique scratch path for an ACL file.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fanout-acl-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("users.acl")
}

// ---------------------------------------------------------------------------------------
// Users, passwords, AUTH and HELLO
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_start_as_the_default_user() {
    let s = start_server().await;
    let mut c = s.raw().await;
    assert_eq!(c.call(&["ACL", "WHOAMI"]).await, Frame::bulk("default"));
    assert_eq!(c.call(&["ACL", "USERS"]).await.items(), &[Frame::bulk("default")]);
    assert_eq!(
        c.call(&["ACL", "LIST"]).await.items(),
        &[Frame::bulk("user default on nopass ~* &* +@all")]
    );
    let info = c.call(&["CLIENT", "INFO"]).await.text();
    assert_eq!(client_field(&info, "user").as_deref(), Some("default"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_users_start_disabled_and_passwords_are_hashes() {
    let s = start_server().await;
    let mut c = s.raw().await;
    ok(&mut c, &["ACL", "SETUSER", "newuser"]).await;
    c.send(&["ACL", "SETUSER", "a a"]).await;
    c.expect_error("ERR Usernames can't contain spaces or null characters")
        .await;
    assert_eq!(
        c.call(&["ACL", "LIST"]).await.items(),
        &[
            Frame::bulk("user default on nopass ~* &* +@all"),
            Frame::bulk("user newuser off resetchannels -@all")
        ]
    );

    // New users start disabled.
    ok(&mut c, &["ACL", "SETUSER", "newuser", ">passwd1"]).await;
    c.send(&["AUTH", "newuser", "passwd1"]).await;
    c.expect_error(WRONGPASS).await;

    // Enabling the user allows the login.
    ok(&mut c, &["ACL", "SETUSER", "newuser", "on", "+acl"]).await;
    ok(&mut c, &["AUTH", "newuser", "passwd1"]).await;
    assert_eq!(c.call(&["ACL", "WHOAMI"]).await, Frame::bulk("newuser"));

    // Only the set of correct passwords work.
    ok(&mut c, &["ACL", "SETUSER", "newuser", ">passwd2"]).await;
    ok(&mut c, &["AUTH", "newuser", "passwd1"]).await;
    ok(&mut c, &["AUTH", "newuser", "passwd2"]).await;
    c.send(&["AUTH", "newuser", "passwd3"]).await;
    c.expect_error(WRONGPASS).await;

    // Passwords can be removed.
    ok(&mut c, &["ACL", "SETUSER", "newuser", "<passwd1"]).await;
    c.send(&["AUTH", "newuser", "passwd1"]).await;
    c.expect_error(WRONGPASS).await;

    // Hashes can be added, are validated, and are what GETUSER shows.
    let hash = "34344e4d60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4e6";
    ok(&mut c, &["ACL", "SETUSER", "newuser", &format!("#{hash}")]).await;
    ok(&mut c, &["AUTH", "newuser", "passwd4"]).await;
    c.send(&["ACL", "SETUSER", "newuser", &format!("#{}", &hash[1..])])
        .await;
    c.expect_error(&format!("ERR Error in ACL SETUSER modifier '#{}': The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters", &hash[1..])).await;
    let user = c.call(&["ACL", "GETUSER", "newuser"]).await;
    let passwords = getuser_field(&user, "passwords");
    assert!(passwords.items().contains(&Frame::bulk(hash)));
    assert!(!format!("{passwords:?}").contains("passwd4"));
    ok(&mut c, &["ACL", "SETUSER", "newuser", &format!("!{hash}")]).await;
    let user = c.call(&["ACL", "GETUSER", "newuser"]).await;
    assert!(!getuser_field(&user, "passwords").items().contains(&Frame::bulk(hash)));
    c.send(&["ACL", "SETUSER", "newuser", "<nosuch"]).await;
    c.expect_error(
        "ERR Error in ACL SETUSER modifier '<nosuch': The password you are trying to remove from the user does not exist",
    )
    .await;

    // nopass: any password works.
    ok(&mut c, &["ACL", "SETUSER", "newuser", "nopass"]).await;
    ok(&mut c, &["AUTH", "newuser", "zipzapblabla"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_users_and_unknown_users_get_wrongpass() {
    let s = start_server().await;
    let mut admin = s.raw().await;
    ok(&mut admin, &["ACL", "SETUSER", "bob", "on", ">pw", "+@all"]).await;
    let mut c = login(&s, "bob", "pw").await;
    ok(&mut admin, &["ACL", "SETUSER", "bob", "off"]).await;
    // A disabled user cannot log in, but connections already logged in keep working.
    assert_eq!(c.call(&["PING"]).await, Frame::Simple("PONG".into()));
    let mut other = s.raw().await;
    other.send(&["AUTH", "bob", "pw"]).await;
    other.expect_error(WRONGPASS).await;
    other.send(&["HELLO", "3", "AUTH", "bob", "pw"]).await;
    other.expect_error(WRONGPASS).await;
    other.send(&["AUTH", "nosuchuser", "pw"]).await;
    other.expect_error(WRONGPASS).await;
    assert_eq!(other.call(&["ACL", "WHOAMI"]).await, Frame::bulk("default"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_auth_logs_in_as_a_user() {
    let s = start_server_with(&[("requirepass", "pw")]).await;
    let mut admin = login(&s, "default", "pw").await;
    ok(&mut admin, &["ACL", "SETUSER", "secure-user", ">supass", "on", "+@all"]).await;
    // HELLO works for other users even when `default` may run nothing.
    ok(&mut admin, &["ACL", "SETUSER", "default", "-@all"]).await;
    let mut c = s.raw().await;
    c.send(&["HELLO", "3"]).await;
    c.expect_error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time").await;
    let hello = c.call(&["HELLO", "3", "AUTH", "secure-user", "supass"]).await;
    assert!(matches!(hello, Frame::Map(_)), "{hello:?}");
    assert_eq!(c.call(&["ACL", "WHOAMI"]).await, Frame::bulk("secure-user"));
    c.send(&["HELLO", "3", "AUTH", "secure-user", "wrong"]).await;
    c.expect_error(WRONGPASS).await;
    // Still logged in as before.
    assert_eq!(c.call(&["ACL", "WHOAMI"]).await, Frame::bulk("secure-user"));
    let mut d = login(&s, "default", "pw").await;
    d.send(&["PING"]).await;
    d.expect_error(&noperm_command("ping")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requirepass_is_the_default_users_password() {
    let s = start_server_with(&[("requirepass", "pw")]).await;
    let mut c = s.raw().await;
    c.send(&["ACL", "WHOAMI"]).await;
    c.expect_error("NOAUTH Authentication required.").await;
    ok(&mut c, &["AUTH", "pw"]).await;
    let list = c.call(&["ACL", "LIST"]).await;
    let hash = "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4"; // sha256("pw")
    assert_eq!(
        list.items(),
        &[Frame::bulk(format!("user default on #{hash} ~* &* +@all"))]
    );
    // CONFIG SET requirepass "" makes `default` nopass again, and lets waiting
    // connections in at once.
    let mut waiting = s.raw().await;
    waiting.send(&["PING"]).await;
    waiting.expect_error("NOAUTH Authentication required.").await;
    ok(&mut c, &["CONFIG", "SET", "requirepass", ""]).await;
    assert_eq!(waiting.call(&["PING"]).await, Frame::Simple("PONG".into()));
    assert_eq!(
        c.call(&["ACL", "LIST"]).await.items(),
        &[Frame::bulk("user default on nopass ~* &* +@all")]
    );
    c.send(&["AUTH", "x"]).await;
    c.expect_error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?").await;
    ok(&mut c, &["AUTH", "default", "anything"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_user_off_makes_new_connections_unauthenticated() {
    let s = start_server().await;
    let mut admin = s.raw().await;
    ok(&mut admin, &["ACL", "SETUSER", "admin", "on", ">adminpw", "+@all"]).await;
    ok(&mut admin, &["ACL", "SETUSER", "default", "off"]).await;
    let mut c = s.raw().await;
    c.send(&["PING"]).await;
    c.expect_error("NOAUTH Authentication required.").await;
    ok(&mut c, &["AUTH", "admin", "adminpw"]).await;
    ok(&mut c, &["ACL", "SETUSER", "default", "on"]).await;
    let mut d = s.raw().await;
    assert_eq!(d.call(&["PING"]).await, Frame::Simple("PONG".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_logs_back_in_as_default() {
    let s = start_server().await;
    let mut admin = s.raw().await;
    ok(&mut admin, &["ACL", "SETUSER", "u", "on", "nopass", "+@all"]).await;
    let mut c = login(&s, "u", "x").await;
    assert_eq!(c.call(&["ACL", "WHOAMI"]).await, Frame::bulk("u"));
    assert_eq!(c.call(&["RESET"]).await, Frame::Simple("RESET".into()));
    assert_eq!(c.call(&["ACL", "WHOAMI"]).await, Frame::bulk("default"));
    let info = c.call(&["CLIENT", "INFO"]).await.text();
    assert_eq!(client_field(&info, "user").as_deref(), Some("default"));
}

// ---------------------------------------------------------------------------------------
// Channel permissions
// ---------------------------------------------------------------------------------------

/// A server with `psuser`, allowed pub/sub commands, ACL and CLIENT but (as every new
/// user under `acl-pubsub-default resetchannels`) no channels.
async fn pubsub_server() -> (TestServer, RawConn) {
    let s = start_server().await;
    let mut admin = s.raw().await;
    ok(
        &mut admin,
        &[
            "ACL", "SETUSER", "psuser", "on", ">pspass", "+acl", "+client", "+@pubsub",
        ],
    )
    .await;
    (s, admin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_only_the_default_user_may_use_channels() {
    let (s, mut admin) = pubsub_server().await;
    assert_eq!(admin.call(&["PUBLISH", "foo", "bar"]).await, Frame::Int(0));
    assert_eq!(admin.call(&["SPUBLISH", "foo", "bar"]).await, Frame::Int(0));
    let mut c = login(&s, "psuser", "pspass").await;
    for cmd in [
        &["PUBLISH", "foo", "bar"][..],
        &["SPUBLISH", "foo", "bar"],
        &["SUBSCRIBE", "foo"],
        &["SSUBSCRIBE", "foo"],
        &["PSUBSCRIBE", "bar*"],
    ] {
        c.send(cmd).await;
        c.expect_error(NOPERM_CHANNEL).await;
    }
    // Nothing was subscribed.
    let info = c.call(&["CLIENT", "INFO"]).await.text();
    assert_eq!(client_field(&info, "sub").as_deref(), Some("0"));
    assert_eq!(client_field(&info, "user").as_deref(), Some("psuser"));
    // Unsubscribing is never checked.
    c.send(&["UNSUBSCRIBE", "foo"]).await;
    confirmed(&mut c, "unsubscribe", "foo", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subset_of_channels_may_be_allowed() {
    let (s, mut admin) = pubsub_server().await;
    ok(
        &mut admin,
        &["ACL", "SETUSER", "psuser", "resetchannels", "&foo:1", "&bar:*"],
    )
    .await;
    let mut c = login(&s, "psuser", "pspass").await;
    assert_eq!(c.call(&["PUBLISH", "foo:1", "m"]).await, Frame::Int(0));
    assert_eq!(c.call(&["PUBLISH", "bar:2", "m"]).await, Frame::Int(0));
    assert_eq!(c.call(&["SPUBLISH", "bar:2", "m"]).await, Frame::Int(0));
    c.send(&["PUBLISH", "zap:3", "m"]).await;
    c.expect_error(NOPERM_CHANNEL).await;
    c.send(&["SPUBLISH", "zap:3", "m"]).await;
    c.expect_error(NOPERM_CHANNEL).await;

    // One refused channel refuses the whole command: nothing is subscribed.
    c.send(&["SUBSCRIBE", "foo:1", "zap:3"]).await;
    c.expect_error(NOPERM_CHANNEL).await;
    assert_eq!(
        admin.call(&["PUBSUB", "NUMSUB", "foo:1"]).await.items(),
        &[Frame::bulk("foo:1"), Frame::Int(0)]
    );

    let mut sub = login(&s, "psuser", "pspass").await;
    sub.send(&["SUBSCRIBE", "foo:1"]).await;
    confirmed(&mut sub, "subscribe", "foo:1", 1).await;
    sub.send(&["SUBSCRIBE", "bar:2"]).await;
    confirmed(&mut sub, "subscribe", "bar:2", 2).await;
    sub.send(&["SUBSCRIBE", "zap:3"]).await;
    sub.expect_error(NOPERM_CHANNEL).await;
    sub.send(&["SSUBSCRIBE", "bar:9"]).await;
    confirmed(&mut sub, "ssubscribe", "bar:9", 1).await;
    sub.send(&["SSUBSCRIBE", "zap:3"]).await;
    sub.expect_error(NOPERM_CHANNEL).await;

    // Messages flow on allowed channels.
    assert_eq!(c.call(&["PUBLISH", "bar:2", "hello"]).await, Frame::Int(1));
    assert_eq!(
        sub.read_frame().await.items(),
        &[Frame::bulk("message"), Frame::bulk("bar:2"), Frame::bulk("hello")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psubscribe_patterns_must_be_allowed_literally() {
    let (s, mut admin) = pubsub_server().await;
    ok(
        &mut admin,
        &["ACL", "SETUSER", "psuser", "resetchannels", "&foo:1", "&bar:*"],
    )
    .await;
    let mut c = login(&s, "psuser", "pspass").await;
    c.send(&["PSUBSCRIBE", "foo:1"]).await;
    confirmed(&mut c, "psubscribe", "foo:1", 1).await;
    c.send(&["PSUBSCRIBE", "bar:*"]).await;
    confirmed(&mut c, "psubscribe", "bar:*", 2).await;
    // `bar:baz` is a channel `&bar:*` allows, but as a pattern it is not `bar:*`; and
    // `*` would match channels the user may not read.
    for p in ["bar:baz", "*", "bar:*x", "foo:?"] {
        c.send(&["PSUBSCRIBE", p]).await;
        c.expect_error(NOPERM_CHANNEL).await;
    }
    // ACL DRYRUN gives the same answers.
    assert_eq!(
        admin.call(&["ACL", "DRYRUN", "psuser", "PSUBSCRIBE", "bar:*"]).await,
        Frame::Simple("OK".into())
    );
    assert_eq!(
        admin.call(&["ACL", "DRYRUN", "psuser", "PSUBSCRIBE", "bar:baz"]).await,
        Frame::bulk("This user has no permissions to access the 'bar:baz' channel")
    );
    assert_eq!(
        admin
            .call(&["ACL", "DRYRUN", "psuser", "PUBLISH", "bar:baz", "m"])
            .await,
        Frame::Simple("OK".into())
    );
    assert_eq!(
        admin.call(&["ACL", "DRYRUN", "psuser", "PING"]).await,
        Frame::bulk("This user has no permissions to run the 'ping' command")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_list_is_printed_after_resetchannels() {
    let s = start_server().await;
    let mut c = s.raw().await;
    ok(
        &mut c,
        &[
            "ACL",
            "SETUSER",
            "hpuser",
            "on",
            "nopass",
            "resetchannels",
            "&foo",
            "+@all",
        ],
    )
    .await;
    let list = c.call(&["ACL", "LIST"]).await;
    assert!(list
        .items()
        .contains(&Frame::bulk("user hpuser on nopass resetchannels &foo +@all")));
    ok(&mut c, &["AUTH", "hpuser", "pass"]).await;
    assert_eq!(c.call(&["PUBLISH", "foo", "bar"]).await, Frame::Int(0));
    c.send(&["PUBLISH", "bar", "game"]).await;
    c.expect_error(NOPERM_CHANNEL).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_rules_errors_as_redis() {
    let s = start_server().await;
    let mut c = s.raw().await;
    c.send(&["ACL", "SETUSER", "a", "allchannels", "&x"]).await;
    c.expect_error("ERR Error in ACL SETUSER modifier '&x': Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels").await;
    c.send(&["ACL", "SETUSER", "a", "&a b"]).await;
    c.expect_error("ERR Error in ACL SETUSER modifier '&a b': Syntax error")
        .await;
    c.send(&["ACL", "SETUSER", "a", "+nosuch"]).await;
    c.expect_error("ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL")
        .await;
    c.send(&["ACL", "SETUSER", "a", "(+ping"]).await;
    c.expect_error("ERR Unmatched parenthesis in acl selector starting at '(+ping'.")
        .await;
    // A failed SETUSER changes nothing: the user was never created.
    assert_eq!(c.call(&["ACL", "GETUSER", "a"]).await, Frame::Null);
}

// ---------------------------------------------------------------------------------------
// Revoking channels disconnects subscribers
// ---------------------------------------------------------------------------------------

/// Logs in as psuser, names the connection, and subscribes with `cmd`.
async fn doomed_subscriber(s: &TestServer, name: &str, cmd: &str, channel: &str) -> RawConn {
    let mut c = login(s, "psuser", "pspass").await;
    ok(&mut c, &["CLIENT", "SETNAME", name]).await;
    c.send(&[cmd, channel]).await;
    confirmed(&mut c, &cmd.to_ascii_lowercase(), channel, 1).await;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_are_killed_when_their_channels_are_revoked() {
    let (s, mut admin) = pubsub_server().await;
    for (cmd, allowed, channel) in [
        ("SUBSCRIBE", "&foo:1", "foo:1"),
        ("SSUBSCRIBE", "&foo:1", "foo:1"),
        ("PSUBSCRIBE", "&bar:*", "bar:*"),
        ("PSUBSCRIBE", "allchannels", "foo"),
    ] {
        ok(&mut admin, &["ACL", "SETUSER", "psuser", "resetchannels", allowed]).await;
        let mut c = doomed_subscriber(&s, "deathrow", cmd, channel).await;
        assert!(client_list(&mut admin).await.contains("name=deathrow"));
        ok(&mut admin, &["ACL", "SETUSER", "psuser", "resetchannels"]).await;
        // Gone before the reply: CLIENT LIST right after no longer shows it.
        let list = client_list(&mut admin).await;
        assert!(!list.contains("name=deathrow"), "{cmd} {allowed}: {list}");
        c.expect_eof().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_are_pardoned_while_their_channels_are_kept() {
    let (s, mut admin) = pubsub_server().await;
    ok(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "psuser",
            "resetchannels",
            "&foo:1",
            "&bar:*",
            "&orders",
        ],
    )
    .await;
    let mut c = login(&s, "psuser", "pspass").await;
    ok(&mut c, &["CLIENT", "SETNAME", "pardoned"]).await;
    c.send(&["SUBSCRIBE", "foo:1"]).await;
    confirmed(&mut c, "subscribe", "foo:1", 1).await;
    c.send(&["SSUBSCRIBE", "orders"]).await;
    confirmed(&mut c, "ssubscribe", "orders", 1).await;
    c.send(&["PSUBSCRIBE", "bar:*"]).await;
    confirmed(&mut c, "psubscribe", "bar:*", 2).await;
    ok(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "psuser",
            "resetchannels",
            "&foo:1",
            "&bar:*",
            "&orders",
            "&baz:qaz",
            "&zoo:*",
        ],
    )
    .await;
    assert!(client_list(&mut admin).await.contains("name=pardoned"));
    ok(&mut admin, &["ACL", "SETUSER", "psuser", "allchannels"]).await;
    assert!(client_list(&mut admin).await.contains("name=pardoned"));
    // Narrowing to a list that still covers every subscription (foo:1 and orders by
    // glob, bar:* literally) keeps it too.
    ok(
        &mut admin,
        &["ACL", "SETUSER", "psuser", "resetchannels", "&*o*", "&bar:*"],
    )
    .await;
    assert!(client_list(&mut admin).await.contains("name=pardoned"));
    // Other users' subscribers are never touched.
    let mut other = s.raw().await;
    other.send(&["SUBSCRIBE", "zzz"]).await;
    confirmed(&mut other, "subscribe", "zzz", 1).await;
    ok(&mut admin, &["ACL", "SETUSER", "psuser", "resetchannels"]).await;
    let list = client_list(&mut admin).await;
    assert!(!list.contains("name=pardoned"));
    assert_eq!(other.call(&["PING"]).await.items()[0], Frame::bulk("pong"));
}

/// Subscribes racing a revocation: whichever wins, no subscription the new rules refuse
/// survives (a subscribe either fails with NOPERM or its connection is closed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_subscription_survives_a_racing_revocation() {
    let (s, mut admin) = pubsub_server().await;
    for round in 0..5 {
        ok(&mut admin, &["ACL", "SETUSER", "psuser", "resetchannels", "&race:*"]).await;
        let mut tasks = Vec::new();
        for i in 0..8 {
            let addr = s.addr;
            tasks.push(tokio::spawn(async move {
                let mut c = RawConn::connect(addr).await;
                c.send(&["AUTH", "psuser", "pspass"]).await;
                if c.try_read_frame().await != Some(Frame::Simple("OK".into())) {
                    return;
                }
                for j in 0..20 {
                    c.send(&["SUBSCRIBE", &format!("race:{i}:{j}")]).await;
                    match c.try_read_frame().await {
                        Some(Frame::Array(_)) => {}
                        Some(Frame::Error(e)) => {
                            assert_eq!(e, NOPERM_CHANNEL);
                            return;
                        }
                        None => return, // disconnected by the revocation
                        Some(other) => panic!("{other:?}"),
                    }
                }
                // Stay connected until the test looks at CLIENT LIST.
                let _ = c.try_read_frame().await;
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(2 * round)).await;
        ok(&mut admin, &["ACL", "SETUSER", "psuser", "resetchannels"]).await;
        let list = client_list(&mut admin).await;
        for line in list.lines().filter(|l| l.contains("user=psuser")) {
            assert_eq!(client_field(line, "sub").as_deref(), Some("0"), "round {round}: {line}");
        }
        admin.call(&["CLIENT", "KILL", "USER", "psuser"]).await;
        for t in tasks {
            t.await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resp3_subscriber_revoking_its_own_channels_is_closed_after_the_reply() {
    let (s, mut admin) = pubsub_server().await;
    ok(&mut admin, &["ACL", "SETUSER", "psuser", "resetchannels", "&a"]).await;
    let mut c = s.raw().await;
    let hello = c.call(&["HELLO", "3", "AUTH", "psuser", "pspass"]).await;
    assert!(matches!(hello, Frame::Map(_)));
    c.send(&["SUBSCRIBE", "a"]).await;
    let f = c.read_frame().await;
    assert_eq!(
        f,
        Frame::Push(vec![Frame::bulk("subscribe"), Frame::bulk("a"), Frame::Int(1)])
    );
    ok(&mut admin, &["ACL", "SETUSER", "psuser", "+acl"]).await;
    c.send(&["ACL", "SETUSER", "psuser", "resetchannels"]).await;
    assert_eq!(c.read_frame().await, Frame::Simple("OK".into()));
    c.expect_eof().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_user_disconnects_its_clients() {
    let (s, mut admin) = pubsub_server().await;
    ok(&mut admin, &["ACL", "SETUSER", "not_used", "on", ">passwd"]).await;
    assert_eq!(admin.call(&["ACL", "DELUSER", "not_used"]).await, Frame::Int(1));
    assert_eq!(admin.call(&["PING"]).await, Frame::Simple("PONG".into()));

    ok(&mut admin, &["ACL", "SETUSER", "psuser", "allchannels"]).await;
    let mut sub = doomed_subscriber(&s, "sub", "SUBSCRIBE", "news").await;
    let mut idle = login(&s, "psuser", "pspass").await;
    assert_eq!(admin.call(&["ACL", "DELUSER", "psuser", "nosuch"]).await, Frame::Int(1));
    assert!(!client_list(&mut admin).await.contains("user=psuser"));
    sub.expect_eof().await;
    idle.expect_eof().await;
    // The user is gone: nobody can log in as it.
    let mut c = s.raw().await;
    c.send(&["AUTH", "psuser", "pspass"]).await;
    c.expect_error(WRONGPASS).await;

    // Deleting the user a client is using: the reply arrives, then the connection closes.
    ok(&mut admin, &["ACL", "SETUSER", "using", "on", "+acl", ">passwd"]).await;
    let mut me = login(&s, "using", "passwd").await;
    assert_eq!(me.call(&["ACL", "DELUSER", "using"]).await, Frame::Int(1));
    me.expect_eof().await;

    admin.send(&["ACL", "DELUSER", "default"]).await;
    admin.expect_error("ERR The 'default' user cannot be removed").await;
}

// ---------------------------------------------------------------------------------------
// Command permissions
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_and_subcommands_can_be_denied() {
    let s = start_server().await;
    let mut admin = s.raw().await;
    ok(
        &mut admin,
        &["ACL", "SETUSER", "newuser", "on", "nopass", "+@all", "-ping"],
    )
    .await;
    let mut c = login(&s, "newuser", "x").await;
    c.send(&["PING"]).await;
    c.expect_error(&noperm_command("ping")).await;

    ok(&mut admin, &["ACL", "SETUSER", "newuser", "+@all", "-client|kill"]).await;
    let user = admin.call(&["ACL", "GETUSER", "newuser"]).await;
    assert_eq!(getuser_field(&user, "commands"), Frame::bulk("+@all -client|kill"));
    assert!(matches!(c.call(&["CLIENT", "ID"]).await, Frame::Int(_)));
    c.send(&["CLIENT", "KILL", "TYPE", "master"]).await;
    c.expect_error(&noperm_command("client|kill")).await;

    ok(&mut admin, &["ACL", "SETUSER", "newuser", "+@all", "-client"]).await;
    ok(
        &mut admin,
        &["ACL", "SETUSER", "newuser", "+client|id", "+client|setname"],
    )
    .await;
    let user = admin.call(&["ACL", "GETUSER", "newuser"]).await;
    assert_eq!(
        getuser_field(&user, "commands"),
        Frame::bulk("+@all -client +client|id +client|setname")
    );
    ok(&mut c, &["CLIENT", "SETNAME", "foo"]).await;
    c.send(&["CLIENT", "LIST"]).await;
    c.expect_error(&noperm_command("client|list")).await;

    // Categories, and the first-argument form.
    ok(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "newuser",
            "reset",
            "on",
            "nopass",
            "+@pubsub",
            "+select|0",
            "allchannels",
        ],
    )
    .await;
    let user = admin.call(&["ACL", "GETUSER", "newuser"]).await;
    assert_eq!(
        getuser_field(&user, "commands"),
        Frame::bulk("-@all +@pubsub +select|0")
    );
    assert_eq!(c.call(&["PUBLISH", "x", "y"]).await, Frame::Int(0));
    ok(&mut c, &["SELECT", "0"]).await;
    c.send(&["SELECT", "1"]).await;
    c.expect_error(&noperm_command("select")).await;
    // AUTH, HELLO, QUIT and RESET need no permission.
    ok(&mut c, &["AUTH", "newuser", "x"]).await;

    admin
        .send(&["ACL", "SETUSER", "newuser", "+config|get|appendonly"])
        .await;
    admin
        .expect_error("ERR Error in ACL SETUSER modifier '+config|get|appendonly': Allowing first-arg of a subcommand is not supported")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_cat_lists_categories_and_their_commands() {
    let s = start_server().await;
    let mut c = s.raw().await;
    let cats = c.call(&["ACL", "CAT"]).await;
    assert_eq!(cats.items().len(), 21);
    for cat in ["keyspace", "pubsub", "connection", "admin", "slow", "fast", "dangerous"] {
        assert!(cats.items().contains(&Frame::bulk(cat)), "{cat}");
    }
    let pubsub: Vec<String> = c
        .call(&["ACL", "CAT", "pubsub"])
        .await
        .items()
        .iter()
        .map(Frame::text)
        .collect();
    for cmd in [
        "publish",
        "spublish",
        "subscribe",
        "psubscribe",
        "unsubscribe",
        "pubsub|numsub",
    ] {
        assert!(pubsub.contains(&cmd.to_string()), "{cmd} in {pubsub:?}");
    }
    assert!(!pubsub.contains(&"ping".to_string()));
    let admin: Vec<String> = c
        .call(&["ACL", "CAT", "ADMIN"])
        .await
        .items()
        .iter()
        .map(Frame::text)
        .collect();
    assert!(admin.contains(&"acl|setuser".to_string()) && admin.contains(&"client|kill".to_string()));
    assert_eq!(c.call(&["ACL", "CAT", "string"]).await, Frame::Array(vec![]));
    c.send(&["ACL", "CAT", "NON_EXISTS"]).await;
    c.expect_error("ERR Unknown category 'NON_EXISTS'").await;
    c.send(&["ACL", "CAT", "NON_EXISTS", "NON_EXISTS2"]).await;
    c.expect_error("ERR unknown subcommand or wrong number of arguments for 'CAT'. Try ACL HELP.")
        .await;
    c.send(&["ACL", "HELP", "xxx"]).await;
    c.expect_error("ERR wrong number of arguments for 'acl|help' command")
        .await;
    assert_eq!(
        c.call(&["ACL", "HELP"]).await.items()[0],
        Frame::Simple("ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:".into())
    );
}

// ---------------------------------------------------------------------------------------
// ACL GETUSER shape, ACL LOG
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn getuser_reply_shape_resp2_and_resp3() {
    let s = start_server().await;
    let mut c = s.raw().await;
    ok(
        &mut c,
        &[
            "ACL", "SETUSER", "x", "%R~", "~foo", "%W~bar", "~baz", "%R~baz", "(+ping", "~k*)", "(&c*)",
        ],
    )
    .await;
    // Bytes as redis-server 7.0.15 sends them (with +get for +ping in the selector).
    c.send(&["ACL", "GETUSER", "x"]).await;
    c.expect(b"*12\r\n$5\r\nflags\r\n*1\r\n$3\r\noff\r\n$9\r\npasswords\r\n*0\r\n$8\r\ncommands\r\n$5\r\n-@all\r\n$4\r\nkeys\r\n$20\r\n%R~ ~foo %W~bar ~baz\r\n$8\r\nchannels\r\n$0\r\n\r\n$9\r\nselectors\r\n*2\r\n*6\r\n$8\r\ncommands\r\n$11\r\n-@all +ping\r\n$4\r\nkeys\r\n$3\r\n~k*\r\n$8\r\nchannels\r\n$0\r\n\r\n*6\r\n$8\r\ncommands\r\n$5\r\n-@all\r\n$4\r\nkeys\r\n$0\r\n\r\n$8\r\nchannels\r\n$3\r\n&c*\r\n").await;
    c.call(&["HELLO", "3"]).await;
    c.send(&["ACL", "GETUSER", "default"]).await;
    c.expect(b"%6\r\n$5\r\nflags\r\n~2\r\n$2\r\non\r\n$6\r\nnopass\r\n$9\r\npasswords\r\n*0\r\n$8\r\ncommands\r\n$5\r\n+@all\r\n$4\r\nkeys\r\n$2\r\n~*\r\n$8\r\nchannels\r\n$2\r\n&*\r\n$9\r\nselectors\r\n*0\r\n").await;
    c.send(&["ACL", "GETUSER", "nosuch"]).await;
    c.expect(b"_\r\n").await;
    assert_eq!(
        c.call(&["ACL", "LIST"]).await.items()[1],
        Frame::bulk("user x off %R~ ~foo %W~bar ~baz resetchannels -@all (~k* resetchannels -@all +ping) (resetchannels &c* -@all)")
    );
}

/// The fields of one ACL LOG entry (RESP2).
fn log_entry(f: &Frame) -> std::collections::HashMap<String, Frame> {
    f.items().chunks(2).map(|kv| (kv[0].text(), kv[1].clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_log_records_denied_commands_channels_and_logins() {
    let s = start_server().await;
    let mut admin = s.raw().await;
    ok(&mut admin, &["ACL", "LOG", "RESET"]).await;
    ok(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "antirez",
            ">foo",
            "on",
            "+publish",
            "+subscribe",
            "+client|setname",
            "resetchannels",
            "&ok",
        ],
    )
    .await;
    let mut c = login(&s, "antirez", "foo").await;
    ok(&mut c, &["CLIENT", "SETNAME", "logged"]).await;
    c.send(&["PING"]).await;
    c.expect_error(&noperm_command("ping")).await;

    let log = admin.call(&["ACL", "LOG"]).await;
    assert_eq!(log.items().len(), 1);
    let e = log_entry(&log.items()[0]);
    assert_eq!(e["count"], Frame::Int(1));
    assert_eq!(e["reason"], Frame::bulk("command"));
    assert_eq!(e["context"], Frame::bulk("toplevel"));
    assert_eq!(e["object"], Frame::bulk("ping"));
    assert_eq!(e["username"], Frame::bulk("antirez"));
    let age: f64 = e["age-seconds"].text().parse().unwrap();
    assert!((0.0..5.0).contains(&age), "{age}");
    let info = e["client-info"].text();
    assert_eq!(client_field(&info, "name").as_deref(), Some("logged"));
    assert_eq!(client_field(&info, "cmd").as_deref(), Some("ping"));
    assert_eq!(client_field(&info, "user").as_deref(), Some("antirez"));

    // Similar events are grouped.
    for _ in 0..2 {
        c.send(&["PING"]).await;
        c.expect_error(&noperm_command("ping")).await;
    }
    let e = log_entry(&admin.call(&["ACL", "LOG"]).await.items()[0]);
    assert_eq!(e["count"], Frame::Int(3));

    // Channel violations name the channel.
    c.send(&["PUBLISH", "somechannelnotallowed", "nullmsg"]).await;
    c.expect_error(NOPERM_CHANNEL).await;
    c.send(&["SUBSCRIBE", "ok", "notallowed2"]).await;
    c.expect_error(NOPERM_CHANNEL).await;
    let log = admin.call(&["ACL", "LOG", "2"]).await;
    assert_eq!(log.items().len(), 2);
    let (newest, older) = (log_entry(&log.items()[0]), log_entry(&log.items()[1]));
    assert_eq!(newest["reason"], Frame::bulk("channel"));
    assert_eq!(newest["object"], Frame::bulk("notallowed2"));
    assert_eq!(older["object"], Frame::bulk("somechannelnotallowed"));

    // Failed logins, with the user tried and the command as typed.
    admin.send(&["auth", "antirez", "wrong-password"]).await;
    admin.expect_error(WRONGPASS).await;
    let e = log_entry(&admin.call(&["ACL", "LOG", "1"]).await.items()[0]);
    assert_eq!(e["reason"], Frame::bulk("auth"));
    assert_eq!(e["object"], Frame::bulk("auth"));
    assert_eq!(e["username"], Frame::bulk("antirez"));
    assert_eq!(e["context"], Frame::bulk("toplevel"));

    // RESP3 shows age-seconds as a double.
    admin.call(&["HELLO", "3"]).await;
    let log = admin.call(&["ACL", "LOG", "1"]).await;
    let Frame::Map(pairs) = &log.items()[0] else {
        panic!("{log:?}")
    };
    assert!(matches!(pairs[5].1, Frame::Double(_)), "{:?}", pairs[5]);
    admin.call(&["HELLO", "2"]).await;

    // The log is limited to acllog-max-len entries.
    ok(&mut admin, &["ACL", "LOG", "RESET"]).await;
    ok(&mut admin, &["CONFIG", "SET", "acllog-max-len", "5"]).await;
    for j in 0..10 {
        c.send(&["PUBLISH", &format!("obj:{j}"), "m"]).await;
        c.expect_error(NOPERM_CHANNEL).await;
    }
    assert_eq!(admin.call(&["ACL", "LOG"]).await.items().len(), 5);
    ok(&mut admin, &["ACL", "LOG", "RESET"]).await;
    assert_eq!(admin.call(&["ACL", "LOG"]).await, Frame::Array(vec![]));
    admin.send(&["ACL", "LOG", "x"]).await;
    admin.expect_error("ERR value is not an integer or out of range").await;
}

// ---------------------------------------------------------------------------------------
// CLIENT LIST / KILL USER
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_list_shows_and_kill_finds_users() {
    let (s, mut admin) = pubsub_server().await;
    let mut a = login(&s, "psuser", "pspass").await;
    ok(&mut a, &["CLIENT", "SETNAME", "ps1"]).await;
    let mut b = login(&s, "psuser", "pspass").await;
    let list = client_list(&mut admin).await;
    let line = list.lines().find(|l| l.contains("name=ps1")).unwrap();
    assert_eq!(client_field(line, "user").as_deref(), Some("psuser"));
    admin.send(&["CLIENT", "KILL", "USER", "nosuch"]).await;
    admin.expect_error("ERR No such user 'nosuch'").await;
    assert_eq!(admin.call(&["CLIENT", "KILL", "USER", "psuser"]).await, Frame::Int(2));
    a.expect_eof().await;
    b.expect_eof().await;
    assert_eq!(admin.call(&["CLIENT", "KILL", "USER", "default"]).await, Frame::Int(0));
}

// ---------------------------------------------------------------------------------------
// acl-pubsub-default
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_pubsub_default_sets_new_users_channels() {
    let s = start_server_with(&[("acl-pubsub-default", "allchannels")]).await;
    let mut c = s.raw().await;
    assert_eq!(
        c.call(&["CONFIG", "GET", "acl-pubsub-default"]).await.items()[1],
        Frame::bulk("allchannels")
    );
    ok(&mut c, &["ACL", "SETUSER", "mydefault"]).await;
    let user = c.call(&["ACL", "GETUSER", "mydefault"]).await;
    assert_eq!(getuser_field(&user, "channels"), Frame::bulk("&*"));
    c.send(&["ACL", "SETUSER", "onechannel", "&test"]).await;
    c.expect_error("ERR Error in ACL SETUSER modifier '&test': Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels").await;
    // `reset` follows the setting too.
    ok(
        &mut c,
        &["ACL", "SETUSER", "default", "reset", "on", "nopass", "~*", "+@all"],
    )
    .await;
    c.send(&["SUBSCRIBE", "foo"]).await;
    confirmed(&mut c, "subscribe", "foo", 1).await;
    c.call(&["UNSUBSCRIBE"]).await;
    ok(&mut c, &["CONFIG", "SET", "acl-pubsub-default", "resetchannels"]).await;
    // Existing users keep what they had.
    let user = c.call(&["ACL", "GETUSER", "mydefault"]).await;
    assert_eq!(getuser_field(&user, "channels"), Frame::bulk("&*"));
    ok(
        &mut c,
        &["ACL", "SETUSER", "default", "reset", "on", "nopass", "~*", "+@all"],
    )
    .await;
    for cmd in [
        &["SUBSCRIBE", "foo"][..],
        &["PSUBSCRIBE", "bar*"],
        &["PUBLISH", "hello", "world"],
    ] {
        c.send(cmd).await;
        c.expect_error(NOPERM_CHANNEL).await;
    }
    c.send(&["CONFIG", "SET", "acl-pubsub-default", "x"]).await;
    c.expect_error("ERR CONFIG SET failed (possibly related to argument 'acl-pubsub-default') - argument(s) must be one of the following: allchannels, resetchannels").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_user_may_use_every_channel_whatever_the_setting() {
    let s = start_server_with(&[("acl-pubsub-default", "resetchannels")]).await;
    let mut c = s.raw().await;
    let user = c.call(&["ACL", "GETUSER", "default"]).await;
    assert_eq!(getuser_field(&user, "channels"), Frame::bulk("&*"));
    ok(&mut c, &["ACL", "SETUSER", "alice"]).await;
    let user = c.call(&["ACL", "GETUSER", "alice"]).await;
    assert_eq!(getuser_field(&user, "channels"), Frame::bulk(""));
}

// ---------------------------------------------------------------------------------------
// The ACL file
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_load_and_save_without_a_file() {
    let s = start_server().await;
    let mut c = s.raw().await;
    for sub in ["LOAD", "SAVE"] {
        c.send(&["ACL", sub]).await;
        c.expect_error("ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aclfile_is_loaded_at_start_and_round_trips() {
    let path = scratch("roundtrip");
    std::fs::write(
        &path,
        "user alice on allcommands allkeys &* >alice\nuser bob on -@all +@pubsub +acl ~set* &news.* >bob\nuser default on nopass ~* &* +@all\n",
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let s = start_server_with(&[("aclfile", p)]).await;
    let mut c = s.raw().await;
    assert_eq!(
        c.call(&["ACL", "USERS"]).await.items(),
        &[Frame::bulk("alice"), Frame::bulk("bob"), Frame::bulk("default")]
    );
    let mut bob = login(&s, "bob", "bob").await;
    assert_eq!(bob.call(&["ACL", "WHOAMI"]).await, Frame::bulk("bob"));
    assert_eq!(bob.call(&["PUBLISH", "news.x", "m"]).await, Frame::Int(0));
    bob.send(&["PUBLISH", "sports", "m"]).await;
    bob.expect_error(NOPERM_CHANNEL).await;

    // SAVE writes what ACL LIST shows, one `user` line per user.
    ok(
        &mut c,
        &[
            "ACL",
            "SETUSER",
            "eve",
            "+publish",
            "allkeys",
            ">eve",
            "on",
            "resetchannels",
            "&test",
        ],
    )
    .await;
    ok(&mut c, &["ACL", "SAVE"]).await;
    let saved = std::fs::read_to_string(&path).unwrap();
    let list: Vec<String> = c.call(&["ACL", "LIST"]).await.items().iter().map(Frame::text).collect();
    assert_eq!(saved, list.iter().map(|l| format!("{l}\n")).collect::<String>());
    let eve = saved.lines().find(|l| l.starts_with("user eve ")).unwrap();
    assert!(
        eve.starts_with("user eve on #") && eve.ends_with(" ~* resetchannels &test -@all +publish"),
        "{eve}"
    );
    assert!(!saved.contains(">eve"), "passwords are saved as hashes");

    // LOAD replaces every user: the saved ones come back, connections of users other
    // than `default` are closed (even users of the same name), `default`'s stay.
    assert_eq!(c.call(&["ACL", "DELUSER", "eve"]).await, Frame::Int(1));
    ok(&mut c, &["ACL", "SETUSER", "temp", "on", "nopass"]).await;
    ok(&mut c, &["ACL", "LOAD"]).await;
    bob.expect_eof().await;
    assert_eq!(c.call(&["PING"]).await, Frame::Simple("PONG".into()));
    assert_eq!(
        c.call(&["ACL", "USERS"]).await.items(),
        &[
            Frame::bulk("alice"),
            Frame::bulk("bob"),
            Frame::bulk("default"),
            Frame::bulk("eve")
        ]
    );
    let mut eve = login(&s, "eve", "eve").await;
    assert_eq!(eve.call(&["PUBLISH", "test", "m"]).await, Frame::Int(0));
    eve.send(&["PUBLISH", "test1", "m"]).await;
    eve.expect_error(NOPERM_CHANNEL).await;

    // A caller logged in as a user that LOAD replaces gets its reply, then is closed.
    let mut alice = login(&s, "alice", "alice").await;
    assert_eq!(alice.call(&["ACL", "LOAD"]).await, Frame::Simple("OK".into()));
    alice.expect_eof().await;
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_load_with_errors_changes_nothing() {
    let path = scratch("errors");
    let good = "user alice on allcommands allkeys &* >alice\nuser default on nopass ~* &* +@all\n";
    std::fs::write(&path, good).unwrap();
    let p = path.to_str().unwrap();
    let s = start_server_with(&[("aclfile", p)]).await;
    let mut c = s.raw().await;

    std::fs::write(&path, format!("{good}user alice on nopass ~* -@all\n")).unwrap();
    c.send(&["ACL", "LOAD"]).await;
    c.expect_error("ERR WARNING: Duplicate user 'alice' found on line 3. WARNING: ACL errors detected, no change to the previously active ACL rules was performed").await;
    let alice = c.call(&["ACL", "GETUSER", "alice"]).await;
    assert_eq!(getuser_field(&alice, "commands"), Frame::bulk("+@all"));

    std::fs::write(
        &path,
        "user bob on +nosuch #bad\nnot a user line\nuser default on nopass ~* &* +@all\n",
    )
    .unwrap();
    c.send(&["ACL", "LOAD"]).await;
    c.expect_error(&format!("ERR {p}:1: Error in applying operation '+nosuch': Unknown command or category name in ACL. {p}:1: The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters. {p}:2 should start with user keyword followed by the username. WARNING: ACL errors detected, no change to the previously active ACL rules was performed")).await;
    assert_eq!(c.call(&["ACL", "GETUSER", "bob"]).await, Frame::Null);

    std::fs::remove_file(&path).unwrap();
    c.send(&["ACL", "LOAD"]).await;
    c.expect_error(&format!(
        "ERR Error loading ACLs, opening file '{p}': No such file or directory"
    ))
    .await;

    // A file without `default` gives a fresh `default`.
    std::fs::write(&path, "user alice on nopass +@all\n").unwrap();
    ok(&mut c, &["ACL", "LOAD"]).await;
    assert_eq!(
        c.call(&["ACL", "LIST"]).await.items(),
        &[
            Frame::bulk("user alice on nopass resetchannels +@all"),
            Frame::bulk("user default on nopass ~* &* +@all")
        ]
    );
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_aclfile_stops_the_start() {
    let path = scratch("badstart");
    std::fs::write(&path, "user alice on +nosuch\n").unwrap();
    let settings = std::sync::Arc::new(fanout::config::Settings::default());
    settings.set("port", "0").unwrap();
    settings.set("aclfile", path.to_str().unwrap()).unwrap();
    let err = match fanout::server::Server::bind(settings, None).await {
        Ok(_) => panic!("started with a bad aclfile"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("Unknown command or category name in ACL"), "{err}");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

// ---------------------------------------------------------------------------------------
// Through the `redis` crate
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_crate_users_publish_and_subscribe_within_their_channels() {
    let s = start_server().await;
    let mut admin = s.conn(false).await;
    let _: () = redis_query(
        &mut admin,
        redis::cmd("ACL").arg(&[
            "SETUSER",
            "app",
            "on",
            ">secret",
            "+@pubsub",
            "+ping",
            "resetchannels",
            "&app.*",
        ]),
    )
    .await;
    let url = format!("redis://app:secret@{}/", s.addr);
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut con = tokio::time::timeout(WAIT, client.get_multiplexed_async_connection())
        .await
        .unwrap()
        .unwrap();
    let whoami: String = redis_query(&mut admin, redis::cmd("ACL").arg("WHOAMI")).await;
    assert_eq!(whoami, "default");

    let mut sub = tokio::time::timeout(WAIT, client.get_async_pubsub())
        .await
        .unwrap()
        .unwrap();
    sub.subscribe("app.events").await.unwrap();
    // The refusal itself is checked with raw RESP above: the crate's async pub/sub
    // connection hands error replies to `subscribe` as values and reports success.
    let _ = sub.subscribe("other").await;
    let numsub: Vec<redis::Value> = redis_query(
        &mut admin,
        redis::cmd("PUBSUB").arg("NUMSUB").arg("app.events").arg("other"),
    )
    .await;
    assert_eq!(numsub[1], redis::Value::Int(1));
    assert_eq!(numsub[3], redis::Value::Int(0));

    let n: i64 = redis_query(&mut con, redis::cmd("PUBLISH").arg("app.events").arg("hi")).await;
    assert_eq!(n, 1);
    {
        use futures_util::StreamExt;
        let mut messages = sub.on_message();
        let msg = tokio::time::timeout(WAIT, messages.next()).await.unwrap().unwrap();
        assert_eq!(msg.get_channel_name(), "app.events");
        assert_eq!(msg.get_payload::<String>().unwrap(), "hi");
    }

    let err = redis_expect_err(&mut con, redis::cmd("PUBLISH").arg("other").arg("x")).await;
    assert_eq!(err, NOPERM_CHANNEL);
    let err = redis_expect_err(&mut con, redis::cmd("CLIENT").arg("LIST")).await;
    assert_eq!(err, noperm_command("client|list"));

    // Wrong credentials fail the connection.
    let bad = redis::Client::open(format!("redis://app:nope@{}/", s.addr)).unwrap();
    let Err(e) = tokio::time::timeout(WAIT, bad.get_multiplexed_async_connection())
        .await
        .unwrap()
    else {
        panic!("bad password accepted");
    };
    assert_eq!(e.kind(), redis::ErrorKind::AuthenticationFailed, "{e}");

    // RESP3 logs in with HELLO 3 AUTH.
    let client3 = redis::Client::open(format!("redis://app:secret@{}/?protocol=resp3", s.addr)).unwrap();
    let mut con3 = tokio::time::timeout(WAIT, client3.get_multiplexed_async_connection())
        .await
        .unwrap()
        .unwrap();
    let pong: String = redis_query(&mut con3, &redis::cmd("PING")).await;
    assert_eq!(pong, "PONG");
}
