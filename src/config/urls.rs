//! Connection URLs in configuration (`ledger.url`, `limits.redis_url`): given inline
//! or as `env:NAME`, checked for their scheme, and refused inline when they carry a
//! password, since a config file is no place for a secret.

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

/// `ledger.url`, validated: the PostgreSQL ledger's URL, or `None` for SQLite.
pub fn ledger_url(
    raw: &super::RawLedger,
    env: &dyn Fn(&str) -> Option<String>,
    push: &mut dyn FnMut(String, String),
) -> Option<Secret> {
    connection_url(
        "ledger.url",
        raw.url.as_deref(),
        &["postgres://", "postgresql://"],
        env,
        push,
    )
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
}
