//! Memory a request costs: the release binary serves a body of many small messages
//! (just under `server.max_body_bytes`, 4 MiB) to an in-process upstream that reads
//! and discards what it receives; the growth of the gateway process's peak resident
//! memory (`VmHWM` in /proc/PID/status) is compared with the body's size.
//!
//! Run: `cargo bench --bench request_memory` (Linux). The target is a peak growth of
//! at most 4x the body.

#![expect(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::panic,
    reason = "a benchmark binary: it prints its figures and stops on any failure"
)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt;

const KEY: &str = "tg-memory-bench";
const ANSWER: &str = r#"{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":1,"total_tokens":11}}"#;

/// The upstream: reads the request body chunk by chunk without keeping it.
async fn upstream() -> String {
    async fn chat(body: axum::body::Body) -> ([(&'static str, &'static str); 1], &'static str) {
        let mut frames = body.into_data_stream();
        while frames.next().await.is_some() {}
        ([("content-type", "application/json")], ANSWER)
    }
    let app = axum::Router::new().route("/v1/chat/completions", axum::routing::post(chat));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// Peak resident memory of `pid`, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// A chat body of small messages, as close to `size` bytes as fits, and their count.
fn many_small_messages(size: usize) -> (Vec<u8>, usize) {
    let head = br#"{"model":"m","messages":["#;
    let message = br#"{"role":"user","content":"hi"},"#;
    let tail = br#"{"role":"user","content":"last"}]}"#;
    let count = (size - head.len() - tail.len()) / message.len();
    let mut body = Vec::with_capacity(size);
    body.extend_from_slice(head);
    for _ in 0..count {
        body.extend_from_slice(message);
    }
    body.extend_from_slice(tail);
    (body, count + 1)
}

/// A running gateway (killed on drop) and its chat URL.
struct Gateway {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(upstream: &str) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/prices.toml");
    std::fs::copy(catalog, dir.path().join("prices.toml")).unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[ledger]\npath = {:?}\n[logging]\nformat = \"json\"\nlevel = \"info\"\n[[keys]]\nname = \"bench\"\nhash = \"{}\"\n[[providers]]\nid = \"p\"\nkind = \"openai\"\nbase_url = \"{upstream}\"\napi_key = \"env:BENCH_KEY\"\nregion = \"r\"\njurisdiction = \"US\"\nscope = \"global\"\n[[models]]\nname = \"m\"\noffers = [{{ provider = \"p\", upstream_model = \"gpt-4o\", price = \"openai/gpt-4o\" }}]\n",
        dir.path().join("bench.db").display().to_string(),
        tollgate::auth::hash_key(KEY),
    );
    let path = dir.path().join("bench.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["serve", "--config"])
        .arg(&path)
        .env("BENCH_KEY", "x")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut lines = stderr.lines().map_while(Result::ok);
    let line = lines
        .find(|l| l.contains("tollgate listening"))
        .unwrap_or_else(|| panic!("tollgate did not start"));
    std::thread::spawn(move || lines.for_each(drop));
    let fields: serde_json::Value = serde_json::from_str(&line).unwrap();
    let url = format!(
        "http://{}/v1/chat/completions",
        fields["listen"].as_str().unwrap()
    );
    Gateway {
        child,
        url,
        _dir: dir,
    }
}

async fn send(client: &reqwest::Client, url: &str, body: Vec<u8>) {
    let resp = client
        .post(url)
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(body)
        .timeout(Duration::from_secs(300))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    assert_eq!(status, 200, "{}", resp.text().await.unwrap());
    resp.bytes().await.unwrap();
}

#[tokio::main]
async fn main() {
    let upstream = upstream().await;
    let client = reqwest::Client::new();
    let size = 4 * 1024 * 1024 - 1024;
    // A fresh process per round: peak RSS only grows, and freed memory is reused.
    for round in 1..=5 {
        let gw = start(&upstream);
        // Warm-up: runtime threads, connection pools, tokenizer tables.
        send(&client, &gw.url, many_small_messages(64 * 1024).0).await;
        let (body, count) = many_small_messages(size);
        let before = peak_rss(gw.child.id());
        send(&client, &gw.url, body).await;
        let growth = peak_rss(gw.child.id()).saturating_sub(before);
        println!(
            "round {round}: body {:.2} MiB ({count} messages) -> peak RSS +{:.1} MiB ({:.1}x the body)",
            size as f64 / 1048576.0,
            growth as f64 / 1048576.0,
            growth as f64 / size as f64
        );
    }
}
