//! TLS on `tls-port`: the `redis` crate's rustls client, `redis-cli --tls`, a raw rustls
//! client for exact checks, `tls-auth-clients yes|no|optional`, plain and TLS ports
//! together, start-up errors.
//!
//! Every test makes its own CA, server certificate (SAN 127.0.0.1 and localhost) and client
//! certificates with rcgen, in a temporary directory, plus a second "rogue" CA whose client
//! certificate the server must refuse.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use common::{client_field, redis_expect_err, RawConn, WAIT};

/// Test certificates, written to a temporary directory that lives as long as this.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    /// A client certificate from a CA the server does not trust.
    rogue_cert: PathBuf,
    rogue_key: PathBuf,
}

fn new_ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

/// A leaf certificate and its key, as PEM.
fn new_leaf(
    issuer: &Issuer<'static, KeyPair>,
    cn: &str,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, ca) = new_ca("fanout test CA");
    let (_, rogue_ca) = new_ca("rogue CA");
    let server = new_leaf(
        &ca,
        "fanout test server",
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let client = new_leaf(&ca, "fanout test client", &[], ExtendedKeyUsagePurpose::ClientAuth);
    let rogue = new_leaf(&rogue_ca, "rogue client", &[], ExtendedKeyUsagePurpose::ClientAuth);
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    Pki {
        ca: write("ca.crt", &ca_pem),
        server_cert: write("server.crt", &server.0),
        server_key: write("server.key", &server.1),
        client_cert: write("client.crt", &client.0),
        client_key: write("client.key", &client.1),
        rogue_cert: write("rogue.crt", &rogue.0),
        rogue_key: write("rogue.key", &rogue.1),
        _dir: dir,
    }
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// An in-process server listening on a plain and a TLS port (both picked by the OS).
struct TlsServer {
    plain: SocketAddr,
    tls: SocketAddr,
    stop: CancellationToken,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn tls_settings(pki: &Pki, overrides: &[(&str, &str)]) -> Arc<fanout::config::Settings> {
    let settings = Arc::new(fanout::config::Settings::default());
    for (k, v) in [
        ("port", "0".to_string()),
        ("bind", "127.0.0.1".to_string()),
        ("tls-port", "0".to_string()),
        ("tls-cert-file", path(&pki.server_cert)),
        ("tls-key-file", path(&pki.server_key)),
        ("tls-ca-cert-file", path(&pki.ca)),
    ] {
        settings.set(k, &v).unwrap();
    }
    for (k, v) in overrides {
        settings.set(k, v).unwrap_or_else(|e| panic!("set {k} {v}: {e}"));
    }
    settings
}

async fn start_tls(pki: &Pki, overrides: &[(&str, &str)]) -> TlsServer {
    let server = fanout::server::Server::bind(tls_settings(pki, overrides), None)
        .await
        .expect("bind");
    let tls = server.tls_addrs()[0];
    let (addrs, _broker, stop) = server.spawn();
    assert_ne!(addrs[0].port(), tls.port());
    TlsServer {
        plain: addrs[0],
        tls,
        stop,
    }
}

/// How a test client presents itself.
#[derive(Clone, Copy)]
enum Cert {
    None,
    Good,
    Rogue,
}

impl Cert {
    fn files(self, pki: &Pki) -> Option<(&Path, &Path)> {
        match self {
            Cert::None => None,
            Cert::Good => Some((&pki.client_cert, &pki.client_key)),
            Cert::Rogue => Some((&pki.rogue_cert, &pki.rogue_key)),
        }
    }
}

/// A `redis` crate client for the TLS port, trusting the test CA.
fn redis_tls_client(pki: &Pki, addr: SocketAddr, cert: Cert, resp3: bool) -> redis::Client {
    let client_tls = cert.files(pki).map(|(c, k)| redis::ClientTlsConfig {
        client_cert: std::fs::read(c).unwrap(),
        client_key: std::fs::read(k).unwrap(),
    });
    let url = if resp3 {
        format!("rediss://{addr}/?protocol=resp3")
    } else {
        format!("rediss://{addr}/")
    };
    redis::Client::build_with_tls(
        url,
        redis::TlsCertificates {
            client_tls,
            root_cert: Some(std::fs::read(&pki.ca).unwrap()),
        },
    )
    .expect("TLS client")
}

async fn redis_tls_conn(pki: &Pki, addr: SocketAddr, cert: Cert) -> redis::aio::MultiplexedConnection {
    tokio::time::timeout(
        WAIT,
        redis_tls_client(pki, addr, cert, false).get_multiplexed_async_connection(),
    )
    .await
    .expect("connect timed out")
    .expect("TLS connect")
}

/// Connects with the `redis` crate and sends PING: the reply, or the error text.
async fn redis_tls_ping(pki: &Pki, addr: SocketAddr, cert: Cert) -> Result<String, String> {
    let client = redis_tls_client(pki, addr, cert, false);
    tokio::time::timeout(WAIT, async move {
        let mut con = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        redis::cmd("PING")
            .query_async::<String>(&mut con)
            .await
            .map_err(|e| e.to_string())
    })
    .await
    .expect("PING over TLS timed out")
}

/// A rustls client config trusting the test CA, with or without a client certificate.
fn rustls_client_config(pki: &Pki, cert: Cert) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&pki.ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match cert.files(pki) {
        None => builder.with_no_client_auth(),
        Some((c, k)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(c).unwrap().map(Result::unwrap).collect(),
                PrivateKeyDer::from_pem_file(k).unwrap(),
            )
            .unwrap(),
    };
    Arc::new(config)
}

type RawTls = tokio_rustls::client::TlsStream<TcpStream>;

async fn raw_tls(pki: &Pki, addr: SocketAddr, cert: Cert) -> std::io::Result<RawTls> {
    tls_over(pki, TcpStream::connect(addr).await?, cert).await
}

async fn tls_over(pki: &Pki, tcp: TcpStream, cert: Cert) -> std::io::Result<RawTls> {
    let connector = tokio_rustls::TlsConnector::from(rustls_client_config(pki, cert));
    tokio::time::timeout(WAIT, connector.connect(ServerName::try_from("localhost").unwrap(), tcp))
        .await
        .expect("TLS handshake timed out")
}

/// Sends `request` and reads one line back (or whatever arrives before EOF).
async fn raw_call(s: &mut RawTls, request: &[u8]) -> std::io::Result<Vec<u8>> {
    s.write_all(request).await?;
    s.flush().await?;
    read_line(s).await
}

async fn read_line(s: &mut RawTls) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(WAIT, async {
        while !out.ends_with(b"\r\n") {
            if s.read(&mut byte).await? == 0 {
                break;
            }
            out.push(byte[0]);
        }
        Ok(out)
    })
    .await
    .expect("no reply in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_crate_subscribes_and_publishes_over_tls() {
    let pki = pki();
    let srv = start_tls(&pki, &[]).await;

    let mut sub = tokio::time::timeout(
        WAIT,
        redis_tls_client(&pki, srv.tls, Cert::Good, false).get_async_pubsub(),
    )
    .await
    .expect("connect timed out")
    .expect("TLS pubsub connect");
    sub.subscribe("news").await.unwrap();
    sub.psubscribe("n*").await.unwrap();

    let mut publisher = redis_tls_conn(&pki, srv.tls, Cert::Good).await;
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg("news")
        .arg("hello over tls")
        .query_async(&mut publisher)
        .await
        .unwrap();
    assert_eq!(receivers, 2);
    // Larger than one TLS record and than the read side's chunk, both ways.
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg("news")
        .arg(&big)
        .query_async(&mut publisher)
        .await
        .unwrap();
    assert_eq!(receivers, 2);

    let mut messages = std::pin::pin!(sub.on_message());
    for i in 0..4 {
        let m = tokio::time::timeout(WAIT, messages.next())
            .await
            .expect("no message in time")
            .expect("stream ended");
        if i < 2 {
            assert_eq!(m.get_channel_name(), "news");
            assert_eq!(m.get_payload::<String>().unwrap(), "hello over tls");
        } else {
            assert_eq!(m.get_payload_bytes(), &big[..]);
        }
    }

    // CLIENT LIST shows the TCP addresses of a TLS client.
    let info: String = redis::cmd("CLIENT")
        .arg("INFO")
        .query_async(&mut publisher)
        .await
        .unwrap();
    let laddr = client_field(&info, "laddr").unwrap();
    assert_eq!(laddr, srv.tls.to_string(), "{info}");
    let addr: SocketAddr = client_field(&info, "addr").unwrap().parse().unwrap();
    assert!(addr.ip().is_loopback(), "{info}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp3_pushes_over_tls() {
    let pki = pki();
    let srv = start_tls(&pki, &[]).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let cfg = redis::AsyncConnectionConfig::new().set_push_sender(tx);
    let mut con = tokio::time::timeout(
        WAIT,
        redis_tls_client(&pki, srv.tls, Cert::Good, true).get_multiplexed_async_connection_with_config(&cfg),
    )
    .await
    .unwrap()
    .unwrap();
    con.subscribe("ch").await.unwrap();
    let mut plain = RawConn::connect(srv.plain).await;
    assert_eq!(plain.call(&["PUBLISH", "ch", "resp3"]).await.int(), 1);
    loop {
        let push = common::next_push(&mut rx).await;
        if push.kind == redis::PushKind::Message {
            assert_eq!(common::value_bytes(&push.data[1]), b"resp3");
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_publisher_reaches_tls_subscriber_and_back() {
    let pki = pki();
    let srv = start_tls(&pki, &[]).await;

    let mut tls_sub = raw_tls(&pki, srv.tls, Cert::Good).await.unwrap();
    tls_sub
        .write_all(&common::resp_command(&["SUBSCRIBE", "mixed"]))
        .await
        .unwrap();
    tls_sub.flush().await.unwrap();
    let mut plain_sub = RawConn::connect(srv.plain).await;
    plain_sub.send(&["SUBSCRIBE", "mixed"]).await;
    plain_sub.read_frame().await;
    // The TLS subscription confirmation: *3 $9 subscribe $5 mixed :1.
    let mut confirm = Vec::new();
    for _ in 0..6 {
        confirm.extend(read_line(&mut tls_sub).await.unwrap());
    }
    assert_eq!(confirm, b"*3\r\n$9\r\nsubscribe\r\n$5\r\nmixed\r\n:1\r\n");

    let mut plain_pub = RawConn::connect(srv.plain).await;
    assert_eq!(plain_pub.call(&["PUBLISH", "mixed", "from plain"]).await.int(), 2);
    let mut msg = Vec::new();
    for _ in 0..7 {
        msg.extend(read_line(&mut tls_sub).await.unwrap());
    }
    assert_eq!(msg, b"*3\r\n$7\r\nmessage\r\n$5\r\nmixed\r\n$10\r\nfrom plain\r\n");
    let m = plain_sub.read_frame().await;
    assert_eq!(m.items()[2].text(), "from plain");

    let mut tls_pub = redis_tls_conn(&pki, srv.tls, Cert::Good).await;
    let n: i64 = redis::cmd("PUBLISH")
        .arg("mixed")
        .arg("from tls")
        .query_async(&mut tls_pub)
        .await
        .unwrap();
    assert_eq!(n, 2);
    let m = plain_sub.read_frame().await;
    assert_eq!(m.items()[2].text(), "from tls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_pings_over_tls() {
    let has_tls = std::process::Command::new("redis-cli").arg("--help").output().map(|o| {
        String::from_utf8_lossy(&o.stdout).contains("--tls") || String::from_utf8_lossy(&o.stderr).contains("--tls")
    });
    match has_tls {
        Ok(true) => {}
        Ok(false) => return eprintln!("redis-cli was built without TLS; skipping the redis-cli TLS test"),
        Err(_) => return eprintln!("redis-cli not found; skipping the redis-cli TLS test"),
    }
    let pki = pki();
    let srv = start_tls(&pki, &[]).await;
    let cli = |extra: &[&str], cert: Cert| {
        let mut cmd = tokio::process::Command::new("redis-cli");
        cmd.args(["--tls", "--cacert", &path(&pki.ca), "-h", "127.0.0.1"])
            .args(["-p", &srv.tls.port().to_string()]);
        if let Some((c, k)) = cert.files(&pki) {
            cmd.args(["--cert", &path(c), "--key", &path(k)]);
        }
        cmd.args(extra).kill_on_drop(true);
        async move {
            let out = tokio::time::timeout(WAIT, cmd.output())
                .await
                .expect("redis-cli timed out")
                .expect("redis-cli runs");
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        }
    };
    assert_eq!(cli(&["PING"], Cert::Good).await.trim(), "PONG");
    assert_eq!(cli(&["PUBLISH", "c", "m"], Cert::Good).await.trim(), "0");
    // Without a client certificate, `tls-auth-clients yes` turns redis-cli away.
    let out = cli(&["PING"], Cert::None).await;
    assert!(!out.contains("PONG"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_clients_yes_requires_a_trusted_certificate() {
    let pki = pki();
    let srv = start_tls(&pki, &[]).await;
    assert_eq!(redis_tls_ping(&pki, srv.tls, Cert::Good).await.unwrap(), "PONG");
    let e = redis_tls_ping(&pki, srv.tls, Cert::None).await.unwrap_err();
    eprintln!("no certificate: {e}");
    let e = redis_tls_ping(&pki, srv.tls, Cert::Rogue).await.unwrap_err();
    eprintln!("untrusted certificate: {e}");

    // Exactly: the server ends the handshake with an alert, and never answers.
    let r = match raw_tls(&pki, srv.tls, Cert::None).await {
        Ok(mut s) => raw_call(&mut s, b"PING\r\n").await,
        Err(e) => Err(e),
    };
    let e = r.expect_err("a client without a certificate must be refused");
    assert!(e.to_string().contains("CertificateRequired"), "{e}");
    let r = match raw_tls(&pki, srv.tls, Cert::Rogue).await {
        Ok(mut s) => raw_call(&mut s, b"PING\r\n").await,
        Err(e) => Err(e),
    };
    let e = r.expect_err("a client with an untrusted certificate must be refused");
    assert!(e.to_string().contains("UnknownCA"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_clients_no_accepts_clients_without_a_certificate() {
    let pki = pki();
    // No CA is needed when client certificates are not asked for.
    let srv = start_tls(&pki, &[("tls-auth-clients", "no"), ("tls-ca-cert-file", "")]).await;
    assert_eq!(redis_tls_ping(&pki, srv.tls, Cert::None).await.unwrap(), "PONG");
    let mut s = raw_tls(&pki, srv.tls, Cert::None).await.unwrap();
    assert_eq!(raw_call(&mut s, b"PING\r\n").await.unwrap(), b"+PONG\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_clients_optional_verifies_certificates_when_presented() {
    let pki = pki();
    let srv = start_tls(&pki, &[("tls-auth-clients", "optional")]).await;
    assert_eq!(redis_tls_ping(&pki, srv.tls, Cert::None).await.unwrap(), "PONG");
    assert_eq!(redis_tls_ping(&pki, srv.tls, Cert::Good).await.unwrap(), "PONG");
    let r = match raw_tls(&pki, srv.tls, Cert::Rogue).await {
        Ok(mut s) => raw_call(&mut s, b"PING\r\n").await,
        Err(e) => Err(e),
    };
    let e = r.expect_err("an untrusted certificate must be refused even when optional");
    assert!(e.to_string().contains("UnknownCA"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_handshakers_do_not_block_accepting_and_count_as_clients() {
    let pki = pki();
    let srv = start_tls(&pki, &[("maxclients", "2")]).await;
    // A peer that connects to the TLS port and never says a word.
    let silent = TcpStream::connect(srv.tls).await.unwrap();
    let mut ok = raw_tls(&pki, srv.tls, Cert::Good).await.unwrap();
    assert_eq!(raw_call(&mut ok, b"PING\r\n").await.unwrap(), b"+PONG\r\n");
    // The silent handshake holds the second slot: the next client is told why it is refused,
    // over TLS.
    let mut third = raw_tls(&pki, srv.tls, Cert::Good).await.unwrap();
    assert_eq!(
        read_line(&mut third).await.unwrap(),
        b"-ERR max number of clients reached\r\n"
    );
    let mut plain = RawConn::connect(srv.plain).await;
    plain.expect(b"-ERR max number of clients reached\r\n").await;
    // Once it goes away its slot is free again.
    drop(silent);
    common::wait_until("the silent handshake's slot to be freed", || async {
        let mut c = raw_tls(&pki, srv.tls, Cert::Good).await.unwrap();
        matches!(raw_call(&mut c, b"PING\r\n").await, Ok(r) if r == b"+PONG\r\n")
    })
    .await;
    // Failed handshakes give their slots back too.
    for _ in 0..3 {
        if let Ok(mut c) = raw_tls(&pki, srv.tls, Cert::Rogue).await {
            assert!(raw_call(&mut c, b"PING\r\n").await.is_err());
        }
    }
    common::wait_until("failed handshakes' slots to be freed", || async {
        let mut c = raw_tls(&pki, srv.tls, Cert::Good).await.unwrap();
        matches!(raw_call(&mut c, b"PING\r\n").await, Ok(r) if r == b"+PONG\r\n")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_directives_are_shown_and_immutable() {
    let pki = pki();
    let srv = start_tls(&pki, &[("tls-auth-clients", "OPTIONAL")]).await;
    let client = redis::Client::open(format!("redis://{}/", srv.plain)).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("tls-auth-clients")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(got, vec!["tls-auth-clients", "optional"]);
    for (name, value) in [
        ("tls-port", "6380"),
        ("tls-cert-file", "/x"),
        ("tls-key-file", "/x"),
        ("tls-ca-cert-file", "/x"),
        ("tls-auth-clients", "no"),
    ] {
        let e = redis_expect_err(&mut con, redis::cmd("CONFIG").arg("SET").arg(name).arg(value)).await;
        assert!(e.contains("can't set immutable config"), "{name}: {e}");
    }
    let settings = fanout::config::Settings::default();
    assert!(settings.set("tls-auth-clients", "maybe").is_err());
    assert!(settings.set("tls-port", "70000").is_err());
    assert_eq!(settings.get("tls-port").unwrap(), "0");
    assert_eq!(settings.get("tls-auth-clients").unwrap(), "yes");
}

#[tokio::test]
async fn startup_errors_name_the_directive_and_file() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "this is not PEM\n").unwrap();
    let broken = dir.path().join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let missing = dir.path().join("missing.pem");
    let (missing, garbage, broken) = (path(&missing), path(&garbage), path(&broken));
    let bind_err = |overrides: Vec<(&'static str, String)>| {
        let pki = &pki;
        async move {
            let o: Vec<(&str, &str)> = overrides.iter().map(|(k, v)| (*k, v.as_str())).collect();
            match fanout::server::Server::bind(tls_settings(pki, &o), None).await {
                Ok(_) => panic!("bind should fail with {overrides:?}"),
                Err(e) => e.to_string(),
            }
        }
    };
    let e = bind_err(vec![("tls-cert-file", missing.clone())]).await;
    assert!(
        e.contains("tls-cert-file") && e.contains(&missing) && e.contains("No such file"),
        "{e}"
    );
    let e = bind_err(vec![("tls-cert-file", garbage.clone())]).await;
    assert!(e.contains("tls-cert-file") && e.contains("no CERTIFICATE"), "{e}");
    let e = bind_err(vec![("tls-cert-file", broken.clone())]).await;
    assert!(e.contains("tls-cert-file") && e.contains("bad PEM"), "{e}");
    let e = bind_err(vec![("tls-key-file", garbage.clone())]).await;
    assert!(e.contains("tls-key-file") && e.contains("no usable private key"), "{e}");
    let e = bind_err(vec![("tls-key-file", path(&pki.client_key))]).await;
    assert!(e.contains("tls-key-file"), "a key that is not the certificate's: {e}");
    let e = bind_err(vec![("tls-ca-cert-file", missing.clone())]).await;
    assert!(e.contains("tls-ca-cert-file") && e.contains(&missing), "{e}");
    let e = bind_err(vec![("tls-ca-cert-file", String::new())]).await;
    assert!(e.contains("tls-ca-cert-file"), "{e}");
    let e = bind_err(vec![("tls-cert-file", String::new()), ("tls-port", "16380".into())]).await;
    assert!(e.contains("tls-cert-file"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_port_off_by_default_and_tls_only_with_port_0() {
    // No TLS files: tls-port 0 means no TLS listener, even with port 0.
    let plain = common::start_server().await;
    plain.assert_alive().await;

    // A fixed tls-port with port 0 serves TLS only, as in Redis.
    let pki = pki();
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = fanout::server::Server::bind(tls_settings(&pki, &[("tls-port", &free.to_string())]), None)
        .await
        .expect("bind");
    assert!(server.local_addrs().is_empty());
    assert_eq!(server.tls_addrs()[0].port(), free);
    let (_, _broker, stop) = server.spawn();
    let _stop = stop.drop_guard();
    let addr: SocketAddr = ([127, 0, 0, 1], free).into();
    assert_eq!(redis_tls_ping(&pki, addr, Cert::Good).await.unwrap(), "PONG");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_does_not_wait_for_pending_handshakes() {
    let pki = pki();
    let server = fanout::server::Server::bind(tls_settings(&pki, &[]), None)
        .await
        .unwrap();
    let tls = server.tls_addrs()[0];
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let run = tokio::spawn(server.run(async move { stopped.cancelled().await }));
    let _silent = TcpStream::connect(tls).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(3), run)
        .await
        .expect("shutdown waited for a handshake")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_tls_subscriber_receives_everything() {
    // The subscriber stops reading while megabytes are published, so the server's TLS
    // writes hit a full socket; once it reads again every byte must arrive (nothing left
    // behind in the TLS layer's buffer).
    let pki = pki();
    let srv = start_tls(&pki, &[("client-output-buffer-limit", "pubsub 0 0 0")]).await;
    // A small receive window, so the server's socket fills after a few records.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(srv.tls).await.unwrap();
    let mut sub = tls_over(&pki, tcp, Cert::Good).await.unwrap();
    let confirm = raw_call(&mut sub, &common::resp_command(&["SUBSCRIBE", "slow"]))
        .await
        .unwrap();
    assert_eq!(confirm, b"*3\r\n");
    let mut rest = vec![0u8; b"$9\r\nsubscribe\r\n$4\r\nslow\r\n:1\r\n".len()];
    sub.read_exact(&mut rest).await.unwrap();

    let payloads: Vec<Vec<u8>> = (0..8u8).map(|i| vec![b'a' + i; 1024 * 1024 + 7]).collect();
    let mut expected = Vec::new();
    let mut publisher = RawConn::connect(srv.plain).await;
    for p in &payloads {
        assert_eq!(publisher.call(&[&b"PUBLISH"[..], b"slow", p]).await.int(), 1);
        expected.extend_from_slice(&common::resp_command(&[&b"message"[..], b"slow", p]));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut got = vec![0u8; expected.len()];
    tokio::time::timeout(WAIT, sub.read_exact(&mut got))
        .await
        .expect("the last bytes never arrived")
        .unwrap();
    assert!(got == expected, "payload differs");
}

/// `http-tls yes`: the HTTP listener serves HTTPS with the server's certificate, HTTP/2
/// by ALPN (so a page may hold many SSE streams), without asking for client certificates
/// even where the RESP port requires them; an SSE subscriber over it gets a message a
/// plain RESP client publishes, and an HTTPS publish reaches it too.
#[tokio::test]
async fn https_serves_sse_and_publish_over_http2() {
    let pki = pki();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let port = port.to_string();
    let srv = start_tls(&pki, &[("http-port", &port), ("http-tls", "yes")]).await;
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&pki.ca).unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    let base = format!("https://localhost:{port}");
    let resp = tokio::time::timeout(WAIT, http.get(format!("{base}/v1/sse?channel=secure")).send())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    let mut next = async || {
        let chunk = tokio::time::timeout(WAIT, body.next()).await.unwrap().unwrap().unwrap();
        String::from_utf8(chunk.to_vec()).unwrap()
    };
    while !seen.contains("event: subscribe") {
        seen.push_str(&next().await);
    }
    let mut con = redis::Client::open(format!("redis://{}", srv.plain))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let n: i64 = redis::cmd("PUBLISH")
        .arg("secure")
        .arg("over resp")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(n, 1);
    while !seen.contains("over resp") {
        seen.push_str(&next().await);
    }
    let r = http
        .post(format!("{base}/v1/publish/secure"))
        .body("over https")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "{\"receivers\":1}\n");
    while !seen.contains("over https") {
        seen.push_str(&next().await);
    }
    // Plain HTTP on the HTTPS port is refused by the handshake, not served.
    assert!(reqwest::get(format!("http://127.0.0.1:{port}/")).await.is_err());
}
