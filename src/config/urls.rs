//! Connection URLs in configuration (`ledger.url`, `limits.redis_url`): given inline
//! or as `env:NAME`, checked for their scheme, and refused inline when they carry a
//! password, since a config file is no place for a secret. Also reads libpq's TLS
//! parameters (`sslmode`, `sslrootcert`) out of a PostgreSQL URL; the ledger builds
//! the TLS connection from them, this module only parses and checks.

use super::secret::{self, Secret};

/// A service URL from config (`ledger.url`, `limits.redis_url`): `env:NAME` or a literal
/// URL with one of `schemes`. A literal URL that carries a password is refused: a
/// secret belongs in the environment, not in a config file. Problems go to `push`
/// under `key`; `None` when unset or invalid.
pub(crate) fn connection_url(
    key: &str,
    reference: Option<&str>,
    schemes: &[&str],
    env: &dyn Fn(&str) -> Option<String>,
    push: &mut dyn FnMut(String, String),
) -> Option<Secret> {
    let reference = reference?;
    let url = if reference.starts_with("env:") {
        match secret::resolve(reference, env) {
            // `check-config --skip-secrets`: the URL is unknown, its scheme unchecked.
            Ok(s) if s.is_unresolved() => return Some(s),
            Ok(s) => s,
            Err(e) => {
                push(key.into(), e.to_string());
                return None;
            }
        }
    } else {
        if has_password(reference) {
            push(
                key.into(),
                "this URL carries a password; put it in an environment variable and write \"env:NAME\"".into(),
            );
            return None;
        }
        Secret::new(reference.to_owned())
    };
    if !schemes.iter().any(|s| url.expose().starts_with(s)) {
        let expected = schemes
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(" or ");
        push(
            key.into(),
            format!("expected a URL starting with {expected} (or an env:NAME holding one)"),
        );
        return None;
    }
    Some(url)
}

/// Whether `scheme://user:password@host...` has a password part.
fn has_password(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

/// `ledger.url`, validated: the PostgreSQL ledger's URL, or `None` for SQLite. Its
/// `sslmode` is checked here so that a typo fails `check-config`, not the first write.
pub fn ledger_url(
    raw: &super::RawLedger,
    env: &dyn Fn(&str) -> Option<String>,
    push: &mut dyn FnMut(String, String),
) -> Option<Secret> {
    let url = connection_url(
        "ledger.url",
        raw.url.as_deref(),
        &["postgres://", "postgresql://"],
        env,
        push,
    )?;
    if let Err(problem) = postgres_tls(url.expose()) {
        push("ledger.url".into(), problem);
        return None;
    }
    Some(url)
}

/// How a PostgreSQL connection is encrypted: libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Cleartext (also what an absent `sslmode` means to tollgate, unlike libpq).
    Disable,
    /// TLS when the server offers it, else cleartext; the certificate is not checked.
    Prefer,
    /// TLS or no connection; the certificate is not checked (encryption only, as libpq).
    Require,
    /// TLS with a certificate chaining to a trusted root; the host name is not checked.
    VerifyCa,
    /// TLS with a trusted chain issued for the host name in the URL.
    VerifyFull,
}

/// The TLS parameters of a PostgreSQL URL, and the URL without them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresTls {
    /// The URL with `sslmode` and `sslrootcert` removed (tokio-postgres knows neither
    /// `verify-*` nor `sslrootcert`); the caller sets the mode itself.
    pub url: String,
    /// `sslmode`; `require` with an `sslrootcert` reads as `verify-ca`, as in libpq.
    pub mode: SslMode,
    /// `sslrootcert`: a PEM file of the CAs to trust instead of the built-in (Mozilla)
    /// roots; `None` means the built-in roots.
    pub root_cert: Option<std::path::PathBuf>,
}

/// Split `sslmode` and `sslrootcert` out of a PostgreSQL URL's query string. The
/// error says what was wrong and what is accepted (it never repeats the URL).
pub fn postgres_tls(url: &str) -> Result<PostgresTls, String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept = Vec::new();
    let (mut mode, mut root_cert) = (None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "sslmode" => mode = Some(ssl_mode(&percent_decode(value)?)?),
            "sslrootcert" => root_cert = Some(std::path::PathBuf::from(percent_decode(value)?)),
            _ => kept.push(pair),
        }
    }
    let mode = match (mode.unwrap_or(SslMode::Disable), &root_cert) {
        (SslMode::Require, Some(_)) => SslMode::VerifyCa,
        (SslMode::Disable | SslMode::Prefer, Some(_)) => {
            return Err("sslrootcert needs sslmode=verify-full, verify-ca or require".into())
        }
        (mode, _) => mode,
    };
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok(PostgresTls {
        url,
        mode,
        root_cert,
    })
}

fn ssl_mode(value: &str) -> Result<SslMode, String> {
    Ok(match value {
        "disable" => SslMode::Disable,
        "prefer" => SslMode::Prefer,
        "require" => SslMode::Require,
        "verify-ca" => SslMode::VerifyCa,
        "verify-full" => SslMode::VerifyFull,
        other => {
            return Err(format!(
                "unknown sslmode {other:?}; expected one of: disable, prefer, require, verify-ca, verify-full"
            ))
        }
    })
}

/// `%XX` escapes decoded (a path in `sslrootcert` may contain `/` written `%2F`).
fn percent_decode(value: &str) -> Result<String, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("a %-escape in the URL's query string is not two hex digits")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the URL's query string is not UTF-8 once decoded".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(reference: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
        let mut problem = None;
        let url = connection_url(
            "ledger.url",
            Some(reference),
            &["postgres://", "postgresql://"],
            env,
            &mut |k, p| problem = Some(format!("{k}: {p}")),
        );
        match (url, problem) {
            (Some(u), None) => Ok(u.expose().to_owned()),
            (_, p) => Err(p.unwrap_or_default()),
        }
    }

    #[test]
    fn inline_urls_without_password_env_references_and_schemes() {
        let none = |_: &str| None;
        assert_eq!(
            check("postgres://tollgate@db:5432/ledger", &none),
            Ok("postgres://tollgate@db:5432/ledger".into())
        );
        let env = |n: &str| (n == "PG").then(|| "postgresql://u:pw@db/l".to_owned());
        assert_eq!(check("env:PG", &env), Ok("postgresql://u:pw@db/l".into()));
        let inline = check("postgres://u:hunter2@db/l", &none).unwrap_err();
        assert!(inline.starts_with("ledger.url: this URL carries a password"));
        assert!(!inline.contains("hunter2"));
        let scheme = check("mysql://db/l", &none).unwrap_err();
        assert!(
            scheme.contains("\"postgres://\" or \"postgresql://\""),
            "{scheme}"
        );
        assert!(check("env:UNSET", &none)
            .unwrap_err()
            .contains("UNSET is not set"));
    }

    #[test]
    fn sslmode_and_sslrootcert_are_split_out_of_a_postgres_url() {
        let tls = postgres_tls("postgres://u@db/l?connect_timeout=3&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=t").unwrap();
        assert_eq!(tls.mode, SslMode::VerifyFull);
        assert_eq!(tls.root_cert, Some("/etc/ca.pem".into()));
        assert_eq!(
            tls.url,
            "postgres://u@db/l?connect_timeout=3&application_name=t"
        );
        let plain = postgres_tls("postgres://u@db/l").unwrap();
        assert_eq!(
            (plain.mode, plain.url.as_str()),
            (SslMode::Disable, "postgres://u@db/l")
        );
        // As in libpq: require with a root certificate verifies the chain.
        let require = postgres_tls("postgres://db/l?sslmode=require&sslrootcert=ca.pem").unwrap();
        assert_eq!(
            (require.mode, require.url.as_str()),
            (SslMode::VerifyCa, "postgres://db/l")
        );
        assert_eq!(
            postgres_tls("postgres://db/l?sslmode=verify-ca")
                .unwrap()
                .mode,
            SslMode::VerifyCa
        );
        let typo = postgres_tls("postgres://db/l?sslmode=verify_full").unwrap_err();
        assert!(
            typo.contains("unknown sslmode \"verify_full\"") && typo.contains("verify-full"),
            "{typo}"
        );
        assert!(postgres_tls("postgres://db/l?sslrootcert=ca.pem").is_err());
        assert!(postgres_tls("postgres://db/l?sslrootcert=%zz").is_err());
    }

    #[test]
    fn check_config_refuses_an_unknown_sslmode() {
        let raw = crate::config::RawLedger {
            url: Some("postgres://db/l?sslmode=always".into()),
            ..Default::default()
        };
        let mut problems = Vec::new();
        let url = ledger_url(&raw, &|_| None, &mut |k, p| {
            problems.push(format!("{k}: {p}"))
        });
        assert!(url.is_none());
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("ledger.url: unknown sslmode \"always\""),
            "{problems:?}"
        );
    }
}
