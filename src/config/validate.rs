//! `RawConfig` -> `Settings`: resolves secrets, parses addresses, enums and hashes,
//! checks every cross-reference (offers name known providers and catalog prices),
//! and collects every problem before reporting, so one run of `check-config`
//! shows them all.
//!
//! It does not open sockets or files other than the price catalog it must check
//! offers against.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::access::{
    self, Budget, Quota, RateLimit, ResidencyPolicy, RoutingSettings, RoutingStrategy, TeamSettings,
};
use super::cloud::{self, CloudSettings, KeyRule};
use super::mock_flavor::MockFlavor;
use super::residency::{self, Residency, Scope, JURISDICTION_EXPECTED};
use super::secret::{self, Secret};
use super::{ConfigError, RawConfig, RawProvider};
use crate::catalog::PriceBook;

/// Validated configuration: everything the gateway needs, nothing left to check.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub admin_key: Option<Secret>,
    pub max_body_bytes: usize,
    pub shutdown_grace: Duration,
    pub connect_timeout: Duration,
    pub first_byte_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_attempts: u32,
    pub ledger_path: PathBuf,
    /// `ledger.url`: the PostgreSQL ledger, used instead of `ledger_path` when set.
    pub ledger_url: Option<Secret>,
    pub ledger_queue_capacity: usize,
    pub ledger_batch_size: usize,
    pub ledger_flush_interval: Duration,
    /// `ledger.retention`: raw records older than this are deleted; `None` = kept forever.
    pub ledger_retention: Option<Duration>,
    pub log_format: LogFormat,
    pub log_level: String,
    pub mock_latency: Duration,
    pub mock_chunk_interval: Duration,
    pub routing: RoutingSettings,
    pub teams: Vec<TeamSettings>,
    pub keys: Vec<KeySettings>,
    pub providers: Vec<ProviderSettings>,
    pub models: Vec<ModelSettings>,
    pub prices: Arc<PriceBook>,
    /// Where the price catalog was read from (watched for changes).
    pub catalog_path: PathBuf,
    /// `[comparison] groups`, each member a configured model.
    pub comparison_groups: Vec<super::ComparisonGroup>,
    /// `[pricing] max_age`: rows in force checked longer ago warn; `None` = no check.
    pub price_max_age: Option<Duration>,
    /// `[limits] redis_url` and its options; `None` keeps limits in this process.
    pub shared_limits: Option<super::limits::SharedLimitsSettings>,
    /// `upstream.max_retry_after`: the cap on an upstream's `retry-after`.
    pub max_retry_after: Duration,
    /// `[server]` timeouts and caps at the listeners' edge.
    pub edge: super::edge::EdgeSettings,
    /// `[metering]`: drift-audit sampling and its queue.
    pub metering: super::metering::MeteringSettings,
}

/// Log output shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// One app key: its name (what the ledger records) and the SHA-256 of its secret.
#[derive(Debug, Clone)]
pub struct KeySettings {
    pub name: String,
    pub hash: [u8; 32],
    /// Logical models the key may use; `None` means every configured model.
    pub models: Option<HashSet<String>>,
    /// Index into `Settings::teams`.
    pub team: Option<usize>,
    /// The key's effective policy: `[policy]` narrowed by the key's own `residency`
    /// ([`ResidencyPolicy::narrow`]), never wider than `[policy]`.
    pub residency: ResidencyPolicy,
    pub rate_limit: RateLimit,
    pub budget: Budget,
}

/// The wire dialects tollgate speaks upstream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    Openai,
    AzureOpenai,
    AzureAiInference,
    GithubModels,
    Deepseek,
    OpenaiCompatible,
    Anthropic,
    /// AWS Bedrock Runtime's Converse API (SigV4 or a Bedrock API key).
    Bedrock,
    /// Google Vertex AI: Gemini, Claude and open models in a project and location.
    Vertex,
    /// Google's Gemini API (`generativelanguage`, an API key).
    Gemini,
    Mock,
    /// A dialect added by the embedding program (`providers::Registry::with`), by its
    /// config name; accepted only when the loader was told the name.
    Extension(Arc<str>),
}

impl ProviderKind {
    const ALL: [(&'static str, ProviderKind); 11] = [
        ("openai", ProviderKind::Openai),
        ("azure_openai", ProviderKind::AzureOpenai),
        ("azure_ai_inference", ProviderKind::AzureAiInference),
        ("github_models", ProviderKind::GithubModels),
        ("deepseek", ProviderKind::Deepseek),
        ("openai_compatible", ProviderKind::OpenaiCompatible),
        ("anthropic", ProviderKind::Anthropic),
        ("bedrock", ProviderKind::Bedrock),
        ("vertex", ProviderKind::Vertex),
        ("gemini", ProviderKind::Gemini),
        ("mock", ProviderKind::Mock),
    ];

    /// A built-in kind, or one of `extensions`.
    fn parse(s: &str, extensions: &[&str]) -> Option<Self> {
        let builtin = Self::ALL
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, k)| k.clone());
        builtin.or_else(|| {
            extensions
                .contains(&s)
                .then(|| Self::Extension(Arc::from(s)))
        })
    }

    /// Whether the kind's API answers embeddings requests. DeepSeek's API has no
    /// embeddings endpoint, so check-config refuses an embeddings offer there. The
    /// clouds embed in shapes of their own, translated by their adapters (Gemini API
    /// `batchEmbedContents`, Vertex AI `predict`, Bedrock Titan through InvokeModel).
    /// (An extension's adapter says so itself, at request time.)
    pub fn serves_embeddings(&self) -> bool {
        !matches!(self, Self::Deepseek)
    }

    /// The config spelling.
    pub fn as_str(&self) -> &str {
        if let Self::Extension(name) = self {
            return name;
        }
        Self::ALL
            .iter()
            .find(|(_, k)| k == self)
            .map_or("unknown", |(n, _)| n)
    }
}

/// One upstream endpoint/account.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    pub id: String,
    pub kind: ProviderKind,
    /// Base URL without a trailing slash; for `mock` it is filled in when the
    /// in-process mock upstream starts.
    pub base_url: String,
    /// `None` for `mock` and `vertex`, and for `bedrock` signing with AWS credentials.
    pub api_key: Option<Secret>,
    pub api_version: Option<String>,
    pub residency: Residency,
    pub mock_flavor: Option<MockFlavor>,
    /// The cloud kinds' own settings (region, project, location, credentials).
    pub cloud: CloudSettings,
}

/// A logical model and its offers, in configured order.
#[derive(Debug, Clone)]
pub struct ModelSettings {
    pub name: String,
    pub kind: ModelKind,
    pub strategy: RoutingStrategy,
    pub offers: Vec<OfferSettings>,
}

/// Which endpoint serves a logical model: a chat model answers only chat completions,
/// an embeddings model only `/v1/embeddings`; each refuses the other's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ModelKind {
    #[default]
    Chat,
    Embeddings,
}

impl ModelKind {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "chat" => Some(Self::Chat),
            "embeddings" => Some(Self::Embeddings),
            _ => None,
        }
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Embeddings => "embeddings",
        }
    }
}

/// One way to serve a logical model.
#[derive(Debug, Clone)]
pub struct OfferSettings {
    /// Index into `Settings::providers`.
    pub provider: usize,
    pub upstream_model: String,
    /// Catalog offer key; `None` means knowingly unpriced.
    pub price: Option<String>,
    /// Share of traffic under `weighted` routing.
    pub weight: u32,
    pub quota: Quota,
}

/// Validate `raw`; `config_dir` anchors relative paths; `env` resolves `env:NAME`.
pub fn validate(
    raw: RawConfig,
    config_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, ConfigError> {
    validate_with_kinds(raw, config_dir, env, &[])
}

/// [`validate`], accepting the provider kinds `extension_kinds` besides the built-in
/// ones (the names of a `providers::Registry`'s extensions).
pub fn validate_with_kinds(
    raw: RawConfig,
    config_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    extension_kinds: &[&str],
) -> Result<Settings, ConfigError> {
    let mut p = Problems::default();
    let listen = p.addr("server.listen", &raw.server.listen);
    let admin_listen = p.addr("admin.listen", &raw.admin.listen);
    let admin_key = raw
        .admin
        .api_key
        .as_deref()
        .and_then(|r| p.secret("admin.api_key", r, env));
    let log_format = match raw.logging.format.as_str() {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            p.push(
                "logging.format",
                format!("unknown format {other:?}; expected \"text\" or \"json\""),
            );
            LogFormat::Text
        }
    };
    if raw.upstream.max_attempts == 0 {
        p.push("upstream.max_attempts", "must be at least 1".into());
    }
    if raw.ledger.queue_capacity == 0 || raw.ledger.batch_size == 0 {
        p.push(
            "ledger",
            "queue_capacity and batch_size must be at least 1".into(),
        );
    }
    let catalog_path = config_dir.join(&raw.pricing.catalog);
    let prices = match PriceBook::load(&catalog_path) {
        Ok(book) => Some(book),
        Err(e) => {
            p.push(
                "pricing.catalog",
                format!("{}: {e}", catalog_path.display()),
            );
            None
        }
    };
    let mut push = |path: String, msg: String| p.0.push(format!("{path}: {msg}"));
    let default_policy = access::residency("policy", &raw.policy, &mut push);
    let routing = access::routing(&raw.routing, &mut push);
    let shared_limits = super::limits::shared_limits(&raw.limits, env, &mut push);
    let ledger_url = super::urls::ledger_url(&raw.ledger, env, &mut push);
    let ledger_retention = super::retention::retention(raw.ledger.retention, &mut push);
    let edge = super::edge::edge(&raw, admin_listen, &mut push);
    let metering = super::metering::metering(&raw.metering, &mut push);
    let teams: Vec<TeamSettings> = raw
        .teams
        .iter()
        .enumerate()
        .map(|(i, t)| TeamSettings {
            name: t.name.clone(),
            budget: access::budget(&format!("teams[{i}].budget"), t.budget.as_ref(), &mut push),
        })
        .collect();
    check_unique(
        raw.teams.iter().map(|t| t.name.as_str()),
        "teams",
        "name",
        &mut p,
    );
    let keys = validate_keys(&raw, &teams, &default_policy, &mut p);
    let providers: Vec<ProviderSettings> = raw
        .providers
        .iter()
        .enumerate()
        .map(|(i, rp)| validate_provider(i, rp, config_dir, env, extension_kinds, &mut p))
        .collect();
    check_unique(
        raw.providers.iter().map(|x| x.id.as_str()),
        "providers",
        "id",
        &mut p,
    );
    let models = validate_models(&raw, &providers, prices.as_ref(), &mut p);
    let model_names: Vec<&str> = raw.models.iter().map(|m| m.name.as_str()).collect();
    let comparison_groups =
        super::comparison::groups(&raw.comparison, &model_names, &mut |path, msg| {
            p.0.push(format!("{path}: {msg}"));
        });

    if !p.0.is_empty() {
        return Err(ConfigError { problems: p.0 });
    }
    let (Some(listen), Some(admin_listen), Some(prices)) = (listen, admin_listen, prices) else {
        return Err(ConfigError {
            problems: vec!["internal: validation lost a value".into()],
        });
    };
    Ok(Settings {
        listen,
        admin_listen,
        admin_key,
        max_body_bytes: usize::try_from(raw.server.max_body_bytes).unwrap_or(usize::MAX),
        shutdown_grace: raw.server.shutdown_grace,
        connect_timeout: raw.upstream.connect_timeout,
        first_byte_timeout: raw.upstream.first_byte_timeout,
        idle_timeout: raw.upstream.idle_timeout,
        max_attempts: raw.upstream.max_attempts,
        // Relative to the working directory, like any CLI tool's data path.
        ledger_path: PathBuf::from(&raw.ledger.path),
        ledger_url,
        ledger_queue_capacity: raw.ledger.queue_capacity,
        ledger_batch_size: raw.ledger.batch_size,
        ledger_flush_interval: raw.ledger.flush_interval,
        ledger_retention,
        log_format,
        log_level: raw.logging.level,
        mock_latency: raw.mock.latency,
        mock_chunk_interval: raw.mock.chunk_interval,
        routing,
        teams,
        keys,
        providers,
        models,
        prices: Arc::new(prices),
        catalog_path,
        comparison_groups,
        price_max_age: raw.pricing.max_age,
        shared_limits,
        max_retry_after: raw.upstream.max_retry_after,
        edge,
        metering,
    })
}

fn validate_keys(
    raw: &RawConfig,
    teams: &[TeamSettings],
    default_policy: &ResidencyPolicy,
    p: &mut Problems,
) -> Vec<KeySettings> {
    check_unique(raw.keys.iter().map(|k| k.name.as_str()), "keys", "name", p);
    let model_names: HashSet<&str> = raw.models.iter().map(|m| m.name.as_str()).collect();
    let mut seen_hashes = HashSet::new();
    let mut keys = Vec::new();
    for (i, k) in raw.keys.iter().enumerate() {
        let path = format!("keys[{i}]");
        if k.name.trim().is_empty() {
            p.push(&format!("{path}.name"), "must not be empty".into());
        }
        let Some(hash) = parse_key_hash(&k.hash) else {
            p.push(
                &format!("{path}.hash"),
                "expected \"sha256:<64 hex digits>\" as printed by `tollgate hash-key`".into(),
            );
            continue;
        };
        if !seen_hashes.insert(hash) {
            p.push(
                &format!("{path}.hash"),
                "the same key hash is configured twice".into(),
            );
        }
        if let Some(models) = &k.models {
            for (j, m) in models.iter().enumerate() {
                if m != "*" && !model_names.contains(m.as_str()) {
                    p.push(
                        &format!("{path}.models[{j}]"),
                        format!(
                            "unknown model {m:?}; expected one of: {}",
                            join_sorted(model_names.iter().copied())
                        ),
                    );
                }
            }
        }
        let models = k
            .models
            .as_ref()
            .filter(|ms| !ms.iter().any(|m| m == "*"))
            .map(|ms| ms.iter().cloned().collect());
        let team = k.team.as_ref().and_then(|t| {
            let found = teams.iter().position(|x| x.name == *t);
            if found.is_none() {
                let names: Vec<&str> = teams.iter().map(|x| x.name.as_str()).collect();
                p.push(
                    &format!("{path}.team"),
                    format!("unknown team {t:?}; expected one of: {}", names.join(", ")),
                );
            }
            found
        });
        let mut push = |path: String, msg: String| p.0.push(format!("{path}: {msg}"));
        // Regression: #10 (a key's own residency replaced `[policy]`, so a key that
        // only refused global scope was served from a jurisdiction the default denies).
        let residency = match &k.residency {
            Some(r) => default_policy.narrow(&access::residency(
                &format!("{path}.residency"),
                r,
                &mut push,
            )),
            None => default_policy.clone(),
        };
        let rate_limit = access::rate_limit(
            &format!("{path}.rate_limit"),
            k.rate_limit.as_ref(),
            &mut push,
        );
        let budget = access::budget(&format!("{path}.budget"), k.budget.as_ref(), &mut push);
        keys.push(KeySettings {
            name: k.name.clone(),
            hash,
            models,
            team,
            residency,
            rate_limit,
            budget,
        });
    }
    keys
}

/// Parse `sha256:<hex>`.
pub fn parse_key_hash(s: &str) -> Option<[u8; 32]> {
    let hex_part = s.strip_prefix("sha256:")?;
    let bytes = hex::decode(hex_part).ok()?;
    bytes.try_into().ok()
}

fn validate_provider(
    i: usize,
    rp: &RawProvider,
    config_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    extension_kinds: &[&str],
    p: &mut Problems,
) -> ProviderSettings {
    let path = format!("providers[{i}]");
    let kind = ProviderKind::parse(&rp.kind, extension_kinds);
    if kind.is_none() {
        let mut accepted: Vec<&str> = ProviderKind::ALL.iter().map(|(n, _)| *n).collect();
        accepted.extend_from_slice(extension_kinds);
        p.push(
            &format!("{path}.kind"),
            format!(
                "unknown kind {:?}; expected one of: {}",
                rp.kind,
                accepted.join(", ")
            ),
        );
    }
    let scope = Scope::parse(&rp.scope);
    if scope.is_none() {
        p.push(
            &format!("{path}.scope"),
            format!(
                "unknown scope {:?}; expected one of: regional, datazone, global",
                rp.scope
            ),
        );
    }
    let jurisdiction = residency::jurisdiction(&rp.jurisdiction);
    if jurisdiction.is_none() {
        p.push(
            &format!("{path}.jurisdiction"),
            format!(
                "{:?} is not a jurisdiction; expected {JURISDICTION_EXPECTED}",
                rp.jurisdiction
            ),
        );
    }
    if rp.region.trim().is_empty() {
        p.push(
            &format!("{path}.region"),
            "must not be empty (e.g. \"azure:swedencentral\")".into(),
        );
    }
    if rp.id.trim().is_empty() || rp.id.contains(char::is_whitespace) {
        p.push(
            &format!("{path}.id"),
            "must be a non-empty word without spaces".into(),
        );
    }
    // On errors, keep going with placeholders so later references to this provider
    // do not report it as missing; the problems already recorded reject the config.
    let kind = kind.unwrap_or(ProviderKind::Mock);
    let is_mock = kind == ProviderKind::Mock;
    let cloud = cloud::validate(&path, &kind, rp, config_dir, env, &mut |at, message| {
        p.push(&at, message);
    });
    let api_key = match (&rp.api_key, cloud::key_rule(&kind)) {
        (Some(_), KeyRule::Refused) if kind == ProviderKind::Vertex => {
            p.push(
                &format!("{path}.api_key"),
                "not taken by Vertex AI, which authenticates with Google OAuth tokens: remove it and use the environment's Google credentials, credentials_file or access_token".into(),
            );
            None
        }
        (Some(r), KeyRule::Required | KeyRule::Optional) => {
            p.secret(&format!("{path}.api_key"), r, env)
        }
        (None, KeyRule::Required) => {
            p.push(
                &format!("{path}.api_key"),
                "required: a reference such as \"env:OPENAI_API_KEY\"".into(),
            );
            None
        }
        _ => None,
    };
    let derived_base_url = cloud::default_base_url(&kind, &cloud);
    // The cloud kinds derive it from their region or location (whose absence is
    // reported on its own); the mock's is filled in when it starts.
    let derives = matches!(
        kind,
        ProviderKind::Bedrock | ProviderKind::Vertex | ProviderKind::Gemini
    );
    let base_url = match (&rp.base_url, is_mock || derives) {
        (Some(u), _) if u.starts_with("http://") || u.starts_with("https://") => {
            u.trim_end_matches('/').to_owned()
        }
        (Some(u), _) => {
            p.push(
                &format!("{path}.base_url"),
                format!("{u:?} is not an http(s) URL"),
            );
            String::new()
        }
        (None, true) => derived_base_url.unwrap_or_default(),
        (None, false) => {
            p.push(&format!("{path}.base_url"), "required for this kind".into());
            String::new()
        }
    };
    let needs_version = matches!(
        kind,
        ProviderKind::AzureOpenai | ProviderKind::AzureAiInference
    );
    if needs_version && rp.api_version.is_none() {
        p.push(
            &format!("{path}.api_version"),
            "required for Azure kinds, e.g. \"2024-12-01-preview\" (azure_openai) or \"2024-05-01-preview\" (azure_ai_inference)".into(),
        );
    }
    let mock_flavor = match (&rp.mock_flavor, is_mock) {
        (Some(f), true) => {
            match serde_json::from_value::<MockFlavor>(serde_json::Value::String(f.clone())).ok() {
                Some(fl) => Some(fl),
                None => {
                    p.push(
                    &format!("{path}.mock_flavor"),
                    format!("unknown flavor {f:?}; expected one of: openai, openai_reasoning, deepseek, azure_think, anthropic"),
                );
                    None
                }
            }
        }
        (Some(_), false) => {
            p.push(
                &format!("{path}.mock_flavor"),
                "only allowed with kind = \"mock\"".into(),
            );
            None
        }
        (None, true) => Some(MockFlavor::Openai),
        (None, false) => None,
    };
    ProviderSettings {
        id: rp.id.clone(),
        kind,
        base_url,
        api_key,
        api_version: rp.api_version.clone(),
        residency: Residency {
            region: rp.region.clone(),
            // A refused spelling is already a problem; the settings are never used.
            jurisdiction: jurisdiction.unwrap_or_else(|| rp.jurisdiction.clone()),
            scope: scope.unwrap_or(Scope::Global),
        },
        mock_flavor,
        cloud,
    }
}

fn validate_models(
    raw: &RawConfig,
    providers: &[ProviderSettings],
    prices: Option<&PriceBook>,
    p: &mut Problems,
) -> Vec<ModelSettings> {
    check_unique(
        raw.models.iter().map(|m| m.name.as_str()),
        "models",
        "name",
        p,
    );
    let by_id: HashMap<&str, usize> = providers
        .iter()
        .enumerate()
        .map(|(i, pr)| (pr.id.as_str(), i))
        .collect();
    let mut models = Vec::new();
    for (i, m) in raw.models.iter().enumerate() {
        if m.offers.is_empty() {
            p.push(
                &format!("models[{i}].offers"),
                "a model needs at least one offer".into(),
            );
        }
        let kind = match m.kind.as_deref() {
            None => ModelKind::default(),
            Some(k) => ModelKind::parse(k).unwrap_or_else(|| {
                p.push(
                    &format!("models[{i}].kind"),
                    format!("unknown kind {k:?}; expected one of: chat, embeddings"),
                );
                ModelKind::default()
            }),
        };
        let mut offers = Vec::new();
        for (j, o) in m.offers.iter().enumerate() {
            let path = format!("models[{i}].offers[{j}]");
            let Some(&provider) = by_id.get(o.provider.as_str()) else {
                p.push(
                    &format!("{path}.provider"),
                    format!(
                        "unknown provider {:?}; expected one of: {}",
                        o.provider,
                        join_sorted(by_id.keys().copied())
                    ),
                );
                continue;
            };
            let no_embeddings = providers
                .get(provider)
                .filter(|pr| kind == ModelKind::Embeddings && !pr.kind.serves_embeddings());
            if let Some(pr) = no_embeddings {
                p.push(
                    &format!("{path}.provider"),
                    format!(
                        "provider {:?} is of kind {}, which has no embeddings API; offer this embeddings model on another provider",
                        pr.id,
                        pr.kind.as_str()
                    ),
                );
            }
            if let (Some(key), Some(book)) = (&o.price, prices) {
                if !book.has_offer(key) {
                    p.push(
                        &format!("{path}.price"),
                        format!("{key:?} is not in the price catalog; omit `price` to serve this offer unpriced, or add rows to the catalog"),
                    );
                }
            }
            if o.weight == Some(0) {
                p.push(
                    &format!("{path}.weight"),
                    "must be at least 1 (remove the offer to stop using it)".into(),
                );
            }
            let mut push = |path: String, msg: String| p.0.push(format!("{path}: {msg}"));
            let quota = access::quota(&format!("{path}.quota"), o.quota.as_ref(), &mut push);
            offers.push(OfferSettings {
                provider,
                upstream_model: o.upstream_model.clone(),
                price: o.price.clone(),
                weight: o.weight.unwrap_or(1).max(1),
                quota,
            });
        }
        let strategy = match m.routing.as_deref() {
            None => RoutingStrategy::default(),
            Some(r) => RoutingStrategy::parse(r).unwrap_or_else(|| {
                p.push(
                    &format!("models[{i}].routing"),
                    format!("unknown strategy {r:?}; expected one of: priority, cheapest, latency, weighted"),
                );
                RoutingStrategy::default()
            }),
        };
        models.push(ModelSettings {
            name: m.name.clone(),
            kind,
            strategy,
            offers,
        });
    }
    models
}

fn check_unique<'a>(
    values: impl Iterator<Item = &'a str>,
    list: &str,
    field: &str,
    p: &mut Problems,
) {
    let mut seen = HashSet::new();
    for (i, v) in values.enumerate() {
        if !seen.insert(v) {
            p.push(
                &format!("{list}[{i}].{field}"),
                format!("duplicate {field} {v:?}"),
            );
        }
    }
}

fn join_sorted<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let mut v: Vec<&str> = names.collect();
    v.sort_unstable();
    v.join(", ")
}

/// Collected problems, each `path: message`.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn push(&mut self, path: &str, message: String) {
        self.0.push(format!("{path}: {message}"));
    }

    fn addr(&mut self, path: &str, value: &str) -> Option<SocketAddr> {
        match value.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.push(
                    path,
                    format!(
                        "{value:?} is not an address; expected IP:PORT such as \"127.0.0.1:8080\""
                    ),
                );
                None
            }
        }
    }

    fn secret(
        &mut self,
        path: &str,
        reference: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Secret> {
        match secret::resolve(reference, env) {
            Ok(s) => Some(s),
            Err(e) => {
                self.push(path, e.to_string());
                None
            }
        }
    }
}
