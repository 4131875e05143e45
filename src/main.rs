//! The `tollgate` command: `serve`, `check-config`, `hash-key`, `report`. Thin: it parses
//! arguments, loads settings, starts listeners and runs the graceful shutdown.

use std::io::Write;
use std::path::PathBuf;
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
    /// Comma-separated: key, model, provider, jurisdiction, day or hour.
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
    /// Validate a config file and its price catalog; exits non-zero on any problem.
    CheckConfig {
        /// Config file to check.
        config: PathBuf,
    },
    /// Print the hash to configure for an app key (a new random key when none is given).
    HashKey {
        /// The key to hash; omit to generate a new one.
        key: Option<String>,
    },
    /// Usage and spend from a ledger file, grouped (no server needed).
    Report(ReportArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config } => serve(config),
        Command::CheckConfig { config } => check_config(&config),
        Command::HashKey { key } => hash_key(key),
        Command::Report(args) => report(args),
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

fn check_config(path: &std::path::Path) -> anyhow::Result<()> {
    let settings = tollgate::load_settings(path)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}: ok ({} keys, {} providers, {} models, {} price rows)",
        path.display(),
        settings.keys.len(),
        settings.providers.len(),
        settings.models.len(),
        settings.prices.rows().len()
    )?;
    Ok(())
}

fn report(args: ReportArgs) -> anyhow::Result<()> {
    use tollgate::usage::report::{ledger_path_from_config, report, ReportRequest};
    let ledger = match (args.ledger, args.config) {
        (Some(l), _) => l,
        (None, Some(c)) => ledger_path_from_config(&c)?,
        (None, None) => anyhow::bail!("give --ledger PATH or --config PATH"),
    };
    let text = report(&ReportRequest {
        ledger: &ledger,
        from: args.from.as_deref(),
        to: args.to.as_deref(),
        group_by: args.group_by.as_deref(),
        format: args.format,
        now: chrono::Utc::now(),
    })?;
    std::io::stdout().lock().write_all(text.as_bytes())?;
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
    tracing::info!(%listen, %admin_listen, "tollgate listening");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut admin_stop = stop_rx.clone();
    let admin_task = tokio::spawn(tollgate::server::serve(
        admin,
        app.admin_router(),
        async move {
            let _ = admin_stop.changed().await;
        },
    ));
    let mut app_stop = stop_rx;
    let server = tollgate::server::serve(listener, app.router(), async move {
        let _ = app_stop.changed().await;
    });
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result?,
        () = shutdown_signal() => {
            tracing::info!(grace_secs = grace.as_secs(), "shutting down: no new connections, finishing in-flight requests");
            let _ = stop_tx.send(true);
            drain(&mut server, grace).await?;
        }
    }
    let _ = stop_tx.send(true);
    let _ = admin_task.await;
    watcher.abort();
    app.shutdown().await?;
    tracing::info!("ledger flushed; bye");
    Ok(())
}

/// Let in-flight requests and streams finish, up to `grace`; past it they are cut
/// (each still writes its record as its body is dropped).
async fn drain(
    server: &mut std::pin::Pin<&mut impl std::future::Future<Output = std::io::Result<()>>>,
    grace: Duration,
) -> anyhow::Result<()> {
    match tokio::time::timeout(grace, server.as_mut()).await {
        Ok(result) => Ok(result?),
        Err(_) => {
            tracing::warn!("shutdown deadline passed; cutting the remaining connections");
            Ok(())
        }
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
