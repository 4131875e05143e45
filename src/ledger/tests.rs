use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::DateTime;
use rust_decimal_macros::dec;
use serde_json::json;
use tokio::sync::{Notify, Semaphore};

use super::*;

pub(crate) fn full(id: &str) -> UsageRecord {
    UsageRecord {
        request_id: id.to_owned(),
        created_at: DateTime::from_timestamp_millis(1_740_830_400_123).unwrap(),
        key_name: "team-a".to_owned(),
        team: Some("research".to_owned()),
        route: "chat_completions".to_owned(),
        logical_model: Some("gpt-4o".to_owned()),
        provider: Some("azure-eu".to_owned()),
        upstream_model: Some("gpt-4o-2024-08-06".to_owned()),
        region: Some("swedencentral".to_owned()),
        jurisdiction: Some("EU".to_owned()),
        processing_scope: Some("datazone".to_owned()),
        stream: true,
        input_tokens: Some(12_345),
        cached_input_tokens: Some(1_024),
        cache_write_tokens: Some(0),
        cache_write_1h_tokens: None,
        output_tokens: Some(678),
        reasoning_tokens: Some(64),
        usage_source: UsageSource::Reported,
        cost_usd: Some(dec!(0.170595)),
        price_id: Some("azure-eu/gpt-4o@2025-01-01".to_owned()),
        pricing: PricingStatus::Priced,
        latency_ms: 1_234,
        ttfb_ms: Some(210),
        status: 200,
        outcome: Outcome::Completed,
        error_code: None,
        attempts: 2,
        policy: json!({"allowed": ["azure-eu"], "excluded": [{"offer": "openai-us", "why": "jurisdiction"}]}).into(),
        audit: crate::ledger::PriceAudit {
            cheapest_allowed_cost_usd: Some(rust_decimal::Decimal::new(12, 5)),
            cheapest_allowed_offer: Some("azure-ai-foundry/DeepSeek-R1".into()),
            cheapest_any_cost_usd: Some(rust_decimal::Decimal::ZERO),
            cheapest_any_offer: Some("github-models/deepseek/DeepSeek-R1/free".into()),
            counted_input_tokens: Some(11),
            counted_output_tokens: Some(40),
            output_verifiable: Some(true),
        },
    }
}

pub(crate) fn bare(id: &str) -> UsageRecord {
    UsageRecord {
        request_id: id.to_owned(),
        created_at: DateTime::from_timestamp_millis(1_740_830_401_000).unwrap(),
        key_name: "team-b".to_owned(),
        team: None,
        route: "azure_chat_completions".to_owned(),
        logical_model: None,
        provider: None,
        upstream_model: None,
        region: None,
        jurisdiction: None,
        processing_scope: None,
        stream: false,
        input_tokens: None,
        cached_input_tokens: None,
        cache_write_tokens: None,
        cache_write_1h_tokens: None,
        output_tokens: None,
        reasoning_tokens: None,
        usage_source: UsageSource::None,
        cost_usd: None,
        price_id: None,
        pricing: PricingStatus::NotApplicable,
        latency_ms: 3,
        ttfb_ms: None,
        status: 400,
        outcome: Outcome::Rejected,
        error_code: Some("invalid_request".to_owned()),
        attempts: 0,
        policy: serde_json::Value::Null.into(),
        audit: crate::ledger::PriceAudit::default(),
    }
}

fn opts(queue_capacity: usize, batch_size: usize, flush_interval: Duration) -> LedgerOptions {
    LedgerOptions {
        queue_capacity,
        batch_size,
        flush_interval,
    }
}

const HOUR: Duration = Duration::from_secs(3600);

/// An in-memory sink that records each batch, can hold writes behind a gate, and can
/// fail a number of attempts first.
#[derive(Clone, Default)]
struct MemorySink {
    batches: Arc<Mutex<Vec<Vec<UsageRecord>>>>,
    gate: Option<Arc<Semaphore>>,
    entered: Arc<Notify>,
    failures_left: Arc<AtomicUsize>,
    attempts: Arc<AtomicUsize>,
}

impl MemorySink {
    fn gated() -> (Self, Arc<Semaphore>) {
        let gate = Arc::new(Semaphore::new(0));
        let sink = Self {
            gate: Some(Arc::clone(&gate)),
            ..Self::default()
        };
        (sink, gate)
    }

    fn failing(times: usize) -> Self {
        let sink = Self::default();
        sink.failures_left.store(times, Ordering::SeqCst);
        sink
    }

    fn sizes(&self) -> Vec<usize> {
        self.batches.lock().unwrap().iter().map(Vec::len).collect()
    }

    fn ids(&self) -> Vec<String> {
        let batches = self.batches.lock().unwrap();
        batches
            .iter()
            .flatten()
            .map(|r| r.request_id.clone())
            .collect()
    }
}

impl LedgerSink for MemorySink {
    async fn write_batch(&self, batch: &[UsageRecord]) -> Result<(), LedgerError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        self.entered.notify_one();
        if let Some(gate) = &self.gate {
            let _open = gate.acquire().await.unwrap();
        }
        let left = self.failures_left.load(Ordering::SeqCst);
        if left > 0 {
            self.failures_left.store(left - 1, Ordering::SeqCst);
            return Err(LedgerError::InvalidValue {
                column: "test",
                value: "disk on fire".to_owned(),
            });
        }
        self.batches.lock().unwrap().push(batch.to_vec());
        Ok(())
    }

    async fn find(&self, request_id: &str) -> Result<Option<UsageRecord>, LedgerError> {
        let batches = self.batches.lock().unwrap();
        Ok(batches
            .iter()
            .flatten()
            .find(|r| r.request_id == request_id)
            .cloned())
    }
}

#[tokio::test]
async fn full_queue_drops_and_counts_records() {
    let (sink, gate) = MemorySink::gated();
    let (ledger, writer) = Ledger::start(sink.clone(), opts(2, 1, HOUR)).unwrap();
    ledger.record(bare("r0"));
    // The writer now holds r0 inside a blocked write; the queue has room for two more.
    sink.entered.notified().await;
    for id in ["r1", "r2", "r3", "r4"] {
        ledger.record(bare(id));
    }
    assert_eq!(ledger.dropped_total(), 2);
    assert_eq!(ledger.queue_depth(), 3);

    gate.add_permits(1);
    ledger.flush().await.unwrap();
    assert_eq!(sink.ids(), ["r0", "r1", "r2"]);
    assert_eq!(ledger.queue_depth(), 0);
    writer.shutdown().await.unwrap();
}

#[tokio::test]
async fn records_are_written_in_batches_of_batch_size() {
    let sink = MemorySink::default();
    let (ledger, writer) = Ledger::start(sink.clone(), opts(100, 10, HOUR)).unwrap();
    for i in 0..25 {
        ledger.record(bare(&format!("r{i}")));
    }
    ledger.flush().await.unwrap();
    assert_eq!(sink.sizes(), [10, 10, 5]);
    writer.shutdown().await.unwrap();
}

#[tokio::test]
async fn partial_batch_is_written_once_flush_interval_passes() {
    let sink = MemorySink::default();
    let interval = Duration::from_millis(1000);
    let (ledger, writer) = Ledger::start(sink.clone(), opts(100, 100, interval)).unwrap();
    for id in ["a", "b", "c"] {
        ledger.record(bare(id));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(sink.sizes().is_empty(), "written before the interval");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.sizes(), [3]);
    writer.shutdown().await.unwrap();
}

#[tokio::test]
async fn failed_write_is_retried_without_losing_the_batch() {
    let sink = MemorySink::failing(3);
    let (ledger, writer) = Ledger::start(sink.clone(), opts(100, 100, HOUR)).unwrap();
    ledger.record(full("a"));
    ledger.record(bare("b"));
    // The barrier's batch fails first: the caller learns at once instead of hanging.
    assert!(ledger.flush().await.is_err());
    assert!(matches!(
        ledger.find("a").await,
        Err(LedgerError::Unavailable)
    ));

    // Backoff 50 + 100 + 200 ms, then the fourth attempt succeeds.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.attempts.load(Ordering::SeqCst), 4);
    assert_eq!(sink.ids(), ["a", "b"]);
    ledger.flush().await.unwrap();
    assert_eq!(ledger.find("a").await.unwrap(), Some(full("a")));
    assert_eq!(ledger.dropped_total(), 0);
    writer.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_with_a_dead_sink_reports_the_lost_records() {
    let sink = MemorySink::failing(usize::MAX);
    let (ledger, writer) = Ledger::start(sink.clone(), opts(100, 100, HOUR)).unwrap();
    for id in ["a", "b", "c"] {
        ledger.record(bare(id));
    }
    let err = writer.shutdown().await.unwrap_err();
    assert!(
        matches!(err, LedgerError::Lost { records: 3, .. }),
        "{err:?}"
    );
    assert_eq!(ledger.dropped_total(), 3);
    assert_eq!(ledger.queue_depth(), 0);
}

#[tokio::test]
async fn record_after_shutdown_is_dropped_and_counted() {
    let sink = MemorySink::default();
    let (ledger, writer) = Ledger::start(sink.clone(), LedgerOptions::default()).unwrap();
    ledger.record(bare("before"));
    writer.shutdown().await.unwrap();
    ledger.record(bare("after"));
    assert_eq!(sink.ids(), ["before"]);
    assert_eq!(ledger.dropped_total(), 1);
    assert!(matches!(ledger.flush().await, Err(LedgerError::Closed)));
}

#[tokio::test]
async fn dropping_the_writer_handle_keeps_the_writer_running() {
    let sink = MemorySink::default();
    let (ledger, writer) = Ledger::start(sink, opts(10, 10, HOUR)).unwrap();
    drop(writer);
    ledger.record(bare("a"));
    assert_eq!(ledger.find("a").await.unwrap(), Some(bare("a")));
}

#[test]
fn start_outside_a_runtime_is_an_error() {
    let started = Ledger::start(MemorySink::default(), LedgerOptions::default());
    assert!(matches!(started, Err(LedgerError::NoRuntime)));
}

#[test]
fn enum_text_forms_agree_with_serde_and_parse_back() {
    fn check<T>(all: &[T], as_str: fn(T) -> &'static str)
    where
        T: Copy + std::fmt::Debug + PartialEq + serde::Serialize + FromStr<Err = LedgerError>,
    {
        for v in all {
            let text = as_str(*v);
            assert_eq!(serde_json::to_value(v).unwrap(), json!(text));
            assert_eq!(T::from_str(text).unwrap(), *v);
        }
        assert!(matches!(
            T::from_str("Bogus"),
            Err(LedgerError::InvalidValue { .. })
        ));
    }
    check(&UsageSource::ALL, UsageSource::as_str);
    check(&PricingStatus::ALL, PricingStatus::as_str);
    check(&Outcome::ALL, Outcome::as_str);
    assert_eq!(PricingStatus::NotApplicable.as_str(), "not_applicable");
    assert_eq!(Outcome::ClientCancelled.as_str(), "client_cancelled");
}

#[test]
fn record_json_round_trips_with_cost_as_a_string() {
    let record = full("a");
    let value = serde_json::to_value(&record).unwrap();
    assert_eq!(value["cost_usd"], json!("0.170595"));
    assert_eq!(value["usage_source"], json!("reported"));
    let back: UsageRecord = serde_json::from_value(value).unwrap();
    assert_eq!(back, record);
}

mod sqlite_sink;

// Regression: a record without cheaper alternatives (`null` audit costs) did not decode
// from its JSON, so the PostgreSQL ledger could not read it back.
#[test]
fn records_round_trip_through_json_with_and_without_audit_costs() {
    for r in [full("f"), bare("b")] {
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<UsageRecord>(&text).unwrap(), r);
    }
    let text = serde_json::to_string(&full("f")).unwrap();
    assert!(
        text.contains(r#""cheapest_allowed_cost_usd":"0.00012""#),
        "{text}"
    );
}
