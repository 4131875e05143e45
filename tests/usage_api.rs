//! The admin listener's usage API and `tollgate report`, end to end: traffic through
//! fake providers on two days (a clock the test moves), then every total checked
//! against the sum of the ledger's rows (exact decimals), for several group-bys and
//! windows, JSON and CSV, plus the admin key rule and bad parameters.

#![expect(
    clippy::unwrap_used,
    reason = "the helpers below are test code; a failure should fail the test"
)]

mod common;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use common::*;
use rust_decimal::Decimal;
use serde_json::{json, Value};

const BATCH_KEY: &str = "tg-batch-key";

fn config(admin: bool) -> String {
    let batch_hash = tollgate::auth::hash_key(BATCH_KEY);
    let admin = if admin {
        "[admin]\napi_key = \"env:ADMIN\"\n"
    } else {
        ""
    };
    format!(
        r#"{admin}
[[keys]]
name = "demo"
hash = "{KEY_HASH}"

[[keys]]
name = "batch"
hash = "{batch_hash}"

[[providers]]
id = "p-eu"
kind = "openai"
base_url = "BASE"
api_key = "env:P_KEY"
region = "test:eu-1"
jurisdiction = "EU"
scope = "regional"

[[providers]]
id = "p-us"
kind = "openai"
base_url = "BASE"
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

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, hour, 30, 0).unwrap()
}

/// A gateway whose ledger holds traffic on 2026-11-26 and 2026-11-27.
async fn gateway_with_traffic(admin: bool) -> (Gateway, FakeUpstream) {
    let fake = FakeUpstream::start(Reply::json(fixture("openai/chat_o1.json"))).await;
    let now = Arc::new(AtomicI64::new(at(26, 10).timestamp_millis()));
    let clock_now = now.clone();
    let clock: tollgate::server::Clock = Arc::new(move || {
        DateTime::from_timestamp_millis(clock_now.load(Ordering::Relaxed)).unwrap()
    });
    let text = config(admin).replace("BASE", &fake.base_url);
    let gw = start_gateway_with_clock(&text, Some(clock)).await;
    // (day, hour, key, model, residency header)
    let plan = [
        (26, 10, KEY, "reasoner", None),
        (26, 10, KEY, "fast", None),
        (26, 14, BATCH_KEY, "fast", None),
        (26, 14, KEY, "house", None),
        (27, 9, KEY, "reasoner", None),
        (27, 9, BATCH_KEY, "reasoner", None),
        (27, 23, KEY, "nope", None),
        (27, 23, KEY, "reasoner", Some("US")),
    ];
    for (day, hour, key, model, residency) in plan {
        now.store(at(day, hour).timestamp_millis(), Ordering::Relaxed);
        let mut req = Gateway::client()
            .post(format!("{}/v1/chat/completions", gw.url))
            .bearer_auth(key)
            .json(&chat_body(model));
        if let Some(r) = residency {
            req = req.header("x-tollgate-residency", r);
        }
        req.send().await.unwrap().bytes().await.unwrap();
    }
    (gw, fake)
}

async fn admin_get(gw: &Gateway, path: &str, key: Option<&str>) -> reqwest::Response {
    let mut req = Gateway::client().get(format!("{}{path}", gw.admin_url));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req.send().await.unwrap()
}

fn dim(row: &Value, g: &str) -> String {
    let text = |c: &str| row[c].as_str().map_or("null".to_owned(), str::to_owned);
    match g {
        "key" => text("key_name"),
        "model" => text("logical_model"),
        "day" => text("created_at")[..10].to_owned(),
        "hour" => format!("{}:00:00Z", &text("created_at")[..13]),
        other => text(other),
    }
}

/// requests, errors, input, output, cost: summed from ledger rows in [from, to).
type Expected = BTreeMap<Vec<String>, (u64, u64, u64, u64, Decimal)>;

fn expected(rows: &[Value], group_by: &[&str], from: i64, to: i64) -> Expected {
    let mut out = Expected::new();
    for r in rows {
        let t = r["created_at_ms"].as_i64().unwrap();
        if t < from || t >= to {
            continue;
        }
        let key = group_by.iter().map(|g| dim(r, g)).collect();
        let e = out.entry(key).or_default();
        e.0 += 1;
        e.1 += u64::from(r["status"].as_u64().unwrap() >= 400);
        e.2 += r["input_tokens"].as_u64().unwrap_or(0);
        e.3 += r["output_tokens"].as_u64().unwrap_or(0);
        e.4 += r["cost_usd"]
            .as_str()
            .map_or(Decimal::ZERO, |c| Decimal::from_str(c).unwrap());
    }
    out
}

fn from_api(body: &Value, group_by: &[&str]) -> Expected {
    let mut out = Expected::new();
    for g in body["groups"].as_array().unwrap() {
        let key = group_by
            .iter()
            .map(|d| {
                g["group"][d]
                    .as_str()
                    .map_or("null".to_owned(), str::to_owned)
            })
            .collect();
        let cost = Decimal::from_str(g["cost_usd"].as_str().unwrap()).unwrap();
        let n = |f: &str| g[f].as_u64().unwrap();
        out.insert(
            key,
            (
                n("requests"),
                n("errors"),
                n("input_tokens"),
                n("output_tokens"),
                cost,
            ),
        );
    }
    out
}

#[tokio::test]
async fn usage_totals_equal_the_ledger_for_every_grouping_and_window() {
    let (mut gw, _fake) = gateway_with_traffic(false).await;
    let rows = gw.ledger_rows().await;
    assert_eq!(rows.len(), 8);
    let day = |d: u32| {
        Utc.with_ymd_and_hms(2026, 11, d, 0, 0, 0)
            .unwrap()
            .timestamp_millis()
    };
    let windows = [
        ("from=2026-11-26&to=2026-11-27", day(26), day(28)),
        ("from=2026-11-27&to=2026-11-27", day(27), day(28)),
        (
            "from=2026-11-26T12:00:00Z&to=2026-11-27T12:00:00Z",
            day(26) + 12 * 3_600_000,
            day(27) + 12 * 3_600_000,
        ),
    ];
    let groupings = [
        "",
        "provider",
        "model",
        "key",
        "jurisdiction",
        "day",
        "hour",
        "provider,day",
        "key,model,jurisdiction",
    ];
    for (query, from, to) in windows {
        for grouping in groupings {
            let group_by: Vec<&str> = grouping.split(',').filter(|s| !s.is_empty()).collect();
            let resp = admin_get(
                &gw,
                &format!("/admin/usage?{query}&group_by={grouping}"),
                None,
            )
            .await;
            assert_eq!(resp.status(), 200, "{query} {grouping}");
            let body: Value = resp.json().await.unwrap();
            let want = expected(&rows, &group_by, from, to);
            assert_eq!(
                from_api(&body, &group_by),
                want,
                "{query} group_by={grouping}"
            );
            let total: Decimal = want.values().map(|v| v.4).sum();
            assert_eq!(
                Decimal::from_str(body["totals"]["cost_usd"].as_str().unwrap()).unwrap(),
                total
            );
            assert_eq!(
                body["totals"]["requests"],
                want.values().map(|v| v.0).sum::<u64>()
            );

            let csv = admin_get(
                &gw,
                &format!("/admin/usage?{query}&group_by={grouping}&format=csv"),
                None,
            )
            .await;
            assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
            let text = csv.text().await.unwrap();
            let mut lines = text.lines();
            let header: Vec<&str> = lines.next().unwrap().split(',').collect();
            let col = header.iter().position(|h| *h == "cost_usd").unwrap();
            let csv_total: Decimal = lines
                .map(|l| Decimal::from_str(l.split(',').nth(col).unwrap()).unwrap())
                .sum();
            assert_eq!(csv_total, total, "csv {query} {grouping}");
        }
    }
    // The JSON shape the dashboard relies on.
    let body: Value = admin_get(
        &gw,
        "/admin/usage?from=2026-11-26&to=2026-11-27&group_by=provider,day",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let g = &body["groups"][0];
    for field in [
        "requests",
        "errors",
        "input_tokens",
        "cached_input_tokens",
        "cache_write_tokens",
        "output_tokens",
        "reasoning_tokens",
        "cost_usd",
        "estimated_requests",
        "unpriced_requests",
        "estimated_share",
        "latency_ms",
        "ttfb_ms",
    ] {
        assert!(
            g.get(field).is_some() && body["totals"].get(field).is_some(),
            "{field}"
        );
    }
    assert_eq!(body["group_by"], json!(["provider", "day"]));
    assert_eq!(body["from"], "2026-11-26T00:00:00Z");
    assert_eq!(body["to"], "2026-11-28T00:00:00Z");
    assert_eq!(
        body["totals"]["unpriced_requests"], 1,
        "the house model has no price"
    );
    assert_eq!(
        body["totals"]["errors"], 2,
        "unknown model and residency refusal"
    );
    gw.stop().await;
}

#[tokio::test]
async fn report_cli_prints_the_same_numbers_as_the_api() {
    let (mut gw, _fake) = gateway_with_traffic(false).await;
    let api: Value = admin_get(
        &gw,
        "/admin/usage?from=2026-11-26&to=2026-11-27&group_by=jurisdiction,day",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    gw.stop().await;
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .arg("report")
            .args([
                "--from",
                "2026-11-26",
                "--to",
                "2026-11-27",
                "--group-by",
                "jurisdiction,day",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let ledger = gw.ledger_path.display().to_string();
    let json: Value =
        serde_json::from_str(&run(&["--ledger", &ledger, "--format", "json"])).unwrap();
    assert_eq!(json, api);
    let csv = run(&["--ledger", &ledger, "--format", "csv"]);
    assert_eq!(
        csv.lines().count(),
        api["groups"].as_array().unwrap().len() + 1
    );
    let table = run(&[
        "--config",
        &gw.dir.path().join("tollgate.toml").display().to_string(),
    ]);
    let total = api["totals"]["cost_usd"].as_str().unwrap();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("TOTAL") && l.contains(total)),
        "{table}"
    );

    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["report", "--ledger", &ledger, "--group-by", "region"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("group_by"));
}

#[tokio::test]
async fn requests_pages_through_every_record_once() {
    let (mut gw, _fake) = gateway_with_traffic(false).await;
    let rows = gw.ledger_rows().await;
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: Value = admin_get(
            &gw,
            &format!("/admin/requests?from=2026-11-26&to=2026-11-27&limit=3&cursor={cursor}"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
        for r in page["requests"].as_array().unwrap() {
            seen.push(r["request_id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    let mut want: Vec<String> = rows
        .iter()
        .map(|r| r["request_id"].as_str().unwrap().to_owned())
        .collect();
    want.sort();
    seen.sort();
    assert_eq!(seen, want);
    let csv = admin_get(
        &gw,
        "/admin/requests?from=2026-11-26&to=2026-11-27&key=batch&format=csv",
        None,
    )
    .await
    .text()
    .await
    .unwrap();
    assert_eq!(
        csv.lines().count(),
        1 + 2,
        "header and the batch key's two records:\n{csv}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn bad_parameters_answer_400_naming_the_parameter() {
    let (mut gw, _fake) = gateway_with_traffic(false).await;
    for (query, param) in [
        ("group_by=region", "group_by"),
        ("group_by=day,hour", "group_by"),
        ("from=yesterday", "from"),
        ("from=2026-11-27&to=2026-11-26", "from"),
        ("format=xml", "format"),
    ] {
        let (status, body) =
            error_of(admin_get(&gw, &format!("/admin/usage?{query}"), None).await).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{query}"
        );
        assert_eq!(body["error"]["param"], param, "{query}");
    }
    let (status, body) = error_of(admin_get(&gw, "/admin/usage?frm=2026-11-26", None).await).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("frm"),
        "{body}"
    );
    let (status, body) = error_of(admin_get(&gw, "/admin/requests?limit=5000", None).await).await;
    assert_eq!(
        (status, body["error"]["param"].as_str()),
        (400, Some("limit"))
    );
    gw.stop().await;
}

#[tokio::test]
async fn admin_key_guards_data_and_app_keys_are_always_refused() {
    let (mut guarded, _fake) = gateway_with_traffic(true).await;
    for path in ["/metrics", "/admin/usage", "/admin/requests"] {
        for key in [None, Some(KEY), Some("wrong")] {
            let (status, body) = error_of(admin_get(&guarded, path, key).await).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (401, Some("invalid_api_key")),
                "{path} {key:?}"
            );
        }
        assert_eq!(
            admin_get(&guarded, path, Some("secret-ADMIN"))
                .await
                .status(),
            200,
            "{path}"
        );
    }
    for path in ["/healthz", "/readyz", "/dashboard", "/dashboard/app.js"] {
        assert_eq!(
            admin_get(&guarded, path, None).await.status(),
            200,
            "{path}"
        );
    }
    guarded.stop().await;

    let (mut open, _fake) = gateway_with_traffic(false).await;
    assert_eq!(admin_get(&open, "/admin/usage", None).await.status(), 200);
    let (status, body) = error_of(admin_get(&open, "/admin/usage", Some(KEY)).await).await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("app keys"),
        "{body}"
    );
    open.stop().await;
}
