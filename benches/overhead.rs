//! Gateway overhead: the same requests sent straight to an instant fake upstream and
//! through tollgate, in one process; the difference is what tollgate adds. Reports
//! wall time per request (p50, p99) and process CPU time per request, for plain and
//! streamed chat completions.
//!
//! Run: `cargo bench --bench overhead` (release build). Figures are written down in
//! README.md under "Performance".

#![expect(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a benchmark binary: it prints its figures and stops on any failure"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::{IntoResponse, Response};

const REQUESTS: usize = 2_000;
const OPENAI_JSON: &str = include_str!("../tests/fixtures/openai/chat_o1.json");
const OPENAI_SSE: &str = include_str!("../tests/fixtures/openai/chat_stream.sse");

fn cpu_time() -> Duration {
    // utime + stime of this process, in clock ticks (100 Hz on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: u64 = [11usize, 12]
        .iter()
        .filter_map(|i| fields.get(*i)?.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

async fn fake(body: axum::body::Bytes) -> Response {
    let streaming = body.windows(13).any(|w| w == b"\"stream\":true");
    if streaming {
        let mut resp = Response::new(Body::from(OPENAI_SSE));
        resp.headers_mut()
            .insert("content-type", "text/event-stream".parse().unwrap());
        resp
    } else {
        ([("content-type", "application/json")], OPENAI_JSON).into_response()
    }
}

async fn run(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> (Vec<Duration>, Duration) {
    let mut times = Vec::with_capacity(REQUESTS);
    let cpu = cpu_time();
    for _ in 0..REQUESTS {
        let t = Instant::now();
        let resp = client
            .post(url)
            .bearer_auth("tg-bench")
            .json(body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
        let _ = resp.bytes().await.unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    (times, cpu_time() - cpu)
}

fn pct(times: &[Duration], p: f64) -> Duration {
    times[((times.len() as f64 * p) as usize).min(times.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::Router::new().fallback(axum::routing::post(fake)),
        )
        .await
    });

    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/config/prices.toml"),
        dir.path().join("prices.toml"),
    )
    .unwrap();
    let config = format!(
        "[ledger]\npath = {:?}\n[logging]\nlevel = \"warn\"\n[[keys]]\nname = \"bench\"\nhash = \"{}\"\n[[providers]]\nid = \"p\"\nkind = \"openai\"\nbase_url = \"{upstream}\"\napi_key = \"env:BENCH\"\nregion = \"r\"\njurisdiction = \"US\"\nscope = \"global\"\n[[models]]\nname = \"o1\"\noffers = [{{ provider = \"p\", upstream_model = \"o1\", price = \"openai/o1\" }}]\n",
        dir.path().join("bench.db").display().to_string(),
        tollgate::auth::hash_key("tg-bench"),
    );
    let path = dir.path().join("bench.toml");
    std::fs::write(&path, config).unwrap();
    let raw = tollgate::config::load(&path, vec![]).unwrap();
    let settings = tollgate::config::validate(raw, dir.path(), &|_| Some("x".into())).unwrap();
    let app = Arc::new(tollgate::build_app(settings).await.unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = format!("http://{}", listener.local_addr().unwrap());
    let router = app.router();
    tokio::spawn(
        async move { tollgate::server::serve(listener, router, std::future::pending()).await },
    );

    let client = reqwest::Client::new();
    let plain = serde_json::json!({"model": "o1", "messages": [{"role": "user", "content": "Why is the sky blue? Explain briefly."}]});
    let mut streamed = plain.clone();
    streamed["stream"] = serde_json::json!(true);
    println!(
        "{REQUESTS} sequential requests each, one client, instant fake upstream, 2 worker threads"
    );
    for (name, body) in [("plain", &plain), ("stream", &streamed)] {
        let _ = run(&client, &format!("{gateway}/v1/chat/completions"), body).await; // warm-up
        let (direct, direct_cpu) =
            run(&client, &format!("{upstream}/v1/chat/completions"), body).await;
        let (through, through_cpu) =
            run(&client, &format!("{gateway}/v1/chat/completions"), body).await;
        let added_cpu = through_cpu.saturating_sub(direct_cpu).as_micros() as f64 / REQUESTS as f64;
        println!(
            "{name:>6}: direct p50 {:>6.0?} p99 {:>6.0?} | through tollgate p50 {:>6.0?} p99 {:>6.0?} | tollgate CPU ≈ {added_cpu:.0} µs/request",
            pct(&direct, 0.5), pct(&direct, 0.99), pct(&through, 0.5), pct(&through, 0.99),
        );
    }
}
