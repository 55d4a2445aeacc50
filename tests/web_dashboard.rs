//! The dashboard's HTTP side: `GET /v1/stats` (its JSON, authentication, ACL refusals)
//! and the static pages, against a server started in-process with an HTTP listener.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::RawConn;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

struct Web {
    resp: SocketAddr,
    http: SocketAddr,
    stop: CancellationToken,
}

impl Drop for Web {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Web {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }
}

async fn start(overrides: &[(&str, &str)]) -> Web {
    let settings = Arc::new(fanout::config::Settings::default());
    settings.set("port", "0").unwrap();
    settings.set("http-bind", "127.0.0.1").unwrap();
    settings
        .set("http-port", &common::child::free_port().to_string())
        .unwrap();
    for (k, v) in overrides {
        settings.set(k, v).unwrap_or_else(|e| panic!("set {k} {v}: {e}"));
    }
    let server = fanout::server::Server::bind(settings, None).await.expect("bind");
    let http = server.http_addrs()[0];
    let (addrs, _broker, stop) = server.spawn();
    Web {
        resp: addrs[0],
        http,
        stop,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(common::WAIT)
        .build()
        .expect("http client")
}

async fn get(url: &str, auth: Option<(&str, &str)>) -> reqwest::Response {
    let mut req = client().get(url);
    if let Some((user, pass)) = auth {
        req = req.basic_auth(user, Some(pass));
    }
    req.send().await.expect("request")
}

async fn stats(web: &Web, auth: Option<(&str, &str)>) -> Value {
    let r = get(&web.url("/v1/stats"), auth).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    r.json().await.expect("json")
}

/// The entry of `list` whose `key` is `name`.
fn find<'a>(listing: &'a Value, key: &str, name: &str) -> Option<&'a Value> {
    listing["list"]
        .as_array()?
        .iter()
        .find(|e| e[key].as_str() == Some(name))
}

#[tokio::test]
async fn stats_show_channels_patterns_clients_and_counters() {
    let web = start(&[]).await;
    let mut sub = RawConn::connect(web.resp).await;
    sub.call(&["CLIENT", "SETNAME", "dash-sub"]).await;
    sub.send(&["SUBSCRIBE", "dash.a"]).await;
    sub.read_frame().await;
    sub.send(&["PSUBSCRIBE", "dash.*"]).await;
    sub.read_frame().await;
    let mut publisher = RawConn::connect(web.resp).await;
    assert_eq!(publisher.call(&["PUBLISH", "dash.a", "hi"]).await.int(), 2);
    // The subscriber's two messages, read so its output is empty again.
    sub.read_frame().await;
    sub.read_frame().await;

    let s = stats(&web, None).await;
    let info = &s["info"];
    assert!(info["used_memory"].as_u64().is_some_and(|m| m > 0), "{info}");
    assert!(info["used_memory_human"].is_string());
    assert!(info["connected_clients"].as_u64().is_some_and(|n| n >= 2));
    assert_eq!(info["blocked_clients"], 0);
    assert_eq!(info["pubsub_channels"], 1);
    assert_eq!(info["pubsub_patterns"], 1);
    // Paths of the host are not part of the dashboard's view.
    assert!(info.get("executable").is_none());
    assert_eq!(s["totals"]["published"], 1);
    assert_eq!(s["totals"]["delivered"], 2);
    assert_eq!(s["totals"]["dropped"], 0);
    assert_eq!(s["totals"]["obuf_disconnections"], 0);
    assert!(s["time_ms"].as_u64().is_some());

    assert_eq!(s["channels"]["total"], 1);
    assert_eq!(s["channels"]["capped"], false);
    assert_eq!(
        find(&s["channels"], "channel", "dash.a").expect("channel")["subscribers"],
        1
    );
    assert_eq!(s["patterns"]["total"], 1);
    assert_eq!(
        find(&s["patterns"], "pattern", "dash.*").expect("pattern")["subscribers"],
        1
    );

    let c = find(&s["clients"], "name", "dash-sub").expect("client listed");
    assert_eq!(c["sub"], 1);
    assert_eq!(c["psub"], 1);
    assert_eq!(c["dropped"], 0);
    assert!(c["omem"].is_u64() && c["id"].is_u64() && c["addr"].is_string());
    // The request's own client is listed too, named after the endpoint.
    let me = find(&s["clients"], "name", "stats").expect("the stats client");
    assert_eq!(me["lib-name"], "fanout-http");
    assert_eq!(s["errors"], serde_json::json!({}));
    assert_eq!(s["limit"], 500);
}

#[tokio::test]
async fn binary_names_are_base64() {
    let web = start(&[]).await;
    let mut sub = RawConn::connect(web.resp).await;
    sub.send(&[&b"SUBSCRIBE"[..], &b"bin\xff"[..]]).await;
    sub.read_frame().await;
    let s = stats(&web, None).await;
    assert_eq!(
        find(&s["channels"], "channel_b64", "Ymlu/w==").expect("b64 channel")["subscribers"],
        1
    );
}

#[tokio::test]
async fn password_required_answers_401_with_a_basic_challenge() {
    let web = start(&[("requirepass", "s3cret")]).await;
    let r = get(&web.url("/v1/stats"), None).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().starts_with("NOAUTH"), "{body}");

    let r = get(&web.url("/v1/stats"), Some(("default", "wrong"))).await;
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().starts_with("WRONGPASS"), "{body}");

    let s = stats(&web, Some(("default", "s3cret"))).await;
    assert!(s["info"]["connected_clients"].is_u64());
    let r = client()
        .get(web.url("/v1/stats"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The page itself holds no data: served without credentials.
    assert_eq!(get(&web.url("/"), None).await.status(), 200);
}

#[tokio::test]
async fn acl_decides_what_a_user_sees() {
    let web = start(&[]).await;
    let mut admin = RawConn::connect(web.resp).await;
    for user in [
        &["ACL", "SETUSER", "noinfo", "on", ">pw", "+@all", "-info"][..],
        &["ACL", "SETUSER", "infoonly", "on", ">pw", "+info"][..],
    ] {
        assert_eq!(admin.call(user).await.text(), "OK");
    }
    let r = get(&web.url("/v1/stats"), Some(("noinfo", "pw"))).await;
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    let text = body["error"].as_str().unwrap();
    assert!(
        text.starts_with("NOPERM") && text.contains("info"),
        "INFO's own refusal: {text}"
    );

    // Allowed INFO only: the cards, and each refused section says why.
    let s = stats(&web, Some(("infoonly", "pw"))).await;
    assert!(s["info"]["used_memory"].is_u64());
    for section in ["channels", "patterns", "clients"] {
        assert!(s[section].is_null(), "{section}: {}", s[section]);
        let e = s["errors"][section].as_str().unwrap_or_default();
        assert!(e.starts_with("NOPERM"), "{section}: {e}");
    }
}

#[tokio::test]
async fn static_pages_have_their_types_and_no_cache() {
    let web = start(&[]).await;
    for (path, ty, needle) in [
        ("/", "text/html; charset=utf-8", "/app.js"),
        ("/app.js", "text/javascript; charset=utf-8", "/v1/stats"),
        ("/style.css", "text/css; charset=utf-8", "overflow-x"),
        ("/demo", "text/html; charset=utf-8", "new EventSource('/v1/sse?channel="),
    ] {
        let r = get(&web.url(path), None).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], ty, "{path}");
        assert_eq!(r.headers()["cache-control"], "no-cache", "{path}");
        assert!(r.headers().contains_key("content-security-policy"), "{path}");
        assert!(r.text().await.unwrap().contains(needle), "{path}");
    }
    // Anything else is still the API's JSON 404.
    let r = get(&web.url("/nope.js"), None).await;
    assert_eq!(r.status(), 404);
}
