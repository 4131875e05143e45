//! The price audit end to end: token drift against a fake upstream that over-reports,
//! the savings report, what-if repricing of a real ledger, and importing public catalogs
//! (LiteLLM, genai-prices) then pricing a request from each.

#![expect(
    clippy::unwrap_used,
    reason = "the request helpers below are test code; a failure should fail the test"
)]

mod common;

use std::path::Path;
use std::str::FromStr;

use common::*;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tollgate::tokens::estimate::{count_chat_prompt, count_text, TokenizerKind};

fn answer_with_usage(content: &str, prompt: u64, completion: u64) -> String {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    })
    .to_string()
}

/// `config` with every request's tokens audited (`[metering] audit_sample_rate`).
fn sampled(config: &str, rate: f64) -> String {
    format!("{config}\n[metering]\naudit_sample_rate = {rate:?}\n")
}

async fn admin_get(gw: &Gateway, path: &str) -> String {
    Gateway::client()
        .get(format!("{}{path}", gw.admin_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_provider_over_reporting_by_20_percent_shows_in_the_metric_and_the_report() {
    let body = chat_body("m");
    let kind = TokenizerKind::for_model("gpt-4o");
    let counted_in = count_chat_prompt(kind, &body["messages"]);
    // Pad the answer until the counted total divides by 5, so 1.2x is a whole number.
    let mut content = "The answer is forty-two.".to_owned();
    while !(counted_in + count_text(kind, &content)).is_multiple_of(5) {
        content.push_str(" ok");
    }
    let counted_out = count_text(kind, &content);
    let reported_total = (counted_in + counted_out) * 6 / 5;
    let reported_in = counted_in * 6 / 5;
    let reported_out = reported_total - reported_in;
    let fake = FakeUpstream::start(Reply::json(answer_with_usage(
        &content,
        reported_in,
        reported_out,
    )))
    .await;
    let config = one_offer_config(
        "openai",
        &fake.base_url,
        "",
        "US",
        "m",
        "gpt-4o",
        Some("openai/o1"),
    )
    .replace("\"p1\"", "\"drifty\"");
    let mut gw = start_gateway(&sampled(&config, 1.0)).await;
    assert_eq!(gw.chat(body).await.status(), 200);
    let rows = gw.ledger_rows().await;
    assert_eq!(rows[0]["counted_input_tokens"], counted_in);
    assert_eq!(rows[0]["counted_output_tokens"], counted_out);
    assert_eq!(rows[0]["input_tokens"], reported_in);
    assert_eq!(rows[0]["output_verifiable"], 1);

    let metrics = admin_get(&gw, "/metrics").await;
    assert!(
        metrics.contains("tollgate_usage_drift_ratio{provider=\"drifty\"} 1.2"),
        "{metrics}"
    );
    let report: Value = serde_json::from_str(&admin_get(&gw, "/admin/savings").await).unwrap();
    let drift = &report["drift"][0];
    assert_eq!(drift["provider"], "drifty");
    assert_eq!(drift["drift_ratio"], "1.2");
    assert_eq!(drift["reported_tokens"], reported_total);
    gw.stop().await;
}

const EU_KEY: &str = "tg-eu-only";

fn demo_with_eu_key() -> String {
    format!(
        "{}\n[[keys]]\nname = \"eu\"\nhash = \"{}\"\nresidency = {{ allow_jurisdictions = [\"EU\"] }}\n[mock]\nlatency = \"1ms\"\nchunk_interval = \"1ms\"\n",
        demo_config().replace("[mock]\nlatency = \"250ms\"\nchunk_interval = \"15ms\"\n", ""),
        tollgate::auth::hash_key(EU_KEY)
    )
}

fn dec(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap()).unwrap()
}

/// One rule for `to` on every admin endpoint (`tollgate::instant`): a bare date includes
/// that whole day, an RFC 3339 instant is exclusive. Regression: `/admin/savings?to=D`
/// used to stop at D's midnight while `/admin/usage?to=D` included day D.
#[tokio::test]
async fn usage_and_savings_read_to_by_the_same_rule() {
    let at = chrono::DateTime::parse_from_rfc3339("2026-08-01T12:00:00Z")
        .unwrap()
        .to_utc();
    let gw = start_gateway_at(&demo_with_eu_key(), Some(at)).await;
    let resp = Gateway::client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(KEY)
        .json(&chat_body("deepseek-r1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // (window, whether the request at 2026-08-01T12:00:00Z is inside it)
    let windows = [
        ("from=2026-08-01&to=2026-08-01", true),
        ("from=2026-07-31&to=2026-08-01", true),
        ("from=2026-07-31&to=2026-07-31", false),
        ("from=2026-08-01T00:00:00Z&to=2026-08-01T12:00:00Z", false),
        ("from=2026-08-01T00:00:00Z&to=2026-08-01T13:00:00Z", true),
        ("from=2026-08-01T12:00:00Z&to=2026-08-02", true),
    ];
    for (window, inside) in windows {
        let usage: Value =
            serde_json::from_str(&admin_get(&gw, &format!("/admin/usage?{window}")).await).unwrap();
        assert_eq!(
            usage["totals"]["requests"],
            json!(u64::from(inside)),
            "usage {window}: {usage}"
        );
        let savings: Value =
            serde_json::from_str(&admin_get(&gw, &format!("/admin/savings?{window}")).await)
                .unwrap();
        let models = savings["models"].as_array().unwrap();
        assert_eq!(!models.is_empty(), inside, "savings {window}: {savings}");
        if inside {
            assert_eq!(savings["to"], usage["to"], "{window}");
        }
    }
}

#[tokio::test]
async fn savings_show_the_cheaper_allowed_offer_and_the_residency_premium() {
    let at = chrono::DateTime::parse_from_rfc3339("2026-08-01T12:00:00Z")
        .unwrap()
        .to_utc();
    let mut gw = start_gateway_at(&demo_with_eu_key(), Some(at)).await;
    for key in [KEY, EU_KEY] {
        let resp = Gateway::client()
            .post(format!("{}/v1/chat/completions", gw.url))
            .bearer_auth(key)
            .json(&chat_body("deepseek-r1"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let rows = gw.ledger_rows().await;
    let (demo, eu) = (&rows[0], &rows[1]);
    // Both were served by Azure (priority order). The demo key could have used GitHub's free
    // tier; the EU key could not, so its whole cost is residency premium.
    for r in [demo, eu] {
        assert_eq!(r["provider"], "azure-swedencentral");
        assert_eq!(r["cheapest_any_cost_usd"], "0");
        assert_eq!(
            r["cheapest_any_offer"],
            "github-models/deepseek/DeepSeek-R1/free"
        );
    }
    assert_eq!(demo["cheapest_allowed_cost_usd"], "0");
    assert_eq!(eu["cheapest_allowed_cost_usd"], eu["cost_usd"]);
    assert_eq!(eu["cheapest_allowed_offer"], "azure-ai-foundry/DeepSeek-R1");

    let report: Value =
        serde_json::from_str(&admin_get(&gw, "/admin/savings?from=2026-08-01&to=2026-08-02").await)
            .unwrap();
    let row = &report["models"][0];
    assert_eq!(
        (&row["group"], &row["model"]),
        (&"reasoning".into(), &"deepseek-r1".into())
    );
    let (spend_demo, spend_eu) = (dec(&demo["cost_usd"]), dec(&eu["cost_usd"]));
    assert_eq!(dec(&row["spend_usd"]), spend_demo + spend_eu);
    assert_eq!(dec(&row["potential_saving_usd"]), spend_demo);
    assert_eq!(dec(&row["residency_premium_usd"]), spend_eu);
    let empty: Value =
        serde_json::from_str(&admin_get(&gw, "/admin/savings?from=2026-09-01").await).unwrap();
    assert_eq!(empty["models"], json!([]));

    // What-if: the same traffic on the offer that served it reproduces the recorded cost
    // exactly; on o1 it is the sum of per-record repricing.
    let ledger = gw.ledger_path.clone();
    let prices = tollgate::catalog::PriceBook::load(&gw.dir.path().join("prices.toml")).unwrap();
    let opts = |target: &str| tollgate::pricing::commands::RepriceOptions {
        ledger: tollgate::ledger::LedgerStore::Sqlite(ledger.clone()),
        filter: tollgate::ledger::filter::Filter::default(),
        target: target.into(),
    };
    let same =
        tollgate::pricing::commands::reprice(&prices, None, &opts("azure-ai-foundry/DeepSeek-R1"))
            .await
            .unwrap();
    let total = same.lines().find(|l| l.starts_with("total")).unwrap();
    let cells: Vec<&str> = total.split_whitespace().collect();
    assert_eq!(
        cells[2],
        (spend_demo + spend_eu).normalize().to_string(),
        "{same}"
    );
    assert_eq!(cells[3], cells[2]);
    assert_eq!(cells[4], "0");

    // The expected figure by hand, from config/prices.toml's `openai/o1/2024-12-17` row
    // (input $15, output $60 per million tokens; reasoning is inside output). Each
    // record is the mock's answer: 13 input tokens, none cached, 327 output tokens.
    //   13 × 15 / 1e6 = 0.000195;  327 × 60 / 1e6 = 0.01962;  one record: 0.019815
    //   two records: 0.03963
    for r in [demo, eu] {
        assert_eq!(
            (
                &r["input_tokens"],
                &r["cached_input_tokens"],
                &r["output_tokens"]
            ),
            (&json!(13), &Value::Null, &json!(327)),
            "the arithmetic below assumes these counts"
        );
    }
    let on_o1 = Decimal::from_str("0.03963").unwrap();
    let records =
        tollgate::ledger::sqlite::scan::fold(&ledger, &Default::default(), Vec::new(), |all, r| {
            all.push(r)
        })
        .unwrap();
    let target = tollgate::pricing::reprice::Target::Offer("openai/o1".into());
    for r in &records {
        let one = tollgate::pricing::reprice::reprice_record(&prices, &target, r);
        assert_eq!(one, Some(Decimal::from_str("0.019815").unwrap()));
    }
    let lines = tollgate::pricing::reprice::reprice(&prices, &target, &records);
    let line = lines.values().next().unwrap();
    assert_eq!((lines.len(), line.requests), (1, 2));
    assert_eq!(line.repriced, on_o1);
    assert_eq!(line.recorded, spend_demo + spend_eu);

    // The built binary, by model name, says where the comparison is approximate.
    let config_path = gw.dir.path().join("tollgate.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["reprice", "--config", config_path.to_str().unwrap()])
        .args([
            "--ledger",
            ledger.to_str().unwrap(),
            "--from",
            "2026-08-01",
            "--to",
            "2026-08-02",
            "--as",
            "o1",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("deepseek-r1") && text.contains("2026-08-01"),
        "{text}"
    );
    assert!(text.contains("0.03963"), "{text}");
    assert!(text.contains("tokenizer"), "{text}");
    gw.stop().await;
}

fn import(format: &str, fixture: &str, into: &Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["prices", "import", "--format", format])
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/catalogs")
                .join(fixture),
        )
        .args([
            "--into",
            into.to_str().unwrap(),
            "--as-of",
            "2026-11-01",
            "--effective-from",
            "2025-01-01",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn cost_with(catalog: &Path, offer: &str) -> (String, Vec<Value>) {
    let fake = FakeUpstream::start(Reply::json(answer_with_usage("Hi", 100, 200))).await;
    let config = format!(
        "{}\n[pricing]\ncatalog = {:?}\n",
        one_offer_config(
            "openai_compatible",
            &fake.base_url,
            "",
            "US",
            "m",
            "deepseek-r1",
            Some(offer)
        ),
        catalog.display().to_string()
    );
    let mut gw = start_gateway(&config).await;
    let resp = gw.chat(chat_body("m")).await;
    let cost = resp.headers()["x-tollgate-cost-usd"]
        .to_str()
        .unwrap()
        .to_owned();
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    (cost, rows)
}

#[tokio::test]
async fn imported_litellm_and_genai_prices_rows_price_requests_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("prices.toml");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/config/prices.toml"),
        &catalog,
    )
    .unwrap();
    let own = std::fs::read_to_string(&catalog).unwrap();

    let summary = import("litellm", "model_prices_and_context_window.json", &catalog);
    // o1 and deepseek-reasoner are already in tollgate's catalog: its own rows win.
    assert!(
        summary.contains("1 rows added") && summary.contains("2 kept"),
        "{summary}"
    );
    let summary = import("genai-prices", "genai-prices-data.json", &catalog);
    // Its long-context entry ({ base, tiers }) imports as a row with a tier.
    assert!(
        summary.contains("2 rows added") && summary.contains("0 entries skipped"),
        "{summary}"
    );
    let merged = std::fs::read_to_string(&catalog).unwrap();
    assert!(
        merged.starts_with(&own),
        "own rows and comments are kept as they were"
    );
    assert!(merged.contains("source = \"model_prices_and_context_window.json together_ai/deepseek-ai/DeepSeek-R1 (litellm)\""));
    assert!(merged.contains("as_of = \"2026-11-01\""));

    // LiteLLM 3e-06 and 7e-06 per token: 100·3 + 200·7 = 1700 per 1M.
    let (cost, rows) = cost_with(&catalog, "together_ai/deepseek-ai/DeepSeek-R1").await;
    assert_eq!(cost, "0.0017");
    assert_eq!(
        rows[0]["price_id"],
        "together_ai/deepseek-ai/DeepSeek-R1/2025-01-01-litellm"
    );
    // genai-prices 3 and 8 per 1M: 100·3 + 200·8 = 1900.
    let (cost, _) = cost_with(&catalog, "fireworks/deepseek-r1").await;
    assert_eq!(cost, "0.0019");
}

#[tokio::test]
async fn hidden_reasoning_is_unverifiable_and_streams_are_counted_too() {
    // o1 bills 2241 reasoning tokens it never shows: only output minus reasoning is checkable.
    let fake = FakeUpstream::start(Reply::json(fixture("openai/chat_o1.json"))).await;
    let config = one_offer_config(
        "openai",
        &fake.base_url,
        "",
        "US",
        "m",
        "o1",
        Some("openai/o1"),
    );
    let mut gw = start_gateway(&sampled(&config, 1.0)).await;
    assert_eq!(gw.chat(chat_body("m")).await.status(), 200);
    let rows = gw.ledger_rows().await;
    assert_eq!(rows[0]["output_verifiable"], 0);
    assert_eq!(rows[0]["reasoning_tokens"], 2241);
    let visible = count_text(TokenizerKind::O200kBase, "The answer is 42.");
    assert_eq!(rows[0]["counted_output_tokens"], visible);
    gw.stop().await;

    let fake = FakeUpstream::start(Reply::sse_events(&fixture("openai/chat_stream.sse"))).await;
    let config = one_offer_config(
        "openai",
        &fake.base_url,
        "",
        "US",
        "m",
        "gpt-4o",
        Some("openai/o1"),
    );
    let mut gw = start_gateway(&sampled(&config, 1.0)).await;
    let mut body = chat_body("m");
    body["stream"] = true.into();
    let _ = sse_data(gw.chat(body).await).await;
    let rows = gw.ledger_rows().await;
    assert_eq!(rows[0]["usage_source"], "reported");
    assert_eq!(
        rows[0]["counted_output_tokens"],
        count_text(TokenizerKind::O200kBase, "Hi there")
    );
    assert_eq!(rows[0]["output_verifiable"], 1);
    gw.stop().await;
}

#[tokio::test]
async fn sampling_at_zero_leaves_counted_fields_null_and_at_one_fills_them() {
    let body = chat_body("m");
    let counted_in = count_chat_prompt(TokenizerKind::O200kBase, &body["messages"]);
    let fake = FakeUpstream::start(Reply::json(answer_with_usage("Hello there.", 40, 3))).await;
    let config = one_offer_config(
        "openai",
        &fake.base_url,
        "",
        "US",
        "m",
        "gpt-4o",
        Some("openai/o1"),
    );
    for (rate, expected_in) in [(0.0, Value::Null), (1.0, json!(counted_in))] {
        let mut gw = start_gateway(&sampled(&config, rate)).await;
        for _ in 0..3 {
            assert_eq!(gw.chat(chat_body("m")).await.status(), 200);
        }
        let rows = gw.ledger_rows().await;
        assert_eq!(rows.len(), 3);
        for row in &rows {
            assert_eq!(row["usage_source"], "reported", "rate {rate}");
            assert_eq!(row["input_tokens"], 40, "the bill is the provider's");
            assert_eq!(row["counted_input_tokens"], expected_in, "rate {rate}");
            let expected_out = if rate > 0.0 {
                json!(count_text(TokenizerKind::O200kBase, "Hello there."))
            } else {
                Value::Null
            };
            assert_eq!(row["counted_output_tokens"], expected_out, "rate {rate}");
        }
        // Drift comes from audited records only: none at rate 0. (The gauge is process-wide
        // and shared with other tests here; the savings report reads this gateway's ledger.)
        let report: Value = serde_json::from_str(&admin_get(&gw, "/admin/savings").await).unwrap();
        let providers: Vec<&Value> = report["drift"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| &d["provider"])
            .collect();
        let expected: Vec<&str> = if rate > 0.0 { vec!["p1"] } else { vec![] };
        assert_eq!(providers, expected, "rate {rate}: {report}");
        gw.stop().await;
    }
}

#[tokio::test]
async fn requests_without_provider_usage_are_always_counted_and_billed_from_the_count() {
    let answer = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there."}, "finish_reason": "stop"}]
    });
    let fake = FakeUpstream::start(Reply::json(answer.to_string())).await;
    let config = one_offer_config(
        "openai",
        &fake.base_url,
        "",
        "US",
        "m",
        "gpt-4o",
        Some("openai/o1"),
    );
    let mut gw = start_gateway(&sampled(&config, 0.0)).await;
    let body = chat_body("m");
    let counted_in = count_chat_prompt(TokenizerKind::O200kBase, &body["messages"]);
    assert_eq!(gw.chat(body).await.status(), 200);
    let rows = gw.ledger_rows().await;
    assert_eq!(rows[0]["usage_source"], "estimated");
    assert_eq!(rows[0]["input_tokens"], counted_in);
    assert_eq!(rows[0]["counted_input_tokens"], counted_in);
    assert_eq!(
        rows[0]["output_tokens"],
        count_text(TokenizerKind::O200kBase, "Hello there.")
    );
    gw.stop().await;
}
