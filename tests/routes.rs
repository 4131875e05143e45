//! The other app endpoints: the model list, one request's record, the Azure-style
//! deployments route, and the demo configuration served by the built-in mock.

mod common;

use common::*;
use serde_json::{json, Value};
use sha2::Digest;

#[tokio::test]
async fn models_lists_what_the_key_may_use_with_residency() {
    let fake = FakeUpstream::start(Reply::json(fixture("github_models/chat_r1.json"))).await;
    let mut gw = start_gateway(&one_offer_config(
        "github_models",
        &fake.base_url,
        "",
        "US",
        "deepseek-r1",
        "deepseek/DeepSeek-R1",
        None,
    ))
    .await;
    let list: Value = Gateway::client()
        .get(format!("{}/v1/models", gw.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["object"], "list");
    assert_eq!(list["data"][0]["id"], "deepseek-r1");
    assert_eq!(
        list["data"][0]["tollgate"]["offers"][0]["jurisdiction"],
        "US"
    );
    let denied = Gateway::client()
        .get(format!("{}/v1/models", gw.url))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    gw.stop().await;
}

#[tokio::test]
async fn a_request_record_is_served_to_the_key_that_made_it_only() {
    let fake = FakeUpstream::start(Reply::json(fixture("openai/chat_o1.json"))).await;
    // A second key of the same gateway: it may ask, and must learn nothing.
    const OTHER: &str = "tg-other-key";
    let other_hash = format!("sha256:{}", hex::encode(sha2::Sha256::digest(OTHER)));
    let config = one_offer_config(
        "openai",
        &fake.base_url,
        "",
        "US",
        "o1",
        "o1",
        Some("openai/o1"),
    ) + &format!("\n[[keys]]\nname = \"other\"\nhash = \"{other_hash}\"\n");
    let mut gw = start_gateway(&config).await;
    let resp = gw.chat(chat_body("o1")).await;
    let id = resp.headers()["x-tollgate-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let record: Value = Gateway::client()
        .get(format!("{}/v1/tollgate/requests/{id}", gw.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(record["request_id"], id.as_str());
    assert_eq!(record["cost_usd"], "0.170595");
    assert_eq!(record["jurisdiction"], "US");
    assert_eq!(record["usage_source"], "reported");
    let missing = Gateway::client()
        .get(format!("{}/v1/tollgate/requests/tg-nope", gw.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // Another key asking for this record gets what it gets for an id that does not
    // exist: a 404 with the same body but for the id it sent, nothing of the record.
    let ask = |id: String| {
        let url = format!("{}/v1/tollgate/requests/{id}", gw.url);
        async move {
            let resp = Gateway::client()
                .get(url)
                .bearer_auth(OTHER)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    let (status, body) = ask(id.clone()).await;
    assert_eq!(status, 404, "{body}");
    for secret in [
        "0.170595", "p1", "openai", "reported", "demo", "US", "tokens",
    ] {
        assert!(!body.contains(secret), "{secret:?} leaked: {body}");
    }
    let unknown = "tg-00000000000000000000000000000000";
    let (status, unknown_body) = ask(unknown.to_owned()).await;
    assert_eq!(status, 404);
    assert_eq!(body.replace(&id, unknown), unknown_body);
    gw.stop().await;
}

#[tokio::test]
async fn azure_style_route_serves_apps_built_on_azure_clients() {
    let fake = FakeUpstream::start(Reply::json(fixture("github_models/chat_r1.json"))).await;
    let mut gw = start_gateway(&one_offer_config(
        "github_models",
        &fake.base_url,
        "",
        "US",
        "deepseek-r1",
        "deepseek/DeepSeek-R1",
        None,
    ))
    .await;
    let resp = Gateway::client()
        .post(format!(
            "{}/openai/deployments/deepseek-r1/chat/completions?api-version=2024-10-21",
            gw.url
        ))
        .header("api-key", KEY)
        .json(&json!({"messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-model"], "deepseek/DeepSeek-R1");
    let rows = gw.ledger_rows().await;
    assert_eq!(rows[0]["route"], "azure_chat_completions");
    assert_eq!(rows[0]["logical_model"], "deepseek-r1");
    gw.stop().await;
}

#[tokio::test]
async fn the_demo_config_serves_every_model_from_the_mock_streaming_and_not() {
    let mut gw = start_gateway(&demo_config()).await;
    for model in [
        "deepseek-r1",
        "deepseek-r1-azure",
        "deepseek-r1-github",
        "deepseek-flash",
        "o1",
    ] {
        let resp = gw.chat(chat_body(model)).await;
        assert_eq!(resp.status(), 200, "{model}");
        assert!(
            resp.headers().contains_key("x-tollgate-cost-usd"),
            "{model} is priced"
        );
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["tollgate"]["usage_source"], "reported", "{model}");
        assert!(body["usage"]["completion_tokens"].as_u64().unwrap() > 0);

        let mut stream = chat_body(model);
        stream["stream"] = json!(true);
        stream["stream_options"] = json!({"include_usage": true});
        let data = sse_data(gw.chat(stream).await).await;
        let with_tollgate = data
            .iter()
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str::<Value>(d).unwrap())
            .find(|c| c.get("tollgate").is_some())
            .unwrap_or_else(|| panic!("{model}: no tollgate object in {data:?}"));
        assert!(with_tollgate["tollgate"]["cost_usd"].is_string(), "{model}");
    }
    let rows = gw.ledger_rows().await;
    assert_eq!(rows.len(), 10);
    assert!(rows
        .iter()
        .all(|r| r["status"] == 200 && r["usage_source"] == "reported"));
    gw.stop().await;
}
