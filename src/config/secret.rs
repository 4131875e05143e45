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
        .filter(|n| !n.is_empty())
        .ok_or(SecretRefError::NotAReference)?;
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
    }
}
