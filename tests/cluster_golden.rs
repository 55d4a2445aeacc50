//! fanout's cluster replies against the bytes a real Redis 7.0.15 cluster sent
//! (`tests/golden/cluster/`, see its README.md for how they were captured).
//!
//! Each fanout node here *is* one node of the captured cluster: an in-process server on a
//! free port whose `cluster-config-file` is a copy of `topology.conf` (the captured
//! cluster, real node ids) and whose announced address is that node's `127.0.0.1:3000N`.
//! There is no cluster bus, so every node is alive and nothing else is needed.
//!
//! Every reply is compared in RESP2 and in RESP3 (one connection per protocol; the RESP3
//! one sends `HELLO 3` first and drops its reply, as the captures did). Replies are
//! compared as exact bytes, except where a comment marked "MASK" says what is normalised
//! and why: only what the README lists as volatile (timestamps, counters, per-node
//! orders) or a documented fanout difference. Masks are applied to both sides the same
//! way and, for bulk / verbatim strings, the string is re-encoded with its new length so
//! everything else (type byte, `txt:` prefix, line endings) still compares byte for byte.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{parse_frame, Frame, RawConn, TestServer};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/cluster");
const NODE_A: &str = "30001";
const NODE_B: &str = "30002";
const NODE_D: &str = "30004";
const ID_B: &str = "40ac75cf101be44ac4e50343d79d8ecae0bc5e60";
const PROTOS: [u8; 2] = [2, 3];

fn golden(name: &str, proto: u8) -> Vec<u8> {
    let path = format!("{GOLDEN}/{name}.resp{proto}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn assert_bytes(what: &str, got: &[u8], want: &[u8]) {
    assert_eq!(
        show(got),
        show(want),
        "{what}: fanout (left) differs from Redis (right)"
    );
    assert_eq!(got, want, "{what}");
}

/// A fanout node announced as `127.0.0.1:<port>` of the captured cluster.
struct Node {
    srv: TestServer,
    topology: PathBuf,
    _dir: tempfile::TempDir,
}

async fn node(port: &str) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let topology = dir.path().join("topology.conf");
    std::fs::copy(format!("{GOLDEN}/topology.conf"), &topology).unwrap();
    let srv = common::start_server_with(&[
        ("cluster-enabled", "yes"),
        ("cluster-config-file", topology.to_str().unwrap()),
        ("cluster-announce-ip", "127.0.0.1"),
        ("cluster-announce-port", port),
    ])
    .await;
    Node {
        srv,
        topology,
        _dir: dir,
    }
}

impl Node {
    /// A fresh connection speaking `proto` (the HELLO 3 reply is dropped).
    async fn conn(&self, proto: u8) -> RawConn {
        let mut c = self.srv.raw().await;
        if proto == 3 {
            c.send(&["HELLO", "3"]).await;
            let _ = c.read_frame().await;
        }
        c
    }

    /// The exact bytes of the reply to `cmd` on a fresh `proto` connection.
    async fn reply(&self, proto: u8, cmd: &[&str]) -> Vec<u8> {
        let mut c = self.conn(proto).await;
        c.send(cmd).await;
        let got = c.read_frame_bytes().await;
        sync(&mut c).await;
        got
    }
}

/// PING, and its reply must be the very next frame: nothing else was sent before it.
async fn sync(c: &mut RawConn) {
    c.send(&["PING"]).await;
    match c.read_frame().await {
        Frame::Simple(s) if s == "PONG" => {}
        // RESP2 in subscribed mode.
        Frame::Array(v) if v == [Frame::bulk("pong"), Frame::bulk("")] => {}
        other => panic!("expected PONG, got {other:?}"),
    }
}

/// `cmd` sent to `port`'s node must answer exactly the golden `name`, in both protocols.
async fn exact(port: &str, name: &str, cmd: &[&str]) {
    let n = node(port).await;
    for p in PROTOS {
        let got = n.reply(p, cmd).await;
        assert_bytes(&format!("{name}.resp{p}"), &got, &golden(name, p));
    }
}

/// The raw bytes of each element of an aggregate (`*`, `%`, `~`, `>`) reply, checking
/// the count in its header and that nothing follows.
fn elements(raw: &[u8]) -> Vec<Vec<u8>> {
    let nl = raw.windows(2).position(|w| w == b"\r\n").expect("header");
    let n: usize = show(&raw[1..nl]).parse().expect("aggregate length");
    let n = if raw[0] == b'%' { 2 * n } else { n };
    let mut pos = nl + 2;
    let mut out = Vec::new();
    while pos < raw.len() {
        let (_, used) = parse_frame(&raw[pos..]).expect("whole frame");
        out.push(raw[pos..pos + used].to_vec());
        pos += used;
    }
    assert_eq!(out.len(), n, "element count of {}", show(raw));
    out
}

fn aggregate(kind: u8, items: &[Vec<u8>]) -> Vec<u8> {
    let n = if kind == b'%' { items.len() / 2 } else { items.len() };
    let mut out = format!("{}{n}\r\n", kind as char).into_bytes();
    items.iter().for_each(|i| out.extend_from_slice(i));
    out
}

/// Applies `mask` to the payload of a bulk (`$`) or verbatim (`=`, after `txt:`) string
/// reply and re-encodes it with the new length: the framing stays as sent.
fn remask_string(raw: &[u8], mask: impl FnOnce(&str) -> String) -> Vec<u8> {
    let (frame, used) = parse_frame(raw).expect("whole frame");
    assert_eq!(used, raw.len(), "one frame: {}", show(raw));
    let (prefix, text) = match frame {
        Frame::Bulk(b) if raw[0] == b'$' => ("", b),
        Frame::Verbatim(f, b) => {
            assert!(raw.starts_with(b"="), "verbatim");
            assert_eq!(f, "txt");
            ("txt:", b)
        }
        other => panic!("not a bulk or verbatim string: {other:?}"),
    };
    let payload = format!("{prefix}{}", mask(&String::from_utf8(text).expect("utf-8")));
    let mut out = format!("{}{}\r\n", raw[0] as char, payload.len()).into_bytes();
    out.extend_from_slice(payload.as_bytes());
    out.extend_from_slice(b"\r\n");
    out
}

/// One CLUSTER NODES / REPLICAS line (no newline), masked.
fn mask_node_line(line: &str) -> String {
    let mut f: Vec<String> = line.split(' ').map(str::to_string).collect();
    assert!(f.len() >= 8, "node line {line:?}");
    // MASK: the cluster bus port after '@' (`ip:port@cport`). Redis's nodes listen on
    // port+10000; fanout has no cluster bus port and prints `@0`.
    let at = f[1].find('@').expect("@cport");
    f[1].replace_range(at + 1.., "<cport>");
    // MASK: ping-sent and pong-recv (5th and 6th fields), ms timestamps that change all
    // the time in Redis (README: volatile).
    f[4] = "<ping-sent>".into();
    f[5] = "<pong-recv>".into();
    f.join(" ")
}

/// What fanout (no bus) prints in those masked fields: `@0` and `0 0`.
fn check_fanout_node_line(line: &str) {
    let f: Vec<&str> = line.split(' ').collect();
    assert!(f[1].ends_with("@0"), "fanout's bus port: {line:?}");
    assert_eq!(
        (f[4], f[5]),
        ("0", "0"),
        "fanout's ping-sent/pong-recv without a bus: {line:?}"
    );
}

/// CLUSTER NODES text, masked line by line.
fn mask_nodes(text: &str) -> String {
    let body = text.strip_suffix('\n').expect("NODES ends with a newline");
    let mut lines: Vec<String> = body.split('\n').map(mask_node_line).collect();
    // MASK: line order. Redis lists nodes in its node dict's order, which differs from node
    // to node (README); fanout lists them in file order.
    lines.sort();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

async fn nodes(port: &str, name: &str) {
    let n = node(port).await;
    for p in PROTOS {
        let got = n.reply(p, &["CLUSTER", "NODES"]).await;
        let want = golden(name, p);
        remask_string(&got, |t| {
            t.lines().for_each(check_fanout_node_line);
            t.to_string()
        });
        assert_bytes(
            &format!("{name}.resp{p}"),
            &remask_string(&got, mask_nodes),
            &remask_string(&want, mask_nodes),
        );
    }
}

const STATS: &str = "cluster_stats_messages_";

/// CLUSTER INFO text with each run of `cluster_stats_messages_*` lines collapsed to one
/// placeholder line; also returns the runs.
fn mask_info(text: &str) -> (String, Vec<Vec<String>>) {
    let mut out = String::new();
    let mut runs: Vec<Vec<String>> = Vec::new();
    let mut in_run = false;
    for line in text.split_inclusive("\r\n") {
        assert!(line.ends_with("\r\n"), "INFO line ends in CRLF: {line:?}");
        if line.starts_with(STATS) {
            // MASK: the cluster_stats_messages_* counters. Redis's count gossip messages
            // by type and which types appear depends on history (README: volatile);
            // fanout prints only ..._sent / ..._received (and publish counters once it has
            // a bus). The run stays in place; its lines are checked by the caller.
            if !in_run {
                out.push_str("cluster_stats_messages_<masked>\r\n");
                runs.push(Vec::new());
            }
            in_run = true;
            runs.last_mut().unwrap().push(line.trim_end().to_string());
        } else {
            in_run = false;
            out.push_str(line);
        }
    }
    (out, runs)
}

/// The run of stats lines has the form `cluster_stats_messages_<type>:<n>` and includes
/// `..._sent` and `..._received`.
fn check_stats(runs: &[Vec<String>], who: &str) {
    assert_eq!(runs.len(), 1, "{who}: one run of {STATS}* lines: {runs:?}");
    for l in &runs[0] {
        let (k, v) = l.split_once(':').expect("key:value");
        assert!(k.len() > STATS.len() && v.parse::<u64>().is_ok(), "{who}: {l:?}");
    }
    for k in ["sent", "received"] {
        let key = format!("{STATS}{k}:");
        assert!(
            runs[0].iter().any(|l| l.starts_with(&key)),
            "{who}: no {key} in {runs:?}"
        );
    }
}

async fn info(port: &str, name: &str) {
    let n = node(port).await;
    for p in PROTOS {
        let got = n.reply(p, &["CLUSTER", "INFO"]).await;
        let want = golden(name, p);
        let mut runs = (Vec::new(), Vec::new());
        let masked_got = remask_string(&got, |t| {
            let (m, r) = mask_info(t);
            runs.0 = r;
            m
        });
        let masked_want = remask_string(&want, |t| {
            let (m, r) = mask_info(t);
            runs.1 = r;
            m
        });
        check_stats(&runs.0, "fanout");
        check_stats(&runs.1, "redis");
        // Without a bus fanout has nothing to count.
        assert_eq!(runs.0[0], [format!("{STATS}sent:0"), format!("{STATS}received:0")]);
        assert_bytes(&format!("{name}.resp{p}"), &masked_got, &masked_want);
    }
}

/// MASK: a node's `replication-offset` in CLUSTER SHARDS. Redis's B and D report their
/// replication stream offset, which grows with replication pings (README: volatile);
/// fanout's nodes replicate nothing and report 0. The integer is replaced by a
/// placeholder in one shard's bytes; returns how many were replaced.
fn mask_offsets(shard: &[u8], fanout: bool) -> (Vec<u8>, usize) {
    let key = b"$18\r\nreplication-offset\r\n:";
    let mut out = Vec::new();
    let mut pos = 0;
    let mut seen = 0;
    while let Some(i) = shard[pos..].windows(key.len()).position(|w| w == key) {
        let start = pos + i + key.len();
        let end = start + shard[start..].windows(2).position(|w| w == b"\r\n").unwrap();
        if fanout {
            assert_eq!(&shard[start..end], b"0", "fanout's replication-offset");
        }
        out.extend_from_slice(&shard[pos..start]);
        out.extend_from_slice(b"<offset>");
        pos = end;
        seen += 1;
    }
    out.extend_from_slice(&shard[pos..]);
    (out, seen)
}

async fn shards(port: &str, name: &str) {
    let n = node(port).await;
    for p in PROTOS {
        // MASK: shard order. Redis lists shards in its dict's order, which differs from
        // node to node (README: A says c,b,a and D c,a,b); fanout uses file order. Each
        // shard (its slots, its nodes in order, primary first) must still be identical.
        let masked = |raw: &[u8], fanout: bool| {
            let mut total = 0;
            let mut shards: Vec<Vec<u8>> = elements(raw)
                .iter()
                .map(|s| {
                    let (m, seen) = mask_offsets(s, fanout);
                    total += seen;
                    m
                })
                .collect();
            assert_eq!(total, 4, "one replication-offset per node");
            shards.sort();
            let mut out = format!("{}{}\r\n", raw[0] as char, shards.len()).into_bytes();
            shards.iter().for_each(|s| out.extend_from_slice(s));
            out
        };
        let got = n.reply(p, &["CLUSTER", "SHARDS"]).await;
        assert_bytes(
            &format!("{name}.resp{p}"),
            &masked(&got, true),
            &masked(&golden(name, p), false),
        );
    }
}

#[tokio::test]
async fn slots_a() {
    exact(NODE_A, "slots_A", &["CLUSTER", "SLOTS"]).await;
}

#[tokio::test]
async fn slots_d() {
    exact(NODE_D, "slots_D", &["CLUSTER", "SLOTS"]).await;
}

#[tokio::test]
async fn shards_a() {
    shards(NODE_A, "shards_A").await;
}

#[tokio::test]
async fn shards_d() {
    shards(NODE_D, "shards_D").await;
}

#[tokio::test]
async fn nodes_a() {
    nodes(NODE_A, "nodes_A").await;
}

#[tokio::test]
async fn nodes_d() {
    nodes(NODE_D, "nodes_D").await;
}

#[tokio::test]
async fn info_a() {
    info(NODE_A, "info_A").await;
}

#[tokio::test]
async fn info_d() {
    info(NODE_D, "info_D").await;
}

#[tokio::test]
async fn myid_a() {
    exact(NODE_A, "myid_A", &["CLUSTER", "MYID"]).await;
}

#[tokio::test]
async fn keyslot() {
    exact(NODE_A, "keyslot", &["CLUSTER", "KEYSLOT", "channel:123"]).await;
}

#[tokio::test]
async fn countkeys() {
    exact(NODE_A, "countkeys", &["CLUSTER", "COUNTKEYSINSLOT", "3018"]).await;
}

#[tokio::test]
async fn getkeys() {
    exact(NODE_A, "getkeys", &["CLUSTER", "GETKEYSINSLOT", "3018", "10"]).await;
}

#[tokio::test]
async fn replicas_b() {
    let n = node(NODE_A).await;
    for p in PROTOS {
        let got = n.reply(p, &["CLUSTER", "REPLICAS", ID_B]).await;
        let want = golden("replicas_B", p);
        // Each element is one CLUSTER NODES line without its newline: the same masks
        // as NODES (bus port, ping-sent, pong-recv); there is one replica, so no order.
        let masked = |raw: &[u8], fanout: bool| {
            let items: Vec<Vec<u8>> = elements(raw)
                .iter()
                .map(|e| {
                    remask_string(e, |l| {
                        if fanout {
                            check_fanout_node_line(l);
                        }
                        mask_node_line(l)
                    })
                })
                .collect();
            aggregate(raw[0], &items)
        };
        assert_bytes(
            &format!("replicas_B.resp{p}"),
            &masked(&got, true),
            &masked(&want, false),
        );
    }
}

#[tokio::test]
async fn links_a_is_empty() {
    // Not compared with links_A: Redis lists its cluster-bus links (two per peer), fanout
    // has no cluster bus links (its one NATS connection is not a node link) and replies
    // with an empty array in both protocols.
    let n = node(NODE_A).await;
    for p in PROTOS {
        assert_bytes("CLUSTER LINKS", &n.reply(p, &["CLUSTER", "LINKS"]).await, b"*0\r\n");
        assert!(golden("links_A", p).starts_with(b"*6\r\n"));
    }
}

#[tokio::test]
async fn readonly() {
    exact(NODE_A, "readonly", &["READONLY"]).await;
}

#[tokio::test]
async fn readwrite() {
    exact(NODE_A, "readwrite", &["READWRITE"]).await;
}

#[tokio::test]
async fn asking() {
    exact(NODE_A, "asking", &["ASKING"]).await;
}

#[tokio::test]
async fn infocluster_a() {
    let n = node(NODE_A).await;
    for p in PROTOS {
        let got = n.reply(p, &["INFO", "cluster"]).await;
        // MASK: fanout adds `cluster_bus_*` lines after `cluster_enabled` when a bus is
        // configured (none here, so this removes nothing today); everything else, from
        // the `# Cluster` header to the final CRLF, must be Redis's.
        let got = remask_string(&got, |t| {
            t.split_inclusive("\r\n")
                .filter(|l| !l.starts_with("cluster_bus_"))
                .collect()
        });
        assert_bytes(&format!("infocluster_A.resp{p}"), &got, &golden("infocluster_A", p));
    }
}

#[tokio::test]
async fn moved_ssubscribe() {
    exact(NODE_A, "moved_ssubscribe", &["SSUBSCRIBE", "mychannel"]).await;
}

#[tokio::test]
async fn moved_spublish() {
    exact(NODE_A, "moved_spublish", &["SPUBLISH", "mychannel", "hi"]).await;
}

#[tokio::test]
async fn moved_sunsubscribe() {
    exact(NODE_A, "moved_sunsubscribe", &["SUNSUBSCRIBE", "mychannel"]).await;
}

#[tokio::test]
async fn bare_sunsubscribe() {
    exact(NODE_A, "bare_sunsubscribe", &["SUNSUBSCRIBE"]).await;
}

#[tokio::test]
async fn crossslot_ssubscribe() {
    exact(
        NODE_B,
        "crossslot_ssubscribe",
        &["SSUBSCRIBE", "channel.0", "channel.1"],
    )
    .await;
}

#[tokio::test]
async fn crossslot_sunsubscribe() {
    exact(
        NODE_B,
        "crossslot_sunsubscribe",
        &["SUNSUBSCRIBE", "channel.0", "channel.1"],
    )
    .await;
}

#[tokio::test]
async fn moved_on_replica_other_shard() {
    exact(NODE_D, "moved_on_replica_other_shard", &["SSUBSCRIBE", "channel:123"]).await;
}

#[tokio::test]
async fn spublish_d() {
    exact(NODE_D, "spublish_D", &["SPUBLISH", "channel.0", "x"]).await;
}

#[tokio::test]
async fn ssubscribe_d() {
    let n = node(NODE_D).await;
    for p in PROTOS {
        let mut sub = n.conn(p).await;
        sub.send(&["SSUBSCRIBE", "channel.0"]).await;
        let mut got = sub.read_frame_bytes().await;
        // Redis's capture published on B (no bus here, so no B): publish on D itself,
        // which Redis serves locally too (README: `:1` with a subscriber on D).
        let mut publisher = n.conn(2).await;
        publisher.send(&["SPUBLISH", "channel.0", "hello"]).await;
        publisher.expect(b":1\r\n").await;
        got.extend(sub.read_frame_bytes().await);
        assert_bytes(&format!("ssubscribe_D.resp{p}"), &got, &golden("ssubscribe_D", p));
        sync(&mut sub).await;
    }
}

/// Redis's capture removed slot 3018 with CLUSTER DELSLOTS; fanout's topology is static,
/// so slot 3018 moves to shard b in the file and CLUSTER RELOAD rereads it. Either way
/// the node stops serving the slot and each subscriber of `channel:123` gets one
/// `sunsubscribe` push.
#[tokio::test]
async fn push_sunsubscribe() {
    for p in PROTOS {
        let n = node(NODE_A).await;
        let mut s1 = n.conn(p).await;
        s1.send(&["SSUBSCRIBE", "channel:123"]).await;
        s1.read_frame().await;
        let mut s2 = n.conn(p).await;
        s2.send(&["SSUBSCRIBE", "channel:123"]).await;
        s2.read_frame().await;
        s2.send(&["SSUBSCRIBE", "channel:0"]).await;
        s2.read_frame().await;

        let text = std::fs::read_to_string(&n.topology).unwrap();
        let moved = text
            .replacen("shard a slots 0-5460 ", "shard a slots 3019-5460 ", 1)
            .replacen("shard b slots 5461-10922 ", "shard b slots 0-3018,5461-10922 ", 1);
        assert_eq!(moved.matches("slots 0-3018,").count(), 1, "topology rewritten: {moved}");
        assert!(moved.contains("slots 3019-5460 "));
        std::fs::write(&n.topology, moved).unwrap();
        let mut ctl = n.conn(2).await;
        ctl.send(&["CLUSTER", "RELOAD"]).await;
        ctl.expect(b"+OK\r\n").await;

        let got1 = s1.read_frame_bytes().await;
        assert_bytes(
            &format!("push_sunsubscribe_one.resp{p}"),
            &got1,
            &golden("push_sunsubscribe_one", p),
        );
        let got2 = s2.read_frame_bytes().await;
        assert_bytes(
            &format!("push_sunsubscribe_two.resp{p}"),
            &got2,
            &golden("push_sunsubscribe_two", p),
        );
        sync(&mut s1).await;
        sync(&mut s2).await;
        // As in Redis, S2 stays subscribed to channel:0 (slot 4903, still A's).
        ctl.send(&["SPUBLISH", "channel:0", "m"]).await;
        ctl.expect(b":1\r\n").await;
        let m = s2.read_frame().await;
        assert_eq!(m.items()[2], Frame::bulk("m"));
        s1.expect_silence(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn help() {
    let n = node(NODE_A).await;
    // fanout's own subcommands, each a line and its description, where fanout puts them.
    let extra: [&[u8]; 4] = [
        b"+MYSHARDID\r\n",
        b"+    Return the node's shard id.\r\n",
        b"+RELOAD\r\n",
        b"+    Reread the topology file (cluster-config-file); fanout's topology is static otherwise.\r\n",
    ];
    for p in PROTOS {
        let got = elements(&n.reply(p, &["CLUSTER", "HELP"]).await);
        let want = elements(&golden("help", p));
        // fanout's extra entries: exactly MYSHARDID (after MYID, as in Redis 7.2) and
        // RELOAD (after NODES), each a name line followed by its description.
        let at = |line: &[u8]| {
            got.iter()
                .position(|l| l == line)
                .unwrap_or_else(|| panic!("no {}", show(line)))
        };
        assert_eq!(at(extra[1]), at(extra[0]) + 1);
        assert_eq!(at(extra[3]), at(extra[2]) + 1);
        assert_eq!(got[at(extra[0]) - 1], b"+    Return the node id.\r\n");
        assert_eq!(
            got[at(extra[2]) - 1],
            b"+    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...\r\n"
        );
        let mut rest: Vec<Vec<u8>> = got.into_iter().filter(|l| !extra.contains(&l.as_slice())).collect();
        assert_eq!(
            rest.len(),
            want.len(),
            "fanout's lines are Redis's plus exactly those four"
        );
        // MASK: the footer's wording. fanout's HELP footers are Redis 7.2's
        // `    Print this help.` where 7.0.15 says `    Prints this help.` (documented in
        // README.md, "Follows Redis 7.2 ...").
        let last = rest.len() - 1;
        assert_eq!(rest[last], b"+    Print this help.\r\n");
        assert_eq!(want[last], b"+    Prints this help.\r\n");
        rest[last] = want[last].clone();
        // Everything else, in order, byte for byte (same bytes in RESP2 and RESP3).
        assert_bytes(&format!("help.resp{p}"), &aggregate(b'*', &rest), &golden("help", p));
    }
}

#[tokio::test]
async fn command_info_shard() {
    // fanout follows Redis 7.2's command table, but for these five commands its reply is
    // byte for byte 7.0.15's (flags, ACL categories, key specs, arity, tips).
    exact(
        NODE_A,
        "command_info_shard",
        &[
            "COMMAND",
            "INFO",
            "spublish",
            "ssubscribe",
            "sunsubscribe",
            "publish",
            "subscribe",
        ],
    )
    .await;
}

/// HELLO 3 (captured with RESP3 only).
#[tokio::test]
async fn hello3() {
    for (port, name) in [(NODE_A, "hello3_A"), (NODE_D, "hello3_D")] {
        let n = node(port).await;
        let mut c = n.srv.raw().await;
        c.send(&["HELLO", "3"]).await;
        let got = c.read_frame_bytes().await;
        let masked = |raw: &[u8]| {
            let mut e = elements(raw);
            for i in (0..e.len()).step_by(2) {
                match e[i].as_slice() {
                    // MASK: the client id (README: volatile).
                    b"$2\r\nid\r\n" => e[i + 1] = b":<id>\r\n".to_vec(),
                    // MASK: the version. fanout reports 7.2.4 (README.md, "Follows Redis 7.2").
                    b"$7\r\nversion\r\n" => e[i + 1] = b"$<version>\r\n".to_vec(),
                    _ => {}
                }
            }
            aggregate(raw[0], &e)
        };
        assert_bytes(&format!("{name}.resp3"), &masked(&got), &masked(&golden(name, 3)));
    }
}
