//! The HTTP edge: the apps' router, the admin router, shared state, reading request
//! bodies within the size and time limits, the response headers every proxied answer
//! carries, and serving (connection limits and shutdown phases live in `edge`).
//!
//! Handlers live in sibling files, one per endpoint family.

mod admin;
mod answer;
mod attempts;
mod chat;
mod count_tokens;
mod dashboard;
mod edge;
mod embeddings;
mod embeddings_answer;
mod export;
mod info;
mod messages;
mod messages_answer;
mod pipeline;
mod prices;
mod relay;
mod responses;
mod responses_answer;
mod savings;
mod usage;

use std::future::Future;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use chrono::Utc;

use crate::api::error::{ErrorCode, GatewayError};
use crate::config::Settings;
use crate::ledger::Ledger;
use crate::metering::facts::RequestFacts;
use crate::metering::finalize::Meter;

use crate::upstream::Upstream;

pub use edge::{serve_with, Shutdown, CUT_WINDOW};

/// Shared, immutable state of a running gateway.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub upstream: Upstream,
    pub meter: Meter,
    pub router: Arc<crate::routing::Router>,
    pub limits: Arc<crate::limits::Limits>,
    pub ledger: Ledger,
    /// Where the records are stored, for the usage API and reports.
    pub store: crate::ledger::LedgerStore,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// The time a request starts at; prices are chosen by it. Tests pin it.
    pub clock: Clock,
    /// Requests in flight per key (`server.max_in_flight_per_key`).
    pub in_flight: crate::auth::InFlight,
    /// The process's shutdown phases: requests and streams end at its deadline.
    pub shutdown: Shutdown,
    /// The provider kinds this gateway reaches (built-in and extensions).
    pub registry: Arc<crate::providers::Registry>,
    /// This generation's provider credentials (Bedrock's and Vertex AI's), by provider index.
    pub credentials: Arc<crate::providers::credentials::Credentials>,
}

impl AppState {
    /// The adapter of an offer of a configured provider serving `upstream_model` (see
    /// `providers::Registry::adapter`).
    pub fn adapter(
        &self,
        p: &crate::config::ProviderSettings,
        upstream_model: &str,
    ) -> Option<&'static dyn crate::providers::ProviderAdapter> {
        self.registry.adapter(p, upstream_model)
    }
}

/// What the routers hold: the current generation of configuration-derived state,
/// replaced whole by a reload. Handlers extract `State<Arc<AppState>>`, which loads
/// the current generation once per request (see the `FromRef` impl), so a request
/// keeps the generation it started with.
#[derive(Clone)]
pub struct Shared {
    current: Arc<arc_swap::ArcSwap<AppState>>,
}

impl Shared {
    /// Start with `state`.
    pub fn new(state: AppState) -> Self {
        Self {
            current: Arc::new(arc_swap::ArcSwap::from_pointee(state)),
        }
    }

    /// The current generation.
    pub fn load(&self) -> Arc<AppState> {
        self.current.load_full()
    }

    /// Replace the generation; requests already running keep theirs.
    pub fn swap(&self, state: AppState) {
        self.current.store(Arc::new(state));
    }
}

impl axum::extract::FromRef<Shared> for Arc<AppState> {
    fn from_ref(shared: &Shared) -> Self {
        shared.load()
    }
}

/// Wall-clock source.
pub type Clock = Arc<dyn Fn() -> chrono::DateTime<Utc> + Send + Sync>;

/// The apps' router.
pub fn app_router(state: Shared) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/chat/completions", post(chat::chat_completions))
        .route(
            "/openai/deployments/{deployment}/chat/completions",
            post(chat::azure_chat_completions),
        )
        .route("/v1/embeddings", post(embeddings::embeddings))
        .route("/v1/messages", post(messages::messages))
        .route(
            "/v1/messages/count_tokens",
            post(count_tokens::count_tokens),
        )
        .route("/v1/responses", post(responses::responses))
        .route("/embeddings", post(embeddings::embeddings))
        .route(
            "/openai/deployments/{deployment}/embeddings",
            post(embeddings::azure_embeddings),
        )
        .route("/v1/models", get(info::models))
        .route("/v1/tollgate/requests/{id}", get(info::request_record))
        .route("/v1/tollgate/prices", get(prices::prices))
        .fallback(info::not_found)
        .with_state(state)
}

/// The operators' router (admin listener). `/metrics` and `/admin/*` pass the admin
/// key guard; health checks and the dashboard's static files do not (see `admin`).
pub fn admin_router(state: Shared) -> Router {
    admin::warn_if_open(&state.load());
    let guarded = Router::new()
        .route("/metrics", get(admin::metrics))
        .route("/admin/usage", get(usage::usage))
        .route("/admin/requests", get(usage::requests))
        .route("/admin/export", get(export::export))
        .route("/admin/savings", get(savings::savings))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin::require_admin_key,
        ));
    Router::new()
        .route("/healthz", get(admin::healthz))
        .route("/readyz", get(admin::readyz))
        .route("/dashboard", get(dashboard::page))
        .route("/dashboard/app.js", get(dashboard::script))
        .route("/dashboard/style.css", get(dashboard::style))
        .merge(guarded)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin::require_local_host,
        ))
        .with_state(state)
}

/// Serve `router` on `listener` with the default edge limits until `shutdown`
/// resolves, then let in-flight requests and streams finish (no deadline; the
/// binary uses [`serve_with`] and its own).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let phases = Shutdown::new();
    let stopper = phases.clone();
    let stop = tokio::spawn(async move {
        shutdown.await;
        stopper.stop();
    });
    serve_with(listener, router, Default::default(), phases).await;
    stop.abort();
    Ok(())
}

/// Facts of a request that just arrived.
fn new_facts(app: &AppState, route: &'static str) -> RequestFacts {
    RequestFacts {
        request_id: crate::request_id::new(),
        created_at: (app.clock)(),
        started: tokio::time::Instant::now(),
        key_name: String::new(),
        team: None,
        key_index: None,
        route,
        logical_model: None,
        is_streaming: false,
        request: None,
        max_output_tokens: None,
        served: None,
        slot: None,
        attempts: 0,
        policy: crate::ledger::PolicyJson::default(),
    }
}

/// A limit's refusal: counted, then answered. Shared by admission (`pipeline`) and by
/// failover when every offer's quota refused (`attempts`).
fn refused(r: crate::limits::LimitRefusal) -> GatewayError {
    crate::telemetry::metrics::record_limit_refusal(r.kind.metric_label());
    r.into_gateway_error()
}

/// Read a request body, refusing more than `max_body_bytes` with `request_too_large`
/// (checked against `content-length` first, so an honest oversized upload is refused
/// before it is read) and a body still arriving after `body_read_timeout` with
/// `request_timeout`.
async fn read_body(
    body: Body,
    headers: &HeaderMap,
    settings: &Settings,
) -> Result<Bytes, GatewayError> {
    let timeout = settings.edge.body_read_timeout;
    tokio::time::timeout(timeout, read_limited(body, headers, settings.max_body_bytes))
        .await
        .unwrap_or_else(|_| {
            Err(GatewayError::new(
                ErrorCode::RequestTimeout,
                format!("the request body did not arrive within {}s (server.body_read_timeout); send it in one go", timeout.as_secs_f64()),
            ))
        })
}

async fn read_limited(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, GatewayError> {
    let too_large = || {
        GatewayError::new(
            ErrorCode::RequestTooLarge,
            format!("the request body is larger than the {limit}-byte limit; shorten the prompt or ask the operator to raise server.max_body_bytes"),
        )
    };
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    // One buffer of the declared size: collecting chunks and then joining them would
    // hold the body twice.
    let mut out = bytes::BytesMut::with_capacity(declared.map_or(0, |n| n as usize));
    let mut body = body.into_data_stream();
    while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
        let chunk = chunk.map_err(|_| {
            GatewayError::new(
                ErrorCode::InvalidRequest,
                "the request body could not be read",
            )
        })?;
        if out.len() + chunk.len() > limit {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

/// Names of the `x-tollgate-*` headers, parsed once at compile time.
mod names {
    use axum::http::HeaderName;

    pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-tollgate-request-id");
    pub const PROVIDER: HeaderName = HeaderName::from_static("x-tollgate-provider");
    pub const MODEL: HeaderName = HeaderName::from_static("x-tollgate-model");
    pub const REGION: HeaderName = HeaderName::from_static("x-tollgate-region");
    pub const JURISDICTION: HeaderName = HeaderName::from_static("x-tollgate-jurisdiction");
    pub const SCOPE: HeaderName = HeaderName::from_static("x-tollgate-processing-scope");
    pub const COST: HeaderName = HeaderName::from_static("x-tollgate-cost-usd");
    pub const PRICING: HeaderName = HeaderName::from_static("x-tollgate-pricing");
    pub const USAGE_SOURCE: HeaderName = HeaderName::from_static("x-tollgate-usage-source");
    pub const INPUT: HeaderName = HeaderName::from_static("x-tollgate-input-tokens");
    pub const CACHED: HeaderName = HeaderName::from_static("x-tollgate-cached-tokens");
    pub const OUTPUT: HeaderName = HeaderName::from_static("x-tollgate-output-tokens");
    pub const REASONING: HeaderName = HeaderName::from_static("x-tollgate-reasoning-tokens");
}

/// `x-tollgate-*` headers every proxied answer carries.
fn residency_headers(h: &mut HeaderMap, facts: &RequestFacts) {
    // Room for these and the answer's own headers: the map grows once, not per insert.
    h.reserve(16);
    let mut put = |name: axum::http::HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    put(names::REQUEST_ID, &facts.request_id);
    if let Some(s) = &facts.served {
        put(names::PROVIDER, &s.provider_id);
        put(names::MODEL, &s.upstream_model);
        put(names::REGION, &s.residency.region);
        put(names::JURISDICTION, &s.residency.jurisdiction);
        h.insert(
            names::SCOPE,
            HeaderValue::from_static(s.residency.scope.as_str()),
        );
    }
}
