//! The policy decision as a record carries it: JSON, but encoded by the ledger
//! writer rather than on the request path. A request holds its decision typed
//! (shared, not copied, by the record); the sink serialises it when it stores the
//! batch. A record read back from storage holds the stored JSON.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A value that becomes JSON only when it is stored.
pub trait DeferredJson: Send + Sync + fmt::Debug {
    /// The JSON stored for it.
    fn to_json(&self) -> Value;
}

/// A record's `policy`: the JSON of the decision, written as [`PolicyJson::to_value`].
#[derive(Debug, Clone)]
pub enum PolicyJson {
    /// JSON already built (read back from storage, or `null` before any decision).
    Json(Value),
    /// A decision encoded when the record is stored.
    Deferred(Arc<dyn DeferredJson>),
}

impl PolicyJson {
    /// The JSON, built now for a deferred decision.
    pub fn to_value(&self) -> Value {
        match self {
            Self::Json(v) => v.clone(),
            Self::Deferred(d) => d.to_json(),
        }
    }
}

impl Default for PolicyJson {
    fn default() -> Self {
        Self::Json(Value::Null)
    }
}

impl From<Value> for PolicyJson {
    fn from(v: Value) -> Self {
        Self::Json(v)
    }
}

/// Equal when the JSON is equal, however each side holds it.
impl PartialEq for PolicyJson {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Json(a), Self::Json(b)) => a == b,
            _ => self.to_value() == other.to_value(),
        }
    }
}

/// The JSON text, as stored in SQLite's `policy` column.
impl fmt::Display for PolicyJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Json(v) => v.fmt(f),
            Self::Deferred(d) => d.to_json().fmt(f),
        }
    }
}

impl Serialize for PolicyJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Json(v) => v.serialize(s),
            Self::Deferred(d) => d.to_json().serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for PolicyJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(Self::Json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Fixed;

    impl DeferredJson for Fixed {
        fn to_json(&self) -> Value {
            serde_json::json!({"allowed_offers": [0], "excluded": []})
        }
    }

    #[test]
    fn a_deferred_decision_is_stored_and_compared_as_its_json() {
        let deferred = PolicyJson::Deferred(Arc::new(Fixed));
        let text = r#"{"allowed_offers":[0],"excluded":[]}"#;
        assert_eq!(deferred.to_string(), text);
        assert_eq!(serde_json::to_string(&deferred).unwrap(), text);
        let read: PolicyJson = serde_json::from_str(text).unwrap();
        assert_eq!(read, deferred);
        assert_ne!(PolicyJson::default(), deferred);
    }
}
