//! Residency policy: which of a model's offers a request may reach. Runs before any
//! upstream connection; offers outside the policy are removed (so failover can
//! never reach them) and the decision is recorded with every request.
//!
//! Today the policy is what the request asks for with `x-tollgate-residency`
//! (a comma list of jurisdictions). Per-key policies build on this same decision.
//! Fails closed: an unreadable header refuses the request rather than ignoring it.

use axum::http::HeaderMap;
use serde_json::{json, Value};

use crate::api::error::{ErrorCode, GatewayError};
use crate::config::{ModelSettings, ProviderSettings};

/// The offers a request may use, in routing order, and why others were excluded.
#[derive(Debug, Clone)]
pub struct Decision {
    /// Indexes into the model's offers.
    pub allowed: Vec<usize>,
    /// The jurisdictions the request was limited to; `None` means unrestricted.
    pub jurisdictions: Option<Vec<String>>,
    /// (offer index, provider id, reason) for each removed offer.
    pub excluded: Vec<(usize, String, &'static str)>,
}

impl Decision {
    /// The decision as recorded in the ledger.
    pub fn to_record(&self) -> Value {
        json!({
            "allowed_jurisdictions": self.jurisdictions,
            "allowed_offers": self.allowed,
            "excluded": self.excluded.iter().map(|(i, p, why)| json!({"offer": i, "provider": p, "reason": why})).collect::<Vec<_>>(),
        })
    }
}

/// Parse `x-tollgate-residency`: `EU` or `EU,US`.
fn requested_jurisdictions(headers: &HeaderMap) -> Result<Option<Vec<String>>, GatewayError> {
    let Some(raw) = headers.get("x-tollgate-residency") else {
        return Ok(None);
    };
    let text = raw.to_str().map_err(|_| bad_header())?;
    let list: Vec<String> = text
        .split(',')
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| !s.is_empty())
        .collect();
    let valid =
        |j: &String| (j.len() == 2 && j.bytes().all(|b| b.is_ascii_uppercase())) || j == "GLOBAL";
    if list.is_empty() || !list.iter().all(valid) {
        return Err(bad_header());
    }
    Ok(Some(list))
}

fn bad_header() -> GatewayError {
    GatewayError::new(
        ErrorCode::InvalidRequest,
        "x-tollgate-residency must be a comma list of jurisdictions such as \"EU\" or \"EU,US\"",
    )
}

/// Decide which offers of `model` this request may reach.
pub fn evaluate(
    model: &ModelSettings,
    providers: &[ProviderSettings],
    headers: &HeaderMap,
) -> Result<Decision, GatewayError> {
    let jurisdictions = requested_jurisdictions(headers)?;
    let mut allowed = Vec::new();
    let mut excluded = Vec::new();
    for (i, offer) in model.offers.iter().enumerate() {
        let Some(provider) = providers.get(offer.provider) else {
            continue;
        };
        let permitted = jurisdictions
            .as_ref()
            .is_none_or(|js| js.contains(&provider.residency.jurisdiction));
        if permitted {
            allowed.push(i);
        } else {
            excluded.push((i, provider.id.clone(), "jurisdiction_not_requested"));
        }
    }
    if allowed.is_empty() {
        let mut offered: Vec<&str> = model
            .offers
            .iter()
            .filter_map(|o| providers.get(o.provider))
            .map(|p| p.residency.jurisdiction.as_str())
            .collect();
        offered.sort_unstable();
        offered.dedup();
        return Err(GatewayError::new(
            ErrorCode::ResidencyViolation,
            format!(
                "model {:?} is offered in {}, but this request is limited to {}; widen x-tollgate-residency or pick another model",
                model.name,
                offered.join(", "),
                jurisdictions.unwrap_or_default().join(", "),
            ),
        ));
    }
    Ok(Decision {
        allowed,
        jurisdictions,
        excluded,
    })
}
