//! Shutdown through the real binary: SIGTERM stops accepting, lets streams finish
//! within `server.shutdown_grace`, ends the ones that outlast it with a final
//! `shutting_down` error event, writes every record (the flush interval is set far
//! beyond the test, so only the shutdown flush can have written them) and only then
//! exits; a half-sent request on the admin port cannot hold the process open.
//!
//! The upstream is an in-test fake that streams OpenAI chat chunks slowly.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "the process and upstream helpers below are test code; a failure should fail the test"
)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use futures_util::StreamExt;
use serde_json::Value;
use tokio::time::Instant;

const KEY: &str = "tg-shutdown-test-key";

/// An OpenAI-style upstream whose `short` model streams 8 chunks 150 ms apart and
/// whose `long` model streams a chunk every 200 ms for two minutes. It honours
/// `stream_options.include_usage` as OpenAI does.
async fn slow_upstream() -> String {
    async fn chat(body: axum::body::Bytes) -> Response {
        let req: Value = serde_json::from_slice(&body).unwrap();
        let (count, gap) = match req["model"].as_str() {
            Some("short") => (8u32, Duration::from_millis(150)),
            _ => (600, Duration::from_millis(200)),
        };
        let usage = req["stream_options"]["include_usage"] == true;
        let events = futures_util::stream::unfold(0u32, move |i| async move {
            if i > count + 1 {
                return None;
            }
            if i > 0 {
                tokio::time::sleep(gap).await;
            }
            let data = if i < count {
                format!(
                    r#"{{"id":"c1","object":"chat.completion.chunk","created":1,"model":"x","choices":[{{"index":0,"delta":{{"content":"word{i} "}},"finish_reason":null}}]}}"#
                )
            } else if i == count && usage {
                format!(
                    r#"{{"id":"c1","object":"chat.completion.chunk","created":1,"model":"x","choices":[],"usage":{{"prompt_tokens":12,"completion_tokens":{count},"total_tokens":{}}}}}"#,
                    12 + count
                )
            } else if i == count {
                return Some((Ok::<_, std::io::Error>(String::new()), i + 1));
            } else {
                "[DONE]".to_owned()
            };
            Some((Ok(format!("data: {data}\n\n")), i + 1))
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

/// A running `tollgate serve` and what it logged.
struct Tollgate {
    child: Child,
    listen: String,
    admin: String,
    ledger: PathBuf,
    log: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

/// Start the binary with a config in a fresh folder; returns once it listens.
fn start(upstream: &str, server_extra: &str) -> Tollgate {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/prices.toml");
    std::fs::copy(catalog, dir.path().join("prices.toml")).unwrap();
    let ledger = dir.path().join("ledger.db");
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
{server_extra}

[admin]
listen = "127.0.0.1:0"

[ledger]
path = {ledger:?}
flush_interval = "1h"

[logging]
format = "json"
level = "info"

[[keys]]
name = "app"
hash = "{hash}"

[[providers]]
id = "slow"
kind = "openai"
base_url = "{upstream}"
api_key = "env:SLOW_KEY"
region = "test:1"
jurisdiction = "US"
scope = "regional"

[[models]]
name = "m-short"
offers = [{{ provider = "slow", upstream_model = "short" }}]

[[models]]
name = "m-long"
offers = [{{ provider = "slow", upstream_model = "long" }}]
"#,
        ledger = ledger.display().to_string(),
        hash = tollgate::auth::hash_key(KEY),
    );
    let path = dir.path().join("tollgate.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["serve", "--config"])
        .arg(&path)
        .env("SLOW_KEY", "upstream-secret")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let log = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&log);
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("tollgate listening") {
                let _ = tx.send(line.clone());
            }
            sink.lock().unwrap().push_str(&line);
            sink.lock().unwrap().push('\n');
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("tollgate did not start:\n{}", log.lock().unwrap()));
    let fields: Value = serde_json::from_str(&line).unwrap();
    Tollgate {
        child,
        listen: fields["listen"].as_str().unwrap().to_owned(),
        admin: fields["admin_listen"].as_str().unwrap().to_owned(),
        ledger,
        log,
        _dir: dir,
    }
}

impl Tollgate {
    fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Wait (polling) for the process to exit, at most `limit`.
    async fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "tollgate still running {limit:?} after SIGTERM:\n{}",
                    self.log.lock().unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Open a stream for `model` and wait for its first chunk.
    async fn open_stream(&self, model: &str) -> reqwest::Response {
        let resp = reqwest::Client::new()
            .post(format!("http://{}/v1/chat/completions", self.listen))
            .bearer_auth(KEY)
            .json(&serde_json::json!({
                "model": model, "stream": true,
                "messages": [{"role": "user", "content": "Count slowly."}]
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp
    }

    /// `(outcome, error_code, usage_source, status)` of every record, read from the file.
    fn records(&self) -> Vec<(String, Option<String>, String, i64)> {
        let conn = rusqlite::Connection::open(&self.ledger).unwrap();
        let mut stmt = conn
            .prepare("SELECT outcome, error_code, usage_source, status FROM requests")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
}

/// Read the rest of an SSE body, returning each `data:` payload.
async fn data_events(
    mut body: impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin,
) -> Vec<String> {
    let mut text = String::new();
    while let Some(chunk) = body.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    text.split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data: ").map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_stream_that_ends_within_the_grace_completes_and_is_recorded_then_the_process_exits_0() {
    let upstream = slow_upstream().await;
    let mut tg = start(&upstream, r#"shutdown_grace = "20s""#);
    let resp = tg.open_stream("m-short").await;
    let mut body = resp.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("word0"));
    tg.sigterm();

    // No new connections once shutdown has begun, while the stream still runs.
    let deadline = Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(&tg.listen).await.is_ok() {
        assert!(Instant::now() < deadline, "the listener still accepts");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let events = data_events(body).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    assert!(
        events.iter().all(|e| !e.contains("\"error\"")),
        "{events:?}"
    );
    assert!(events.iter().any(|e| e.contains("word7")));

    let status = tg.exit_within(Duration::from_secs(15)).await;
    assert!(
        status.success(),
        "exit {status:?}\n{}",
        tg.log.lock().unwrap()
    );
    assert_eq!(
        tg.records(),
        vec![("completed".to_owned(), None, "reported".to_owned(), 200)]
    );
}

#[tokio::test]
async fn a_stream_outlasting_the_grace_gets_a_final_error_event_and_is_recorded() {
    let upstream = slow_upstream().await;
    let mut tg = start(&upstream, r#"shutdown_grace = "1s""#);
    let resp = tg.open_stream("m-long").await;
    let mut body = resp.bytes_stream();
    body.next().await.unwrap().unwrap();
    let signalled = Instant::now();
    tg.sigterm();

    let events = data_events(body).await;
    let ended_after = signalled.elapsed();
    // The stream ran on through the grace, then was ended by tollgate.
    assert!(ended_after >= Duration::from_millis(900), "{ended_after:?}");
    assert!(
        events.len() > 3,
        "chunks kept flowing during the grace: {events:?}"
    );
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "shutting_down");
    assert_eq!(last["error"]["type"], "server_error");
    assert!(last["error"]["message"]
        .as_str()
        .unwrap()
        .contains("request id tg-"));

    let status = tg.exit_within(Duration::from_secs(10)).await;
    assert!(
        status.success(),
        "exit {status:?}\n{}",
        tg.log.lock().unwrap()
    );
    let records = tg.records();
    assert_eq!(records.len(), 1, "{records:?}");
    let (outcome, code, source, status) = &records[0];
    assert_eq!(
        (outcome.as_str(), code.as_deref(), *status),
        ("upstream_error", Some("shutting_down"), 200)
    );
    // The output relayed before the cut is counted, not lost.
    assert_eq!(source, "estimated");
}

#[tokio::test]
async fn a_half_sent_request_on_the_admin_port_does_not_hold_shutdown_past_the_grace() {
    let upstream = slow_upstream().await;
    // A long header timeout: only the shutdown deadline can end this connection.
    let mut tg = start(
        &upstream,
        "shutdown_grace = \"1s\"\nheader_read_timeout = \"120s\"",
    );
    let mut admin = std::net::TcpStream::connect(&tg.admin).unwrap();
    admin
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .unwrap();
    let mut app = std::net::TcpStream::connect(&tg.listen).unwrap();
    app.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"mod")
        .unwrap();
    // Connections are accepted in order: once a later one is answered, the
    // half-sent ones are in the server's hands.
    let mut probe = std::net::TcpStream::connect(&tg.admin).unwrap();
    probe
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut probe, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let signalled = Instant::now();
    tg.sigterm();
    let status = tg.exit_within(Duration::from_secs(8)).await;
    assert!(
        status.success(),
        "exit {status:?}\n{}",
        tg.log.lock().unwrap()
    );
    // Grace (1 s) plus the window for final events (1 s) plus start-up slack.
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "{:?}",
        signalled.elapsed()
    );
}
