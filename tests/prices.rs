//! Price comparison end to end: `GET /v1/tollgate/prices` (ordering, exact decimal costs,
//! comparison groups, policy flags, window and date-range edges, bad parameters) and the
//! `tollgate prices` command of the built binary.

#![expect(
    clippy::unwrap_used,
    reason = "the request helpers below are test code; a failure should fail the test"
)]

mod common;

use common::*;
use serde_json::Value;

const EU_KEY: &str = "tg-eu-only";

/// The demo config (mock providers in EU, US and CN; group reasoning = deepseek-r1 + o1)
/// plus an EU-only key.
fn config() -> String {
    format!(
        "{}\n[[keys]]\nname = \"eu\"\nhash = \"{}\"\nresidency = {{ allow_jurisdictions = [\"EU\"] }}\n",
        demo_config(),
        tollgate::auth::hash_key(EU_KEY)
    )
}

async fn ask(gw: &Gateway, key: &str, query: &str) -> (u16, Value) {
    let resp = Gateway::client()
        .get(format!("{}/v1/tollgate/prices?{query}", gw.url))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

fn column(body: &Value, field: &str) -> Vec<Value> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q[field].clone())
        .collect()
}

const USAGE: &str = "input_tokens=1000&cached_tokens=200&output_tokens=3000&reasoning_tokens=2000";

#[tokio::test]
async fn offers_of_the_model_and_its_group_are_priced_exactly_cheapest_first() {
    let mut gw = start_gateway(&config()).await;
    let (status, body) = ask(
        &gw,
        KEY,
        &format!("model=deepseek-r1&{USAGE}&at=2026-08-01T17:00:00Z"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["comparison_groups"], serde_json::json!(["reasoning"]));
    // github free: 0; azure: 1000·1.35 + 3000·5.40 = 17550 µ$/1M; o1 (group): 800·15 + 200·7.5
    // + 3000·60 = 193500; deepseek-flash has no row before 2026-08-16T16:00Z: unpriced, last.
    assert_eq!(
        column(&body, "cost_usd"),
        ["0", "0.01755", "0.1935", "null"].map(|c| if c == "null" {
            Value::Null
        } else {
            c.into()
        })
    );
    assert_eq!(
        column(&body, "provider"),
        ["github-models", "azure-swedencentral", "openai", "deepseek"].map(Value::from)
    );
    assert_eq!(column(&body, "model")[2], "o1");
    let azure = &body["data"][1];
    assert_eq!(azure["price_id"], "azure-ai-foundry/DeepSeek-R1/2025-03-01");
    assert_eq!(azure["jurisdiction"], "EU");
    assert_eq!(azure["processing_scope"], "datazone");
    assert!(azure["as_of"].as_str().is_some());
    assert_eq!(column(&body, "allowed"), [true; 4].map(Value::from));
    gw.stop().await;
}

#[tokio::test]
async fn an_eu_only_key_sees_which_offers_its_policy_excludes_and_why() {
    let mut gw = start_gateway(&config()).await;
    let (_, body) = ask(
        &gw,
        EU_KEY,
        &format!("model=o1&{USAGE}&at=2026-08-01T17:00:00Z"),
    )
    .await;
    // o1's group brings R1's offers in; only the EU one is allowed.
    let allowed: Vec<(Value, Value, Value)> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            (
                q["provider"].clone(),
                q["allowed"].clone(),
                q["excluded_reason"].clone(),
            )
        })
        .collect();
    assert_eq!(
        allowed,
        [
            ("github-models", false, "jurisdiction_not_allowed"),
            ("azure-swedencentral", true, ""),
            ("openai", false, "jurisdiction_not_allowed"),
            ("deepseek", false, "jurisdiction_not_allowed"),
        ]
        .map(|(p, a, r)| (
            Value::from(p),
            Value::from(a),
            if r.is_empty() { Value::Null } else { r.into() }
        ))
    );
    gw.stop().await;
}

#[tokio::test]
async fn off_peak_and_date_range_edges_are_priced_by_the_row_in_force() {
    let mut gw = start_gateway(&config()).await;
    let million = "input_tokens=1000000&output_tokens=1000000";
    // deepseek-flash: from 2026-08-16T16:00Z; peak weekdays 01:00-04:00 and 06:00-10:00 UTC at
    // 0.30 + 1.20, other hours 0.15 + 0.60.
    let cases = [
        ("2026-08-16T15:59:59Z", Value::Null),
        ("2026-08-16T16:00:00Z", "0.75".into()),
        ("2026-08-17T00:59:59Z", "0.75".into()),
        ("2026-08-17T01:00:00Z", "1.5".into()),
        ("2026-08-17T03:59:59Z", "1.5".into()),
        ("2026-08-17T04:00:00Z", "0.75".into()),
        ("2026-08-22T01:00:00Z", "0.75".into()), // Saturday: no peak
    ];
    for (at, expected) in cases {
        let (status, body) =
            ask(&gw, KEY, &format!("model=deepseek-flash&{million}&at={at}")).await;
        assert_eq!(status, 200);
        assert_eq!(body["data"][0]["cost_usd"], expected, "at {at}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn bad_parameters_are_invalid_request_in_openai_shape() {
    let mut gw = start_gateway(&config()).await;
    for (query, param) in [
        ("input_tokens=5", "model"),
        ("model=o1&input_tokens=lots", "input_tokens"),
        ("model=o1&input_tokens=1&cached_tokens=2", "cached_tokens"),
        ("model=o1&at=tomorrow", "at"),
    ] {
        let (status, body) = ask(&gw, KEY, query).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(body["error"]["code"], "invalid_request");
        assert_eq!(body["error"]["param"], param);
        assert!(body["error"]["message"].as_str().is_some());
    }
    let (status, body) = ask(&gw, "not-a-key", "model=o1").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (401, &"invalid_api_key".into())
    );
    let (status, _) = ask(&gw, KEY, "model=nope").await;
    assert_eq!(status, 404);
    gw.stop().await;
}

#[test]
fn the_prices_command_prints_the_same_table() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/config/prices.toml"),
        dir.path().join("prices.toml"),
    )
    .unwrap();
    let path = dir.path().join("tollgate.toml");
    std::fs::write(&path, config()).unwrap();
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args([
                "prices",
                "--config",
                path.to_str().unwrap(),
                "--model",
                "deepseek-r1",
            ])
            .args([
                "--input",
                "1000",
                "--cached",
                "200",
                "--output",
                "3000",
                "--reasoning",
                "2000",
            ])
            .args(["--at", "2026-08-01T17:00:00Z"])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let table = run(&["--key", "eu"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[1].starts_with("cost_usd"), "{table}");
    assert!(lines[2].starts_with("0 ") && lines[2].contains("no (jurisdiction_not_allowed)"));
    assert!(lines[3].starts_with("0.01755") && lines[3].ends_with("yes"));
    assert!(lines[4].starts_with("0.1935") && lines[4].contains("openai/o1"));
    assert!(lines[5].starts_with("unpriced"));
    let json: Value = serde_json::from_str(&run(&["--format", "json"])).unwrap();
    assert_eq!(json["data"][1]["cost_usd"], "0.01755");
    assert_eq!(json["data"][2]["price_id"], "openai/o1/2024-12-17");
}
