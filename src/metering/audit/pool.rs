//! The token-count audit off the request path: one dedicated thread counts the prompt of
//! sampled requests (and of every request without provider usage) with the offer's
//! tokenizer, fills the record's counted fields, feeds the drift totals, then lets the
//! record go to the ledger.
//!
//! The queue is bounded (`[metering] audit_queue`): when it is full the audit is dropped,
//! counted in `tollgate_audit_dropped_total`, and the record is written at once without
//! counted tokens. Nothing here decides what is sampled (`audit` does) or blocks a request:
//! submitting is a non-blocking send.

use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;

use super::{Drift, VisibleOutput};
use crate::api::openai::Prompt;
use crate::ledger::{Deferred, UsageSource};
use crate::telemetry::price_metrics;
use crate::tokens::estimate::TokenizerKind;

/// One audit: the held record and what is needed to count its prompt.
pub struct AuditJob {
    /// The record, enqueued in the ledger once the audit is done (or dropped).
    pub record: Deferred,
    pub request: Arc<dyn Prompt>,
    pub tokenizer: TokenizerKind,
    pub visible: Option<VisibleOutput>,
    /// Where provider-vs-counted totals go (reported usage only).
    pub drift: Arc<Drift>,
}

/// The audit thread's bounded queue. Dropping the last handle lets the thread finish what
/// is queued and exit.
#[derive(Debug, Clone)]
pub struct AuditPool {
    tx: SyncSender<AuditJob>,
}

impl AuditPool {
    /// Start the audit thread with room for `capacity` waiting audits. `None` if the
    /// thread could not be started (then every audit is dropped and counted).
    pub fn start(capacity: usize) -> Option<Self> {
        let (tx, rx) = mpsc::sync_channel::<AuditJob>(capacity.max(1));
        let spawned = std::thread::Builder::new()
            .name("tollgate-audit".into())
            .spawn(move || {
                for job in rx {
                    run(job);
                }
            });
        match spawned {
            Ok(_) => Some(Self { tx }),
            Err(e) => {
                tracing::error!(error = %e, "could not start the audit thread; token audits are dropped");
                None
            }
        }
    }

    /// A pool whose queue nobody reads, for tests of a full queue.
    #[cfg(test)]
    pub(crate) fn stalled(capacity: usize) -> (Self, mpsc::Receiver<AuditJob>) {
        let (tx, rx) = mpsc::sync_channel(capacity);
        (Self { tx }, rx)
    }

    /// Queue an audit without waiting. When the queue is full (or the thread is gone) the
    /// audit is dropped and counted; its record goes to the ledger uncounted.
    pub fn submit(&self, job: AuditJob) -> bool {
        match self.tx.try_send(job) {
            Ok(()) => true,
            Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => {
                dropped(job);
                false
            }
        }
    }
}

/// Count a dropped audit; its record is enqueued as it is.
pub fn dropped(mut job: AuditJob) {
    price_metrics::record_audit_dropped();
    if let Some(r) = job.record.record_mut() {
        tracing::debug!(request_id = %r.request_id, "token audit dropped: audit queue full");
    }
    job.record.release();
}

/// Count the prompt, fill the counted fields, update drift; the record then goes.
pub fn run(mut job: AuditJob) {
    if job.record.is_closing() {
        return;
    }
    let counted_input = job.request.prompt_tokens(job.tokenizer);
    let Some(record) = job.record.record_mut() else {
        return;
    };
    let audit = &mut record.audit;
    audit.counted_input_tokens = Some(counted_input);
    if let Some(v) = job.visible {
        audit.counted_output_tokens = Some(v.tokens);
        let hidden_reasoning = record.reasoning_tokens.unwrap_or(0) > 0 && !v.reasoning_visible;
        audit.output_verifiable = Some(!hidden_reasoning);
    }
    if record.usage_source == UsageSource::Reported {
        job.drift.record(record);
    }
}

#[cfg(test)]
mod tests {
    use metrics_exporter_prometheus::PrometheusBuilder;

    use super::*;
    use crate::api::openai::ChatRequest;
    use crate::ledger::{Ledger, LedgerOptions, Outcome, PricingStatus, UsageRecord};

    fn record(id: &str) -> UsageRecord {
        UsageRecord {
            request_id: id.to_owned(),
            created_at: chrono::Utc::now(),
            key_name: "demo".to_owned(),
            team: None,
            route: "chat_completions".to_owned(),
            logical_model: Some("m".to_owned()),
            provider: Some("p1".to_owned()),
            upstream_model: Some("gpt-4o".to_owned()),
            region: None,
            jurisdiction: None,
            processing_scope: None,
            stream: false,
            input_tokens: Some(10),
            cached_input_tokens: None,
            cache_write_tokens: None,
            cache_write_1h_tokens: None,
            output_tokens: Some(2),
            reasoning_tokens: None,
            usage_source: UsageSource::Reported,
            cost_usd: None,
            price_id: None,
            pricing: PricingStatus::Unpriced,
            latency_ms: 1,
            ttfb_ms: None,
            status: 200,
            outcome: Outcome::Completed,
            error_code: None,
            attempts: 1,
            policy: serde_json::Value::Null.into(),
            audit: Default::default(),
        }
    }

    fn job(ledger: &Ledger, id: &str) -> AuditJob {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"hello world"}]}"#;
        AuditJob {
            record: ledger.defer(record(id)),
            request: Arc::new(ChatRequest::parse(body, None).unwrap()),
            tokenizer: TokenizerKind::O200kBase,
            visible: None,
            drift: Arc::new(Drift::for_providers(&["p1"])),
        }
    }

    #[tokio::test]
    async fn a_full_audit_queue_drops_the_audit_counts_it_and_still_writes_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, writer) =
            Ledger::open_sqlite(&dir.path().join("l.db"), LedgerOptions::default())
                .await
                .unwrap();
        // A queue of one that nobody reads: the second audit finds it full.
        let (pool, queued) = AuditPool::stalled(1);
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let (first, second) = metrics::with_local_recorder(&recorder, || {
            (
                pool.submit(job(&ledger, "tg-queued")),
                pool.submit(job(&ledger, "tg-dropped")),
            )
        });
        assert!(first);
        assert!(!second);
        assert!(
            handle
                .render()
                .contains(&format!("{} 1", price_metrics::AUDIT_DROPPED_TOTAL)),
            "{}",
            handle.render()
        );
        // The dropped audit's record went to the ledger queue at once; the queued one is
        // held (and `flush` waits for it) until its audit runs or, as here, is abandoned.
        drop(queued);
        for id in ["tg-dropped", "tg-queued"] {
            let r = ledger.find(id).await.unwrap().unwrap();
            assert_eq!(r.audit.counted_input_tokens, None, "{id}");
            assert_eq!(r.input_tokens, Some(10), "{id}");
        }
        writer.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn an_audit_fills_the_counted_fields_before_the_record_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, writer) =
            Ledger::open_sqlite(&dir.path().join("l.db"), LedgerOptions::default())
                .await
                .unwrap();
        let pool = AuditPool::start(4).unwrap();
        let mut j = job(&ledger, "tg-audited");
        j.visible = Some(VisibleOutput {
            tokens: 2,
            reasoning_visible: false,
        });
        assert!(pool.submit(j));
        // `find` waits for held records: no polling needed.
        let r = ledger.find("tg-audited").await.unwrap().unwrap();
        let expected = crate::tokens::estimate::count_chat_prompt(
            TokenizerKind::O200kBase,
            &serde_json::json!([{"role": "user", "content": "hello world"}]),
        );
        assert_eq!(r.audit.counted_input_tokens, Some(expected));
        assert_eq!(r.audit.counted_output_tokens, Some(2));
        assert_eq!(r.audit.output_verifiable, Some(true));
        writer.shutdown().await.unwrap();
    }
}
