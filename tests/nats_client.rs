//! `cluster::nats` against a real nats-server (started here as a child on a free loopback
//! port, killed on drop), plus a fake server in this process for what a real one never does
//! (go silent, send garbage).
//!
//! Without nats-server on the machine each real-server test prints a "skipped" line and
//! passes. Every wait is bounded by [`WAIT`].

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fanout::cluster::nats::{parse_servers, Handler, Nats, Options, Refused, ServerAddr, TlsFiles};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// The longest any single expected event may take.
const WAIT: Duration = Duration::from_secs(10);

fn nats_server_bin() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
}

/// The nats-server binary, or `None` after printing why the test is skipped.
fn require_nats_server() -> Option<PathBuf> {
    let bin = nats_server_bin();
    if bin.is_none() {
        println!("skipped: nats-server not installed (apt-get install nats-server)");
    }
    bin
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A nats-server child process, killed and reaped on drop.
struct NatsServer {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NatsServer {
    fn start(bin: &Path, args: &[&str]) -> NatsServer {
        NatsServer::start_on(bin, free_port(), args)
    }

    /// Starts `nats-server -a 127.0.0.1 -p port args...` and waits until it sends INFO.
    fn start_on(bin: &Path, port: u16, args: &[&str]) -> NatsServer {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("nats-server.log");
        let child = Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn nats-server");
        let mut server = NatsServer {
            child,
            port,
            log,
            _dir: dir,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("nats-server exited early ({status}):\n{}", self.log());
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
                let mut head = [0u8; 5];
                if s.read_exact(&mut head).is_ok() && &head == b"INFO " {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "nats-server not ready:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Received {
    sid: u64,
    subject: String,
    payload: Bytes,
}

/// Records everything the client hands over.
#[derive(Default)]
struct Recorder {
    msgs: Mutex<Vec<Received>>,
    /// connection(up) calls, in order.
    events: Mutex<Vec<bool>>,
}

impl Handler for Recorder {
    fn message(&self, sid: u64, subject: &[u8], payload: Bytes) {
        self.msgs.lock().unwrap().push(Received {
            sid,
            subject: String::from_utf8_lossy(subject).into_owned(),
            payload,
        });
    }

    fn connection(&self, up: bool, _server: &str) {
        self.events.lock().unwrap().push(up);
    }
}

impl Recorder {
    fn msgs(&self) -> Vec<Received> {
        self.msgs.lock().unwrap().clone()
    }
    fn count(&self) -> usize {
        self.msgs.lock().unwrap().len()
    }
    fn events(&self) -> Vec<bool> {
        self.events.lock().unwrap().clone()
    }
}

/// A running client; dropping it shuts its loop down.
struct Client {
    nats: Arc<Nats>,
    rec: Arc<Recorder>,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Client {
    fn start(opts: Options) -> Client {
        let rec = Arc::new(Recorder::default());
        let nats = Nats::new(opts, rec.clone());
        let stop = CancellationToken::new();
        let task = Some(nats.run(stop.clone()));
        Client { nats, rec, stop, task }
    }

    /// Starts a client of `url` and waits until it is connected.
    async fn connected(opts: Options) -> Client {
        let c = Client::start(opts);
        c.wait_connected(true).await;
        c
    }

    async fn wait_connected(&self, up: bool) {
        let nats = self.nats.clone();
        wait_for(&format!("connected == {up}"), || nats.stats().connected == up).await;
    }

    async fn flush(&self) {
        tokio::time::timeout(WAIT, self.nats.flush())
            .await
            .expect("flush timed out")
            .expect("flush");
    }

    async fn shutdown(mut self) {
        self.stop.cancel();
        let task = self.task.take().unwrap();
        tokio::time::timeout(WAIT, task)
            .await
            .expect("run loop did not end")
            .unwrap();
    }
}

fn opts(url: &str) -> Options {
    Options {
        servers: parse_servers(url).unwrap(),
        reconnect_min: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(200),
        ..Options::default()
    }
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_and_sids_across_subjects_and_no_echo() {
    let Some(bin) = require_nats_server() else { return };
    let server = NatsServer::start(&bin, &[]);
    let a = Client::connected(opts(&server.url())).await;
    let b = Client::connected(opts(&server.url())).await;
    let (sa, sb) = (b.nats.subscribe(b"t.a"), b.nats.subscribe(b"t.b"));
    assert!(sb > sa);
    // The publisher subscribes too: with echo off it never gets its own messages.
    a.nats.subscribe(b"t.a");
    a.nats.subscribe(b"t.b");
    b.flush().await;
    a.flush().await;

    for i in 0..1000u32 {
        let subject: &[u8] = if i % 2 == 0 { b"t.a" } else { b"t.b" };
        a.nats.publish(subject, i.to_string().as_bytes()).unwrap();
    }
    a.flush().await;
    wait_for("1,000 messages", || b.rec.count() >= 1000).await;
    let got = b.rec.msgs();
    assert_eq!(got.len(), 1000);
    for (i, m) in got.iter().enumerate() {
        let (sid, subject) = if i % 2 == 0 { (sa, "t.a") } else { (sb, "t.b") };
        assert_eq!((m.sid, m.subject.as_str()), (sid, subject), "message {i}");
        assert_eq!(m.payload, i.to_string().as_bytes(), "message {i}");
    }
    assert_eq!(a.rec.count(), 0, "echo is off");

    let (sa_stats, sb_stats) = (a.nats.stats(), b.nats.stats());
    assert_eq!(
        (sa_stats.msgs_out, sa_stats.refused_out, sa_stats.lost_out),
        (1000, 0, 0)
    );
    assert_eq!(sb_stats.msgs_in, 1000);
    assert_eq!(
        sb_stats.bytes_in,
        (0..1000).map(|i: u32| i.to_string().len() as u64).sum::<u64>()
    );
    assert_eq!(sa_stats.server, format!("127.0.0.1:{}", server.port));
    assert_eq!(a.rec.events(), vec![true]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_copy_per_matching_sid() {
    let Some(bin) = require_nats_server() else { return };
    let server = NatsServer::start(&bin, &[]);
    let a = Client::connected(opts(&server.url())).await;
    let b = Client::connected(opts(&server.url())).await;
    let sids = [
        b.nats.subscribe(b"dup.x"),
        b.nats.subscribe(b"dup.x"),
        b.nats.subscribe(b"dup.>"),
    ];
    b.flush().await;
    for i in 0..100u32 {
        a.nats.publish(b"dup.x", &i.to_be_bytes()).unwrap();
    }
    a.flush().await;
    wait_for("300 copies", || b.rec.count() >= 300).await;
    let got = b.rec.msgs();
    // Each message's copies arrive together (in the server's own order of the
    // subscriptions, not necessarily sid order), messages in publish order.
    for (i, copies) in got.chunks(3).enumerate() {
        let mut seen: Vec<u64> = copies.iter().map(|m| m.sid).collect();
        seen.sort();
        assert_eq!(seen, sids, "message {i}");
        assert!(copies.iter().all(|m| m.payload == (i as u32).to_be_bytes()[..]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_stops_delivery() {
    let Some(bin) = require_nats_server() else { return };
    let server = NatsServer::start(&bin, &[]);
    let a = Client::connected(opts(&server.url())).await;
    let b = Client::connected(opts(&server.url())).await;
    let sid = b.nats.subscribe(b"u");
    let other = b.nats.subscribe(b"u.other");
    b.flush().await;
    a.nats.publish(b"u", b"1").unwrap();
    a.flush().await;
    wait_for("the first message", || b.rec.count() == 1).await;

    b.nats.unsubscribe(sid);
    b.nats.unsubscribe(sid); // twice, and an unknown sid: no-ops
    b.nats.unsubscribe(9999);
    b.flush().await;
    a.nats.publish(b"u", b"2").unwrap();
    a.nats.publish(b"u.other", b"3").unwrap();
    a.flush().await;
    wait_for("the message on the other sid", || b.rec.count() == 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let got = b.rec.msgs();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[1].sid, &got[1].payload[..]), (other, &b"3"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_a_server_restart() {
    let Some(bin) = require_nats_server() else { return };
    let server = NatsServer::start(&bin, &[]);
    let port = server.port;
    let a = Client::connected(opts(&server.url())).await;
    let b = Client::connected(opts(&server.url())).await;
    let sid = a.nats.subscribe(b"r.x");
    a.flush().await;
    b.nats.publish(b"r.x", b"before").unwrap();
    b.flush().await;
    wait_for("the message before the restart", || a.rec.count() == 1).await;

    drop(server);
    a.wait_connected(false).await;
    b.wait_connected(false).await;
    assert_eq!(b.nats.publish(b"r.x", b"lost"), Err(Refused::Disconnected));
    assert_eq!(b.nats.flush().await, Err(Refused::Disconnected));
    // Subscribing while down: sent on the next connect.
    let sid2 = a.nats.subscribe(b"r.y");

    let server = NatsServer::start_on(&bin, port, &[]);
    a.wait_connected(true).await;
    b.wait_connected(true).await;
    assert_eq!(a.rec.events(), vec![true, false, true]);
    // The re-sent SUBs are ahead of this PING.
    a.flush().await;
    b.nats.publish(b"r.x", b"after").unwrap();
    b.nats.publish(b"r.y", b"new").unwrap();
    b.flush().await;
    wait_for("the messages after the restart", || a.rec.count() == 3).await;
    let got = a.rec.msgs();
    assert_eq!((got[1].sid, &got[1].payload[..]), (sid, &b"after"[..]));
    assert_eq!((got[2].sid, &got[2].payload[..]), (sid2, &b"new"[..]));

    let stats = b.nats.stats();
    assert_eq!((stats.connects, stats.disconnects), (2, 1));
    assert_eq!(stats.refused_out, 1);
    assert!(!stats.last_error.is_empty());
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_and_password() {
    let Some(bin) = require_nats_server() else { return };
    let server = NatsServer::start(&bin, &["--user", "u", "--pass", "p"]);
    let good = Client::connected(Options {
        user: Some("u".into()),
        password: Some("p".into()),
        ..opts(&server.url())
    })
    .await;
    let in_url = Client::connected(opts(&format!("nats://u:p@127.0.0.1:{}", server.port))).await;
    let sid = good.nats.subscribe(b"auth");
    good.flush().await;
    in_url.nats.publish(b"auth", b"hi").unwrap();
    in_url.flush().await;
    wait_for("a message between authenticated clients", || good.rec.count() == 1).await;
    assert_eq!(good.rec.msgs()[0].sid, sid);

    for bad in [
        Options {
            user: Some("u".into()),
            password: Some("wrong".into()),
            ..opts(&server.url())
        },
        opts(&server.url()),
    ] {
        let c = Client::start(bad);
        let nats = c.nats.clone();
        wait_for("the auth failure", || {
            nats.stats().last_error.contains("Authorization Violation")
        })
        .await;
        let stats = c.nats.stats();
        assert!(!stats.connected && stats.connects == 0, "{stats:?}");
        assert!(c.rec.events().is_empty());
        assert_eq!(c.nats.publish(b"auth", b"x"), Err(Refused::Disconnected));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token() {
    let Some(bin) = require_nats_server() else { return };
    let server = NatsServer::start(&bin, &["--auth", "s3cret"]);
    let good = Client::connected(Options {
        token: Some("s3cret".into()),
        ..opts(&server.url())
    })
    .await;
    let in_url = Client::connected(opts(&format!("nats://s3cret@127.0.0.1:{}", server.port))).await;
    good.nats.subscribe(b"tok");
    good.flush().await;
    in_url.nats.publish(b"tok", b"hi").unwrap();
    in_url.flush().await;
    wait_for("a message between token clients", || good.rec.count() == 1).await;

    let bad = Client::start(Options {
        token: Some("nope".into()),
        ..opts(&server.url())
    });
    let nats = bad.nats.clone();
    wait_for("the auth failure", || {
        nats.stats().last_error.contains("Authorization Violation")
    })
    .await;
    assert_eq!(bad.nats.stats().connects, 0);
}

/// A CA and a server certificate for 127.0.0.1, as PEM files in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    /// A client certificate and key signed by the CA.
    client_cert: PathBuf,
    client_key: PathBuf,
    /// A CA that signed nothing here.
    other_ca: PathBuf,
}

fn new_ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, ca) = new_ca("nats test CA");
    let (other_pem, _) = new_ca("other CA");
    let leaf = |sans: &[&str], cn: &str, usage: ExtendedKeyUsagePurpose| {
        let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let server = leaf(
        &["127.0.0.1", "localhost"],
        "nats test server",
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let client = leaf(&[], "nats test client", ExtendedKeyUsagePurpose::ClientAuth);
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    Pki {
        ca: write("ca.pem", &ca_pem),
        cert: write("server.pem", &server.0),
        key: write("server.key", &server.1),
        client_cert: write("client.pem", &client.0),
        client_key: write("client.key", &client.1),
        other_ca: write("other.pem", &other_pem),
        dir,
    }
}

fn tls_opts(url: &str, ca: &Path) -> Options {
    Options {
        tls: Some(TlsFiles {
            ca_file: Some(ca.to_path_buf()),
            ..TlsFiles::default()
        }),
        ..opts(url)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls() {
    let Some(bin) = require_nats_server() else { return };
    let pki = pki();
    let (cert, key) = (pki.cert.display().to_string(), pki.key.display().to_string());
    let server = NatsServer::start(&bin, &["--tls", "--tlscert", &cert, "--tlskey", &key]);
    let a = Client::connected(tls_opts(&server.url(), &pki.ca)).await;
    let b = Client::connected(tls_opts(&format!("tls://127.0.0.1:{}", server.port), &pki.ca)).await;
    let sid = b.nats.subscribe(b"secure");
    b.flush().await;
    for i in 0..100u32 {
        a.nats.publish(b"secure", &vec![i as u8; 10_000]).unwrap();
    }
    a.flush().await;
    wait_for("100 messages over TLS", || b.rec.count() == 100).await;
    for (i, m) in b.rec.msgs().iter().enumerate() {
        assert_eq!((m.sid, m.payload.len(), m.payload[0]), (sid, 10_000, i as u8));
    }

    // A CA that did not sign the server's certificate: never connected.
    let wrong = Client::start(tls_opts(&server.url(), &pki.other_ca));
    let nats = wrong.nats.clone();
    wait_for("the certificate failure", || {
        nats.stats().last_error.contains("TLS handshake")
    })
    .await;
    assert_eq!(wrong.nats.stats().connects, 0, "{}", wrong.nats.stats().last_error);

    // The server requires TLS, the client has no CA for it: the system bundle does not
    // know the test CA.
    let no_ca = Client::start(opts(&server.url()));
    let nats = no_ca.nats.clone();
    wait_for("TLS without the CA fails", || nats.stats().last_error.contains("TLS")).await;
    assert_eq!(no_ca.nats.stats().connects, 0);

    // A server that verifies clients: in with the client certificate, refused without.
    let ca = pki.ca.display().to_string();
    let mutual = NatsServer::start(
        &bin,
        &["--tlsverify", "--tlscert", &cert, "--tlskey", &key, "--tlscacert", &ca],
    );
    let with_cert = Client::connected(Options {
        tls: Some(TlsFiles {
            ca_file: Some(pki.ca.clone()),
            cert_file: Some(pki.client_cert.clone()),
            key_file: Some(pki.client_key.clone()),
        }),
        ..opts(&mutual.url())
    })
    .await;
    with_cert.flush().await;
    let without = Client::start(tls_opts(&mutual.url(), &pki.ca));
    let nats = without.nats.clone();
    wait_for("a client without a certificate refused", || {
        !nats.stats().last_error.is_empty()
    })
    .await;
    let stats = without.nats.stats();
    assert_eq!(stats.connects, 0, "{}", stats.last_error);
    // TLS 1.3: the handshake completes on the client's side, the server's alert comes
    // with the first read.
    assert!(stats.last_error.contains("BadCertificate"), "{}", stats.last_error);
    let half = TlsFiles {
        ca_file: Some(pki.ca.clone()),
        cert_file: Some(pki.client_cert.clone()),
        key_file: None,
    };
    assert!(half
        .client_config()
        .unwrap_err()
        .contains("both cert_file and key_file"));

    // TLS asked of a server without it.
    let plain = NatsServer::start(&bin, &[]);
    let c = Client::start(tls_opts(&plain.url(), &pki.ca));
    let nats = c.nats.clone();
    wait_for("TLS refused by a plain server", || {
        nats.stats().last_error.contains("does not offer it")
    })
    .await;
    drop(pki.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_payload_from_info() {
    let Some(bin) = require_nats_server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nats.conf");
    std::fs::write(&conf, "max_payload: 1024\n").unwrap();
    let server = NatsServer::start(&bin, &["-c", conf.to_str().unwrap()]);
    let a = Client::connected(opts(&server.url())).await;
    let b = Client::connected(opts(&server.url())).await;
    assert_eq!(a.nats.max_payload(), 1024);
    assert_eq!(a.nats.stats().max_payload, 1024);
    b.nats.subscribe(b"big");
    b.flush().await;
    assert_eq!(a.nats.publish(b"big", &[0; 2000]), Err(Refused::TooLarge { max: 1024 }));
    assert_eq!(a.nats.publish(b"big", &[1; 1024]), Ok(()));
    a.flush().await;
    wait_for("the 1024-byte message", || b.rec.count() == 1).await;
    assert_eq!(b.rec.msgs()[0].payload.len(), 1024);
    assert_eq!(a.nats.stats().refused_out, 1);
}

/// A publisher that sends headers (HPUB): this client, which says `headers: false`, gets
/// the payload alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_are_stripped_for_this_client() {
    let Some(bin) = require_nats_server() else { return };
    let server = NatsServer::start(&bin, &[]);
    let b = Client::connected(opts(&server.url())).await;
    let sid = b.nats.subscribe(b"h");
    b.flush().await;

    let mut raw = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    raw.write_all(
        b"CONNECT {\"verbose\":false,\"headers\":true,\"protocol\":1}\r\n\
          HPUB h 18 23\r\nNATS/1.0\r\nA: b\r\n\r\nhello\r\nPING\r\n",
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    tokio::time::timeout(WAIT, async {
        while !seen.windows(6).any(|w| w == b"PONG\r\n") {
            let mut chunk = [0u8; 4096];
            let n = raw.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("no PONG from the raw connection");
    wait_for("the message with headers", || b.rec.count() == 1).await;
    assert_eq!(
        b.rec.msgs()[0],
        Received {
            sid,
            subject: "h".into(),
            payload: Bytes::from_static(b"hello"),
        }
    );
}

/// Shutdown writes what is buffered before the loop ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_flushes() {
    let Some(bin) = require_nats_server() else { return };
    let server = NatsServer::start(&bin, &[]);
    let a = Client::connected(opts(&server.url())).await;
    let b = Client::connected(opts(&server.url())).await;
    b.nats.subscribe(b"bye");
    b.flush().await;
    for i in 0..500u32 {
        a.nats.publish(b"bye", &i.to_be_bytes()).unwrap();
    }
    let (nats, rec) = (a.nats.clone(), a.rec.clone());
    a.shutdown().await;
    assert_eq!(rec.events(), vec![true, false]);
    assert_eq!(nats.publish(b"bye", b"late"), Err(Refused::Disconnected));
    wait_for("every message published before shutdown", || b.rec.count() == 500).await;
    assert_eq!(nats.stats().lost_out, 0);
}

/// With nothing draining the buffer (a single-threaded runtime and a synchronous loop),
/// `out_limit` refuses: one message always fits, the next does not.
#[tokio::test]
async fn full_output_buffer() {
    let Some(bin) = require_nats_server() else { return };
    let server = NatsServer::start(&bin, &[]);
    let a = Client::connected(Options {
        out_limit: 100,
        ..opts(&server.url())
    })
    .await;
    assert_eq!(a.nats.publish(b"f", &[0; 80]), Ok(()));
    assert_eq!(a.nats.publish(b"f", &[0; 10]), Err(Refused::Full));
    assert!(a.nats.stats().pending_bytes >= 80);
    a.flush().await;
    assert_eq!(a.nats.stats().pending_bytes, 0);
    assert_eq!(a.nats.publish(b"f", &[0; 10]), Ok(()));
    assert_eq!(a.nats.publish(b"bad subject", b""), Err(Refused::BadSubject));
}

/// A fake server: INFO, the CONNECT's PONG, then `then` (what a real server never does).
/// Counts the connections it took.
async fn fake_server(then: &'static [u8]) -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let _ = s.write_all(b"INFO {\"max_payload\":1048576}\r\n").await;
                let mut got = Vec::new();
                while !got.windows(6).any(|w| w == b"PING\r\n") {
                    let mut chunk = [0u8; 1024];
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = s.write_all(b"PONG\r\n").await;
                let _ = s.write_all(then).await;
                // Read and ignore everything, PINGs included.
                let mut sink = [0u8; 1024];
                while let Ok(n) = s.read(&mut sink).await {
                    if n == 0 {
                        return;
                    }
                }
            });
        }
    });
    (port, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_is_dropped_by_keepalive() {
    let (port, accepted) = fake_server(b"").await;
    let c = Client::connected(Options {
        servers: vec![ServerAddr::new("127.0.0.1", port)],
        ping_interval: Duration::from_millis(100),
        ..opts("nats://127.0.0.1")
    })
    .await;
    wait_for("a reconnect after the stale connection", || {
        accepted.load(Ordering::SeqCst) >= 2
    })
    .await;
    assert!(
        c.nats.stats().last_error.contains("no PONG"),
        "{}",
        c.nats.stats().last_error
    );
    assert!(c.rec.events().starts_with(&[true, false]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_is_a_protocol_error() {
    for (then, needle) in [
        (&b"BOGUS\r\n"[..], "unknown operation"),
        (&b"MSG a 1 99999999\r\n"[..], "over the 1048576 byte limit"),
        (&[b'x'; 5000][..], "control line longer than 4096"),
        (&b"MSG a 1 2\r\nabcd\r\n"[..], "malformed MSG"),
    ] {
        let (port, accepted) = fake_server(then).await;
        let c = Client::start(Options {
            servers: vec![ServerAddr::new("127.0.0.1", port)],
            ..opts("nats://127.0.0.1")
        });
        let nats = c.nats.clone();
        wait_for(needle, || nats.stats().last_error.contains(needle)).await;
        wait_for("a reconnect", || accepted.load(Ordering::SeqCst) >= 2).await;
        assert!(c.rec.msgs().is_empty());
    }
}
