//! Provider secrets: referenced from configuration as `env:NAME`, resolved once at
//! validation, and then only ever handed to the upstream request builder.
//!
//! `Secret` deliberately has no `Display` and no `Serialize`, and its `Debug` is
//! redacted, so a secret cannot reach a log line, an error body or the ledger by accident.

use std::fmt;

/// A resolved secret value. The only way to read it is [`Secret::expose`].
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wrap a resolved value.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The raw value, for building the upstream `Authorization`/`api-key` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Secret {
    /// Whether this is the placeholder [`unresolved`] gave instead of a value: what
    /// `check-config --skip-secrets` validates with. Never served with.
    pub fn is_unresolved(&self) -> bool {
        self.0.starts_with(UNRESOLVED)
    }
}

/// Starts every placeholder. No environment variable can hold a NUL byte, so a
/// placeholder can never be mistaken for a resolved secret (nor the reverse).
const UNRESOLVED: char = '\0';

/// An `env` lookup for [`resolve`] that answers every name with a placeholder instead
/// of reading the environment: validation then checks that each reference is well
/// formed without needing its variable set (`tollgate check-config --skip-secrets`).
pub fn unresolved(name: &str) -> Option<String> {
    Some(format!("{UNRESOLVED}unresolved:{name}"))
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Why a secret reference could not be resolved.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretRefError {
    /// The value is not of the form `env:NAME`; inline secrets are refused on purpose.
    #[error("secrets must be references of the form \"env:NAME\"; inline values are not accepted")]
    NotAReference,
    /// `env:` names something no environment variable can be called (empty, or with
    /// whitespace, `=` or NUL in it).
    #[error("\"env:{name}\" does not name an environment variable; expected \"env:NAME\" with NAME made of letters, digits and _")]
    BadName {
        /// The name as written.
        name: String,
    },
    /// The named environment variable is not set (or empty).
    #[error("environment variable {name} is not set")]
    Unset {
        /// The variable name.
        name: String,
    },
}

/// Resolve an `env:NAME` reference through `env` (a lookup function, so tests never
/// touch the process environment).
pub fn resolve(
    reference: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Secret, SecretRefError> {
    let name = reference
        .strip_prefix("env:")
        .ok_or(SecretRefError::NotAReference)?;
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '=' || c == '\0') {
        return Err(SecretRefError::BadName {
            name: name.to_owned(),
        });
    }
    match env(name) {
        Some(value) if !value.is_empty() => Ok(Secret::new(value)),
        _ => Err(SecretRefError::Unset {
            name: name.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("sk-live-123".into());
        assert!(!format!("{s:?}").contains("sk-live"));
    }

    #[test]
    fn resolves_env_reference_and_refuses_inline_values() {
        let env = |n: &str| (n == "KEY").then(|| "v".to_owned());
        assert_eq!(
            resolve("env:KEY", &env).map(|s| s.expose().to_owned()),
            Ok("v".into())
        );
        assert_eq!(
            resolve("sk-inline", &env).err(),
            Some(SecretRefError::NotAReference)
        );
        assert_eq!(
            resolve("env:MISSING", &env).err(),
            Some(SecretRefError::Unset {
                name: "MISSING".into()
            })
        );
        for bad in ["env:", "env:MY KEY", "env:A=B"] {
            assert!(
                matches!(resolve(bad, &env), Err(SecretRefError::BadName { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn skipping_secrets_checks_the_form_without_reading_the_environment() {
        let placeholder = resolve("env:NOT_SET_ANYWHERE", &unresolved).unwrap();
        assert!(placeholder.is_unresolved());
        assert!(!Secret::new("sk-live".into()).is_unresolved());
        assert_eq!(
            resolve("sk-inline", &unresolved).err(),
            Some(SecretRefError::NotAReference)
        );
        assert!(resolve("env:", &unresolved).is_err());
    }
}
