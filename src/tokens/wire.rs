//! One count off a provider's wire.

use serde_json::Value;

/// A usage field that is present but not a non-negative integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotACount;

/// A usage field as the wire carries it: `Ok(None)` when absent or `null`, `Err` when
/// present but not a non-negative integer (negative, fractional, text).
pub fn wire_count(v: Option<&Value>) -> Result<Option<u64>, NotACount> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or(NotACount),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_counts_reject_negative_fractional_and_text() {
        let v = serde_json::json!({"a": -1, "b": 1.5, "c": "7", "d": null, "e": 7});
        assert!(wire_count(v.get("a")).is_err());
        assert!(wire_count(v.get("b")).is_err());
        assert!(wire_count(v.get("c")).is_err());
        assert_eq!(wire_count(v.get("d")), Ok(None));
        assert_eq!(wire_count(v.get("e")), Ok(Some(7)));
        assert_eq!(wire_count(v.get("missing")), Ok(None));
    }
}
