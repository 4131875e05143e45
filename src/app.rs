//! Building a gateway and swapping its configuration while it runs.
//!
//! Everything derived from the configuration (settings, price book, routing health,
//! limits, the upstream client) forms one *generation* (`AppState`). The routers hold
//! a `Shared` handle and every request loads the current generation once, so a
//! reload is one atomic swap and in-flight requests and streams finish on the
//! generation they started with. What outlives generations (the ledger, the mock
//! upstream, the metrics recorder, the clock) is built once, here.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::{ConfigError, ProviderKind, Settings};
use crate::ledger::retention::Retention;
use crate::ledger::{Ledger, LedgerError, LedgerOptions, LedgerStore, LedgerWriter};
use crate::metering::finalize::Meter;
use crate::server::{AppState, Clock, Shared};
use crate::{limits, providers, routing, telemetry, upstream};

/// Why a gateway could not start, or a new configuration could not be applied.
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
    #[error("limits: {0}")]
    Limits(#[from] limits::LimitsError),
    #[error("could not rebuild budgets from the ledger: {0}")]
    Spend(String),
    #[error("{0} cannot change while running; restart tollgate to apply it")]
    NeedsRestart(&'static str),
    #[error("provider {0:?}: its kind {1:?} is not registered in this gateway")]
    UnregisteredKind(String, String),
}

/// What outlives configuration generations.
struct Fixed {
    ledger: Ledger,
    /// The stored records, for readers (usage API, savings, budget rebuild).
    store: LedgerStore,
    ledger_path: PathBuf,
    /// Whether `ledger.url` was set at start (which ledger cannot change while running).
    ledger_is_postgres: bool,
    clock: Clock,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Base URL of the in-process mock upstream, when one was started.
    mock_base: Option<String>,
    /// The process's shutdown phases, seen by every generation's requests and streams.
    shutdown: crate::server::Shutdown,
    /// The provider kinds this gateway reaches.
    registry: Arc<providers::Registry>,
}

/// A built gateway: the swappable state plus what must be shut down in order.
pub struct App {
    reloader: Reloader,
    ledger_writer: LedgerWriter,
    /// Deletes records past `ledger.retention` (and keeps PostgreSQL partitions ahead).
    retention: Option<Retention>,
    mock: Option<tokio::task::JoinHandle<()>>,
}

/// Applies new configurations to a running gateway. Cheap to clone.
#[derive(Clone)]
pub struct Reloader {
    shared: Shared,
    fixed: Arc<Fixed>,
}

impl App {
    /// The current generation.
    pub fn state(&self) -> Arc<AppState> {
        self.reloader.shared.load()
    }

    /// The apps' router.
    pub fn router(&self) -> axum::Router {
        crate::server::app_router(self.reloader.shared.clone())
    }

    /// The operators' router.
    pub fn admin_router(&self) -> axum::Router {
        crate::server::admin_router(self.reloader.shared.clone())
    }

    /// The ledger retention task; `None` when there is nothing for it to do (a SQLite
    /// ledger without `ledger.retention`).
    pub fn retention(&self) -> Option<&Retention> {
        self.retention.as_ref()
    }

    /// A handle that applies new configurations.
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// The shutdown phases the listeners and streams follow (`serve_with`).
    pub fn shutdown_handle(&self) -> crate::server::Shutdown {
        self.reloader.fixed.shutdown.clone()
    }

    /// Flush every queued ledger record, then stop background tasks. Call after the
    /// listeners have stopped so no new records arrive.
    pub async fn shutdown(self) -> Result<(), LedgerError> {
        if let Some(retention) = self.retention {
            retention.stop().await;
        }
        let flushed = self.ledger_writer.shutdown().await;
        if let Some(mock) = self.mock {
            mock.abort();
        }
        flushed
    }
}

impl Reloader {
    /// Validate-and-build a new generation from `settings`, then swap it in. On any
    /// error the running generation stays.
    pub async fn apply(&self, settings: Settings) -> Result<(), InitError> {
        if settings.ledger_path != self.fixed.ledger_path
            || settings.ledger_url.is_some() != self.fixed.ledger_is_postgres
        {
            return Err(InitError::NeedsRestart(
                "the ledger (ledger.path, ledger.url)",
            ));
        }
        let current = self.shared.load();
        if settings.listen != current.settings.listen
            || settings.admin_listen != current.settings.admin_listen
        {
            tracing::warn!(
                "listen addresses changed in the config; they apply at the next restart"
            );
        }
        if settings.ledger_retention != current.settings.ledger_retention {
            tracing::warn!(
                "ledger.retention changed in the config; it applies at the next restart"
            );
        }
        let mut next = generation(settings, &self.fixed, Some(&current.limits)).await?;
        next.in_flight.adopt(&current.in_flight);
        self.shared.swap(next);
        Ok(())
    }

    /// Read, validate and apply the config file at `path`.
    pub async fn apply_file(&self, path: &Path) -> Result<(), InitError> {
        let kinds = self.fixed.registry.extension_kinds();
        self.apply(crate::load_settings_with_kinds(path, &kinds)?)
            .await
    }

    /// Reload on SIGHUP and whenever the config file or its price catalog changes
    /// (checked every `poll`). A bad config is logged with every problem and the
    /// running one keeps serving. Runs until the process ends.
    pub async fn watch(self, path: PathBuf, poll: Duration) {
        let mut stamp = stamps(&path, &self.shared.load().settings.catalog_path);
        let mut interval = tokio::time::interval(poll);
        let mut hangup = hangup_signal();
        loop {
            let by_signal = tokio::select! {
                _ = interval.tick() => false,
                _ = hangup.recv() => true,
            };
            let now = stamps(&path, &self.shared.load().settings.catalog_path);
            if !by_signal && now == stamp {
                continue;
            }
            stamp = now;
            match self.apply_file(&path).await {
                Ok(()) => tracing::info!(path = %path.display(), "configuration reloaded"),
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "configuration rejected; the running one stays")
                }
            }
        }
    }
}

/// Modification times of the config file and its catalog.
fn stamps(config: &Path, catalog: &Path) -> (Option<SystemTime>, Option<SystemTime>) {
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (mtime(config), mtime(catalog))
}

/// SIGHUP as a channel (never fires where signals do not exist).
fn hangup_signal() -> tokio::sync::mpsc::Receiver<()> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    #[cfg(unix)]
    if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        tokio::spawn(async move {
            while s.recv().await.is_some() {
                if tx.send(()).await.is_err() {
                    break;
                }
            }
        });
    }
    #[cfg(not(unix))]
    drop(tx);
    rx
}

/// One generation of configuration-derived state. A reload passes the running
/// generation's limits as `previous`: their state carries over (see `limits::carry`).
async fn generation(
    mut settings: Settings,
    fixed: &Fixed,
    previous: Option<&limits::Limits>,
) -> Result<AppState, InitError> {
    let has_mock = settings
        .providers
        .iter()
        .any(|p| p.kind == ProviderKind::Mock);
    match (&fixed.mock_base, has_mock) {
        (Some(base), true) => {
            for p in settings
                .providers
                .iter_mut()
                .filter(|p| p.kind == ProviderKind::Mock)
            {
                let flavor = p.mock_flavor.unwrap_or(providers::mock::MockFlavor::Openai);
                p.base_url = format!("{base}/{}", flavor.path_segment());
            }
        }
        (None, true) => return Err(InitError::NeedsRestart("adding the first mock provider")),
        _ => {}
    }
    if let Some(p) = settings
        .providers
        .iter()
        // Only an extension kind can be missing, whatever the model.
        .find(|p| fixed.registry.adapter(p, "").is_none())
    {
        return Err(InitError::UnregisteredKind(
            p.id.clone(),
            p.kind.as_str().to_owned(),
        ));
    }
    let upstream = upstream::Upstream::new(&settings)?;
    let credentials =
        Arc::new(providers::credentials::Credentials::load(&settings.providers).await);
    let router = Arc::new(routing::Router::new(&settings));
    let mut limits = limits::Limits::connect(&settings)?;
    // With Redis the spend is shared and outlives restarts: nothing to rebuild.
    // Budgets survive restarts: today's and this month's spend come back from the
    // ledger (for a reload, that of keys and teams new to the configuration).
    if !limits.is_shared() {
        limits
            .rebuild_from_ledger(&fixed.store, chrono::Utc::now())
            .await
            .map_err(|e| InitError::Spend(e.to_string()))?;
    }
    // Regression: #10 (a reload reset rate limits, quotas and spend). After the
    // rebuild, so the in-memory spend (newer than the ledger's queue) wins.
    if let Some(previous) = previous {
        limits.carry_over(previous);
    }
    let limits = Arc::new(limits);
    let meter = Meter {
        ledger: fixed.ledger.clone(),
        prices: settings.prices.clone(),
        router: router.clone(),
        limits: limits.clone(),
        audit: Arc::new(crate::metering::audit::Auditor::new(&settings)),
        series: Arc::new(telemetry::series::SeriesTable::new(&settings)),
    };
    warn_stale_prices(&settings);
    let in_flight = crate::auth::InFlight::new(&settings.keys, settings.edge.max_in_flight_per_key);
    Ok(AppState {
        settings: Arc::new(settings),
        upstream,
        meter,
        router,
        limits,
        ledger: fixed.ledger.clone(),
        store: fixed.store.clone(),
        metrics: fixed.metrics.clone(),
        clock: fixed.clock.clone(),
        in_flight,
        shutdown: fixed.shutdown.clone(),
        registry: fixed.registry.clone(),
        credentials,
    })
}

/// Warn about catalog rows older than `pricing.max_age` (log and gauge), at start-up
/// and at every reload.
fn warn_stale_prices(settings: &Settings) {
    if let Some(max_age) = settings.price_max_age {
        let stale =
            crate::catalog::stale::stale_rows(&settings.prices, max_age, chrono::Utc::now());
        for row in &stale {
            tracing::warn!(price_id = %row.id, as_of = %row.as_of, "price row older than pricing.max_age; check it against its source");
        }
        telemetry::price_metrics::set_stale_rows(stale.len());
    }
}

/// Build a gateway: start the mock upstream when a `mock` provider is configured,
/// open the ledger, build the first generation.
pub async fn build_app(settings: Settings) -> Result<App, InitError> {
    build_app_with_clock(settings, Arc::new(chrono::Utc::now)).await
}

/// [`build_app`] with a given clock (tests price requests at chosen instants).
pub async fn build_app_with_clock(settings: Settings, clock: Clock) -> Result<App, InitError> {
    build_app_with(settings, clock, providers::Registry::builtin()).await
}

/// [`build_app_with_clock`] reaching the provider kinds of `registry` too (validate
/// the settings with its `extension_kinds`).
pub async fn build_app_with(
    settings: Settings,
    clock: Clock,
    registry: providers::Registry,
) -> Result<App, InitError> {
    let mut mock = None;
    let mut mock_base = None;
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
        mock_base = Some(base);
        mock = Some(handle);
    }
    let opts = LedgerOptions {
        queue_capacity: settings.ledger_queue_capacity,
        batch_size: settings.ledger_batch_size,
        flush_interval: settings.ledger_flush_interval,
    };
    let store = LedgerStore::open(&settings.ledger_path, settings.ledger_url.as_ref()).await?;
    let (ledger, ledger_writer) = match &store {
        LedgerStore::Postgres(pg) => Ledger::start(pg.clone(), opts)?,
        LedgerStore::Sqlite(path) => Ledger::open_sqlite(path, opts).await?,
    };
    let retention = Retention::start(store.clone(), settings.ledger_retention, clock.clone());
    let fixed = Arc::new(Fixed {
        ledger,
        store,
        ledger_is_postgres: settings.ledger_url.is_some(),
        ledger_path: settings.ledger_path.clone(),
        clock,
        metrics: {
            let handle = telemetry::metrics::install();
            telemetry::price_metrics::describe();
            handle
        },
        mock_base,
        shutdown: crate::server::Shutdown::new(),
        registry: Arc::new(registry),
    });
    let first = generation(settings, &fixed, None).await?;
    Ok(App {
        reloader: Reloader {
            shared: Shared::new(first),
            fixed,
        },
        ledger_writer,
        retention,
        mock,
    })
}
