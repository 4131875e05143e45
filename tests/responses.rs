//! The OpenAI Responses surface, `POST /v1/responses`, served by a chat-completions
//! upstream (DeepSeek-R1 here, from its recorded answers) through the explicit
//! translation both ways: the `response` object and the documented `response.*` event
//! sequence, exact costs at the 2025-10-01 DeepSeek V3.2 prices, the ledger record,
//! and the refusals that name their field (tollgate is stateless).

#![expect(
    clippy::unwrap_used,
    reason = "test helpers below; a failure should fail the test"
)]

mod common;

use std::str::FromStr;

use chrono::{TimeZone, Utc};
use common::*;
use rust_decimal::Decimal;
use serde_json::{json, Value};

fn usd(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap()).unwrap()
}

async fn post(gw: &Gateway, body: Value) -> reqwest::Response {
    Gateway::client()
        .post(format!("{}/v1/responses", gw.url))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_responses_client_is_served_by_deepseek_r1_with_exact_cost() {
    let fake = FakeUpstream::start(Reply::json(fixture("deepseek/chat_reasoner.json"))).await;
    let at = Utc.with_ymd_and_hms(2025, 10, 1, 12, 0, 0).unwrap();
    let mut gw = start_gateway_at(&deepseek_r1(&fake.base_url), Some(at)).await;
    let resp = post(
        &gw,
        json!({"model": "r1", "instructions": "Be kind.", "max_output_tokens": 1000,
            "store": false, "input": [{"role": "user",
                "content": [{"type": "input_text", "text": "hello"}]}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    // 2025-10-01 (V3.2): 360·0.28 + 640·0.028 + 92·0.42 = 157.36 per 1M tokens.
    let expected = Decimal::from_str("0.00015736").unwrap();
    let header = |name: &str| resp.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(
        Decimal::from_str(&header("x-tollgate-cost-usd")).unwrap(),
        expected
    );
    assert_eq!(header("x-tollgate-jurisdiction"), "CN");
    assert_eq!(header("x-tollgate-reasoning-tokens"), "81");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "response");
    assert_eq!(body["status"], "completed");
    assert_eq!(
        body["max_output_tokens"], 1000,
        "the request's settings echoed"
    );
    let output = body["output"].as_array().unwrap();
    let kinds: Vec<&str> = output.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["reasoning", "message"], "reasoning first");
    assert_eq!(
        output[1]["content"][0],
        json!({"type": "output_text", "text": "Hello! How can I assist you today?",
            "annotations": [], "logprobs": []})
    );
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 1000,
            "input_tokens_details": {"cached_tokens": 640, "cache_write_tokens": 0},
            "output_tokens": 92, "output_tokens_details": {"reasoning_tokens": 81},
            "total_tokens": 1092})
    );
    assert_eq!(usd(&body["tollgate"]["cost_usd"]), expected);
    let sent = &fake.received()[0];
    assert_eq!(sent.path_and_query, "/chat/completions");
    assert_eq!(
        sent.body["messages"],
        json!([{"role": "system", "content": "Be kind."},
            {"role": "user", "content": [{"type": "text", "text": "hello"}]}])
    );
    assert_eq!(sent.body["max_tokens"], 1000);
    assert_eq!(
        sent.body.get("store"),
        None,
        "nothing Responses-only is sent"
    );
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    let row = rows.last().unwrap();
    assert_eq!(row["route"], "responses");
    assert_eq!(usd(&row["cost_usd"]), expected);
}

#[tokio::test]
async fn a_deepseek_stream_reaches_a_responses_client_as_the_documented_events() {
    let fake = FakeUpstream::start(Reply::sse_events(&fixture("deepseek/chat_stream.sse"))).await;
    let at = Utc.with_ymd_and_hms(2025, 10, 1, 12, 0, 0).unwrap();
    let mut gw = start_gateway_at(&deepseek_r1(&fake.base_url), Some(at)).await;
    let resp = post(
        &gw,
        json!({"model": "r1", "stream": true, "input": "hello"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-jurisdiction"], "CN");
    let got = named_events(resp).await;
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.reasoning_text.delta",
            "response.reasoning_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (i, (name, data)) in got.iter().enumerate() {
        assert_eq!(data["type"], name.as_str(), "each event names its type");
        assert_eq!(data["sequence_number"], i, "numbered in order");
    }
    let text_delta = &got[10].1;
    assert_eq!(
        (&text_delta["output_index"], &text_delta["delta"]),
        (&json!(1), &json!("纱"))
    );
    let completed = &got[14].1["response"];
    assert_eq!(completed["id"], got[0].1["response"]["id"], "one response");
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["output"][1]["content"][0]["text"], "纱");
    assert_eq!(completed["usage"]["output_tokens"], 1552);
    assert_eq!(
        completed["usage"]["output_tokens_details"]["reasoning_tokens"],
        199
    );
    // 2025-10-01 (V3.2): 6·0.28 + 1552·0.42 = 653.52 per 1M tokens.
    let expected = Decimal::from_str("0.00065352").unwrap();
    assert_eq!(usd(&completed["tollgate"]["cost_usd"]), expected);
    assert_eq!(
        fake.received()[0].body["stream_options"]["include_usage"],
        true
    );
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    let row = rows.last().unwrap();
    assert_eq!(row["route"], "responses");
    assert_eq!(usd(&row["cost_usd"]), expected);
    assert_eq!(row["outcome"], "completed");
}

#[tokio::test]
async fn what_a_stateless_chat_translation_cannot_honour_is_refused_by_name() {
    let fake = FakeUpstream::start(Reply::json(fixture("deepseek/chat_reasoner.json"))).await;
    let mut gw = start_gateway(&deepseek_r1(&fake.base_url)).await;
    let cases = [
        (json!({"store": true}), "store"),
        (
            json!({"previous_response_id": "resp_123"}),
            "previous_response_id",
        ),
        (json!({"background": true}), "background"),
        (json!({"tools": [{"type": "web_search"}]}), "tools[0].type"),
        (json!({"reasoning": {"effort": "high"}}), "reasoning.effort"),
    ];
    for (extra, param) in cases {
        let mut body = json!({"model": "r1", "input": "hi"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (status, err) = error_of(post(&gw, body).await).await;
        assert_eq!(status, 400, "{param}");
        assert_eq!(err["error"]["param"], param);
        assert_eq!(err["error"]["type"], "invalid_request_error");
        assert!(
            err["error"]["message"].as_str().unwrap().contains(param),
            "the message names the field: {err}"
        );
    }
    let resp = Gateway::client()
        .post(format!("{}/v1/responses", gw.url))
        .bearer_auth(KEY)
        .header("x-tollgate-residency", "EU")
        .json(&json!({"model": "r1", "input": "hi"}))
        .send()
        .await
        .unwrap();
    let (status, err) = error_of(resp).await;
    assert_eq!(
        (status, &err["error"]["code"]),
        (403, &json!("residency_violation"))
    );
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    assert_eq!(fake.count(), 0, "nothing reached the upstream");
    assert_eq!(rows.len(), 6, "each refusal is recorded");
    assert!(rows.iter().all(|r| r["route"] == "responses"));
}
