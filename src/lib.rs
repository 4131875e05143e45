//! tollgate: an OpenAI-compatible LLM gateway that meters every request, prices it
//! from a dated catalog, records it, and reports who served it and where.
//!
//! Request flow (one module per step):
//! `server` -> `auth` -> `policy` -> `providers` (adapter builds the upstream
//! request) -> `upstream` (the call, failover before the first byte) ->
//! `metering` (usage, streamed through `MeteredBody`) -> `pricing` (cost) ->
//! `ledger` + `telemetry` -> response.

pub mod api;
pub mod auth;
pub mod config;
pub mod ledger;
pub mod metering;
pub mod policy;
pub mod pricing;
pub mod providers;
pub mod routing;
pub mod server;
pub mod telemetry;
pub mod upstream;

use std::path::Path;
use std::sync::Arc;

use crate::config::{ConfigError, ProviderKind, Settings};
use crate::ledger::{Ledger, LedgerError, LedgerOptions, LedgerWriter};
use crate::metering::finalize::Meter;
use crate::server::AppState;

/// Why a gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("ledger: {0}")]
    Ledger(#[from] LedgerError),
    #[error("could not build the upstream HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("could not start the mock upstream: {0}")]
    Mock(#[from] std::io::Error),
}

/// A built gateway: its shared state plus what must be shut down in order.
pub struct App {
    pub state: Arc<AppState>,
    ledger_writer: LedgerWriter,
    mock: Option<tokio::task::JoinHandle<()>>,
}

impl App {
    /// The apps' router.
    pub fn router(&self) -> axum::Router {
        server::app_router(self.state.clone())
    }

    /// The operators' router.
    pub fn admin_router(&self) -> axum::Router {
        server::admin_router(self.state.clone())
    }

    /// Flush every queued ledger record, then stop background tasks. Call after the
    /// listeners have stopped so no new records arrive.
    pub async fn shutdown(self) -> Result<(), LedgerError> {
        drop(self.state);
        let flushed = self.ledger_writer.shutdown().await;
        if let Some(mock) = self.mock {
            mock.abort();
        }
        flushed
    }
}

/// Read and validate a config file, with `TOLLGATE__...` overrides from the process
/// environment and `env:NAME` secrets from it.
pub fn load_settings(path: &Path) -> Result<Settings, ConfigError> {
    let raw = config::load(path, std::env::vars().collect())?;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    config::validate(raw, dir, &|name| std::env::var(name).ok())
}

/// Build a gateway: start the mock upstream when a `mock` provider is configured,
/// open the ledger, build the pooled upstream client.
pub async fn build_app(settings: Settings) -> Result<App, InitError> {
    build_app_with_clock(settings, Arc::new(chrono::Utc::now)).await
}

/// [`build_app`] with a given clock (tests price requests at chosen instants).
pub async fn build_app_with_clock(
    mut settings: Settings,
    clock: server::Clock,
) -> Result<App, InitError> {
    let mut mock = None;
    if settings
        .providers
        .iter()
        .any(|p| p.kind == ProviderKind::Mock)
    {
        let opts = providers::mock::MockOptions {
            latency: settings.mock_latency,
            chunk_interval: settings.mock_chunk_interval,
        };
        let (base, handle) = providers::mock::spawn(opts).await?;
        for p in settings
            .providers
            .iter_mut()
            .filter(|p| p.kind == ProviderKind::Mock)
        {
            let flavor = p.mock_flavor.unwrap_or(providers::mock::MockFlavor::Openai);
            p.base_url = format!("{base}/{}", flavor.path_segment());
        }
        mock = Some(handle);
    }
    let (ledger, ledger_writer) = Ledger::open_sqlite(
        &settings.ledger_path,
        LedgerOptions {
            queue_capacity: settings.ledger_queue_capacity,
            batch_size: settings.ledger_batch_size,
            flush_interval: settings.ledger_flush_interval,
        },
    )
    .await?;
    let upstream = upstream::Upstream::new(&settings)?;
    let router = Arc::new(routing::Router::new(&settings));
    let meter = Meter {
        ledger: ledger.clone(),
        prices: settings.prices.clone(),
        router: router.clone(),
        audit: Arc::new(metering::audit::Auditor::new(&settings)),
    };
    let metrics = install_metrics(&settings);
    let state = Arc::new(AppState {
        settings: Arc::new(settings),
        upstream,
        meter,
        router,
        ledger,
        metrics,
        clock,
    });
    Ok(App {
        state,
        ledger_writer,
        mock,
    })
}

/// Install the metrics recorder, then warn about stale catalog rows (log and gauge).
fn install_metrics(settings: &Settings) -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    let handle = telemetry::metrics::install();
    telemetry::price_metrics::describe();
    if let Some(max_age) = settings.price_max_age {
        let stale = pricing::stale::stale_rows(&settings.prices, max_age, chrono::Utc::now());
        for row in &stale {
            tracing::warn!(price_id = %row.id, as_of = %row.as_of, "price row older than pricing.max_age; check it against its source");
        }
        telemetry::price_metrics::set_stale_rows(stale.len());
    }
    handle
}
