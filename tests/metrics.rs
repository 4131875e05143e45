//! `/metrics` against what was sent: traffic through fake providers in two
//! jurisdictions, then the scrape parsed with a Prometheus text parser and every
//! counter compared with the ledger. The `metrics` recorder is process-wide, so this
//! file holds a single test and owns every series it reads.

#![expect(
    clippy::panic,
    clippy::unwrap_used,
    reason = "the helpers below are test code; a failure should fail the test"
)]

mod common;

use std::collections::BTreeMap;
use std::str::FromStr;

use common::*;
use prometheus_parse::{Sample, Scrape, Value as PromValue};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::json;

fn config(eu: &str, us: &str) -> String {
    format!(
        r#"
[[keys]]
name = "demo"
hash = "{KEY_HASH}"

[[providers]]
id = "p-eu"
kind = "openai"
base_url = "{eu}"
api_key = "env:P_KEY"
region = "test:eu-1"
jurisdiction = "EU"
scope = "regional"

[[providers]]
id = "p-us"
kind = "openai"
base_url = "{us}"
api_key = "env:P_KEY"
region = "test:us-1"
jurisdiction = "US"
scope = "global"

[[models]]
name = "reasoner"
offers = [{{ provider = "p-eu", upstream_model = "o1", price = "openai/o1" }}]

[[models]]
name = "fast"
offers = [{{ provider = "p-us", upstream_model = "gpt-4o", price = "openai/gpt-4o" }}]

[[models]]
name = "house"
offers = [{{ provider = "p-us", upstream_model = "house-model" }}]
"#
    )
}

fn value(s: &Sample) -> f64 {
    match &s.value {
        PromValue::Counter(v) | PromValue::Gauge(v) | PromValue::Untyped(v) => *v,
        other => panic!("{} is not a scalar: {other:?}", s.metric),
    }
}

/// Sum of `metric` per value of `label` (only samples where `filter` matches).
fn sum_by(
    scrape: &Scrape,
    metric: &str,
    label: &str,
    filter: &[(&str, &str)],
) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for s in scrape.samples.iter().filter(|s| s.metric == metric) {
        if filter.iter().all(|(k, v)| s.labels.get(k) == Some(*v)) {
            *out.entry(s.labels.get(label).unwrap_or("").to_owned())
                .or_insert(0.0) += value(s);
        }
    }
    out
}

fn histogram_count(scrape: &Scrape, metric: &str) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .map(|s| match &s.value {
            PromValue::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            other => panic!("{metric} is not a histogram: {other:?}"),
        })
        .sum()
}

#[tokio::test]
async fn metrics_equal_the_traffic_sent() {
    let eu = FakeUpstream::start(Reply::json(fixture("openai/chat_o1.json"))).await;
    let us = FakeUpstream::start(Reply::json(fixture("openai/chat_o1.json"))).await;
    us.push(Reply::sse_events(&fixture("openai/chat_stream.sse")));
    // No usage in the answer: tollgate counts it itself (`estimated`).
    eu.push(Reply::json(
        json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "o1",
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "Seven thousand, give or take."}}]})
        .to_string(),
    ));
    let mut gw = start_gateway(&config(&eu.base_url, &us.base_url)).await;
    let stream = json!({"model": "fast", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Stream it."}]});
    let resp = gw.chat(stream).await;
    assert_eq!(resp.status(), 200);
    sse_data(resp).await;
    for model in ["reasoner", "reasoner", "reasoner", "fast", "house"] {
        assert_eq!(gw.chat(chat_body(model)).await.status(), 200, "{model}");
    }
    let denied = Gateway::client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(KEY)
        .header("x-tollgate-residency", "CN")
        .json(&chat_body("reasoner"))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);

    let rows = gw.ledger_rows().await;
    assert_eq!(rows.len(), 7);
    let text = Gateway::client()
        .get(format!("{}/metrics", gw.admin_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("# TYPE tollgate_cost_usd_total counter"),
        "{text}"
    );
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();

    // Expected, from the ledger: per jurisdiction requests and tokens, per provider cost.
    let mut requests: BTreeMap<String, f64> = BTreeMap::new();
    let mut input: BTreeMap<String, f64> = BTreeMap::new();
    let mut output: BTreeMap<String, f64> = BTreeMap::new();
    let mut cost: BTreeMap<String, Decimal> = BTreeMap::new();
    for r in &rows {
        let j = r["jurisdiction"].as_str().unwrap_or("none").to_owned();
        *requests.entry(j.clone()).or_default() += 1.0;
        if let Some(n) = r["input_tokens"].as_u64() {
            *input.entry(j.clone()).or_default() += n as f64;
        }
        if let Some(n) = r["output_tokens"].as_u64() {
            *output.entry(j.clone()).or_default() += n as f64;
        }
        if let Some(c) = r["cost_usd"].as_str() {
            *cost
                .entry(r["provider"].as_str().unwrap().to_owned())
                .or_default() += Decimal::from_str(c).unwrap();
        }
    }
    assert_eq!(
        sum_by(&scrape, "tollgate_requests_total", "jurisdiction", &[]),
        requests
    );
    assert_eq!(
        sum_by(
            &scrape,
            "tollgate_tokens_total",
            "jurisdiction",
            &[("type", "input")]
        ),
        input
    );
    assert_eq!(
        sum_by(
            &scrape,
            "tollgate_tokens_total",
            "jurisdiction",
            &[("type", "output")]
        ),
        output
    );
    let scraped_cost = sum_by(&scrape, "tollgate_cost_usd_total", "provider", &[]);
    assert_eq!(
        scraped_cost.keys().collect::<Vec<_>>(),
        cost.keys().collect::<Vec<_>>()
    );
    for (provider, exact) in &cost {
        let exact = exact.to_f64().unwrap();
        assert!(
            (scraped_cost[provider] - exact).abs() < 1e-12,
            "{provider}: {} vs {exact}",
            scraped_cost[provider]
        );
    }
    let status = sum_by(&scrape, "tollgate_requests_total", "status", &[]);
    assert_eq!(
        status,
        BTreeMap::from([("2xx".to_owned(), 6.0), ("4xx".to_owned(), 1.0)])
    );
    assert_eq!(
        sum_by(&scrape, "tollgate_policy_denials_total", "reason", &[]),
        BTreeMap::from([("not_requested".to_owned(), 1.0)])
    );
    assert_eq!(
        sum_by(&scrape, "tollgate_unpriced_requests_total", "model", &[]),
        BTreeMap::from([("house".to_owned(), 1.0)])
    );
    assert_eq!(
        sum_by(&scrape, "tollgate_estimated_requests_total", "model", &[]),
        BTreeMap::from([("reasoner".to_owned(), 1.0)])
    );
    assert_eq!(
        histogram_count(&scrape, "tollgate_request_duration_seconds"),
        7.0
    );
    assert_eq!(
        histogram_count(&scrape, "tollgate_time_to_first_byte_seconds"),
        6.0
    );
    // One overhead sample per request a provider answered in full.
    assert_eq!(histogram_count(&scrape, "tollgate_overhead_seconds"), 6.0);
    assert_eq!(
        histogram_count(&scrape, "gen_ai_client_operation_duration"),
        7.0
    );
    assert_eq!(
        histogram_count(&scrape, "gen_ai_client_token_usage"),
        12.0,
        "input and output of 6 answers"
    );
    assert_eq!(
        sum_by(&scrape, "tollgate_ledger_dropped_total", "", &[])
            .values()
            .sum::<f64>(),
        0.0
    );
    assert!(scrape
        .samples
        .iter()
        .any(|s| s.metric == "tollgate_ledger_queue_depth"));
    for s in &scrape.samples {
        for (k, _) in s.labels.iter() {
            assert!(
                !["key", "request_id", "key_name"].contains(&k.as_str()),
                "{} has label {k}",
                s.metric
            );
        }
    }
    deploy_files_name_only_exposed_metrics(&scrape);
    gw.stop().await;
}

/// The Grafana dashboard and the alert rules must not query a series that does not exist.
fn deploy_files_name_only_exposed_metrics(scrape: &Scrape) {
    let exposed: Vec<&str> = scrape.samples.iter().map(|s| s.metric.as_str()).collect();
    for file in [
        "deploy/grafana/tollgate.json",
        "deploy/prometheus/alerts.yml",
    ] {
        let text =
            std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
                .unwrap();
        let words = text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
        let mut named = 0;
        for word in words.filter(|w| w.starts_with("tollgate_") || w.starts_with("gen_ai_client_"))
        {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .fold(word, |w, s| w.strip_suffix(s).unwrap_or(w));
            assert!(
                exposed.contains(&base),
                "{file} queries {word}, which /metrics does not expose"
            );
            named += 1;
        }
        assert!(named > 5, "{file}");
    }
}
