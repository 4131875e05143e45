//! The `[limits]` section: where rate limits, quotas and budgets are kept. Absent, they
//! live in each process; with `redis_url`, every replica pointing at the same Redis
//! (and `key_prefix`) enforces one shared set; a `rediss://` URL connects with TLS,
//! trusting the built-in (Mozilla) roots or the PEM file in `redis_ca_file`. Only
//! shapes and checks the values (reading the CA file once, here); `limits` connects
//! and enforces.

use serde::Deserialize;

use super::secret::Secret;

/// `[limits]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawLimits {
    /// `redis://host:port/db` (or `rediss://` for TLS), or `env:NAME` holding one;
    /// `None` keeps limits in-process.
    pub redis_url: Option<String>,
    pub key_prefix: String,
    pub on_redis_error: RawOnRedisError,
    /// A PEM file of the CAs a `rediss://` server's certificate must chain to, instead
    /// of the built-in roots (a private CA); `None` means the built-in roots.
    pub redis_ca_file: Option<std::path::PathBuf>,
}

impl Default for RawLimits {
    fn default() -> Self {
        Self {
            redis_url: None,
            key_prefix: "tollgate:".into(),
            on_redis_error: RawOnRedisError::default(),
            redis_ca_file: None,
        }
    }
}

/// `[limits] on_redis_error` as written.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawOnRedisError {
    pub rate_limits: OnRedisError,
    pub budgets: OnRedisError,
}

impl Default for RawOnRedisError {
    fn default() -> Self {
        Self {
            rate_limits: OnRedisError::Allow,
            budgets: OnRedisError::Deny,
        }
    }
}

/// What a limit decides when Redis cannot be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnRedisError {
    /// Let the request through (fail open).
    Allow,
    /// Refuse the request (fail closed).
    Deny,
}

/// Validated Redis backend of the limits.
#[derive(Debug, Clone)]
pub struct SharedLimitsSettings {
    /// The connection URL; a secret because it may carry a password.
    pub redis_url: Secret,
    /// Prepended to every Redis key tollgate writes.
    pub key_prefix: String,
    /// For key rate limits and offer quotas.
    pub on_rate_limit_error: OnRedisError,
    /// For key and team budgets.
    pub on_budget_error: OnRedisError,
    /// The contents of `redis_ca_file` (PEM); `None` trusts the built-in roots.
    pub redis_ca_pem: Option<Vec<u8>>,
}

/// Validate `[limits]`; `None` when no `redis_url` is set (or it is invalid, reported
/// through `push`).
pub(super) fn shared_limits(
    raw: &RawLimits,
    env: &dyn Fn(&str) -> Option<String>,
    push: &mut dyn FnMut(String, String),
) -> Option<SharedLimitsSettings> {
    let url = super::urls::connection_url(
        "limits.redis_url",
        raw.redis_url.as_deref(),
        &["redis://", "rediss://"],
        env,
        push,
    )?;
    let redis_ca_pem = raw.redis_ca_file.as_deref().and_then(|path| {
        let tls = url.expose().starts_with("rediss://");
        match ca_pem(path, tls) {
            Ok(pem) => Some(pem),
            Err(problem) => {
                push("limits.redis_ca_file".into(), problem);
                None
            }
        }
    });
    if raw.key_prefix.is_empty() {
        push(
            "limits.key_prefix".into(),
            "must not be empty; replicas that share limits share a prefix".into(),
        );
    }
    Some(SharedLimitsSettings {
        redis_url: url,
        key_prefix: raw.key_prefix.clone(),
        on_rate_limit_error: raw.on_redis_error.rate_limits,
        on_budget_error: raw.on_redis_error.budgets,
        redis_ca_pem,
    })
}

/// The CA file's bytes, once they are known to hold at least one certificate.
fn ca_pem(path: &std::path::Path, tls: bool) -> Result<Vec<u8>, String> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    if !tls {
        return Err("only applies to a rediss:// (TLS) redis_url".into());
    }
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    match CertificateDer::pem_slice_iter(&pem).next() {
        Some(Ok(_)) => Ok(pem),
        Some(Err(e)) => Err(format!("{shown}: not a PEM certificate: {e}")),
        None => Err(format!("{shown}: no PEM certificate in the file")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(url: &str, ca: Option<&std::path::Path>) -> (bool, Vec<String>) {
        let raw = RawLimits {
            redis_url: Some(url.into()),
            redis_ca_file: ca.map(Into::into),
            ..RawLimits::default()
        };
        let mut problems = Vec::new();
        let s = shared_limits(&raw, &|_| None, &mut |k, p| {
            problems.push(format!("{k}: {p}"))
        });
        (s.is_some_and(|s| s.redis_ca_pem.is_some()), problems)
    }

    #[test]
    fn rediss_urls_and_a_ca_file_only_with_them() {
        assert_eq!(validate("rediss://cache:6380/0", None), (false, vec![]));
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("ca.txt");
        std::fs::write(&not_pem, "hello").unwrap();
        let (_, problems) = validate("rediss://cache:6380/0", Some(&not_pem));
        assert!(
            problems[0].starts_with("limits.redis_ca_file: ")
                && problems[0].contains("no PEM certificate"),
            "{problems:?}"
        );
        let (_, problems) = validate("redis://cache/0", Some(&not_pem));
        assert_eq!(
            problems,
            ["limits.redis_ca_file: only applies to a rediss:// (TLS) redis_url"]
        );
        let (_, problems) = validate("rediss://cache/0", Some(&dir.path().join("missing.pem")));
        assert!(problems[0].contains("cannot read"), "{problems:?}");
        let (_, problems) = validate("http://cache/0", None);
        assert!(
            problems[0].contains("\"redis://\" or \"rediss://\""),
            "{problems:?}"
        );
    }
}
