//! Bounded waits at the edge, in process: a slowloris connection is closed at the
//! header deadline, an idle keep-alive connection at its own, a body that does not
//! arrive gets `408 request_timeout`, a listener at its connection cap leaves new
//! connections waiting, a key at its in-flight cap gets `429 rate_limited` with
//! `retry-after` until its stream ends, and the admin listener without a key answers
//! only loopback Host names and refuses to be configured on a reachable address.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "the gateway and socket helpers below are test code; a failure should fail the test"
)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use serde_json::Value;
use tokio::time::Instant;
use tollgate::config::edge::EdgeSettings;
use tollgate::server::{serve_with, Shutdown};

const KEY: &str = "tg-edge-test-key";

/// Validated settings for `config` (plus a key, a provider at `upstream` and one
/// model `m`), with the catalog copied into `dir`.
fn settings(dir: &Path, upstream: &str, config: &str) -> tollgate::config::Settings {
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/prices.toml");
    std::fs::copy(catalog, dir.join("prices.toml")).unwrap();
    let text = format!(
        r#"{config}
[ledger]
path = {ledger:?}
flush_interval = "20ms"

[[keys]]
name = "app"
hash = "{hash}"

[[providers]]
id = "p"
kind = "openai"
base_url = "{upstream}"
api_key = "env:P_KEY"
region = "test:1"
jurisdiction = "US"
scope = "regional"

[[models]]
name = "m"
offers = [{{ provider = "p", upstream_model = "m" }}]
"#,
        ledger = dir.join("ledger.db").display().to_string(),
        hash = tollgate::auth::hash_key(KEY),
    );
    let path = dir.join("tollgate.toml");
    std::fs::write(&path, text).unwrap();
    let raw = tollgate::config::load(&path, vec![]).unwrap();
    tollgate::config::validate(raw, dir, &|n| Some(format!("secret-{n}"))).unwrap()
}

/// A gateway built from `config`, its apps' and admin routers served with the edge
/// limits the config sets. Returns (app, apps' address, admin address).
async fn gateway(dir: &Path, upstream: &str, config: &str) -> (tollgate::App, String, String) {
    let settings = settings(dir, upstream, config);
    let edge = settings.edge;
    let app = tollgate::build_app(settings).await.unwrap();
    let url = serve(app.router(), edge).await;
    let admin = serve(app.admin_router(), edge).await;
    (app, url, admin)
}

/// Serve `router` on 127.0.0.1:0 with `limits`; returns the address.
async fn serve(router: axum::Router, limits: EdgeSettings) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(serve_with(listener, router, limits, Shutdown::new()));
    addr
}

/// An OpenAI-style upstream streaming a chunk every 100 ms for a minute.
async fn slow_upstream() -> String {
    async fn chat() -> Response {
        let events = futures_util::stream::unfold(0u32, |i| async move {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let data = format!(
                "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"w{i} \"}},\"finish_reason\":null}}]}}\n\n"
            );
            (i < 600).then_some((Ok::<_, std::io::Error>(data), i + 1))
        });
        Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(events))
            .unwrap()
    }
    let app = axum::Router::new().route("/v1/chat/completions", axum::routing::post(chat));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn limits(header: u64, keepalive: u64, max_connections: usize) -> EdgeSettings {
    EdgeSettings {
        header_read_timeout: Duration::from_millis(header),
        keepalive_timeout: Duration::from_millis(keepalive),
        max_connections,
        ..EdgeSettings::default()
    }
}

fn hello() -> axum::Router {
    axum::Router::new().route("/", axum::routing::get(|| async { "hello" }))
}

/// Read until the peer closes (`Ok(0)`) or resets; the time that took. Fails the
/// test if the connection is still open after `limit`.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> Duration {
    let started = std::time::Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return started.elapsed(),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return started.elapsed(),
            Err(e) => panic!("still open after {limit:?}: {e}"),
        }
    }
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_slowloris_connection_is_closed_at_the_header_deadline() {
    let addr = serve(hello(), limits(300, 60_000, 16)).await;
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Drip: a")
        .unwrap();
    let took =
        tokio::task::spawn_blocking(move || closed_within(&mut slow, Duration::from_secs(5)))
            .await
            .unwrap();
    assert!(took >= Duration::from_millis(250), "closed early: {took:?}");
    // A prompt client on the same listener is served.
    let mut ok = TcpStream::connect(&addr).unwrap();
    ok.write_all(GET).unwrap();
    let mut head = [0u8; 12];
    ok.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_keep_alive_connection_is_closed_at_its_own_deadline() {
    // Keep-alive (300 ms) shorter than the header timeout (60 s): the idle wait is
    // bounded by its own key, not by the header deadline.
    let addr = serve(hello(), limits(60_000, 300, 16)).await;
    let took = tokio::task::spawn_blocking(move || {
        let mut conn = TcpStream::connect(&addr).unwrap();
        conn.write_all(GET).unwrap();
        let mut response = [0u8; 12];
        conn.read_exact(&mut response).unwrap();
        assert_eq!(&response, b"HTTP/1.1 200");
        closed_within(&mut conn, Duration::from_secs(5))
    })
    .await
    .unwrap();
    assert!(took >= Duration::from_millis(200), "closed early: {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listener_at_its_connection_cap_serves_a_new_connection_only_when_one_closes() {
    let addr = serve(hello(), limits(60_000, 60_000, 2)).await;
    let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    let third = addr.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut conn = TcpStream::connect(&third).unwrap();
        conn.write_all(GET).unwrap();
        let mut head = [0u8; 12];
        conn.read_exact(&mut head).unwrap();
        tx.send(head).unwrap();
    });
    // Nothing can arrive while both slots are held.
    assert!(rx.recv_timeout(Duration::from_millis(500)).is_err());
    drop(held);
    let head = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_does_not_arrive_in_time_gets_408_request_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (_app, url, _) = gateway(
        dir.path(),
        "http://127.0.0.1:9/v1",
        "[server]\nbody_read_timeout = \"300ms\"",
    )
    .await;
    let answer = tokio::task::spawn_blocking(move || {
        let mut conn = TcpStream::connect(&url).unwrap();
        let head = format!("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"model\":");
        conn.write_all(head.as_bytes()).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&answer).contains("}}") {
            let n = conn.read(&mut buf).unwrap();
            assert!(n > 0, "closed without an answer");
            answer.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(answer).unwrap()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body: Value =
        serde_json::from_str(&answer[answer.find("\r\n\r\n").unwrap() + 4..]).unwrap();
    assert_eq!(body["error"]["code"], "request_timeout");
    assert_eq!(body["error"]["type"], "invalid_request_error");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_at_its_in_flight_cap_gets_429_with_retry_after_until_its_stream_ends() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = slow_upstream().await;
    let (_app, url, _) =
        gateway(dir.path(), &upstream, "[server]\nmax_in_flight_per_key = 1").await;
    let client = reqwest::Client::new();
    let ask = |stream: bool| {
        client
            .post(format!("http://{url}/v1/chat/completions"))
            .bearer_auth(KEY)
            .json(&serde_json::json!({"model": "m", "stream": stream,
                "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    let open = ask(true).await.unwrap();
    assert_eq!(open.status(), 200);

    let refused = ask(true).await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");

    // The stream counts until it ends; once the client drops it, the key is free.
    drop(open);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let resp = ask(true).await.unwrap();
        if resp.status() == 200 {
            break;
        }
        assert_eq!(resp.status(), 429);
        assert!(Instant::now() < deadline, "the ended stream still counts");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `GET /metrics` on the admin listener with a Host header (and a bearer key).
fn admin_get(admin: &str, host: &str, key: Option<&str>) -> (u16, String) {
    let mut conn = TcpStream::connect(admin).unwrap();
    let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
    let req = format!("GET /metrics HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n");
    conn.write_all(req.as_bytes()).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer[answer.find("\r\n\r\n").unwrap() + 4..].to_owned();
    (status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_listener_without_a_key_answers_only_loopback_host_names() {
    let dir = tempfile::tempdir().unwrap();
    let (_app, _, admin) = gateway(dir.path(), "http://127.0.0.1:9/v1", "").await;
    let port = admin.rsplit(':').next().unwrap().to_owned();
    let check = move |host: String| {
        let admin = admin.clone();
        std::thread::spawn(move || admin_get(&admin, &host, None))
            .join()
            .unwrap()
    };
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "[::1]".into(),
    ] {
        assert_eq!(check(host.clone()).0, 200, "{host}");
    }
    // DNS rebinding: a page on attacker.example whose name now points at 127.0.0.1.
    let (status, body) = check(format!("attacker.example:{port}"));
    assert_eq!(status, 421);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "misdirected_request");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("admin.api_key"));
}

#[tokio::test(flavor = "multi_thread")]
async fn with_an_admin_key_any_host_may_ask_and_only_the_exact_key_passes() {
    let dir = tempfile::tempdir().unwrap();
    let (_app, _, admin) = gateway(
        dir.path(),
        "http://127.0.0.1:9/v1",
        "[admin]\napi_key = \"env:ADMIN\"",
    )
    .await;
    let get = move |key: Option<&'static str>| {
        let admin = admin.clone();
        std::thread::spawn(move || admin_get(&admin, "tollgate.internal:9090", key).0)
            .join()
            .unwrap()
    };
    assert_eq!(get(Some("secret-ADMIN")), 200);
    for wrong in [
        None,
        Some("secret-ADMI"),
        Some("secret-ADMIN-and-more"),
        Some("secret-ADMIX"),
    ] {
        assert_eq!(get(wrong), 401, "{wrong:?}");
    }
}

#[test]
fn an_admin_listener_on_a_reachable_address_without_a_key_is_refused_at_validation() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/prices.toml");
    std::fs::copy(catalog, dir.path().join("prices.toml")).unwrap();
    let validate = |admin: &str| {
        let path = dir.path().join("t.toml");
        std::fs::write(&path, format!("[admin]\n{admin}\n")).unwrap();
        let raw = tollgate::config::load(&path, vec![]).unwrap();
        tollgate::config::validate(raw, dir.path(), &|_| Some("k".into()))
    };
    let err = validate("listen = \"0.0.0.0:9090\"").unwrap_err();
    assert!(
        err.problems
            .iter()
            .any(|p| p.starts_with("admin.listen:") && p.contains("admin.api_key is not set")),
        "{:?}",
        err.problems
    );
    assert!(validate("listen = \"[::]:9090\"").is_err());
    assert!(validate("listen = \"0.0.0.0:9090\"\napi_key = \"env:ADMIN\"").is_ok());
    assert!(validate("listen = \"[::1]:9090\"").is_ok());
}
