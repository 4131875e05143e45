//! The question "what would this usage cost on every offer of model M?", parsed from
//! query parameters (the `/v1/tollgate/prices` endpoint) and answered as one JSON
//! document shared with `tollgate prices --format json`.
//!
//! Pure: parsing and shaping only. Authentication and HTTP are `server::prices`; the
//! pricing itself is `compare`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::compare::Quote;
use crate::catalog::TokenCounts;

/// Accepted query parameters; anything else is refused so a typo is not silently ignored.
pub const PARAMS: &[&str] = &[
    "model",
    "input_tokens",
    "cached_tokens",
    "output_tokens",
    "reasoning_tokens",
    "at",
];

/// A parsed price question.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceQuery {
    /// The logical model asked about.
    pub model: String,
    /// The usage to price (cache writes are not asked about: zero).
    pub tokens: TokenCounts,
    /// The instant to price at; `None` = now.
    pub at: Option<DateTime<Utc>>,
}

/// A bad parameter: which one and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryProblem {
    /// The parameter's name.
    pub param: &'static str,
    /// What is wrong and what is accepted.
    pub message: String,
}

/// Parse query parameters; the first problem found is returned.
pub fn parse(params: &BTreeMap<String, String>) -> Result<PriceQuery, QueryProblem> {
    if let Some(unknown) = params.keys().find(|k| !PARAMS.contains(&k.as_str())) {
        return Err(QueryProblem {
            param: "query",
            message: format!(
                "unknown parameter {unknown:?}; expected: {}",
                PARAMS.join(", ")
            ),
        });
    }
    let model = params
        .get("model")
        .filter(|m| !m.trim().is_empty())
        .cloned()
        .ok_or_else(|| QueryProblem {
            param: "model",
            message: "missing; name a logical model, e.g. model=deepseek-r1".into(),
        })?;
    let count = |param: &'static str| -> Result<u64, QueryProblem> {
        params.get(param).map_or(Ok(0), |v| {
            v.parse::<u64>().map_err(|_| QueryProblem {
                param,
                message: format!("{v:?} is not a token count; expected a whole number >= 0"),
            })
        })
    };
    let tokens = TokenCounts {
        input: count("input_tokens")?,
        cached_input: count("cached_tokens")?,
        cache_write: 0,
        cache_write_1h: 0,
        output: count("output_tokens")?,
        reasoning: count("reasoning_tokens")?,
    };
    check_parts(&tokens)?;
    let at = params
        .get("at")
        .map(|v| {
            crate::instant::parse(v, crate::instant::Bound::Start).ok_or_else(|| QueryProblem {
                param: "at",
                message: format!("{v:?} is not a time; use {}", crate::instant::EXPECTED),
            })
        })
        .transpose()?;
    Ok(PriceQuery { model, tokens, at })
}

/// Cached tokens are part of input and reasoning part of output, as everywhere in tollgate.
pub fn check_parts(tokens: &TokenCounts) -> Result<(), QueryProblem> {
    if tokens.cached_input > tokens.input {
        return Err(QueryProblem {
            param: "cached_tokens",
            message: "cached tokens are part of input_tokens and cannot exceed it".into(),
        });
    }
    if tokens.reasoning > tokens.output {
        return Err(QueryProblem {
            param: "reasoning_tokens",
            message: "reasoning tokens are part of output_tokens and cannot exceed it".into(),
        });
    }
    Ok(())
}

/// The answer document: the question, then every quote cheapest first.
pub fn answer(query: &PriceQuery, at: DateTime<Utc>, groups: &[&str], quotes: &[Quote]) -> Value {
    json!({
        "object": "list",
        "model": query.model,
        "at": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "comparison_groups": groups,
        "usage": {
            "input_tokens": query.tokens.input,
            "cached_tokens": query.tokens.cached_input,
            "output_tokens": query.tokens.output,
            "reasoning_tokens": query.tokens.reasoning,
        },
        "data": quotes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Result<PriceQuery, QueryProblem> {
        parse(
            &pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn bad_parameters_name_the_parameter() {
        assert_eq!(q(&[]).unwrap_err().param, "model");
        assert_eq!(
            q(&[("model", "o1"), ("input_tokens", "-3")])
                .unwrap_err()
                .param,
            "input_tokens"
        );
        assert_eq!(
            q(&[
                ("model", "o1"),
                ("input_tokens", "1"),
                ("cached_tokens", "2")
            ])
            .unwrap_err()
            .param,
            "cached_tokens"
        );
        assert_eq!(
            q(&[("model", "o1"), ("at", "yesterday")])
                .unwrap_err()
                .param,
            "at"
        );
        assert_eq!(
            q(&[("model", "o1"), ("inptu", "1")]).unwrap_err().param,
            "query"
        );
        let ok = q(&[
            ("model", "o1"),
            ("output_tokens", "10"),
            ("reasoning_tokens", "4"),
        ])
        .unwrap();
        assert_eq!(
            (ok.tokens.output, ok.tokens.reasoning, ok.tokens.input),
            (10, 4, 0)
        );
    }
}
