//! Settling an embeddings answer's usage: input only, never output. The provider's
//! report is billed when it passes `plausible::check` (an embedding's output limit is
//! zero) and claims no more input than the request's input can hold
//! (`EmbeddingsRequest::max_input_tokens`); otherwise, as for chat, none of it is used
//! and the input is counted with the offer's tokenizer (`estimated`, or `implausible`
//! when a report was refused).

use super::facts::RequestFacts;
use super::plausible::{self, Implausibility};
use crate::api::embeddings::EmbeddingsRequest;
use crate::ledger::UsageSource;
use crate::tokens::Usage;

/// The usage to bill and where it came from.
pub fn settle(
    facts: &RequestFacts,
    req: &EmbeddingsRequest,
    reported: Usage,
) -> (Usage, UsageSource) {
    let verdict = if reported.is_empty() {
        Ok(())
    } else {
        judge(&reported, req)
    };
    if verdict.is_ok() && reported.input.is_some() {
        let usage = Usage {
            output: Some(0),
            ..reported
        };
        return (usage, UsageSource::Reported);
    }
    let Some(served) = &facts.served else {
        return (Usage::default(), UsageSource::None);
    };
    let source = match verdict {
        Ok(()) => UsageSource::Estimated,
        Err(why) => {
            tracing::warn!(
                request_id = %facts.request_id,
                provider = %served.provider_id,
                reason = why.as_str(),
                "implausible embeddings usage reported; billed from tollgate's own count"
            );
            UsageSource::Implausible
        }
    };
    let usage = Usage {
        input: Some(req.count_input(served.tokenizer)),
        output: Some(0),
        ..Usage::default()
    };
    (usage, source)
}

fn judge(reported: &Usage, req: &EmbeddingsRequest) -> Result<(), Implausibility> {
    plausible::check(reported, Some(0))?;
    if reported.input.is_some_and(|n| n > req.max_input_tokens) {
        return Err(Implausibility::InputExceedsRequest);
    }
    Ok(())
}
