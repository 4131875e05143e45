//! Hot reload: a new configuration is validated, then swapped in atomically; under
//! steady load no request fails and requests that start after the swap use the new
//! prices; a broken configuration is rejected and the running one keeps serving; an
//! edited config file is picked up by the watcher; rate limits keep their state.

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use serde_json::Value;

#[tokio::test]
async fn a_reload_under_load_fails_no_request_and_new_prices_apply_after_the_swap() {
    let fake = FakeUpstream::start(Reply::json(fixture("openai/chat_o1.json"))).await;
    let before = one_offer_config(
        "openai",
        &fake.base_url,
        "",
        "US",
        "o1",
        "o1",
        Some("openai/o1"),
    );
    let after = before.replace("price = \"openai/o1\"", "price = \"openai/o3-mini\"");
    let mut gw = start_gateway(&before).await;
    let url = format!("{}/v1/chat/completions", gw.url);
    let load = tokio::spawn(async move {
        let client = Gateway::client();
        let mut seen = Vec::new();
        for _ in 0..120 {
            let resp = client
                .post(&url)
                .bearer_auth(KEY)
                .json(&chat_body("o1"))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "a request failed during the reload");
            let body: Value = resp.json().await.unwrap();
            seen.push(body["tollgate"]["price_id"].as_str().unwrap().to_owned());
        }
        seen
    });
    // Swap only once requests are flowing, whatever the machine's speed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while fake.count() < 10 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the load never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let reloader = gw.app.as_ref().unwrap().reloader();
    reloader.apply(gw.settings_for(&after)).await.unwrap();
    let seen = load.await.unwrap();
    let first_new = seen
        .iter()
        .position(|p| p.starts_with("openai/o3-mini"))
        .expect("the new price never applied");
    assert!(
        first_new > 0,
        "the swap happened while requests were flowing"
    );
    assert!(seen[..first_new]
        .iter()
        .all(|p| p.starts_with("openai/o1/")));
    assert!(
        seen[first_new..]
            .iter()
            .all(|p| p.starts_with("openai/o3-mini")),
        "{seen:?}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_broken_config_is_rejected_and_the_old_one_keeps_serving() {
    let fake = FakeUpstream::start(Reply::json(fixture("openai/chat_o1.json"))).await;
    let config = one_offer_config(
        "openai",
        &fake.base_url,
        "",
        "US",
        "o1",
        "o1",
        Some("openai/o1"),
    );
    let mut gw = start_gateway(&config).await;
    let reloader = gw.app.as_ref().unwrap().reloader();
    let path = gw.write_config(&config.replace(
        "scope = \"regional\"",
        "scope = \"regional\"\nregoin = \"typo\"",
    ));
    let err = reloader.apply_file(&path).await.unwrap_err().to_string();
    assert!(err.contains("providers[0].regoin: unknown key"), "{err}");
    let resp = gw.chat(chat_body("o1")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-cost-usd"], "0.170595");
    gw.stop().await;
}

#[tokio::test]
async fn an_edited_config_file_is_picked_up_by_the_watcher() {
    let demo = demo_config();
    let mut gw = start_gateway(&demo).await;
    let path = gw.write_config(&demo);
    let reloader = gw.app.as_ref().unwrap().reloader();
    let watcher = tokio::spawn(reloader.watch(path, Duration::from_millis(50)));
    let list = |gw: &Gateway| {
        let url = format!("{}/v1/models", gw.url);
        async move {
            let v: Value = Gateway::client()
                .get(url)
                .bearer_auth(KEY)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert!(list(&gw).await.contains(&"o1".to_owned()));
    let path = gw.write_config(&demo.replace(
        "name = \"deepseek-flash\"",
        "name = \"deepseek-flash-renamed\"",
    ));
    // A modification time the first write cannot have, however coarse the file
    // system's clock, instead of sleeping past its resolution.
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    let mut renamed = false;
    for _ in 0..60 {
        if list(&gw)
            .await
            .contains(&"deepseek-flash-renamed".to_owned())
        {
            renamed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(renamed, "the watcher did not apply the edited file");
    watcher.abort();
    gw.stop().await;
}

// Regression: #10 (any reload built new limits: touching the config took an rpm=2 key
// from `200 200 429 429` back to `200 200 429`).
#[tokio::test]
async fn a_reload_keeps_a_keys_rate_limit_state_even_when_its_index_shifts() {
    let fake = FakeUpstream::start(Reply::json(fixture("openai/chat_o1.json"))).await;
    let before = one_offer_config(
        "openai",
        &fake.base_url,
        "",
        "US",
        "o1",
        "o1",
        Some("openai/o1"),
    )
    .replace(
        &format!("hash = \"{KEY_HASH}\""),
        &format!("hash = \"{KEY_HASH}\"\nrate_limit = {{ requests_per_minute = 2 }}"),
    );
    // Another key in front of the demo key: the demo key's index changes.
    let after = format!(
        "[[keys]]\nname = \"added\"\nhash = \"{}\"\n{before}",
        tollgate::auth::hash_key("added-key")
    );
    let mut gw = start_gateway(&before).await;
    let mut statuses = Vec::new();
    for _ in 0..2 {
        statuses.push(gw.chat(chat_body("o1")).await.status().as_u16());
    }
    let reloader = gw.app.as_ref().unwrap().reloader();
    reloader.apply(gw.settings_for(&after)).await.unwrap();
    let state = gw.app.as_ref().unwrap().state();
    let names: Vec<&str> = state
        .settings
        .keys
        .iter()
        .map(|k| k.name.as_str())
        .collect();
    assert_eq!(names, ["added", "demo"], "the new config is in force");
    for _ in 0..2 {
        statuses.push(gw.chat(chat_body("o1")).await.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429, 429]);
    assert_eq!(fake.count(), 2);
    gw.stop().await;
}
