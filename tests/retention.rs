//! `ledger.retention` on a SQLite ledger file, through a running gateway: records past
//! the retention are deleted in the background at start while the gateway keeps serving
//! (and recording) requests; newer records stay.

#![expect(
    clippy::unwrap_used,
    reason = "test code: a failed step fails the test"
)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use chrono::Utc;
use common::*;
use tollgate::ledger::sqlite::SqliteSink;
use tollgate::ledger::{LedgerSink, Outcome, PricingStatus, UsageRecord, UsageSource};

fn record(id: String, created_at: chrono::DateTime<Utc>) -> UsageRecord {
    UsageRecord {
        request_id: id,
        created_at,
        key_name: "demo".into(),
        team: None,
        route: "chat_completions".into(),
        logical_model: Some("o1".into()),
        provider: Some("p1".into()),
        upstream_model: Some("o1".into()),
        region: Some("test:region-1".into()),
        jurisdiction: Some("US".into()),
        processing_scope: Some("regional".into()),
        stream: false,
        input_tokens: Some(100),
        cached_input_tokens: Some(0),
        cache_write_tokens: Some(0),
        cache_write_1h_tokens: None,
        output_tokens: Some(20),
        reasoning_tokens: Some(0),
        usage_source: UsageSource::Reported,
        cost_usd: None,
        price_id: None,
        pricing: PricingStatus::Unpriced,
        latency_ms: 900,
        ttfb_ms: Some(300),
        status: 200,
        outcome: Outcome::Completed,
        error_code: None,
        attempts: 1,
        policy: tollgate::ledger::PolicyJson::default(),
        audit: tollgate::ledger::PriceAudit::default(),
    }
}

fn stored_ids(path: &Path) -> BTreeSet<String> {
    read_ledger(path)
        .into_iter()
        .map(|r| r["request_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_gateway_keeps_serving_while_retention_deletes_old_records() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.db");
    let sink = SqliteSink::open(&ledger).unwrap();
    let now = Utc::now();
    // 40,000 records from 100 days ago (eight delete batches) and 20 from yesterday.
    for chunk in 0..8 {
        let old: Vec<UsageRecord> = (0..5_000)
            .map(|i| {
                let n = chunk * 5_000 + i;
                record(
                    format!("old-{n}"),
                    now - chrono::Duration::days(100) + chrono::Duration::seconds(n),
                )
            })
            .collect();
        sink.write_batch(&old).await.unwrap();
    }
    let recent: Vec<UsageRecord> = (0..20)
        .map(|i| record(format!("recent-{i}"), now - chrono::Duration::hours(24 + i)))
        .collect();
    sink.write_batch(&recent).await.unwrap();
    drop(sink);

    let fake = FakeUpstream::start(Reply::json(fixture("openai/chat_o1.json"))).await;
    let config = format!(
        "[ledger]\npath = {:?}\nretention = \"90d\"\nflush_interval = \"20ms\"\n{}",
        ledger.display().to_string(),
        one_offer_config("openai", &fake.base_url, "", "US", "o1", "o1", None)
    );
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/config/prices.toml"),
        dir.path().join("prices.toml"),
    )
    .unwrap();
    let path = dir.path().join("tollgate.toml");
    std::fs::write(&path, config).unwrap();
    let raw = tollgate::config::load(&path, vec![]).unwrap();
    let settings =
        tollgate::config::validate(raw, dir.path(), &|n| Some(format!("secret-{n}"))).unwrap();
    let app = tollgate::build_app(settings).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/v1/chat/completions",
        listener.local_addr().unwrap()
    );
    let router = app.router();
    tokio::spawn(async move { axum::serve(listener, router).await });

    let retention = app.retention().expect("ledger.retention is set");
    retention.wait_for(|p| p.batches >= 1).await;
    // Requests answered (and recorded) while the deleting is still going on.
    let mut answered = BTreeSet::new();
    let mut during = 0;
    while retention.progress().sweeps == 0 && answered.len() < 500 {
        let resp = Gateway::client()
            .post(&url)
            .bearer_auth(KEY)
            .json(&chat_body("o1"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let id = resp.headers()["x-tollgate-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        app.state().ledger.flush().await.unwrap();
        answered.insert(id);
        if retention.progress().sweeps == 0 {
            during += 1;
        }
    }
    let done = retention.wait_for(|p| p.sweeps >= 1).await;
    assert!(during >= 1, "no request was answered while deleting");
    assert_eq!(done.deleted, 40_000);
    let metrics = tollgate::telemetry::metrics::render(app.state().metrics.as_ref().unwrap());
    assert!(
        metrics.contains("tollgate_ledger_retention_deleted_total 40000\n"),
        "{metrics}"
    );
    assert!(metrics.contains("tollgate_ledger_retention_last_success_timestamp_seconds "));

    app.shutdown().await.unwrap();
    let expected: BTreeSet<String> = recent
        .iter()
        .map(|r| r.request_id.clone())
        .chain(answered)
        .collect();
    assert_eq!(stored_ids(&ledger), expected);
}

#[tokio::test]
async fn a_retention_under_an_hour_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/config/prices.toml"),
        dir.path().join("prices.toml"),
    )
    .unwrap();
    let path = dir.path().join("tollgate.toml");
    std::fs::write(&path, "[ledger]\nretention = \"30m\"\n").unwrap();
    let raw = tollgate::config::load(&path, vec![]).unwrap();
    let err = tollgate::config::validate(raw, dir.path(), &|_| None).unwrap_err();
    assert!(
        err.problems
            .iter()
            .any(|p| p.starts_with("ledger.retention: 30m is too short")),
        "{err}"
    );
}
