//! Logs and metrics set-up. Log lines carry ids, names and numbers in fields; prompt
//! and completion text never reach a log at any level.

pub mod metrics;
pub mod price_metrics;
pub mod series;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Install the global tracing subscriber (text or JSON). `RUST_LOG` overrides `level`.
pub fn init_logging(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
