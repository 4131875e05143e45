//! The `tollgate` object: what a response body (or a stream's last usage chunk)
//! carries about its request, and how it is put into an upstream's JSON object
//! without re-encoding the rest: its text is inserted before the object's closing
//! brace. Deciding whether an upstream object may be edited that way (it must be an
//! object, and carry no `tollgate` key of its own) is the caller's job.

use serde::{Deserialize, Serialize};

use super::facts::{Priced, RequestFacts};

/// The `tollgate` object. Serialised field by field in this order; `None` is `null`.
#[derive(Debug, Serialize)]
pub struct Summary<'a> {
    request_id: &'a str,
    cost_usd: Option<String>,
    pricing: &'static str,
    provider: Option<&'a str>,
    model: Option<&'a str>,
    region: Option<&'a str>,
    jurisdiction: Option<&'a str>,
    processing_scope: Option<&'static str>,
    usage_source: &'static str,
    price_id: Option<&'a str>,
    usage: SummaryUsage,
}

/// The `usage` member of the `tollgate` object.
#[derive(Debug, Serialize)]
struct SummaryUsage {
    input_tokens: Option<u64>,
    cached_input_tokens: Option<u64>,
    cache_write_tokens: Option<u64>,
    /// Of `cache_write_tokens`, those written to a 1-hour cache.
    cache_write_1h_tokens: Option<u64>,
    output_tokens: Option<u64>,
    reasoning_tokens: Option<u64>,
}

/// The `tollgate` object for a priced request.
pub fn summary<'a>(facts: &'a RequestFacts, priced: &'a Priced) -> Summary<'a> {
    let served = facts.served.as_ref();
    Summary {
        request_id: &facts.request_id,
        cost_usd: priced.cost_usd.map(|c| c.to_string()),
        pricing: priced.pricing.as_str(),
        provider: served.map(|s| s.provider_id.as_str()),
        model: served.map(|s| s.upstream_model.as_str()),
        region: served.map(|s| s.residency.region.as_str()),
        jurisdiction: served.map(|s| s.residency.jurisdiction.as_str()),
        processing_scope: served.map(|s| s.residency.scope.as_str()),
        usage_source: priced.source.as_str(),
        price_id: priced.price_id.as_deref(),
        usage: SummaryUsage {
            input_tokens: priced.usage.input,
            cached_input_tokens: priced.usage.cached_input,
            cache_write_tokens: priced.usage.cache_write,
            cache_write_1h_tokens: priced.usage.cache_write_1h,
            output_tokens: priced.usage.output,
            reasoning_tokens: priced.usage.reasoning,
        },
    }
}

impl Summary<'_> {
    /// The object as a JSON value, for bodies that are re-encoded anyway.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// `"tollgate":{...}` as a member to insert into `json`'s object at `at` (see
    /// [`insertion_point`]), with the comma it needs.
    pub fn member(&self, at: Insertion) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        if !at.is_first {
            out.push(b',');
        }
        out.extend_from_slice(b"\"tollgate\":");
        // Writing plain strings and numbers into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, self);
        out
    }
}

/// Where a member goes in an object's text: before its closing brace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insertion {
    /// Byte offset of the closing `}`.
    pub at: usize,
    /// The object is empty: the member needs no leading comma.
    pub is_first: bool,
}

/// Where to insert a member into `json`, which must be the text of one valid JSON
/// value (checked by the caller's parse); `None` unless that value is an object.
pub fn insertion_point(json: &[u8]) -> Option<Insertion> {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let open = json.iter().position(|b| !is_space(b))?;
    let close = json.iter().rposition(|b| !is_space(b))?;
    if json.get(open) != Some(&b'{') || json.get(close) != Some(&b'}') || close <= open {
        return None;
    }
    let inside = json.get(open + 1..close)?;
    Some(Insertion {
        at: close,
        is_first: inside.iter().all(is_space),
    })
}

/// For `deserialize_with`: the field is there, whatever its value (even `null`).
/// Serde compares decoded keys, so escaped spellings of the name count too.
pub(crate) fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_insertion_point_is_the_closing_brace_of_an_object_only() {
        assert_eq!(
            insertion_point(b" {\"a\":1}\n"),
            Some(Insertion {
                at: 7,
                is_first: false
            })
        );
        assert_eq!(
            insertion_point(b"{ \n }"),
            Some(Insertion {
                at: 4,
                is_first: true
            })
        );
        assert_eq!(insertion_point(b"[1]"), None);
        assert_eq!(insertion_point(b"\"{}\""), None);
        assert_eq!(insertion_point(b"  "), None);
    }
}
