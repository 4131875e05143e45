//! The `tollgate` command: `serve`, `check-config`, `hash-key`, `report`, `prices`, `reprice`,
//! `ledger seed`, `ledger rebuild-rollups`, and `mock-upstream` (the simulated provider in its own process, for
//! benchmarks). Thin: it parses arguments, loads settings, starts listeners and runs the
//! graceful shutdown.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use rand::Rng;

#[derive(Parser)]
#[command(
    name = "tollgate",
    version,
    about = "LLM gateway that meters, prices and records every prompt"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct ReportArgs {
    /// The ledger file (SQLite).
    #[arg(long, conflicts_with = "config", required_unless_present = "config")]
    ledger: Option<PathBuf>,
    /// Read the ledger path from this config file instead.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Start, inclusive: RFC 3339 or a UTC date (default: 24 hours before --to).
    #[arg(long)]
    from: Option<String>,
    /// End, exclusive: RFC 3339, or a UTC date meaning the end of that day (default: now).
    #[arg(long)]
    to: Option<String>,
    /// Comma-separated: key, team, model, provider, jurisdiction, day or hour.
    #[arg(long)]
    group_by: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    format: tollgate::usage::report::ReportFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Config file (TOML); `TOLLGATE__SECTION__KEY` environment variables override it.
        #[arg(long, default_value = "config/tollgate.toml")]
        config: PathBuf,
    },
    /// Validate a config file and its price catalog, and print each key's effective
    /// residency policy; exits non-zero on any problem.
    CheckConfig {
        /// Config file to check.
        config: PathBuf,
        /// Check that every secret is a well-formed `env:NAME` reference without
        /// reading it, so the check runs where the secrets are not set (e.g. in CI).
        #[arg(long)]
        skip_secrets: bool,
    },
    /// Print the hash to configure for an app key (a new random key when none is given).
    HashKey {
        /// The key to hash; omit to generate a new one.
        key: Option<String>,
    },
    /// Usage and spend from a ledger file, grouped (no server needed).
    Report(ReportArgs),
    /// Every offer of a model (and its comparison groups) priced for a usage, cheapest first.
    #[command(args_conflicts_with_subcommands = true)]
    Prices {
        #[command(subcommand)]
        action: Option<PricesAction>,
        #[command(flatten)]
        args: PricesArgs,
    },
    /// Price recorded traffic as if it had gone to another offer or model.
    Reprice(RepriceArgs),
    /// Ledger maintenance and tooling.
    Ledger {
        #[command(subcommand)]
        action: LedgerAction,
    },
    /// Serve the built-in mock provider in its own process (the benchmark's upstream and
    /// baseline); prints `listening on http://ADDR` once bound. Stops on SIGINT/SIGTERM.
    #[command(hide = true)]
    MockUpstream(MockUpstreamArgs),
}

#[derive(Subcommand)]
enum LedgerAction {
    /// Fill a ledger with synthetic records (for benchmarks and tests): twenty keys in four
    /// teams, the models, providers and jurisdictions of a config, realistic outcomes,
    /// token counts and latencies, and exact costs from its price catalog.
    Seed(SeedArgs),
    /// Recompute the usage rollups (`usage_hourly`, `usage_daily`) from the records.
    ///
    /// Needed only after editing records by hand, or after running replicas of an older
    /// version beside upgraded ones (their records carry no rollups). The gateway may keep
    /// running: the rebuild is one transaction, readers see the old rollups until it
    /// commits, and the gateway's writer waits for it (its records wait in the ledger
    /// queue, and are retried on SQLite) and then adds its own batches on top, so nothing
    /// is counted twice or lost, as long as the queue (`ledger.queue_capacity`) holds the
    /// requests of the rebuild's duration; at high traffic, run it at a quiet time.
    RebuildRollups(RebuildArgs),
}

#[derive(clap::Args)]
struct SeedArgs {
    /// Records to write.
    #[arg(long)]
    records: u64,
    /// Spread them evenly over the last D days.
    #[arg(long, default_value_t = 90)]
    days: u32,
    /// Config whose models, providers and catalog the records are drawn from (default
    /// config/tollgate.example.toml) and whose ledger (ledger.path or ledger.url) they
    /// are written to unless --ledger is given.
    #[arg(long)]
    config: Option<PathBuf>,
    /// SQLite ledger file to write instead of the config's ledger.
    #[arg(long)]
    ledger: Option<PathBuf>,
    /// RNG seed: the same seed, window and config give the same records.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Add to a ledger that already has records (refused otherwise).
    #[arg(long)]
    append: bool,
}

#[derive(clap::Args)]
struct RebuildArgs {
    /// The ledger file (SQLite).
    #[arg(long, conflicts_with = "config", required_unless_present = "config")]
    ledger: Option<PathBuf>,
    /// Use the ledger this config file names (`ledger.path`, or `ledger.url`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Rebuild only from this UTC day on (a date or RFC 3339 instant, taken to its day),
    /// keeping the rollups before it: with `ledger.retention`, pass a day whose records
    /// are all still kept. Default: everything.
    #[arg(long)]
    from: Option<String>,
}

#[derive(clap::Args)]
struct MockUpstreamArgs {
    /// Address to bind; port 0 picks a free one (the printed line tells which).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// Time to first token, e.g. `300ms`.
    #[arg(long, default_value = "0ms", value_parser = parse_duration)]
    latency: Duration,
    /// Pause between streamed chunks, e.g. `20ms`.
    #[arg(long, default_value = "0ms", value_parser = parse_duration)]
    chunk_interval: Duration,
    /// Answer every request at once with a fixed reply (no prose, no token counting), so a
    /// direct call costs only the HTTP round trip: the benchmark's baseline.
    #[arg(long, conflicts_with_all = ["latency", "chunk_interval"])]
    instant: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime_serde::re::humantime::parse_duration(text).map_err(|e| e.to_string())
}

#[derive(clap::Args)]
struct PricesArgs {
    /// Config file naming the models, providers and catalog.
    #[arg(long, default_value = "config/tollgate.toml")]
    config: PathBuf,
    /// One logical model; all when omitted.
    #[arg(long)]
    model: Option<String>,
    /// Input tokens (cached ones included).
    #[arg(long, default_value_t = 0)]
    input: u64,
    /// Cached input tokens (part of --input).
    #[arg(long, default_value_t = 0)]
    cached: u64,
    /// Output tokens (reasoning included).
    #[arg(long, default_value_t = 0)]
    output: u64,
    /// Reasoning tokens (part of --output).
    #[arg(long, default_value_t = 0)]
    reasoning: u64,
    /// Price at this RFC 3339 instant (or a UTC date's midnight) instead of now.
    #[arg(long)]
    at: Option<String>,
    /// Mark which offers this key's residency policy allows.
    #[arg(long)]
    key: Option<String>,
    /// `table` or `json`.
    #[arg(long, default_value = "table")]
    format: String,
}

#[derive(Subcommand)]
enum PricesAction {
    /// Import a public catalog (LiteLLM or genai-prices JSON) into a tollgate catalog file.
    Import {
        /// `litellm` or `genai-prices`.
        #[arg(long)]
        format: String,
        /// The file to import.
        file: PathBuf,
        /// The catalog to write into.
        #[arg(long, default_value = "config/prices.toml")]
        into: PathBuf,
        /// `as_of` of the imported rows (default: today).
        #[arg(long)]
        as_of: Option<chrono::NaiveDate>,
        /// `effective_from` of the imported rows (default: --as-of).
        #[arg(long)]
        effective_from: Option<chrono::NaiveDate>,
        /// Replace tollgate's own rows of the same offer and effective_from.
        #[arg(long)]
        overwrite: bool,
    },
}

#[derive(clap::Args)]
struct RepriceArgs {
    /// Ledger file; default: the config's ledger.path.
    #[arg(long)]
    ledger: Option<PathBuf>,
    /// Config file (models for `--as MODEL`, the catalog, the ledger path).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Catalog to price with when no --config is given.
    #[arg(long, default_value = "config/prices.toml")]
    catalog: PathBuf,
    /// From this date or RFC 3339 instant (inclusive).
    #[arg(long)]
    from: Option<String>,
    /// End: an RFC 3339 instant (exclusive), or a UTC date meaning the end of that day.
    #[arg(long)]
    to: Option<String>,
    /// Only this key's records.
    #[arg(long)]
    key: Option<String>,
    /// Only this logical model's records.
    #[arg(long)]
    model: Option<String>,
    /// A catalog offer key (`openai/o1`) or a logical model (its cheapest offer each time).
    #[arg(long = "as")]
    target: String,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config } => serve(config),
        Command::CheckConfig {
            config,
            skip_secrets,
        } => check_config(&config, skip_secrets),
        Command::HashKey { key } => hash_key(key),
        Command::Report(args) => report(args),
        Command::Prices { action, args } => prices(action, &args),
        Command::Reprice(args) => reprice(&args),
        Command::Ledger { action } => ledger(action),
        Command::MockUpstream(args) => mock_upstream(&args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The error chain alone: operators need the reason, not a backtrace.
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn check_config(path: &std::path::Path, skip_secrets: bool) -> anyhow::Result<()> {
    let settings = if skip_secrets {
        tollgate::check_settings_skipping_secrets(path)?
    } else {
        tollgate::load_settings(path)?
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}: ok ({} keys, {} providers, {} models, {} price rows){}",
        path.display(),
        settings.keys.len(),
        settings.providers.len(),
        settings.models.len(),
        settings.prices.rows().len(),
        if skip_secrets {
            "; secret references checked, not resolved"
        } else {
            ""
        }
    )?;
    writeln!(
        out,
        "effective residency per key ([policy] narrowed by the key's own residency):"
    )?;
    for key in &settings.keys {
        writeln!(out, "  key {:?}: {}", key.name, key.residency.summary())?;
    }
    // Routes wider than their provider declares (e.g. a `us.` Bedrock profile on an
    // EU provider): the configuration is valid, but its residency claims may not be.
    for model in &settings.models {
        for offer in &model.offers {
            let Some(provider) = settings.providers.get(offer.provider) else {
                continue;
            };
            if let Some(w) =
                tollgate::config::cloud::residency_warnings(provider, offer, &model.name)
            {
                writeln!(out, "warning: {w}")?;
            }
        }
    }
    Ok(())
}

/// The ledger a CLI command reads: `--ledger FILE`, else the one `--config` names
/// (its SQLite file, or its PostgreSQL database when `ledger.url` is set).
async fn cli_ledger(
    file: Option<PathBuf>,
    config: Option<&Path>,
) -> anyhow::Result<tollgate::ledger::LedgerStore> {
    use tollgate::ledger::LedgerStore;
    Ok(match (file, config) {
        (Some(path), _) => LedgerStore::Sqlite(path),
        (None, Some(c)) => {
            let (path, url) = tollgate::usage::report::ledger_from_config(c)?;
            LedgerStore::open(&path, url.as_ref()).await?
        }
        (None, None) => anyhow::bail!("give --ledger PATH or --config PATH"),
    })
}

/// A small runtime for the CLI commands that read the ledger.
fn cli_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn report(args: ReportArgs) -> anyhow::Result<()> {
    use tollgate::usage::report::{report, ReportRequest};
    let text = cli_runtime()?.block_on(async {
        let ledger = cli_ledger(args.ledger, args.config.as_deref()).await?;
        anyhow::Ok(
            report(&ReportRequest {
                ledger: &ledger,
                from: args.from.as_deref(),
                to: args.to.as_deref(),
                group_by: args.group_by.as_deref(),
                format: args.format,
                now: chrono::Utc::now(),
            })
            .await?,
        )
    })?;
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

fn prices(action: Option<PricesAction>, args: &PricesArgs) -> anyhow::Result<()> {
    use tollgate::pricing::commands;
    let text = match action {
        Some(PricesAction::Import {
            format,
            file,
            into,
            as_of,
            effective_from,
            overwrite,
        }) => {
            let format = tollgate::catalog::import::Format::parse(&format).with_context(|| {
                format!("unknown --format {format:?}; expected litellm or genai-prices")
            })?;
            let as_of = as_of.unwrap_or_else(|| chrono::Utc::now().date_naive());
            commands::import(&commands::ImportOptions {
                format,
                file,
                into,
                as_of,
                effective_from: effective_from.unwrap_or(as_of),
                overwrite,
            })?
        }
        None => {
            let settings = tollgate::load_settings(&args.config)?;
            let at = cli_instant("at", args.at.as_deref(), tollgate::instant::Bound::Start)?
                .unwrap_or_else(chrono::Utc::now);
            let json = match args.format.as_str() {
                "table" => false,
                "json" => true,
                other => anyhow::bail!("unknown --format {other:?}; expected table or json"),
            };
            let opts = commands::PricesOptions {
                model: args.model.clone(),
                tokens: tollgate::catalog::TokenCounts {
                    input: args.input,
                    cached_input: args.cached,
                    cache_write: 0,
                    cache_write_1h: 0,
                    output: args.output,
                    reasoning: args.reasoning,
                },
                at,
                key: args.key.clone(),
                json,
            };
            commands::prices(&settings, &opts)?
        }
    };
    write!(std::io::stdout().lock(), "{text}")?;
    Ok(())
}

fn reprice(args: &RepriceArgs) -> anyhow::Result<()> {
    use tollgate::pricing::commands;
    let settings = args
        .config
        .as_deref()
        .map(tollgate::load_settings)
        .transpose()?;
    let prices = match &settings {
        Some(s) => (*s.prices).clone(),
        None => tollgate::catalog::PriceBook::load(&args.catalog)?,
    };
    let runtime = cli_runtime()?;
    let ledger = runtime.block_on(cli_ledger(args.ledger.clone(), args.config.as_deref()))?;
    use tollgate::instant::Bound;
    let opts = commands::RepriceOptions {
        ledger,
        filter: tollgate::ledger::filter::Filter {
            from: cli_instant("from", args.from.as_deref(), Bound::Start)?,
            to: cli_instant("to", args.to.as_deref(), Bound::End)?,
            key_name: args.key.clone(),
            logical_model: args.model.clone(),
        },
        target: args.target.clone(),
    };
    let text = runtime.block_on(commands::reprice(&prices, settings.as_ref(), &opts))?;
    write!(std::io::stdout().lock(), "{text}")?;
    Ok(())
}

/// A `--from`/`--to`/`--at` value, read by the same rule as the admin API's.
fn cli_instant(
    name: &str,
    text: Option<&str>,
    bound: tollgate::instant::Bound,
) -> anyhow::Result<Option<chrono::DateTime<chrono::Utc>>> {
    text.map(|t| {
        tollgate::instant::parse(t, bound)
            .with_context(|| format!("--{name} {t:?}: use {}", tollgate::instant::EXPECTED))
    })
    .transpose()
}

fn ledger(action: LedgerAction) -> anyhow::Result<()> {
    match action {
        LedgerAction::Seed(args) => ledger_seed(&args)?,
        LedgerAction::RebuildRollups(args) => {
            let from = cli_instant(
                "from",
                args.from.as_deref(),
                tollgate::instant::Bound::Start,
            )?;
            let report = cli_runtime()?.block_on(async {
                let ledger = cli_ledger(args.ledger, args.config.as_deref()).await?;
                if let tollgate::ledger::LedgerStore::Sqlite(path) = &ledger {
                    anyhow::ensure!(path.exists(), "no ledger file at {}", path.display());
                }
                anyhow::Ok(ledger.rebuild_rollups(from).await?)
            })?;
            writeln!(
                std::io::stdout().lock(),
                "rolled up {} records into {} hourly and {} daily rows",
                report.records,
                report.hourly_rows,
                report.daily_rows
            )?;
        }
    }
    Ok(())
}

fn ledger_seed(args: &SeedArgs) -> anyhow::Result<()> {
    let catalog = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("config/tollgate.example.toml"));
    // Only the catalog is read from it: no provider secret is needed.
    let settings = tollgate::check_settings_skipping_secrets(&catalog)?;
    if args.ledger.is_none() && args.config.is_none() {
        anyhow::bail!("give --ledger FILE, or --config PATH to fill the ledger it names");
    }
    let opts = tollgate::seed::SeedOptions {
        records: args.records,
        end: chrono::Utc::now(),
        days: args.days.max(1),
        seed: args.seed,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (written, took) = runtime.block_on(async {
        let ledger = cli_ledger(args.ledger.clone(), args.config.as_deref()).await?;
        let started = tokio::time::Instant::now();
        let written = tollgate::seed::seed_store(&ledger, &settings, &opts, args.append).await?;
        anyhow::Ok((written, started.elapsed()))
    })?;
    writeln!(
        std::io::stdout().lock(),
        "wrote {written} synthetic records over {} days in {:.1} s ({:.0} records/s)",
        opts.days,
        took.as_secs_f64(),
        written as f64 / took.as_secs_f64().max(1e-9)
    )?;
    Ok(())
}

fn hash_key(key: Option<String>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let key = match key {
        Some(k) => k,
        None => {
            let bytes: [u8; 24] = rand::rng().random();
            let k = format!("tg-{}", hex::encode(bytes));
            writeln!(out, "key:  {k}")?;
            k
        }
    };
    writeln!(out, "hash: {}", tollgate::auth::hash_key(&key))?;
    Ok(())
}

fn mock_upstream(args: &MockUpstreamArgs) -> anyhow::Result<()> {
    let options = tollgate::providers::mock::MockOptions {
        latency: args.latency,
        chunk_interval: args.chunk_interval,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{}", listener.local_addr()?)?;
        out.flush()?;
        drop(out);
        tollgate::providers::mock::serve(listener, options, args.instant, shutdown_signal())
            .await?;
        anyhow::Ok(())
    })
}

fn serve(config: PathBuf) -> anyhow::Result<()> {
    let settings = tollgate::load_settings(&config)?;
    tollgate::telemetry::init_logging(settings.log_format, &settings.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(settings, config))
}

async fn run(settings: tollgate::config::Settings, config: PathBuf) -> anyhow::Result<()> {
    let grace = settings.shutdown_grace;
    let edge = settings.edge;
    let (listen, admin_listen) = (settings.listen, settings.admin_listen);
    let app = tollgate::build_app(settings).await?;
    // SIGHUP or an edited config/catalog file: validated, then swapped in atomically.
    let watcher = tokio::spawn(app.reloader().watch(config, Duration::from_secs(2)));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding server.listen {listen}"))?;
    let admin = tokio::net::TcpListener::bind(admin_listen)
        .await
        .with_context(|| format!("binding admin.listen {admin_listen}"))?;
    // The bound addresses: with port 0 in the config, the port the system chose.
    let bound =
        |l: &tokio::net::TcpListener| l.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(listen = %bound(&listener), admin_listen = %bound(&admin), "tollgate listening");

    let shutdown = app.shutdown_handle();
    let serve = |listener, router| {
        tokio::spawn(tollgate::server::serve_with(
            listener,
            router,
            edge,
            shutdown.clone(),
        ))
    };
    let listeners = [
        serve(listener, app.router()),
        serve(admin, app.admin_router()),
    ];
    shutdown_signal().await;
    tracing::info!(
        grace_secs = grace.as_secs_f64(),
        "shutting down: no new connections, finishing in-flight requests"
    );
    drain(listeners, &shutdown, grace).await;
    watcher.abort();
    // Read before `shutdown` consumes the app: records refused on the way (queue full).
    let ledger = app.state().ledger.clone();
    app.shutdown().await?;
    let dropped = ledger.dropped_total();
    if dropped > 0 {
        anyhow::bail!("{dropped} ledger records could not be written (each is logged with its request id as \"ledger record dropped\")");
    }
    tracing::info!("ledger flushed; bye");
    Ok(())
}

/// Every listener drains under one deadline: requests and streams get `grace` to
/// finish; then what remains is ended (streams with a final error event, each
/// recorded) and, `CUT_WINDOW` later, its connections are closed. Returns once no
/// connection is left, so no record can arrive after the ledger's final flush.
async fn drain(
    listeners: [tokio::task::JoinHandle<()>; 2],
    shutdown: &tollgate::server::Shutdown,
    grace: Duration,
) {
    shutdown.stop();
    let all = futures_util::future::join_all(listeners);
    tokio::pin!(all);
    if tokio::time::timeout(grace, all.as_mut()).await.is_err() {
        tracing::warn!("shutdown deadline passed; ending the remaining requests and streams");
        shutdown.cut();
        all.await;
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
