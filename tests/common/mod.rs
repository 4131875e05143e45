//! Test harness: fake upstreams that speak each provider's wire format (served
//! in-process on 127.0.0.1:0 and recording what they receive), and a gateway
//! started through `build_app` on port 0 with its own SQLite ledger file.
// Test harness code: each test binary uses a different part of it, and failing loudly is its job.
#![allow(
    dead_code,
    clippy::allow_attributes,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod anthropic;
pub mod bedrock;
pub mod gemini;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::Notify;

/// A fixture file under tests/fixtures.
pub fn fixture(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// One step of a scripted SSE answer.
#[derive(Clone)]
pub enum Step {
    Send(Bytes),
    Sleep(Duration),
    /// Wait until the test opens this gate.
    Wait(Arc<Notify>),
}

/// What the fake answers to one request.
#[derive(Clone)]
pub enum Reply {
    Json {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    Sse(Vec<Step>),
    /// An SSE answer with extra response headers.
    SseWithHeaders {
        headers: Vec<(&'static str, String)>,
        steps: Vec<Step>,
    },
    /// Never answer (for timeouts).
    Hang,
}

impl Reply {
    pub fn json(body: impl Into<String>) -> Self {
        Reply::Json {
            status: 200,
            headers: vec![],
            body: body.into(),
        }
    }

    pub fn error(
        status: u16,
        body: impl Into<String>,
        headers: Vec<(&'static str, String)>,
    ) -> Self {
        Reply::Json {
            status,
            headers,
            body: body.into(),
        }
    }

    /// An SSE body split into one `Send` per event (blank-line separated).
    pub fn sse_events(text: &str) -> Self {
        Reply::Sse(split_events(text).into_iter().map(Step::Send).collect())
    }
}

/// Split an SSE text into its events, each with its trailing blank line.
pub fn split_events(text: &str) -> Vec<Bytes> {
    text.split_inclusive("\n\n")
        .map(|s| Bytes::from(s.to_owned()))
        .collect()
}

/// A request the fake received.
#[derive(Clone, Debug)]
pub struct Received {
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Default)]
struct FakeState {
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Option<Reply>>,
}

/// An in-process fake provider.
pub struct FakeUpstream {
    pub base_url: String,
    state: Arc<FakeState>,
}

impl FakeUpstream {
    /// Start a fake answering every request with `default` unless a scripted reply is queued.
    pub async fn start(default: Reply) -> Self {
        let state = Arc::new(FakeState::default());
        *state.default.lock().unwrap() = Some(default);
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base_url: format!("http://{addr}"),
            state,
        }
    }

    /// Answer the next request with `reply` (then fall back to the default).
    pub fn push(&self, reply: Reply) {
        self.state.script.lock().unwrap().push_back(reply);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.state.received.lock().unwrap().len()
    }
}

async fn handle(
    State(state): State<Arc<FakeState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let include_usage = body
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    state.received.lock().unwrap().push(Received {
        path_and_query: uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers,
        body,
    });
    let reply = state.script.lock().unwrap().pop_front();
    let reply = reply
        .or_else(|| state.default.lock().unwrap().clone())
        .unwrap();
    match reply {
        Reply::Json {
            status,
            headers,
            body,
        } => {
            let mut resp = (StatusCode::from_u16(status).unwrap(), body).into_response();
            resp.headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            for (k, v) in headers {
                resp.headers_mut().insert(k, v.parse().unwrap());
            }
            resp
        }
        Reply::Sse(steps) => sse_response(steps, vec![], include_usage),
        Reply::SseWithHeaders { headers, steps } => sse_response(steps, headers, include_usage),
        Reply::Hang => {
            std::future::pending::<()>().await;
            StatusCode::OK.into_response()
        }
    }
}

fn sse_response(
    steps: Vec<Step>,
    headers: Vec<(&'static str, String)>,
    include_usage: bool,
) -> Response {
    let steps: Vec<Step> = if include_usage {
        steps
    } else {
        steps.into_iter().filter_map(without_usage).collect()
    };
    let stream = futures_util::stream::unfold(VecDeque::from(steps), |mut steps| async move {
        loop {
            match steps.pop_front()? {
                Step::Send(b) => return Some((Ok::<Bytes, std::io::Error>(b), steps)),
                Step::Sleep(d) => tokio::time::sleep(d).await,
                Step::Wait(n) => n.notified().await,
            }
        }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut()
        .insert("content-type", "text/event-stream".parse().unwrap());
    for (k, v) in headers {
        resp.headers_mut().insert(k, v.parse().unwrap());
    }
    resp
}

/// A step as an OpenAI-style upstream sends it to a request that did not ask for
/// `stream_options.include_usage`: no usage-only chunk (empty `choices` with `usage`),
/// and no `usage` on other chunks. Steps holding whole events are rewritten; anything
/// else (a partial event, a non-JSON event) is sent as scripted.
fn without_usage(step: Step) -> Option<Step> {
    let Step::Send(bytes) = &step else {
        return Some(step);
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Some(step);
    };
    let mut out = String::new();
    for event in text.split_inclusive("\n\n") {
        let data = event
            .trim_end()
            .strip_prefix("data: ")
            .filter(|d| !d.contains('\n'));
        let chunk = data.and_then(|d| serde_json::from_str::<Value>(d).ok());
        match chunk {
            Some(Value::Object(mut c)) if c.get("usage").is_some_and(|u| !u.is_null()) => {
                if c.get("choices")
                    .and_then(Value::as_array)
                    .is_some_and(Vec::is_empty)
                {
                    continue;
                }
                c.remove("usage");
                out.push_str(&format!("data: {}\n\n", Value::Object(c)));
            }
            _ => out.push_str(event),
        }
    }
    (!out.is_empty()).then(|| Step::Send(Bytes::from(out)))
}

/// The demo key every test config uses.
pub const KEY: &str = "tg-demo-key";
pub const KEY_HASH: &str =
    "sha256:e7aab4b439baa8c615eb31e352f5b4259085813fbcd95a65a5a346a6bdfb1bb3";

/// A running gateway on port 0.
pub struct Gateway {
    pub url: String,
    pub admin_url: String,
    pub ledger_path: PathBuf,
    pub app: Option<tollgate::App>,
    pub dir: tempfile::TempDir,
    /// `ledger.url` when the ledger is PostgreSQL.
    ledger_url: Option<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Start a gateway from a TOML config text (the shipped price catalog beside it).
/// Secrets resolve to `secret-<NAME>`.
pub async fn start_gateway(config: &str) -> Gateway {
    start_gateway_at(config, None).await
}

/// [`start_gateway`] with every request starting at `at` (for dated prices).
pub async fn start_gateway_at(config: &str, at: Option<chrono::DateTime<chrono::Utc>>) -> Gateway {
    let clock: Option<tollgate::server::Clock> = at.map(|t| {
        let clock: tollgate::server::Clock = Arc::new(move || t);
        clock
    });
    start_gateway_with_clock(config, clock).await
}

/// [`start_gateway`] with a clock the test moves (to place requests on chosen days).
pub async fn start_gateway_with_clock(
    config: &str,
    clock: Option<tollgate::server::Clock>,
) -> Gateway {
    start_in(tempfile::tempdir().unwrap(), config, clock, None).await
}

/// [`start_gateway`] with its ledger in the PostgreSQL database at `url`.
pub async fn start_gateway_on_postgres(config: &str, url: &str) -> Gateway {
    start_in(
        tempfile::tempdir().unwrap(),
        config,
        None,
        Some(url.to_owned()),
    )
    .await
}

/// Write `config` as `dir/tollgate.toml`, with the harness's `[ledger]` (in `dir`) and
/// short `[upstream]` deadlines in front of it.
fn write_config_in(dir: &Path, config: &str, ledger_url: Option<&str>) -> PathBuf {
    let url = ledger_url.map_or(String::new(), |u| format!("url = {u:?}\n"));
    let text = format!(
        "[ledger]\npath = {:?}\n{url}flush_interval = \"20ms\"\n[upstream]\nfirst_byte_timeout = \"2s\"\nidle_timeout = \"5s\"\n{config}",
        dir.join("ledger.db").display().to_string()
    );
    let path = dir.join("tollgate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Start a gateway that reaches the provider kinds of `registry` too.
pub async fn start_gateway_with_registry(
    config: &str,
    registry: tollgate::providers::Registry,
) -> Gateway {
    start_in_with(tempfile::tempdir().unwrap(), config, None, None, registry).await
}

/// Start a gateway whose files (catalog copy, config, ledger) live in `dir`.
async fn start_in(
    dir: tempfile::TempDir,
    config: &str,
    clock: Option<tollgate::server::Clock>,
    ledger_url: Option<String>,
) -> Gateway {
    let registry = tollgate::providers::Registry::builtin();
    start_in_with(dir, config, clock, ledger_url, registry).await
}

async fn start_in_with(
    dir: tempfile::TempDir,
    config: &str,
    clock: Option<tollgate::server::Clock>,
    ledger_url: Option<String>,
    registry: tollgate::providers::Registry,
) -> Gateway {
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/prices.toml");
    std::fs::copy(catalog, dir.path().join("prices.toml")).unwrap();
    let ledger_path = dir.path().join("ledger.db");
    let path = write_config_in(dir.path(), config, ledger_url.as_deref());
    let raw = tollgate::config::load(&path, vec![]).unwrap();
    let kinds = registry.extension_kinds();
    let settings = tollgate::config::validate_with_kinds(
        raw,
        dir.path(),
        &|n| Some(format!("secret-{n}")),
        &kinds,
    )
    .unwrap();
    let clock = clock.unwrap_or_else(|| std::sync::Arc::new(chrono::Utc::now));
    let app = tollgate::build_app_with(settings, clock, registry)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let admin_url = format!("http://{}", admin.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let router = app.router();
    let admin_router = app.admin_router();
    tokio::spawn(async move {
        let _ = axum::serve(admin, admin_router).await;
    });
    let task = tokio::spawn(async move {
        let _ = tollgate::server::serve(listener, router, async move {
            let _ = rx.await;
        })
        .await;
    });
    Gateway {
        url,
        admin_url,
        ledger_path,
        app: Some(app),
        dir,
        ledger_url,
        stop: Some(tx),
        task: Some(task),
    }
}

impl Gateway {
    /// Rewrite this gateway's config file (same ledger); returns its path.
    pub fn write_config(&self, config: &str) -> PathBuf {
        write_config_in(self.dir.path(), config, self.ledger_url.as_deref())
    }

    /// Validated settings for `config` in this gateway's folder (secrets resolve to
    /// `secret-<NAME>`), as a reload would apply them.
    pub fn settings_for(&self, config: &str) -> tollgate::config::Settings {
        let path = self.write_config(config);
        let raw = tollgate::config::load(&path, vec![]).unwrap();
        tollgate::config::validate(raw, self.dir.path(), &|n| Some(format!("secret-{n}"))).unwrap()
    }

    /// Stop, then start a new gateway on the same ledger file (a process restart).
    pub async fn restart(mut self, config: &str) -> Gateway {
        self.stop().await;
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        start_in(dir, config, None, self.ledger_url.take()).await
    }

    /// Stop serving and flush the ledger.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        if let Some(app) = self.app.take() {
            app.shutdown().await.unwrap();
        }
    }

    pub fn client() -> reqwest::Client {
        reqwest::Client::new()
    }

    /// POST a chat completion with the demo key.
    pub async fn chat(&self, body: Value) -> reqwest::Response {
        Self::client()
            .post(format!("{}/v1/chat/completions", self.url))
            .bearer_auth(KEY)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Every record in the ledger file, read straight from SQLite (after a flush).
    pub async fn ledger_rows(&self) -> Vec<Value> {
        if let Some(app) = &self.app {
            app.state().ledger.flush().await.unwrap();
        }
        read_ledger(&self.ledger_path)
    }
}

/// Read the `requests` table of a ledger file as JSON rows.
pub fn read_ledger(path: &Path) -> Vec<Value> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT * FROM requests ORDER BY created_at_ms")
        .unwrap();
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    let rows = stmt
        .query_map([], |row| {
            let mut obj = serde_json::Map::new();
            for (i, n) in names.iter().enumerate() {
                let v: rusqlite::types::Value = row.get(i)?;
                let j = match v {
                    rusqlite::types::Value::Null => Value::Null,
                    rusqlite::types::Value::Integer(i) => Value::from(i),
                    rusqlite::types::Value::Real(f) => Value::from(f),
                    rusqlite::types::Value::Text(t) => Value::from(t),
                    rusqlite::types::Value::Blob(_) => Value::from("<blob>"),
                };
                obj.insert(n.clone(), j);
            }
            Ok(Value::Object(obj))
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

/// A `[[keys]]` entry for the demo key plus one provider and one single-offer model.
pub fn one_offer_config(
    kind: &str,
    base_url: &str,
    extra_provider: &str,
    jurisdiction: &str,
    model: &str,
    upstream_model: &str,
    price: Option<&str>,
) -> String {
    let price = price
        .map(|p| format!(", price = {p:?}"))
        .unwrap_or_default();
    format!(
        r#"
[[keys]]
name = "demo"
hash = "{KEY_HASH}"

[[providers]]
id = "p1"
kind = "{kind}"
base_url = "{base_url}"
api_key = "env:P1_KEY"
region = "test:region-1"
jurisdiction = "{jurisdiction}"
scope = "regional"
{extra_provider}

[[models]]
name = "{model}"
offers = [{{ provider = "p1", upstream_model = "{upstream_model}"{price} }}]
"#
    )
}

/// A minimal chat body.
pub fn chat_body(model: &str) -> Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": "How many languages are there?"}]})
}

/// Read an SSE response to the end, returning each `data:` payload.
pub async fn sse_data(resp: reqwest::Response) -> Vec<String> {
    let text = resp.text().await.unwrap();
    text.split("\n\n")
        .filter_map(|ev| {
            ev.lines()
                .find_map(|l| l.strip_prefix("data: "))
                .map(str::to_owned)
        })
        .collect()
}

/// Named SSE events (Anthropic's, the Responses API's): (name, data) in order.
pub async fn named_events(resp: reqwest::Response) -> Vec<(String, Value)> {
    let text = resp.text().await.unwrap();
    text.split("\n\n")
        .filter_map(|ev| {
            let name = ev.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = ev.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((name.to_owned(), serde_json::from_str(data).unwrap()))
        })
        .collect()
}

/// One DeepSeek-R1 offer (`deepseek` kind, CN, catalog `deepseek/deepseek-reasoner`) as
/// the logical model `r1`.
pub fn deepseek_r1(base_url: &str) -> String {
    one_offer_config(
        "deepseek",
        base_url,
        "",
        "CN",
        "r1",
        "deepseek-reasoner",
        Some("deepseek/deepseek-reasoner"),
    )
}

/// Status and JSON body of an error answer.
pub async fn error_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    (status, body)
}

/// config/demo.toml without its `[ledger]` section (the harness supplies its own).
pub fn demo_config() -> String {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/demo.toml")).unwrap();
    text.replace("[ledger]\npath = \"data/tollgate-demo.db\"\n", "")
}
