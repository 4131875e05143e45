//! Bad input and upstream failures: each the documented OpenAI-shaped error with its
//! code and status, failover before the first byte, and the ledger keeping every
//! record (including the ones before the bad request).

mod common;

use common::*;
use serde_json::json;

const TWO_OFFERS: &str = r#"
[[keys]]
name = "demo"
hash = "HASH"

[[keys]]
name = "other"
hash = "sha256:0000000000000000000000000000000000000000000000000000000000000001"
models = ["solo"]

[[providers]]
id = "first"
kind = "deepseek"
base_url = "FIRST"
api_key = "env:FIRST_KEY"
region = "deepseek:cn"
jurisdiction = "CN"
scope = "regional"

[[providers]]
id = "second"
kind = "openai_compatible"
base_url = "SECOND"
api_key = "env:SECOND_KEY"
region = "together:us"
jurisdiction = "US"
scope = "regional"

[[models]]
name = "m"
offers = [
  { provider = "first", upstream_model = "deepseek-reasoner" },
  { provider = "second", upstream_model = "deepseek-ai/DeepSeek-R1", price = "together/deepseek-ai/DeepSeek-R1" },
]

[[models]]
name = "solo"
offers = [{ provider = "first", upstream_model = "deepseek-reasoner" }]
"#;

async fn two_offer_gateway(first: &FakeUpstream, second: &FakeUpstream) -> Gateway {
    let config = TWO_OFFERS
        .replace("HASH", KEY_HASH)
        .replace("FIRST", &first.base_url)
        .replace("SECOND", &second.base_url);
    start_gateway(&config).await
}

#[tokio::test]
async fn bad_requests_get_documented_errors_and_the_ledger_stays_intact() {
    let ok = FakeUpstream::start(Reply::json(fixture("github_models/chat_r1.json"))).await;
    let mut gw = two_offer_gateway(&ok, &ok).await;
    let good = gw.chat(chat_body("m")).await;
    assert_eq!(good.status(), 200);
    let good_id = good.headers()["x-tollgate-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let client = Gateway::client();
    let url = format!("{}/v1/chat/completions", gw.url);
    let post = |body: Vec<u8>, key: &str| {
        client
            .post(&url)
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    let cases: Vec<(reqwest::Response, u16, &str)> = vec![
        (
            post(b"{\"model\": ".to_vec(), KEY).await.unwrap(),
            400,
            "invalid_request",
        ),
        (
            post(
                br#"{"messages":[{"role":"user","content":"hi"}]}"#.to_vec(),
                KEY,
            )
            .await
            .unwrap(),
            400,
            "invalid_request",
        ),
        (
            post(
                serde_json::to_vec(&chat_body("no-such-model")).unwrap(),
                KEY,
            )
            .await
            .unwrap(),
            404,
            "model_not_found",
        ),
        (
            post(serde_json::to_vec(&chat_body("m")).unwrap(), "tg-wrong")
                .await
                .unwrap(),
            401,
            "invalid_api_key",
        ),
        (
            post(vec![b' '; 5 * 1024 * 1024], KEY).await.unwrap(),
            413,
            "request_too_large",
        ),
    ];
    for (resp, status, code) in cases {
        assert!(resp.headers().contains_key("x-tollgate-request-id"));
        let (got, body) = error_of(resp).await;
        assert_eq!(
            (got, body["error"]["code"].as_str().unwrap()),
            (status, code),
            "{body}"
        );
        assert!(
            body["error"]["message"].as_str().unwrap().len() > 20,
            "messages say what to do: {body}"
        );
        assert!(body["error"]["type"].is_string());
    }
    let missing = error_of(
        post(
            br#"{"messages":[{"role":"user","content":"hi"}]}"#.to_vec(),
            KEY,
        )
        .await
        .unwrap(),
    )
    .await
    .1;
    assert_eq!(missing["error"]["param"], "model");
    let unknown = error_of(
        post(
            serde_json::to_vec(&chat_body("no-such-model")).unwrap(),
            KEY,
        )
        .await
        .unwrap(),
    )
    .await
    .1;
    assert!(
        unknown["error"]["message"]
            .as_str()
            .unwrap()
            .contains("solo"),
        "names the models the key may use"
    );

    let rows = gw.ledger_rows().await;
    assert_eq!(rows.len(), 8, "one record per request, failures included");
    let first = rows
        .iter()
        .find(|r| r["request_id"] == good_id.as_str())
        .unwrap();
    assert_eq!(first["status"], 200);
    assert!(rows.iter().any(|r| r["error_code"] == "request_too_large"));
    // Secrets never reach the ledger.
    let all = serde_json::to_string(&rows).unwrap();
    assert!(!all.contains("secret-FIRST_KEY") && !all.contains(KEY));
    gw.stop().await;
}

#[tokio::test]
async fn a_5xx_before_the_first_byte_fails_over_to_the_next_offer() {
    let first = FakeUpstream::start(Reply::error(
        500,
        fixture("deepseek/error_500.json"),
        vec![],
    ))
    .await;
    let second = FakeUpstream::start(Reply::json(fixture("github_models/chat_r1.json"))).await;
    let mut gw = two_offer_gateway(&first, &second).await;
    let resp = gw.chat(chat_body("m")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-provider"], "second");
    assert_eq!(resp.headers()["x-tollgate-jurisdiction"], "US");
    assert_eq!((first.count(), second.count()), (1, 1));
    let rows = gw.ledger_rows().await;
    assert_eq!(rows[0]["attempts"], 2);
    assert_eq!(rows[0]["provider"], "second");
    gw.stop().await;
}

#[tokio::test]
async fn a_429_on_the_last_offer_is_rate_limited_with_retry_after() {
    let first = FakeUpstream::start(Reply::error(
        429,
        fixture("github_models/error_429.json"),
        vec![("retry-after", "5631".into())],
    ))
    .await;
    let mut gw = two_offer_gateway(&first, &first).await;
    let resp = Gateway::client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(KEY)
        .json(&chat_body("solo"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    // GitHub Models' daily quota asks for 5631 s; `upstream.max_retry_after` (default
    // 1 h) bounds what any upstream can ask.
    assert_eq!(resp.headers()["retry-after"], "3600");
    let (_, body) = error_of(resp).await;
    assert_eq!(body["error"]["code"], "rate_limited");
    let rows = gw.ledger_rows().await;
    assert_eq!(rows[0]["error_code"], "rate_limited");
    assert_eq!(rows[0]["outcome"], "rejected");
    gw.stop().await;
}

#[tokio::test]
async fn an_upstream_that_never_answers_times_out_with_504() {
    let hang = FakeUpstream::start(Reply::Hang).await;
    let mut gw = two_offer_gateway(&hang, &hang).await;
    let resp = Gateway::client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(KEY)
        .json(&chat_body("solo"))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(resp).await;
    assert_eq!(
        (status, body["error"]["code"].as_str().unwrap()),
        (504, "upstream_timeout")
    );
    gw.stop().await;
}

#[tokio::test]
async fn an_upstream_400_is_the_clients_error_and_is_not_retried() {
    let first = FakeUpstream::start(Reply::error(
        400,
        fixture("openai/error_400_max_tokens.json"),
        vec![],
    ))
    .await;
    let second = FakeUpstream::start(Reply::json(fixture("github_models/chat_r1.json"))).await;
    let mut gw = two_offer_gateway(&first, &second).await;
    let (status, body) = error_of(gw.chat(chat_body("m")).await).await;
    assert_eq!(
        (status, body["error"]["code"].as_str().unwrap()),
        (400, "invalid_request")
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_completion_tokens"));
    assert_eq!(second.count(), 0);
    gw.stop().await;
}

#[tokio::test]
async fn residency_header_narrows_offers_and_refuses_with_403_before_any_upstream() {
    let first = FakeUpstream::start(Reply::json(fixture("github_models/chat_r1.json"))).await;
    let second = FakeUpstream::start(Reply::json(fixture("github_models/chat_r1.json"))).await;
    let mut gw = two_offer_gateway(&first, &second).await;
    let client = Gateway::client();
    let url = format!("{}/v1/chat/completions", gw.url);
    let resp = client
        .post(&url)
        .bearer_auth(KEY)
        .header("x-tollgate-residency", "US")
        .json(&chat_body("m"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-jurisdiction"], "US");
    assert_eq!(first.count(), 0, "the CN offer was excluded");
    let resp = client
        .post(&url)
        .bearer_auth(KEY)
        .header("x-tollgate-residency", "EU")
        .json(&chat_body("m"))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(resp).await;
    assert_eq!(
        (status, body["error"]["code"].as_str().unwrap()),
        (403, "residency_violation")
    );
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("CN, US") && msg.contains("EU"), "{msg}");
    assert_eq!((first.count(), second.count()), (0, 1));
    let rows = gw.ledger_rows().await;
    assert_eq!(rows[1]["error_code"], "residency_violation");
    gw.stop().await;
}

#[tokio::test]
async fn unknown_request_fields_pass_through_untouched() {
    let fake = FakeUpstream::start(Reply::json(fixture("github_models/chat_r1.json"))).await;
    let mut gw = two_offer_gateway(&fake, &fake).await;
    let mut body = chat_body("solo");
    body["x_vendor_option"] = json!({"nested": [1, 2, 3]});
    body["temperature"] = json!(0.25);
    assert_eq!(gw.chat(body).await.status(), 200);
    let sent = &fake.received()[0].body;
    assert_eq!(sent["x_vendor_option"], json!({"nested": [1, 2, 3]}));
    assert_eq!(sent["temperature"], json!(0.25));
    gw.stop().await;
}

#[test]
fn check_config_reports_unknown_keys_and_invalid_values_together_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/prices.toml");
    std::fs::copy(catalog, dir.path().join("prices.toml")).unwrap();
    let config = one_offer_config(
        "openai",
        "http://127.0.0.1:9",
        "regoin = \"typo\"",
        "China",
        "o1",
        "o1",
        None,
    );
    let path = dir.path().join("tollgate.toml");
    std::fs::write(&path, config).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("check-config")
        .arg(&path)
        .env("P1_KEY", "set")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("providers[0].regoin: unknown key"),
        "{stderr}"
    );
    assert!(stderr.contains("providers[0].jurisdiction"), "{stderr}");
}
