//! Several fanout nodes as one Redis Cluster, with a real nats-server as the bus: slot
//! routing (MOVED, CROSSSLOT) through the `redis` crate's cluster client and raw RESP,
//! PUBLISH across nodes in order, patterns, topology reload, replicas, the faults
//! (nats-server stopped and restarted, a node killed with SIGKILL and restarted) and
//! the replicated mode.
//!
//! Needs `nats-server` (`apt-get install nats-server`; `.ci/run` installs it): without
//! it each test says so and passes. Nodes are child processes of the built binary on
//! free loopback ports, killed on drop; every wait is bounded.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::child::{free_port, free_ports, Proc};
use common::{Frame, RawConn};

/// How long any one expected event may take (2 shared cores, several processes).
const LIMIT: Duration = Duration::from_secs(10);
/// `cluster-node-timeout` for these nodes: failures show quickly.
const NODE_TIMEOUT_MS: &str = "2000";

fn nats_server() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/bin")])
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
}

macro_rules! need_nats {
    () => {
        match nats_server() {
            Some(p) => p,
            None => {
                eprintln!("skipped: nats-server is not installed (apt-get install nats-server; .ci/run installs it)");
                return;
            }
        }
    };
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + LIMIT;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start_nats(bin: &Path, port: u16, extra: &[&str]) -> Proc {
    let mut cmd = Command::new(bin);
    cmd.args(["-a", "127.0.0.1", "-p", &port.to_string()]).args(extra);
    let p = Proc::spawn(cmd);
    wait_port(port);
    p
}

/// A test cluster: one nats-server and fanout nodes named by their ports.
struct Cluster {
    dir: tempfile::TempDir,
    nats_bin: PathBuf,
    nats_port: u16,
    nats: Option<Proc>,
    ports: Vec<u16>,
    nodes: Vec<Option<Proc>>,
    /// Extra directives for every node.
    extra: Vec<String>,
}

impl Cluster {
    fn topology_path(&self) -> PathBuf {
        self.dir.path().join("cluster.conf")
    }

    fn write_topology(&self, text: &str) {
        std::fs::write(self.topology_path(), text).unwrap();
    }

    /// `shards[i]` is the list of node indexes of shard i (primary first) and its slots.
    fn topology(&self, shards: &[(&str, &[usize])]) -> String {
        let mut s = String::from("# written by tests/cluster.rs\n");
        for (i, (slots, nodes)) in shards.iter().enumerate() {
            s += &format!("shard s{i} slots {slots} primary 127.0.0.1:{}", self.ports[nodes[0]]);
            for &r in &nodes[1..] {
                s += &format!(" replica 127.0.0.1:{}", self.ports[r]);
            }
            s += "\n";
        }
        s
    }

    fn new(bin: PathBuf, nodes: usize, extra: &[&str]) -> Cluster {
        let nats_port = free_port();
        let nats = start_nats(&bin, nats_port, &[]);
        Cluster {
            dir: tempfile::tempdir().unwrap(),
            nats_bin: bin,
            nats_port,
            nats: Some(nats),
            ports: free_ports(nodes),
            nodes: (0..nodes).map(|_| None).collect(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Three one-node shards (Redis's default split), nodes 0, 1, 2; a fourth node, if
    /// there is one, is a replica of shard 1.
    fn three_shards(bin: PathBuf, with_replica: bool) -> Cluster {
        let c = Cluster::new(bin, if with_replica { 4 } else { 3 }, &[]);
        let b: &[usize] = if with_replica { &[1, 3] } else { &[1] };
        c.write_topology(&c.topology(&[("0-5460", &[0]), ("5461-10922", b), ("10923-16383", &[2])]));
        c
    }

    fn addr(&self, i: usize) -> SocketAddr {
        ([127, 0, 0, 1], self.ports[i]).into()
    }

    fn start(&mut self, i: usize, cluster_enabled: bool) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fanout"));
        cmd.args(["--port", &self.ports[i].to_string(), "--loglevel", "warning"])
            .args(["--cluster-bus", &format!("nats://127.0.0.1:{}", self.nats_port)])
            .args(["--cluster-node-timeout", NODE_TIMEOUT_MS]);
        if cluster_enabled {
            cmd.args(["--cluster-enabled", "yes", "--cluster-config-file"])
                .arg(self.topology_path());
        }
        cmd.args(&self.extra);
        let mut p = Proc::spawn(cmd);
        p.wait_ready(self.addr(i), LIMIT);
        self.nodes[i] = Some(p);
    }

    fn start_all(&mut self, cluster_enabled: bool) {
        for i in 0..self.ports.len() {
            self.start(i, cluster_enabled);
        }
    }

    async fn conn(&self, i: usize) -> RawConn {
        RawConn::connect(self.addr(i)).await
    }

    async fn info_cluster(&self, i: usize) -> String {
        let mut c = self.conn(i).await;
        c.call(&["INFO", "cluster"]).await.text()
    }

    /// Waits until every running node's bus is connected (and heard the others).
    async fn wait_bus(&self) {
        for i in 0..self.ports.len() {
            if self.nodes[i].is_none() {
                continue;
            }
            wait_for(&format!("node {i}'s bus"), || async move {
                common::info_field(&self.info_cluster(i).await, "cluster_bus_connected").as_deref() == Some("1")
            })
            .await;
        }
    }

    fn kill_node(&mut self, i: usize) {
        let mut p = self.nodes[i].take().expect("running");
        unsafe { libc::kill(p.pid() as i32, libc::SIGKILL) };
        p.wait_exit(LIMIT).expect("SIGKILL ends the node");
    }

    fn stop_nats(&mut self) {
        let mut p = self.nats.take().expect("running");
        unsafe { libc::kill(p.pid() as i32, libc::SIGKILL) };
        p.wait_exit(LIMIT).expect("nats-server ends");
    }

    fn restart_nats(&mut self) {
        self.nats = Some(start_nats(&self.nats_bin, self.nats_port, &[]));
    }

    async fn cluster_client(
        &self,
    ) -> (
        redis::cluster_async::ClusterConnection,
        tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let urls: Vec<String> = (0..self.ports.len())
            .map(|i| format!("redis://{}/", self.addr(i)))
            .collect();
        let client = redis::cluster::ClusterClientBuilder::new(urls)
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(tx)
            .build()
            .unwrap();
        let con = tokio::time::timeout(LIMIT, client.get_async_connection())
            .await
            .expect("cluster connect timed out")
            .expect("cluster connect");
        (con, rx)
    }
}

async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        if check().await {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The next push (RESP3) or array (RESP2) a subscriber reads, as texts.
async fn message(c: &mut RawConn) -> Vec<String> {
    c.read_frame()
        .await
        .items()
        .iter()
        .map(|f| match f {
            Frame::Int(n) => n.to_string(),
            f => f.text(),
        })
        .collect()
}

async fn next_push(rx: &mut tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>) -> redis::PushInfo {
    tokio::time::timeout(LIMIT, rx.recv())
        .await
        .expect("no push")
        .expect("push channel closed")
}

fn push_texts(p: &redis::PushInfo) -> Vec<String> {
    p.data
        .iter()
        .map(|v| match v {
            redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            redis::Value::Int(n) => n.to_string(),
            other => format!("{other:?}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_client_routes_shard_channels_and_keys_by_slot() {
    let bin = need_nats!();
    let mut c = Cluster::three_shards(bin, false);
    c.start_all(true);
    c.wait_bus().await;
    let (mut con, mut pushes) = c.cluster_client().await;
    // One shard channel on each node: channel:123 (slot 3018), mychannel (10059),
    // shard{foo} (12182).
    let channels = ["channel:123", "mychannel", "shard{foo}"];
    for ch in channels {
        con.ssubscribe(ch).await.unwrap();
    }
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let p = next_push(&mut pushes).await;
        if p.kind == redis::PushKind::SSubscribe {
            seen.push(push_texts(&p)[0].clone());
        }
    }
    for ch in channels {
        let n: i64 = redis::cmd("SPUBLISH")
            .arg(ch)
            .arg(format!("to {ch}"))
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(
            n, 1,
            "SPUBLISH {ch} is answered by the slot's node, where the subscriber is"
        );
        let p = next_push(&mut pushes).await;
        assert_eq!(p.kind, redis::PushKind::SMessage);
        assert_eq!(push_texts(&p), vec![ch.to_string(), format!("to {ch}")]);
    }
    // Stream keys live on their slot's node.
    for (i, key) in ["{user1}:events", "foo", "bar"].iter().enumerate() {
        let _: String = redis::cmd("XADD")
            .arg(key)
            .arg("*")
            .arg("n")
            .arg(i)
            .query_async(&mut con)
            .await
            .unwrap();
        let len: i64 = redis::cmd("XLEN").arg(key).query_async(&mut con).await.unwrap();
        assert_eq!(len, 1);
    }
    // Each key is on exactly one node: the one its slot maps to.
    let mut found = 0;
    for i in 0..3 {
        let mut raw = c.conn(i).await;
        raw.send(&["READONLY"]).await;
        raw.expect(b"+OK\r\n").await;
        for key in ["foo", "bar"] {
            if let Frame::Int(1) = raw.call(&["EXISTS", key]).await {
                found += 1;
            }
        }
    }
    assert_eq!(found, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moved_crossslot_and_the_static_topology_through_raw_resp() {
    let bin = need_nats!();
    let mut c = Cluster::three_shards(bin, false);
    c.start_all(true);
    let b_port = c.ports[1];
    let mut a = c.conn(0).await;
    for cmd in [
        &["SSUBSCRIBE", "mychannel"][..],
        &["SPUBLISH", "mychannel", "x"],
        &["SUNSUBSCRIBE", "mychannel"],
    ] {
        a.send(cmd).await;
        a.expect_error(&format!("MOVED 10059 127.0.0.1:{b_port}")).await;
    }
    // A bare SUNSUBSCRIBE names no channel: answered here, as Redis does.
    a.send(&["SUNSUBSCRIBE"]).await;
    a.expect(b"*3\r\n$12\r\nsunsubscribe\r\n$-1\r\n:0\r\n").await;
    a.send(&["XADD", "mychannel", "*", "f", "v"]).await;
    a.expect_error(&format!("MOVED 10059 127.0.0.1:{b_port}")).await;
    a.send(&["SSUBSCRIBE", "channel:123", "channel.0"]).await;
    a.expect_error("CROSSSLOT Keys in request don't hash to the same slot")
        .await;
    a.send(&["EXISTS", "channel:123", "channel:0"]).await;
    a.expect_error("CROSSSLOT Keys in request don't hash to the same slot")
        .await;
    a.send(&["EXISTS", "{channel:123}x", "{channel:123}y"]).await;
    a.expect(b":0\r\n").await;
    // Keys of one slot in a transaction run; a transaction spanning slots does not.
    a.send(&["MULTI"]).await;
    a.expect(b"+OK\r\n").await;
    a.send(&["XADD", "{channel:123}a", "*", "f", "v"]).await;
    a.expect(b"+QUEUED\r\n").await;
    a.send(&["XADD", "{channel:123}b", "*", "f", "v"]).await;
    a.expect(b"+QUEUED\r\n").await;
    let r = a.call(&["EXEC"]).await;
    assert_eq!(r.items().len(), 2);
    a.send(&["MULTI"]).await;
    a.expect(b"+OK\r\n").await;
    a.send(&["XLEN", "channel:123"]).await;
    a.expect(b"+QUEUED\r\n").await;
    a.send(&["XLEN", "channel:0"]).await;
    a.expect(b"+QUEUED\r\n").await;
    a.send(&["EXEC"]).await;
    a.expect_error("CROSSSLOT Keys in request don't hash to the same slot")
        .await;
    // A queued command for another node aborts the transaction.
    a.send(&["MULTI"]).await;
    a.expect(b"+OK\r\n").await;
    a.send(&["XLEN", "mychannel"]).await;
    a.expect_error(&format!("MOVED 10059 127.0.0.1:{b_port}")).await;
    a.send(&["EXEC"]).await;
    a.expect_error("EXECABORT Transaction discarded because of previous errors.")
        .await;
    // The client-side commands, keys counted for real, bad input answered as Redis does.
    a.send(&["CLUSTER", "KEYSLOT", "{user1000}.following"]).await;
    a.expect(b":3443\r\n").await;
    a.send(&["CLUSTER", "COUNTKEYSINSLOT", "3018"]).await;
    a.expect(b":2\r\n").await;
    let keys = a.call(&["CLUSTER", "GETKEYSINSLOT", "3018", "1"]).await;
    assert_eq!(keys.items().len(), 1, "{keys:?}");
    for (cmd, err) in [
        (
            &["CLUSTER", "COUNTKEYSINSLOT", "x"][..],
            "ERR value is not an integer or out of range",
        ),
        (&["CLUSTER", "COUNTKEYSINSLOT", "16384"], "ERR Invalid slot"),
        (
            &["CLUSTER", "GETKEYSINSLOT", "1", "-1"],
            "ERR Invalid slot or number of keys",
        ),
        (
            &["CLUSTER", "GETKEYSINSLOT", "1", "99999999999999999999"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["CLUSTER", "KEYSLOT"],
            "ERR wrong number of arguments for 'cluster|keyslot' command",
        ),
        (&["CLUSTER", "REPLICAS", "nosuchnode"], "ERR Unknown node nosuchnode"),
        (&["CLUSTER", "NOPE"], "ERR unknown subcommand 'NOPE'. Try CLUSTER HELP."),
    ] {
        a.send(cmd).await;
        a.expect_error(err).await;
    }
    let huge = "k".repeat(1 << 20);
    a.send(&["CLUSTER", "KEYSLOT", &huge]).await;
    assert!(matches!(a.read_frame().await, Frame::Int(s) if (0..16384).contains(&s)));
    a.send(&["SELECT", "1"]).await;
    a.expect_error("ERR SELECT is not allowed in cluster mode").await;
    let info = a.call(&["CLUSTER", "INFO"]).await.text();
    assert!(
        info.starts_with("cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\n"),
        "{info}"
    );
    assert!(info.contains("cluster_known_nodes:3\r\ncluster_size:3\r\n"), "{info}");
    let err = a.call(&["CLUSTER", "MEET", "127.0.0.1", "7000"]).await;
    assert!(
        matches!(&err, Frame::Error(e) if e.contains("topology is static")),
        "{err:?}"
    );
    let hello = a.call(&["HELLO", "3"]).await;
    let Frame::Map(fields) = &hello else {
        panic!("{hello:?}")
    };
    assert!(
        fields.iter().any(|(k, v)| k.text() == "mode" && v.text() == "cluster"),
        "HELLO reports mode cluster: {hello:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_on_one_node_reaches_subscribers_on_every_node_in_order() {
    let bin = need_nats!();
    let mut c = Cluster::three_shards(bin, false);
    c.start_all(true);
    c.wait_bus().await;
    // A subscriber on each node, RESP2 and RESP3, and a pattern subscriber on node 2.
    let mut subs = Vec::new();
    for (i, resp3) in [(0, false), (1, false), (2, true)] {
        let mut s = c.conn(i).await;
        if resp3 {
            s.call(&["HELLO", "3"]).await;
        }
        s.send(&["SUBSCRIBE", "news.sports"]).await;
        assert_eq!(message(&mut s).await, ["subscribe", "news.sports", "1"]);
        subs.push(s);
    }
    let mut p = c.conn(2).await;
    p.send(&["PSUBSCRIBE", "news.*"]).await;
    assert_eq!(message(&mut p).await, ["psubscribe", "news.*", "1"]);
    // At once, no waiting: once a subscription is confirmed, a PUBLISH made anywhere
    // reaches it (the bus confirmed its interest first).
    let mut publisher = c.conn(0).await;
    const N: usize = 300;
    for n in 0..N {
        publisher.send(&["PUBLISH", "news.sports", &format!("m{n}")]).await;
    }
    for _ in 0..N {
        // PUBLISH counts this node's receivers only, as Redis Cluster does.
        assert_eq!(publisher.read_frame().await.int(), 1);
    }
    for (i, s) in subs.iter_mut().enumerate() {
        for n in 0..N {
            assert_eq!(
                message(s).await,
                ["message", "news.sports", &format!("m{n}")],
                "subscriber on node {i}"
            );
        }
    }
    for n in 0..N {
        assert_eq!(
            message(&mut p).await,
            ["pmessage", "news.*", "news.sports", &format!("m{n}")]
        );
    }
    // A channel only node 1 wants: the others get nothing of it from the bus.
    let mut only = c.conn(1).await;
    only.send(&["SUBSCRIBE", "private"]).await;
    message(&mut only).await;
    publisher.send(&["PUBLISH", "private", "hi"]).await;
    assert_eq!(publisher.read_frame().await.int(), 0);
    assert_eq!(message(&mut only).await, ["message", "private", "hi"]);
    // Interest routing: the publisher's node got nothing back (no echo); node 1 got
    // what its subscribers wanted; node 2, with a pattern, takes every channel, and
    // skipped the second copy of each news.sports message (exact + catch-all).
    let field = |info: &str, k: &str| common::info_field(info, k).unwrap().parse::<u64>().unwrap();
    assert_eq!(field(&c.info_cluster(0).await, "cluster_bus_messages_received"), 0);
    assert_eq!(
        field(&c.info_cluster(1).await, "cluster_bus_messages_received"),
        N as u64 + 1
    );
    wait_for("node 2 to take the private message too", || async {
        field(&c.info_cluster(2).await, "cluster_bus_messages_received") == N as u64 + 1
    })
    .await;
    assert_eq!(
        field(&c.info_cluster(2).await, "cluster_bus_duplicates_skipped"),
        N as u64
    );
    // Binary channel names cross too.
    let mut bin_sub = c.conn(1).await;
    bin_sub.send(&["SUBSCRIBE", "a b.c*>%\u{e9}"]).await;
    message(&mut bin_sub).await;
    publisher.send(&["PUBLISH", "a b.c*>%\u{e9}", "x"]).await;
    publisher.read_frame().await;
    assert_eq!(message(&mut bin_sub).await, ["message", "a b.c*>%\u{e9}", "x"]);
    // A channel too long for a NATS subject travels hashed, its name in each message;
    // a burst of them still arrives whole and in order.
    let long = "L.".repeat(1500);
    let mut long_sub = c.conn(2).await;
    long_sub.send(&["SUBSCRIBE", &long]).await;
    message(&mut long_sub).await;
    for n in 0..20 {
        publisher.send(&["PUBLISH", &long, &format!("l{n}")]).await;
    }
    for _ in 0..20 {
        publisher.read_frame().await;
    }
    for n in 0..20 {
        assert_eq!(
            message(&mut long_sub).await,
            ["message", long.as_str(), &format!("l{n}")]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_that_moves_a_slot_pushes_sunsubscribe() {
    let bin = need_nats!();
    let mut c = Cluster::three_shards(bin, false);
    c.start_all(true);
    let mut s = c.conn(0).await;
    s.call(&["HELLO", "3"]).await;
    s.send(&["SSUBSCRIBE", "channel:123"]).await; // slot 3018
    assert_eq!(message(&mut s).await, ["ssubscribe", "channel:123", "1"]);
    s.send(&["SSUBSCRIBE", "channel:0"]).await; // slot 4903
    assert_eq!(message(&mut s).await, ["ssubscribe", "channel:0", "2"]);
    // Slots 0-4000 move to shard 1.
    c.write_topology(&c.topology(&[("4001-5460", &[0]), ("0-4000,5461-10922", &[1]), ("10923-16383", &[2])]));
    // Node 2 reloads last: until then its heartbeats carry another topology, which the
    // others count (and log).
    c.wait_bus().await;
    for i in [0, 1] {
        let mut n = c.conn(i).await;
        n.send(&["CLUSTER", "RELOAD"]).await;
        n.expect(b"+OK\r\n").await;
    }
    wait_for("node 0 to see node 2's other topology", || async {
        common::info_field(&c.info_cluster(0).await, "cluster_bus_topology_mismatches").as_deref() != Some("0")
    })
    .await;
    for i in 0..3 {
        let mut n = c.conn(i).await;
        n.send(&["CLUSTER", "RELOAD"]).await;
        n.expect(b"+OK\r\n").await;
    }
    s.expect(b">3\r\n$12\r\nsunsubscribe\r\n$11\r\nchannel:123\r\n:1\r\n")
        .await;
    let mut a = c.conn(0).await;
    a.send(&["SPUBLISH", "channel:0", "still"]).await;
    a.expect(b":1\r\n").await;
    assert_eq!(message(&mut s).await, ["smessage", "channel:0", "still"]);
    a.send(&["SSUBSCRIBE", "channel:123"]).await;
    a.expect_error(&format!("MOVED 3018 127.0.0.1:{}", c.ports[1])).await;
    // A file clients would refuse is refused, and the topology in force stays.
    c.write_topology("shard x slots 0-100 primary 127.0.0.1:1\n");
    let err = a.call(&["CLUSTER", "RELOAD"]).await;
    assert!(matches!(&err, Frame::Error(e) if e.contains("not assigned")), "{err:?}");
    a.send(&["SPUBLISH", "channel:0", "again"]).await;
    a.expect(b":1\r\n").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_serves_its_shards_channels() {
    let bin = need_nats!();
    let mut c = Cluster::three_shards(bin, true);
    c.start_all(true);
    c.wait_bus().await;
    // channel.0 is slot 7312: shard 1, primary node 1, replica node 3.
    let mut on_replica = c.conn(3).await;
    on_replica.send(&["SSUBSCRIBE", "channel.0"]).await;
    assert_eq!(message(&mut on_replica).await, ["ssubscribe", "channel.0", "1"]);
    let mut on_primary = c.conn(1).await;
    on_primary.send(&["SSUBSCRIBE", "channel.0"]).await;
    assert_eq!(message(&mut on_primary).await, ["ssubscribe", "channel.0", "1"]);
    let mut p = c.conn(1).await;
    p.send(&["SPUBLISH", "channel.0", "from the primary"]).await;
    p.expect(b":1\r\n").await;
    assert_eq!(
        message(&mut on_replica).await,
        ["smessage", "channel.0", "from the primary"]
    );
    assert_eq!(
        message(&mut on_primary).await,
        ["smessage", "channel.0", "from the primary"]
    );
    let mut r = c.conn(3).await;
    r.send(&["SPUBLISH", "channel.0", "from the replica"]).await;
    r.expect(b":1\r\n").await;
    assert_eq!(
        message(&mut on_primary).await,
        ["smessage", "channel.0", "from the replica"]
    );
    // Other shards' channels and keyed writes are redirected to the primary.
    r.send(&["SSUBSCRIBE", "channel:123"]).await;
    r.expect_error(&format!("MOVED 3018 127.0.0.1:{}", c.ports[0])).await;
    r.send(&["XADD", "channel.0", "*", "f", "v"]).await;
    r.expect_error(&format!("MOVED 7312 127.0.0.1:{}", c.ports[1])).await;
    let slots = r.call(&["CLUSTER", "SLOTS"]).await;
    assert_eq!(slots.items()[1].items().len(), 4, "the replica is listed: {slots:?}");
    let nodes = r.call(&["CLUSTER", "NODES"]).await.text();
    assert!(nodes.contains(" myself,slave "), "{nodes}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_outage_and_a_killed_node_are_visible_and_recovered() {
    let bin = need_nats!();
    let mut c = Cluster::three_shards(bin, false);
    c.start_all(true);
    c.wait_bus().await;
    let mut far = c.conn(1).await;
    far.send(&["SUBSCRIBE", "alerts"]).await;
    message(&mut far).await;
    let mut near = c.conn(0).await;
    near.send(&["SUBSCRIBE", "alerts"]).await;
    message(&mut near).await;
    let mut a = c.conn(0).await;

    // The bus goes down: local delivery goes on, what could not cross is counted.
    c.stop_nats();
    wait_for("node 0 to see the bus down", || async {
        common::info_field(&c.info_cluster(0).await, "cluster_bus_connected").as_deref() == Some("0")
    })
    .await;
    a.send(&["PUBLISH", "alerts", "while down"]).await;
    a.expect(b":1\r\n").await;
    assert_eq!(message(&mut near).await, ["message", "alerts", "while down"]);
    let dropped = common::info_field(&c.info_cluster(0).await, "cluster_bus_dropped_messages").unwrap();
    assert!(dropped.parse::<u64>().unwrap() >= 1, "dropped {dropped}");
    far.expect_silence(Duration::from_millis(200)).await;
    // A bus outage longer than the node timeout does not fail the other nodes: nothing
    // new is known of them, and a static cluster has no failover to wait for.
    tokio::time::sleep(Duration::from_millis(NODE_TIMEOUT_MS.parse::<u64>().unwrap() + 500)).await;
    let info = a.call(&["CLUSTER", "INFO"]).await.text();
    assert!(info.starts_with("cluster_state:ok"), "{info}");
    a.send(&["XLEN", "channel:123"]).await;
    a.expect(b":0\r\n").await;

    // It comes back: the nodes reconnect by themselves and resubscribe their interest.
    c.restart_nats();
    c.wait_bus().await;
    a.send(&["PUBLISH", "alerts", "back"]).await;
    a.expect(b":1\r\n").await;
    assert_eq!(message(&mut far).await, ["message", "alerts", "back"]);
    message(&mut near).await;

    // A node killed with SIGKILL: after the node timeout the others say so.
    wait_for("node 0 to hear node 2", || async {
        let nodes = c.conn(0).await.call(&["CLUSTER", "NODES"]).await.text();
        nodes.lines().all(|l| !l.contains(",fail"))
    })
    .await;
    let c2_port = c.ports[2];
    c.kill_node(2);
    wait_for("node 0 to report node 2 failed", || async {
        let mut n = c.conn(0).await;
        let nodes = n.call(&["CLUSTER", "NODES"]).await.text();
        let info = n.call(&["CLUSTER", "INFO"]).await.text();
        info.contains("cluster_state:fail")
            && nodes
                .lines()
                .any(|l| l.contains(&format!(":{c2_port}@")) && l.contains(",fail"))
    })
    .await;
    let nodes = a.call(&["CLUSTER", "NODES"]).await.text();
    let line = nodes.lines().find(|l| l.contains(&format!(":{c2_port}@"))).unwrap();
    assert!(
        line.contains("master,fail") && line.contains(" disconnected "),
        "{nodes}\n{}",
        a.call(&["CLUSTER", "INFO"]).await.text()
    );
    // Keys of the dead node's slots are down; pub/sub is not.
    a.send(&["XLEN", "channel:123"]).await;
    a.expect_error("CLUSTERDOWN The cluster is down").await;
    a.send(&["PUBLISH", "alerts", "during"]).await;
    a.expect(b":1\r\n").await;
    assert_eq!(message(&mut far).await, ["message", "alerts", "during"]);
    message(&mut near).await;

    // It restarts: the cluster is whole again and its new subscribers get messages.
    c.start(2, true);
    c.wait_bus().await;
    wait_for("cluster_state:ok again", || async {
        c.conn(0)
            .await
            .call(&["CLUSTER", "INFO"])
            .await
            .text()
            .contains("cluster_state:ok")
    })
    .await;
    let mut back = c.conn(2).await;
    back.send(&["SUBSCRIBE", "alerts"]).await;
    message(&mut back).await;
    a.send(&["PUBLISH", "alerts", "after"]).await;
    a.expect(b":1\r\n").await;
    assert_eq!(message(&mut back).await, ["message", "alerts", "after"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicated_mode_serves_standalone_clients_from_every_node() {
    let bin = need_nats!();
    let metrics_port = free_port();
    let metrics = format!("127.0.0.1:{metrics_port}");
    let mut c = Cluster::new(bin.clone(), 2, &["--metrics-addr", &metrics]);
    c.start(0, false);
    c.extra.clear();
    c.start(1, false);
    c.wait_bus().await;
    let mut sub = c.conn(1).await;
    sub.send(&["SUBSCRIBE", "events"]).await;
    message(&mut sub).await;
    let mut ssub = c.conn(1).await;
    ssub.send(&["SSUBSCRIBE", "orders"]).await;
    message(&mut ssub).await;
    let mut p = c.conn(0).await;
    p.send(&["PUBLISH", "events", "e1"]).await;
    p.expect(b":0\r\n").await;
    p.send(&["SPUBLISH", "orders", "o1"]).await;
    p.expect(b":0\r\n").await;
    assert_eq!(message(&mut sub).await, ["message", "events", "e1"]);
    assert_eq!(message(&mut ssub).await, ["smessage", "orders", "o1"]);
    p.send(&["CLUSTER", "INFO"]).await;
    p.expect_error("ERR This instance has cluster support disabled").await;
    // /metrics shows the bus.
    let scrape = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&metrics).unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: t\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    for line in [
        "fanout_cluster_bus_connected 1",
        "fanout_cluster_bus_messages_sent_total 2",
    ] {
        assert!(scrape.lines().any(|l| l == line), "{line} in:\n{scrape}");
    }

    // A message larger than the NATS server's max_payload is refused with a clear error.
    c.stop_nats();
    let conf = c.dir.path().join("nats.conf");
    std::fs::write(&conf, "max_payload: 1024\n").unwrap();
    c.nats = Some(start_nats(&bin, c.nats_port, &["-c", conf.to_str().unwrap()]));
    c.wait_bus().await;
    let big = "x".repeat(2000);
    let err = p.call(&["PUBLISH", "events", &big]).await;
    assert!(matches!(&err, Frame::Error(e) if e.contains("1024")), "{err:?}");
    p.send(&["PUBLISH", "events", "small"]).await;
    p.expect(b":0\r\n").await;
    assert_eq!(message(&mut sub).await, ["message", "events", "small"]);
}

#[test]
fn a_node_missing_from_its_topology_or_a_partial_map_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.conf");
    let port = free_port();
    for (text, why) in [
        (
            format!("shard a slots 0-16383 primary 127.0.0.1:{}\n", port + 1),
            "not in the topology",
        ),
        (
            format!("shard a slots 0-16000 primary 127.0.0.1:{port}\n"),
            "383 of 16384 slots are not assigned",
        ),
    ] {
        std::fs::write(&file, text).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fanout"));
        cmd.args([
            "--port",
            &port.to_string(),
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
        ])
        .arg(&file);
        let mut p = Proc::spawn(cmd);
        let status = p.wait_exit(LIMIT).expect("exits");
        assert!(!status.success());
        std::thread::sleep(Duration::from_millis(50));
        assert!(p.stderr().contains(why), "{}", p.stderr());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_credentials_come_from_the_directives() {
    let bin = need_nats!();
    let nats_port = free_port();
    let _nats = start_nats(&bin, nats_port, &["--user", "fan", "--pass", "s3cret"]);
    for (pass, connected) in [("s3cret", "1"), ("wrong", "0")] {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fanout"));
        cmd.args(["--port", &port.to_string(), "--loglevel", "warning"])
            .args(["--cluster-bus", &format!("nats://127.0.0.1:{nats_port}")])
            .args(["--cluster-bus-user", "fan", "--cluster-bus-password", pass]);
        let mut node = Proc::spawn(cmd);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        node.wait_ready(addr, LIMIT);
        if connected == "1" {
            wait_for("the bus to connect", || async {
                let info = RawConn::connect(addr).await.call(&["INFO", "cluster"]).await.text();
                common::info_field(&info, "cluster_bus_connected").as_deref() == Some("1")
            })
            .await;
        } else {
            wait_for("the refusal to be reported", || async {
                let info = RawConn::connect(addr).await.call(&["INFO", "cluster"]).await.text();
                common::info_field(&info, "cluster_bus_connected").as_deref() == Some("0")
                    && common::info_field(&info, "cluster_bus_last_error").is_some_and(|e| !e.is_empty())
            })
            .await;
        }
    }
}
