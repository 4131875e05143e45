//! App keys -> `Principal`. Keys are configured as SHA-256 hashes and compared in
//! constant time, so neither the config file nor timing reveals a key.
//!
//! Auth only says *who* is calling; what they may do is policy's concern.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::api::error::{ErrorCode, GatewayError};
use crate::config::KeySettings;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Index into the key table, for fast access to the key's settings.
    pub key_index: usize,
    /// The key's configured name: what the ledger and logs record, never the secret.
    pub key_name: String,
}

/// SHA-256 of a key, as configured: `sha256:<hex>`.
pub fn hash_key(key: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(key.as_bytes())))
}

/// The presented key: `Authorization: Bearer <key>` or Azure's `api-key: <key>`.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if let Some(k) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        {
            return Some(k.trim());
        }
    }
    headers
        .get("api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Check the request's key against every configured hash. Every hash is compared,
/// whatever matches, so the time taken does not depend on which key (if any) matched.
pub fn authenticate(keys: &[KeySettings], headers: &HeaderMap) -> Result<Principal, GatewayError> {
    let Some(key) = presented_key(headers).filter(|k| !k.is_empty()) else {
        return Err(GatewayError::new(
            ErrorCode::InvalidApiKey,
            "no API key: send `Authorization: Bearer <tollgate key>` (or `api-key: <tollgate key>`)",
        ));
    };
    let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    let mut found: Option<usize> = None;
    for (i, k) in keys.iter().enumerate() {
        if bool::from(k.hash.ct_eq(&digest)) {
            found = Some(i);
        }
    }
    let i = found.ok_or_else(|| {
        GatewayError::new(
            ErrorCode::InvalidApiKey,
            "the API key is not a tollgate key; ask your operator for one (`tollgate hash-key` makes the hash to configure)",
        )
    })?;
    let name = keys.get(i).map(|k| k.name.clone()).unwrap_or_default();
    Ok(Principal {
        key_index: i,
        key_name: name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::validate::parse_key_hash;

    fn keys() -> Vec<KeySettings> {
        ["alpha", "beta"]
            .iter()
            .map(|k| KeySettings {
                name: format!("{k}-name"),
                hash: parse_key_hash(&hash_key(k)).unwrap(),
                models: None,
                team: None,
                residency: Default::default(),
                rate_limit: Default::default(),
                budget: Default::default(),
            })
            .collect()
    }

    #[test]
    fn bearer_and_api_key_headers_both_authenticate() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer beta".parse().unwrap());
        assert_eq!(authenticate(&keys(), &h).unwrap().key_name, "beta-name");
        let mut h = HeaderMap::new();
        h.insert("api-key", "alpha".parse().unwrap());
        assert_eq!(authenticate(&keys(), &h).unwrap().key_name, "alpha-name");
    }

    #[test]
    fn wrong_or_missing_key_is_invalid_api_key() {
        let mut h = HeaderMap::new();
        assert_eq!(
            authenticate(&keys(), &h).unwrap_err().code,
            ErrorCode::InvalidApiKey
        );
        h.insert("authorization", "Bearer gamma".parse().unwrap());
        assert_eq!(
            authenticate(&keys(), &h).unwrap_err().code,
            ErrorCode::InvalidApiKey
        );
    }
}
