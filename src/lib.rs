//! tollgate: an OpenAI-compatible LLM gateway that meters every request, prices it
//! from a dated catalog, records it, and reports who served it and where.
//!
//! Request flow (one module per step):
//! `server` -> `auth` -> `policy` -> `providers` (adapter builds the upstream
//! request) -> `upstream` (the call, failover before the first byte) ->
//! `metering` (usage, streamed through `MeteredBody`) -> `pricing` (cost) ->
//! `ledger` + `telemetry` -> response.

mod app;

pub mod api;
pub mod auth;
pub mod catalog;
pub mod config;
pub mod instant;
pub mod ledger;
pub mod limits;
pub mod metering;
pub mod policy;
pub mod pricing;
pub mod providers;
pub mod request_id;
pub mod routing;
pub mod seed;
pub mod server;
pub mod telemetry;
pub mod tokens;
pub mod upstream;
pub mod usage;

use std::path::Path;

pub use app::{build_app, build_app_with, build_app_with_clock, App, InitError, Reloader};
use config::{ConfigError, Settings};

/// Read and validate a config file, with `TOLLGATE__...` overrides from the process
/// environment and `env:NAME` secrets from it.
pub fn load_settings(path: &Path) -> Result<Settings, ConfigError> {
    load_settings_with_kinds(path, &[])
}

/// [`load_settings`] accepting the provider kinds `extension_kinds` besides the
/// built-in ones (`providers::Registry::extension_kinds`).
pub fn load_settings_with_kinds(
    path: &Path,
    extension_kinds: &[&str],
) -> Result<Settings, ConfigError> {
    load_settings_with(path, &|name| std::env::var(name).ok(), extension_kinds)
}

/// [`load_settings`] without reading secrets: every `env:NAME` reference must be well
/// formed, but its variable need not be set (`tollgate check-config --skip-secrets`,
/// e.g. in CI). The settings hold placeholders instead of secrets (see
/// [`config::secret::Secret::is_unresolved`]): for checking only, never for serving.
pub fn check_settings_skipping_secrets(path: &Path) -> Result<Settings, ConfigError> {
    load_settings_with(path, &config::secret::unresolved, &[])
}

fn load_settings_with(
    path: &Path,
    secrets: &dyn Fn(&str) -> Option<String>,
    extension_kinds: &[&str],
) -> Result<Settings, ConfigError> {
    let (raw, mut problems) = config::load_with_unknown_keys(path, std::env::vars().collect())?;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    // Unknown keys and invalid values are reported together, not one kind at a time.
    match config::validate_with_kinds(raw, dir, secrets, extension_kinds) {
        Ok(settings) if problems.is_empty() => Ok(settings),
        Ok(_) => Err(ConfigError { problems }),
        Err(e) => {
            problems.extend(e.problems);
            Err(ConfigError { problems })
        }
    }
}
