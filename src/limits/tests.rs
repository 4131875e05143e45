//! Limits tests: a real configuration parsed and validated, tokio's paused clock for
//! the rate limiters, chosen UTC instants for budgets, a real SQLite ledger file for
//! the rebuild.

mod budgets;
mod carry;
mod rates;

use std::path::Path;

use chrono::{DateTime, Utc};

use super::*;
use crate::config::{load, validate};

/// Keys: `a` (2 requests and 1000 tokens a minute, $1.00 a day, $5.00 a month, team
/// research), `b` (team research, no budget of its own), `c` (no limits). Team research:
/// $1.50 a day. Model `r1`: offer 0 is GitHub Models' free tier (1 a minute, 8 a day),
/// offer 1 allows 2 requests and 1000 tokens a minute, offer 2 has no quota.
const CONFIG: &str = r#"
[[teams]]
name = "research"
budget = { usd_per_day = "1.50" }

[[keys]]
name = "a"
hash = "sha256:7c67f25fdbdcc7bacdb496bfdf0f36c94020e4e7b672fb3d00fda30dd834eb6b"
team = "research"
rate_limit = { requests_per_minute = 2, tokens_per_minute = 1000 }
budget = { usd_per_day = "1.00", usd_per_month = "5.00" }

[[keys]]
name = "b"
hash = "sha256:130fb0bdaa1cb416256b5991be9bee5894b3174725916869ab78c31f288a628c"
team = "research"

[[keys]]
name = "c"
hash = "sha256:fd71c81137c60d16ca0076fe96c47fa4f51cfe4805f1eeb5ef988c74378b6f60"

[[providers]]
id = "github-models"
kind = "github_models"
base_url = "https://models.github.ai/inference"
api_key = "env:GITHUB_KEY"
region = "github:unspecified"
jurisdiction = "US"
scope = "global"

[[providers]]
id = "ds"
kind = "deepseek"
base_url = "https://api.deepseek.com"
api_key = "env:DEEPSEEK_KEY"
region = "deepseek:cn"
jurisdiction = "CN"
scope = "regional"

[[models]]
name = "r1"
offers = [
  { provider = "github-models", upstream_model = "deepseek/DeepSeek-R1", price = "github-models/deepseek/DeepSeek-R1/free", quota = { requests_per_minute = 1, requests_per_day = 8 } },
  { provider = "ds", upstream_model = "deepseek-reasoner", price = "deepseek/deepseek-reasoner", quota = { requests_per_minute = 2, tokens_per_minute = 1000 } },
  { provider = "ds", upstream_model = "deepseek-chat", price = "deepseek/deepseek-reasoner" },
]
"#;

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;

fn settings(dir: &Path) -> Settings {
    settings_from(dir, CONFIG)
}

/// Validated settings of `config` (with the shipped price catalog) in `dir`.
fn settings_from(dir: &Path, config: &str) -> Settings {
    let config_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    std::fs::copy(config_dir.join("prices.toml"), dir.join("prices.toml")).unwrap();
    let path = dir.join("tollgate.toml");
    std::fs::write(&path, config).unwrap();
    let raw = load(&path, Vec::new()).unwrap();
    validate(raw, dir, &|name| Some(format!("secret-for-{name}"))).unwrap()
}

fn limits() -> Limits {
    let dir = tempfile::tempdir().unwrap();
    Limits::new(&settings(dir.path()))
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}
