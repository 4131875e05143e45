//! App keys -> `Principal`. Keys are configured as SHA-256 hashes and compared in
//! constant time, so neither the config file nor timing reveals a key.
//!
//! Auth only says *who* is calling; what they may do is policy's concern. The one
//! exception is how many requests a key may have running at once (`InFlight`): a
//! property of the caller, counted here without any lock on the request path.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

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

/// The presented key: `Authorization: Bearer <key>`, Azure's `api-key: <key>` or
/// Anthropic's `x-api-key: <key>`.
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
    ["api-key", "x-api-key"]
        .iter()
        .find_map(|name| headers.get(*name))
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

/// Seconds a client is told to wait when its key has too many requests in flight:
/// long requests end at their own pace, so this is a hint to back off, not a window.
const IN_FLIGHT_RETRY_AFTER_SECS: u64 = 1;

/// Requests in flight per key (`server.max_in_flight_per_key`): one counter per key,
/// indexed like the key table. Counters carry over reloads by key name, so a reload
/// neither resets nor leaks them.
#[derive(Debug, Default)]
pub struct InFlight {
    /// `None`: counted but not capped.
    limit: Option<u32>,
    keys: Vec<(String, Arc<AtomicU32>)>,
}

/// A request counted as in flight for its key, until dropped. Held by the response
/// body, so a stream counts until it ends.
#[derive(Debug)]
pub struct InFlightGuard(Arc<AtomicU32>);

impl InFlight {
    /// Zeroed counters for `keys`.
    pub fn new(keys: &[KeySettings], limit: Option<u32>) -> Self {
        Self {
            limit,
            keys: keys
                .iter()
                .map(|k| (k.name.clone(), Arc::new(AtomicU32::new(0))))
                .collect(),
        }
    }

    /// Keep counting on `previous`'s counters for keys that still exist (a reload),
    /// so requests started before it still count.
    pub fn adopt(&mut self, previous: &InFlight) {
        for (name, counter) in &mut self.keys {
            if let Some((_, old)) = previous.keys.iter().find(|(n, _)| n == name) {
                *counter = Arc::clone(old);
            }
        }
    }

    /// Count one more request for `key_index`, or refuse with `429 rate_limited` when
    /// the key is at its cap.
    pub fn acquire(&self, key_index: usize) -> Result<InFlightGuard, GatewayError> {
        let Some((_, counter)) = self.keys.get(key_index) else {
            return Err(GatewayError::new(
                ErrorCode::Internal,
                "the key vanished from the configuration",
            ));
        };
        let before = counter.fetch_add(1, Ordering::AcqRel);
        let guard = InFlightGuard(Arc::clone(counter));
        match self.limit {
            Some(limit) if before >= limit => {
                drop(guard);
                Err(GatewayError::new(
                    ErrorCode::RateLimited,
                    format!("this key already has {limit} requests in flight (server.max_in_flight_per_key); retry when one has finished"),
                )
                .with_retry_after(IN_FLIGHT_RETRY_AFTER_SECS))
            }
            _ => Ok(guard),
        }
    }

    /// Requests in flight for `key_index` now.
    pub fn current(&self, key_index: usize) -> u32 {
        self.keys
            .get(key_index)
            .map_or(0, |(_, c)| c.load(Ordering::Acquire))
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
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
    fn in_flight_caps_a_key_until_a_guard_drops_and_survives_a_reload() {
        let mut flight = InFlight::new(&keys(), Some(2));
        let a = flight.acquire(0).unwrap();
        let _b = flight.acquire(0).unwrap();
        let refused = flight.acquire(0).unwrap_err();
        assert_eq!(
            (refused.code, refused.retry_after_secs),
            (ErrorCode::RateLimited, Some(1))
        );
        // Another key is not affected.
        assert!(flight.acquire(1).is_ok());
        drop(a);
        let _c = flight.acquire(0).unwrap();
        // A reload (same key names, reordered) keeps counting the running requests.
        let mut reordered = keys();
        reordered.reverse();
        let mut next = InFlight::new(&reordered, Some(2));
        next.adopt(&flight);
        assert_eq!(next.current(1), 2);
        assert!(next.acquire(1).is_err());
        flight = next;
        assert_eq!(flight.current(0), 0);
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
