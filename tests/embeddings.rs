//! `POST /v1/embeddings` and the Azure deployment path, end to end: fake upstreams in
//! each provider's embeddings wire format (OpenAI's documented answer: `data[].embedding`,
//! `usage.prompt_tokens`/`total_tokens`), checking the URL and auth header each real
//! service expects; exact cost from the catalog, by hand; base64 vectors relayed as
//! sent; residency on failover; the ledger record; and what is refused.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers below fail the test loudly"
)]

mod common;

use common::*;
use serde_json::{json, Value};

/// The OpenAI API reference's example input (8 tokens for text-embedding-3-*).
const INPUT: &str = "The food was delicious and the waiter...";

async fn embed(gw: &Gateway, body: Value) -> reqwest::Response {
    Gateway::client()
        .post(format!("{}/v1/embeddings", gw.url))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// One provider of `kind` at `fake`, one embeddings model `emb` priced at `price`.
fn embeddings_config(
    kind: &str,
    fake: &FakeUpstream,
    extra: &str,
    upstream: &str,
    price: &str,
) -> String {
    one_offer_config(
        kind,
        &fake.base_url,
        extra,
        "US",
        "emb",
        upstream,
        Some(price),
    )
    .replace(
        "name = \"emb\"\n",
        "name = \"emb\"\nkind = \"embeddings\"\n",
    )
}

#[tokio::test]
async fn openai_embeddings_are_priced_exactly_headed_and_recorded() {
    let fake = FakeUpstream::start(Reply::json(fixture("openai/embeddings.json"))).await;
    let config = embeddings_config(
        "openai",
        &fake,
        "",
        "text-embedding-3-small",
        "openai/text-embedding-3-small",
    );
    let mut gw = start_gateway(&config).await;
    let resp = embed(
        &gw,
        json!({"model": "emb", "input": INPUT, "encoding_format": "float", "user": "u-1", "x_custom": {"a": 1}}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    let answer: Value = resp.json().await.unwrap();
    // 8 input tokens at $0.02 per 1M: 8 × 0.02 / 1,000,000 = 0.00000016; no output.
    assert_eq!(h["x-tollgate-cost-usd"], "0.00000016");
    assert_eq!(h["x-tollgate-input-tokens"], "8");
    assert_eq!(h["x-tollgate-output-tokens"], "0");
    assert_eq!(h["x-tollgate-usage-source"], "reported");
    assert_eq!(h["x-tollgate-provider"], "p1");
    assert_eq!(h["x-tollgate-region"], "test:region-1");
    assert_eq!(h["x-tollgate-jurisdiction"], "US");
    let t = &answer["tollgate"];
    assert_eq!(t["cost_usd"], "0.00000016");
    assert_eq!(t["price_id"], "openai/text-embedding-3-small/2024-01-25");
    assert_eq!(t["usage"]["input_tokens"], 8);
    assert_eq!(t["usage"]["output_tokens"], 0);
    assert_eq!(
        t["request_id"],
        h["x-tollgate-request-id"].to_str().unwrap()
    );
    // The upstream's answer reaches the client as sent.
    assert_eq!(answer["data"][0]["embedding"][1], json!(-0.009327292));
    assert_eq!(
        answer["usage"],
        json!({"prompt_tokens": 8, "total_tokens": 8})
    );

    // What OpenAI receives: its path, Bearer auth, the upstream model, the rest as sent.
    let got = fake.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path_and_query, "/embeddings");
    assert_eq!(got[0].headers["authorization"], "Bearer secret-P1_KEY");
    assert_eq!(
        got[0].body,
        json!({"model": "text-embedding-3-small", "input": INPUT, "encoding_format": "float", "user": "u-1", "x_custom": {"a": 1}})
    );

    let rows = gw.ledger_rows().await;
    gw.stop().await;
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r["route"], "embeddings");
    assert_eq!(r["logical_model"], "emb");
    assert_eq!(r["provider"], "p1");
    assert_eq!(r["upstream_model"], "text-embedding-3-small");
    assert_eq!(r["jurisdiction"], "US");
    assert_eq!(r["region"], "test:region-1");
    assert_eq!(r["input_tokens"], 8);
    assert_eq!(r["output_tokens"], 0);
    assert_eq!(r["cost_usd"], "0.00000016");
    assert_eq!(r["usage_source"], "reported");
    assert_eq!(r["status"], 200);
    assert_eq!(r["stream"], 0);
}

#[tokio::test]
async fn base64_vectors_pass_through_byte_for_byte() {
    let fixture_text = fixture("openai/embeddings_base64.json");
    let fake = FakeUpstream::start(Reply::json(fixture_text.clone())).await;
    let config = embeddings_config(
        "openai",
        &fake,
        "",
        "text-embedding-3-large",
        "openai/text-embedding-3-large",
    );
    let mut gw = start_gateway(&config).await;
    let resp = embed(
        &gw,
        json!({"model": "emb", "input": [INPUT], "encoding_format": "base64", "dimensions": 4}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    // 8 × 0.13 / 1,000,000 = 0.00000104.
    assert_eq!(resp.headers()["x-tollgate-cost-usd"], "0.00000104");
    let text = resp.text().await.unwrap();
    // The upstream's bytes, up to its closing brace, are the client's: nothing re-encoded.
    let upstream = fixture_text.trim_end();
    let head = upstream.strip_suffix('}').unwrap().trim_end();
    assert!(text.starts_with(head), "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["data"][0]["embedding"], "ZicXO4DRGLxwaYE84t7+uw==");
    let sent = &fake.received()[0].body;
    assert_eq!(sent["encoding_format"], "base64");
    assert_eq!(sent["dimensions"], 4);
    gw.stop().await;
}

#[tokio::test]
async fn the_azure_route_reaches_azure_openai_and_foundry_in_their_own_shapes() {
    // Azure OpenAI: the deployment in the path, api-version, the api-key header.
    let azure = FakeUpstream::start(Reply::json(fixture("openai/embeddings.json"))).await;
    let config = embeddings_config(
        "azure_openai",
        &azure,
        "api_version = \"2024-10-21\"",
        "emb-deployment",
        "openai/text-embedding-3-small",
    );
    let mut gw = start_gateway(&config).await;
    let resp = Gateway::client()
        .post(format!(
            "{}/openai/deployments/emb/embeddings?api-version=2024-06-01",
            gw.url
        ))
        .header("api-key", KEY)
        .json(&json!({"input": INPUT}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-cost-usd"], "0.00000016");
    let got = azure.received();
    assert_eq!(
        got[0].path_and_query,
        "/openai/deployments/emb-deployment/embeddings?api-version=2024-10-21"
    );
    assert_eq!(got[0].headers["api-key"], "secret-P1_KEY");
    assert!(got[0].headers.get("authorization").is_none());
    let rows = gw.ledger_rows().await;
    assert_eq!(rows[0]["route"], "azure_embeddings");
    assert_eq!(rows[0]["cost_usd"], "0.00000016");
    gw.stop().await;

    // Azure AI Foundry: `{base}/embeddings?api-version=...`, the model in the body.
    let foundry =
        FakeUpstream::start(Reply::json(fixture("azure_ai_inference/embeddings.json"))).await;
    let config = embeddings_config(
        "azure_ai_inference",
        &foundry,
        "api_version = \"2024-05-01-preview\"",
        "text-embedding-3-small",
        "openai/text-embedding-3-small",
    );
    let mut gw = start_gateway(&config).await;
    let resp = embed(&gw, json!({"model": "emb", "input": INPUT})).await;
    assert_eq!(resp.status(), 200);
    let got = foundry.received();
    assert_eq!(
        got[0].path_and_query,
        "/embeddings?api-version=2024-05-01-preview"
    );
    assert_eq!(got[0].headers["api-key"], "secret-P1_KEY");
    assert_eq!(got[0].headers["extra-parameters"], "pass-through");
    assert_eq!(got[0].body["model"], "text-embedding-3-small");
    gw.stop().await;
}

#[tokio::test]
async fn github_models_and_openai_compatible_hosts_get_their_paths_and_bearer() {
    for (kind, upstream_model) in [
        ("github_models", "openai/text-embedding-3-small"),
        ("openai_compatible", "BAAI/bge-base-en-v1.5"),
    ] {
        let fake = FakeUpstream::start(Reply::json(fixture("openai/embeddings.json"))).await;
        let config = embeddings_config(
            kind,
            &fake,
            "",
            upstream_model,
            "openai/text-embedding-3-small",
        );
        let mut gw = start_gateway(&config).await;
        let resp = embed(
            &gw,
            json!({"model": "emb", "input": [[1, 2, 3, 4, 5, 6, 7, 8]]}),
        )
        .await;
        assert_eq!(resp.status(), 200, "{kind}");
        let got = fake.received();
        assert_eq!(got[0].path_and_query, "/embeddings", "{kind}");
        assert_eq!(got[0].headers["authorization"], "Bearer secret-P1_KEY");
        assert_eq!(got[0].body["model"], upstream_model);
        assert_eq!(got[0].body["input"], json!([[1, 2, 3, 4, 5, 6, 7, 8]]));
        if kind == "github_models" {
            assert_eq!(got[0].headers["x-github-api-version"], "2022-11-28");
        }
        gw.stop().await;
    }
}

#[tokio::test]
async fn an_eu_key_fails_over_between_eu_offers_and_never_reaches_the_us_one() {
    let ok = || Reply::json(fixture("openai/embeddings.json"));
    let eu1 = FakeUpstream::start(Reply::error(
        500,
        r#"{"error":{"message":"boom","type":"server_error"}}"#,
        vec![],
    ))
    .await;
    let us = FakeUpstream::start(ok()).await;
    let eu2 = FakeUpstream::start(ok()).await;
    let provider = |id: &str, url: &str, j: &str| {
        format!(
            "[[providers]]\nid = \"{id}\"\nkind = \"openai\"\nbase_url = \"{url}\"\napi_key = \"env:K\"\nregion = \"r-{id}\"\njurisdiction = \"{j}\"\nscope = \"regional\"\n"
        )
    };
    let config = format!(
        r#"
[[keys]]
name = "eu-only"
hash = "{KEY_HASH}"
residency = {{ allow_jurisdictions = ["EU"] }}

{}{}{}
[[models]]
name = "emb"
kind = "embeddings"
offers = [
  {{ provider = "eu1", upstream_model = "text-embedding-3-small", price = "openai/text-embedding-3-small" }},
  {{ provider = "us", upstream_model = "text-embedding-3-small", price = "openai/text-embedding-3-small" }},
  {{ provider = "eu2", upstream_model = "text-embedding-3-small", price = "openai/text-embedding-3-small" }},
]
"#,
        provider("eu1", &eu1.base_url, "EU"),
        provider("us", &us.base_url, "US"),
        provider("eu2", &eu2.base_url, "EU"),
    );
    let mut gw = start_gateway(&config).await;
    let resp = embed(&gw, json!({"model": "emb", "input": INPUT})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-provider"], "eu2");
    assert_eq!(resp.headers()["x-tollgate-jurisdiction"], "EU");
    assert_eq!(eu1.count(), 1, "the first EU offer was tried");
    assert_eq!(us.count(), 0, "the US offer must receive nothing");

    // With every EU offer failing the key gets a 502, never a US answer.
    eu2.push(Reply::error(503, "{}", vec![]));
    eu1.push(Reply::error(503, "{}", vec![]));
    let resp = Gateway::client()
        .post(format!("{}/v1/embeddings", gw.url))
        .bearer_auth(KEY)
        .json(&json!({"model": "emb", "input": INPUT}))
        .send()
        .await
        .unwrap();
    let (status, _) = error_of(resp).await;
    assert!(status == 502 || status == 503, "{status}");
    assert_eq!(
        us.count(),
        0,
        "the US offer must receive nothing on failover"
    );

    // A request that narrows to US itself is refused before any connection.
    let resp = Gateway::client()
        .post(format!("{}/v1/embeddings", gw.url))
        .bearer_auth(KEY)
        .header("x-tollgate-residency", "US")
        .json(&json!({"model": "emb", "input": INPUT}))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(resp).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (403, &json!("residency_violation"))
    );
    assert_eq!(us.count(), 0);
    let rows = gw.ledger_rows().await;
    assert_eq!(rows[0]["jurisdiction"], "EU");
    assert_eq!(rows[0]["attempts"], 2);
    gw.stop().await;
}

#[tokio::test]
async fn implausible_or_missing_usage_is_billed_from_tollgates_count() {
    let answer = |usage: &str| {
        format!(
            r#"{{"object":"list","data":[{{"object":"embedding","index":0,"embedding":[0.1]}}],"model":"text-embedding-3-small"{usage}}}"#
        )
    };
    let fake = FakeUpstream::start(Reply::json(answer(""))).await;
    let config = embeddings_config(
        "openai",
        &fake,
        "",
        "text-embedding-3-small",
        "openai/text-embedding-3-small",
    );
    let mut gw = start_gateway(&config).await;
    // "hello world" is 2 tokens (o200k_base); 11 bytes can hold at most 11 (+4).
    let cases = [
        ("", "estimated"),
        (
            r#","usage":{"prompt_tokens":500,"total_tokens":500}"#,
            "implausible",
        ),
        (
            r#","usage":{"prompt_tokens":2,"total_tokens":9}"#,
            "implausible",
        ),
        (
            r#","usage":{"prompt_tokens":-2,"total_tokens":-2}"#,
            "implausible",
        ),
        (
            r#","usage":{"prompt_tokens":2,"completion_tokens":5,"total_tokens":7}"#,
            "implausible",
        ),
        (
            r#","usage":{"prompt_tokens":15,"total_tokens":15}"#,
            "reported",
        ),
    ];
    for (usage, source) in cases {
        fake.push(Reply::json(answer(usage)));
        let resp = embed(&gw, json!({"model": "emb", "input": "hello world"})).await;
        assert_eq!(resp.status(), 200, "{usage}");
        let h = resp.headers();
        assert_eq!(h["x-tollgate-usage-source"], source, "{usage}");
        let (tokens, cost) = if source == "reported" {
            // The most 11 bytes and one input can claim: 15 × 0.02 / 1M.
            ("15", "0.0000003")
        } else {
            // 2 × 0.02 / 1M.
            ("2", "0.00000004")
        };
        assert_eq!(h["x-tollgate-input-tokens"], tokens, "{usage}");
        assert_eq!(h["x-tollgate-cost-usd"], cost, "{usage}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn streams_wrong_kinds_bad_input_and_oversized_bodies_are_refused() {
    let fake = FakeUpstream::start(Reply::json(fixture("openai/embeddings.json"))).await;
    let config = embeddings_config(
        "openai",
        &fake,
        "",
        "text-embedding-3-small",
        "openai/text-embedding-3-small",
    ) + r#"
[[models]]
name = "chat"
offers = [{ provider = "p1", upstream_model = "gpt-4o" }]
"#;
    let config = format!("[server]\nmax_body_bytes = 4096\n{config}");
    let mut gw = start_gateway(&config).await;
    let resp = embed(&gw, json!({"model": "emb", "input": INPUT, "stream": true})).await;
    let (status, body) = error_of(resp).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_request");
    assert_eq!(body["error"]["param"], "stream");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not streamed"));

    let resp = embed(&gw, json!({"model": "chat", "input": INPUT})).await;
    let (status, body) = error_of(resp).await;
    assert_eq!((status, &body["error"]["param"]), (400, &json!("model")));
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("POST /v1/chat/completions"));

    let resp = gw.chat(chat_body("emb")).await;
    let (status, body) = error_of(resp).await;
    assert_eq!((status, &body["error"]["param"]), (400, &json!("model")));
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("POST /v1/embeddings"));

    let resp = embed(&gw, json!({"model": "emb", "input": []})).await;
    let (status, body) = error_of(resp).await;
    assert_eq!((status, &body["error"]["param"]), (400, &json!("input")));

    let resp = embed(&gw, json!({"model": "emb", "input": "x".repeat(5000)})).await;
    let (status, body) = error_of(resp).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (413, &json!("request_too_large"))
    );

    assert_eq!(fake.count(), 0, "nothing refused reaches the upstream");
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    assert_eq!(rows.len(), 5, "every refusal is recorded");
    assert_eq!(rows[0]["route"], "embeddings");
    assert_eq!(rows[0]["status"], 400);
    assert_eq!(rows[4]["status"], 413);
}

#[test]
fn check_config_refuses_an_embeddings_offer_on_deepseek() {
    let dir = tempfile::tempdir().unwrap();
    let config = one_offer_config(
        "deepseek",
        "https://api.deepseek.com",
        "",
        "CN",
        "emb",
        "deepseek-chat",
        None,
    )
    .replace(
        "name = \"emb\"\n",
        "name = \"emb\"\nkind = \"embeddings\"\n",
    );
    let path = dir.path().join("tollgate.toml");
    std::fs::write(&path, config).unwrap();
    let raw = tollgate::config::load(&path, vec![]).unwrap();
    let err = tollgate::config::validate(raw, dir.path(), &|n| Some(format!("secret-{n}")))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("models[0].offers[0].provider") && err.contains("no embeddings API"),
        "{err}"
    );
}

#[tokio::test]
async fn the_demo_answers_embeddings_with_no_keys_in_eu_and_us() {
    let mut gw = start_gateway(&demo_config().replace(
        "[mock]\nlatency = \"250ms\"\nchunk_interval = \"15ms\"\n",
        "",
    ))
    .await;
    for (residency, jurisdiction) in [("US", "US"), ("EU", "EU")] {
        let resp = Gateway::client()
            .post(format!("{}/v1/embeddings", gw.url))
            .bearer_auth(KEY)
            .header("x-tollgate-residency", residency)
            .json(&json!({"model": "text-embedding-3-small", "input": ["hello world", INPUT]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-tollgate-jurisdiction"], jurisdiction);
        let answer: Value = resp.json().await.unwrap();
        assert_eq!(answer["data"].as_array().unwrap().len(), 2);
        assert_eq!(
            answer["data"][1]["embedding"].as_array().unwrap().len(),
            1536
        );
        // 2 + 8 tokens (o200k_base) at $0.02 per 1M.
        assert_eq!(answer["usage"]["prompt_tokens"], 10);
        assert_eq!(answer["tollgate"]["cost_usd"], "0.0000002");
    }
    gw.stop().await;
}
