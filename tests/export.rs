//! `GET /admin/export`: a ledger holding several pages of records is exported whole,
//! every record exactly once, as CSV a spreadsheet (the `csv` crate) parses, with the
//! columns of `/admin/requests?format=csv`; the key filter applies; bad parameters get
//! the JSON error shape before anything is streamed.

#![expect(
    clippy::unwrap_used,
    reason = "test code: a failed step fails the test"
)]

mod common;

use std::collections::BTreeMap;

use chrono::Utc;
use common::*;
use rust_decimal::Decimal;
use tollgate::ledger::sqlite::SqliteSink;
use tollgate::ledger::{LedgerSink, Outcome, PricingStatus, UsageRecord, UsageSource};

/// 3,500 records: three and a half export pages.
const RECORDS: i64 = 3_500;

fn record(i: i64) -> UsageRecord {
    let now = Utc::now();
    UsageRecord {
        request_id: format!("seeded-{i:05}"),
        // Three records per millisecond, so pages split inside a millisecond.
        created_at: now - chrono::Duration::days(3) + chrono::Duration::milliseconds(i / 3),
        // A name with a comma and quotes: quoted in the CSV, read back as it was.
        key_name: if i % 2 == 0 {
            "team \"a\", inc".into()
        } else {
            "team-b".into()
        },
        team: None,
        route: "chat_completions".into(),
        logical_model: Some("o1".into()),
        provider: Some("p1".into()),
        upstream_model: Some("o1".into()),
        region: Some("test:region-1".into()),
        jurisdiction: Some("US".into()),
        processing_scope: Some("regional".into()),
        stream: i % 3 == 0,
        input_tokens: Some(100 + u64::try_from(i).unwrap()),
        cached_input_tokens: Some(0),
        cache_write_tokens: Some(0),
        cache_write_1h_tokens: None,
        output_tokens: Some(20),
        reasoning_tokens: None,
        usage_source: UsageSource::Reported,
        cost_usd: Some(Decimal::new(i * 7 + 1, 9)),
        price_id: Some("openai/o1@2024-12-17".into()),
        pricing: PricingStatus::Priced,
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

async fn seeded_gateway() -> (Gateway, FakeUpstream) {
    let fake = FakeUpstream::start(Reply::json(fixture("openai/chat_o1.json"))).await;
    let gw = start_gateway(&one_offer_config(
        "openai",
        &fake.base_url,
        "",
        "US",
        "o1",
        "o1",
        None,
    ))
    .await;
    // Beside the gateway's own writer, as another process would (WAL).
    let sink = SqliteSink::open(&gw.ledger_path).unwrap();
    let records: Vec<UsageRecord> = (0..RECORDS).map(record).collect();
    sink.write_batch(&records).await.unwrap();
    (gw, fake)
}

/// The export's rows by request id, after checking the header.
fn parse(text: &str) -> (Vec<String>, Vec<csv::StringRecord>) {
    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader.records().map(Result::unwrap).collect();
    (header, rows)
}

#[tokio::test]
async fn export_streams_every_record_once_as_csv() {
    let (gw, _fake) = seeded_gateway().await;
    // One request through the gateway: the export flushes the queue first.
    let resp = gw.chat(chat_body("o1")).await;
    assert_eq!(resp.status(), 200);
    let live_id = resp.headers()["x-tollgate-request-id"]
        .to_str()
        .unwrap()
        .to_owned();

    let resp = Gateway::client()
        .get(format!("{}/admin/export?from=2000-01-01", gw.admin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    let disposition = resp.headers()["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"tollgate-requests-20000101T000000Z-"),
        "{disposition}"
    );
    let text = resp.text().await.unwrap();
    let (header, rows) = parse(&text);

    // The same columns as /admin/requests?format=csv.
    let page = Gateway::client()
        .get(format!(
            "{}/admin/requests?from=2000-01-01&limit=1&format=csv",
            gw.admin_url
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(header, parse(&page).0);

    let id_col = header.iter().position(|h| h == "request_id").unwrap();
    let key_col = header.iter().position(|h| h == "key_name").unwrap();
    let cost_col = header.iter().position(|h| h == "cost_usd").unwrap();
    let mut seen: BTreeMap<String, csv::StringRecord> = BTreeMap::new();
    for row in rows {
        let id = row.get(id_col).unwrap().to_owned();
        assert!(
            seen.insert(id.clone(), row).is_none(),
            "{id} exported twice"
        );
    }
    assert_eq!(seen.len(), usize::try_from(RECORDS).unwrap() + 1);
    assert!(
        seen.contains_key(&live_id),
        "the request just served is in it"
    );
    for i in [0, 1, 1_000, 1_001, 3_499] {
        let expected = record(i);
        let row = &seen[&expected.request_id];
        assert_eq!(row.get(key_col).unwrap(), expected.key_name);
        assert_eq!(
            row.get(cost_col).unwrap(),
            expected.cost_usd.unwrap().to_string()
        );
    }
}

#[tokio::test]
async fn export_filters_by_key_and_refuses_bad_parameters_as_json() {
    let (gw, _fake) = seeded_gateway().await;
    let text = Gateway::client()
        .get(format!(
            "{}/admin/export?from=2000-01-01&key=team-b",
            gw.admin_url
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (header, rows) = parse(&text);
    let key_col = header.iter().position(|h| h == "key_name").unwrap();
    assert_eq!(rows.len(), usize::try_from(RECORDS / 2).unwrap());
    assert!(rows.iter().all(|r| r.get(key_col) == Some("team-b")));

    // An empty window is the header alone.
    let text = Gateway::client()
        .get(format!(
            "{}/admin/export?from=2001-01-01&to=2001-01-02",
            gw.admin_url
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(parse(&text), (header, vec![]));

    for (query, param) in [("from=yesterday", "from"), ("limit=5", "")] {
        let resp = Gateway::client()
            .get(format!("{}/admin/export?{query}", gw.admin_url))
            .send()
            .await
            .unwrap();
        let (status, body) = error_of(resp).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], "invalid_request", "{body}");
        if !param.is_empty() {
            assert_eq!(body["error"]["param"], param, "{body}");
        }
    }
}
