//! Configuration: the raw file shape (`RawConfig`) and loading it from a TOML file plus
//! `TOLLGATE__...` environment overrides with the `config` crate.
//!
//! This module only reads and shapes; turning raw values into checked [`Settings`]
//! (secrets resolved, references checked, every problem collected) is `validate`'s job.
//! Nothing here touches the network or the ledger.

pub mod access;
pub mod cloud;
pub mod comparison;
pub mod edge;
pub mod limits;
pub mod metering;
pub mod mock_flavor;
pub mod residency;
pub mod retention;
pub mod secret;
pub mod urls;
pub mod validate;

use std::path::Path;

use serde::Deserialize;

pub use access::{
    Budget, Quota, RateLimit, ResidencyPolicy, RoutingSettings, RoutingStrategy, TeamSettings,
};
pub use cloud::CloudSettings;
pub use comparison::ComparisonGroup;
pub use mock_flavor::MockFlavor;
pub use residency::{Residency, Scope};
pub use validate::{
    validate, validate_with_kinds, KeySettings, LogFormat, ModelKind, ModelSettings, OfferSettings,
    ProviderKind, ProviderSettings, Settings,
};

/// Everything wrong with a configuration, each problem with its dotted key path.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n{}", .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    /// One entry per problem, e.g. `providers[2].jurisdiction: ...`.
    pub problems: Vec<String>,
}

impl ConfigError {
    fn one(problem: String) -> Self {
        Self {
            problems: vec![problem],
        }
    }
}

/// The file as written. Field docs live in `config/tollgate.example.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawConfig {
    pub server: RawServer,
    pub admin: RawAdmin,
    pub upstream: RawUpstream,
    pub ledger: RawLedger,
    pub logging: RawLogging,
    pub pricing: RawPricing,
    pub mock: RawMock,
    /// The residency policy every key starts from; a key's own `residency` narrows it.
    pub policy: access::RawResidencyPolicy,
    pub routing: access::RawRouting,
    /// Where limits are kept (in-process, or shared through Redis).
    pub limits: limits::RawLimits,
    pub teams: Vec<access::RawTeam>,
    pub keys: Vec<RawKey>,
    pub providers: Vec<RawProvider>,
    pub models: Vec<RawModel>,
    /// Groups of models whose offers are compared (`tollgate prices`, savings).
    pub comparison: comparison::RawComparison,
    /// Token-count audit sampling and its queue.
    pub metering: metering::RawMetering,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RawServer {
    pub listen: String,
    pub max_body_bytes: u64,
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: std::time::Duration,
    /// Longest a client may take to send a request's headers, from its first byte.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: std::time::Duration,
    /// Longest a client may take to send a request's body.
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: std::time::Duration,
    /// Longest an idle keep-alive connection stays open waiting for its next request.
    #[serde(with = "humantime_serde")]
    pub keepalive_timeout: std::time::Duration,
    /// Open connections per listener; past it new connections wait to be accepted.
    pub max_connections: usize,
    /// Requests one key may have in flight (streams count until they end); 0 = no cap.
    pub max_in_flight_per_key: u32,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 4 * 1024 * 1024,
            shutdown_grace: std::time::Duration::from_secs(30),
            header_read_timeout: std::time::Duration::from_secs(10),
            body_read_timeout: std::time::Duration::from_secs(30),
            keepalive_timeout: std::time::Duration::from_secs(75),
            max_connections: 1024,
            max_in_flight_per_key: 64,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RawAdmin {
    pub listen: String,
    /// `env:NAME` reference to the admin key; `None` leaves the admin listener closed
    /// to everything but `/healthz` and `/readyz`.
    pub api_key: Option<String>,
}

impl Default for RawAdmin {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9090".into(),
            api_key: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RawUpstream {
    #[serde(with = "humantime_serde")]
    pub connect_timeout: std::time::Duration,
    /// How long to wait for the response head and first body chunk; past it the
    /// attempt fails over (nothing has reached the client yet).
    #[serde(with = "humantime_serde")]
    pub first_byte_timeout: std::time::Duration,
    /// How long a stream may stay silent between chunks before tollgate gives up on it.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: std::time::Duration,
    pub max_attempts: u32,
    /// The longest an upstream's `retry-after` may hold an offer off; longer (or
    /// absurd) values are clamped to it.
    #[serde(with = "humantime_serde")]
    pub max_retry_after: std::time::Duration,
}

impl Default for RawUpstream {
    fn default() -> Self {
        Self {
            connect_timeout: std::time::Duration::from_secs(10),
            first_byte_timeout: std::time::Duration::from_secs(120),
            idle_timeout: std::time::Duration::from_secs(300),
            max_attempts: 3,
            max_retry_after: std::time::Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RawLedger {
    pub path: String,
    /// A `postgres://` URL (or `env:NAME` holding one): the fleet ledger, used instead of `path`.
    pub url: Option<String>,
    pub queue_capacity: usize,
    pub batch_size: usize,
    #[serde(with = "humantime_serde")]
    pub flush_interval: std::time::Duration,
    /// Raw records older than this are deleted in the background; `None` keeps them forever.
    #[serde(with = "humantime_serde")]
    pub retention: Option<std::time::Duration>,
}

impl Default for RawLedger {
    fn default() -> Self {
        Self {
            path: "data/tollgate.db".into(),
            url: None,
            queue_capacity: 10_000,
            batch_size: 256,
            flush_interval: std::time::Duration::from_millis(200),
            retention: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RawLogging {
    pub format: String,
    pub level: String,
}

impl Default for RawLogging {
    fn default() -> Self {
        Self {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RawPricing {
    /// Path of the price catalog, relative to the config file's folder.
    pub catalog: String,
    /// Rows in force whose `as_of` is older than this warn at start-up; `None` = no check.
    #[serde(with = "humantime_serde")]
    pub max_age: Option<std::time::Duration>,
}

impl Default for RawPricing {
    fn default() -> Self {
        Self {
            catalog: "prices.toml".into(),
            max_age: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RawMock {
    #[serde(with = "humantime_serde")]
    pub latency: std::time::Duration,
    #[serde(with = "humantime_serde")]
    pub chunk_interval: std::time::Duration,
}

impl Default for RawMock {
    fn default() -> Self {
        Self {
            latency: std::time::Duration::from_millis(300),
            chunk_interval: std::time::Duration::from_millis(20),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct RawKey {
    pub name: String,
    /// `sha256:<hex>` as printed by `tollgate hash-key`.
    pub hash: String,
    /// Logical models this key may use; absent means all.
    pub models: Option<Vec<String>>,
    /// The team whose budget this key also spends.
    pub team: Option<String>,
    /// Narrows `[policy]` for this key (never widens it); absent means `[policy]` as is.
    pub residency: Option<access::RawResidencyPolicy>,
    pub rate_limit: Option<access::RawRateLimit>,
    pub budget: Option<access::RawBudget>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RawProvider {
    pub id: String,
    pub kind: String,
    pub base_url: Option<String>,
    pub api_key: Option<String>,
    pub api_version: Option<String>,
    pub region: String,
    pub jurisdiction: String,
    pub scope: String,
    /// Only for `kind = "mock"`: which real upstream's wire quirks to simulate.
    pub mock_flavor: Option<String>,
    /// `bedrock`: the AWS region requests are signed for (and sent to by default).
    pub aws_region: Option<String>,
    /// `vertex`: the Google Cloud project and location (`europe-west4`, `global`, ...).
    pub gcp_project: Option<String>,
    pub gcp_location: Option<String>,
    /// `vertex`: a static bearer token (`env:NAME`) instead of Google credentials.
    pub access_token: Option<String>,
    /// `vertex`: a service-account JSON key file instead of the environment's credentials.
    pub credentials_file: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RawModel {
    pub name: String,
    /// `priority` (default), `cheapest`, `latency` or `weighted`.
    pub routing: Option<String>,
    /// `chat` (default) or `embeddings`: which endpoint serves the model.
    pub kind: Option<String>,
    pub offers: Vec<RawOffer>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RawOffer {
    pub provider: String,
    pub upstream_model: String,
    /// Catalog offer key; absent means the offer is knowingly unpriced.
    pub price: Option<String>,
    /// Share of traffic under `weighted` routing (default 1).
    pub weight: Option<u32>,
    /// What the upstream account allows; tollgate routes around an exhausted quota.
    pub quota: Option<access::RawQuota>,
}

/// Read `path` and apply `TOLLGATE__SECTION__KEY` overrides from `env_vars`
/// (passed in so tests never mutate the process environment).
///
/// Unknown keys anywhere in the file are all reported together, with their paths.
pub fn load(path: &Path, env_vars: Vec<(String, String)>) -> Result<RawConfig, ConfigError> {
    let (raw, unknown) = load_with_unknown_keys(path, env_vars)?;
    if unknown.is_empty() {
        Ok(raw)
    } else {
        Err(ConfigError { problems: unknown })
    }
}

/// [`load`], except that unknown keys do not stop it: the values read are returned
/// with one problem per unknown key, so that validation can add its own problems and
/// `check-config` reports everything at once. A value of the wrong type still stops
/// here, since there is then no value to validate.
pub fn load_with_unknown_keys(
    path: &Path,
    env_vars: Vec<(String, String)>,
) -> Result<(RawConfig, Vec<String>), ConfigError> {
    let file = config::File::from(path).format(config::FileFormat::Toml);
    let env_map: std::collections::HashMap<String, String> = env_vars
        .into_iter()
        .filter(|(k, _)| k.starts_with("TOLLGATE__"))
        .collect();
    let env = config::Environment::with_prefix("TOLLGATE")
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .source(Some(env_map));
    let built = config::Config::builder()
        .add_source(file)
        .add_source(env)
        .build()
        .map_err(|e| ConfigError::one(format!("{}: {e}", path.display())))?;

    let mut unknown = Vec::new();
    let mut note_unknown = |p: serde_ignored::Path<'_>| unknown.push(p.to_string());
    let tracked = serde_ignored::Deserializer::new(built, &mut note_unknown);
    let result: Result<RawConfig, _> = serde_path_to_error::deserialize(tracked);
    let mut problems: Vec<String> = unknown
        .into_iter()
        .map(|p| {
            format!(
                "{}: unknown key; see config/tollgate.example.toml for every accepted key",
                bracket_indexes(&p)
            )
        })
        .collect();
    match result {
        Ok(raw) => Ok((raw, problems)),
        Err(e) => {
            problems.push(format!(
                "{}: {}",
                bracket_indexes(&e.path().to_string()),
                e.inner()
            ));
            Err(ConfigError { problems })
        }
    }
}

/// `providers.2.kind` -> `providers[2].kind`, the form every other message uses. An
/// empty key (`"" = 1`, or the variable `TOLLGATE__`) is shown as TOML spells it, so
/// every problem still starts with a path.
fn bracket_indexes(path: &str) -> String {
    if path.is_empty() {
        return "\"\"".to_owned();
    }
    let mut out = String::with_capacity(path.len() + 4);
    for (i, part) in path.split('.').enumerate() {
        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            out.push('[');
            out.push_str(part);
            out.push(']');
        } else {
            if i > 0 {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

#[cfg(test)]
mod tests;
