//! Residency enforcement end to end. The property test builds random worlds (offers
//! in random jurisdictions, regions and scopes; a random `[policy]` default; keys with
//! random policies of their own, or none; requests
//! with random `x-tollgate-residency` headers; upstreams that randomly fail or rate
//! limit) and checks, across thousands of requests, that no fake upstream ever
//! receives a request outside its caller's policy and that every refusal is the
//! documented 403.

#![expect(clippy::unwrap_used, reason = "scenario builders below are test code")]

mod common;

use std::collections::BTreeSet;

use common::*;
use proptest::prelude::*;
use serde_json::{json, Value};

const JURISDICTIONS: [&str; 5] = ["EU", "US", "CN", "GLOBAL", "SE"];
const SCOPES: [&str; 3] = ["regional", "datazone", "global"];

#[derive(Debug, Clone)]
struct Offer {
    jurisdiction: &'static str,
    scope: &'static str,
    /// Replies the fake gives, in order (then success): 0 = ok, 1 = 500, 2 = 429.
    failures: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
struct Policy {
    allow: Option<BTreeSet<&'static str>>,
    deny: BTreeSet<&'static str>,
    scopes: Option<BTreeSet<&'static str>>,
    regions: Option<BTreeSet<usize>>,
}

#[derive(Debug, Clone)]
struct Request {
    key: usize,
    header: Option<BTreeSet<&'static str>>,
}

#[derive(Debug, Clone)]
struct Scenario {
    offers: Vec<Offer>,
    /// `[policy]`, which every key's own policy narrows.
    default: Policy,
    /// `None`: the key declares no `residency`.
    keys: Vec<Option<Policy>>,
    strategy: &'static str,
    requests: Vec<Request>,
}

fn jurisdiction_set() -> impl Strategy<Value = BTreeSet<&'static str>> {
    proptest::sample::subsequence(JURISDICTIONS.to_vec(), 0..=3)
        .prop_map(|v| v.into_iter().collect())
}

/// A random policy over `n` offers' regions.
fn policy(n: usize) -> impl Strategy<Value = Policy> {
    (
        proptest::option::of(jurisdiction_set()),
        jurisdiction_set(),
        proptest::option::of(
            proptest::sample::subsequence(SCOPES.to_vec(), 0..=2)
                .prop_map(|v| v.into_iter().collect()),
        ),
        proptest::option::of(
            proptest::sample::subsequence((0..n).collect::<Vec<_>>(), 0..=n)
                .prop_map(|v| v.into_iter().collect()),
        ),
    )
        .prop_map(|(allow, deny, scopes, regions)| Policy {
            allow,
            deny,
            scopes,
            regions,
        })
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let offer = (
        proptest::sample::select(JURISDICTIONS.to_vec()),
        proptest::sample::select(SCOPES.to_vec()),
        proptest::collection::vec(0u8..3, 0..4),
    )
        .prop_map(|(jurisdiction, scope, failures)| Offer {
            jurisdiction,
            scope,
            failures,
        });
    (
        proptest::collection::vec(offer, 1..6),
        proptest::sample::select(vec!["priority", "cheapest", "latency", "weighted"]),
    )
        .prop_flat_map(|(offers, strategy)| {
            let n = offers.len();
            let keys = proptest::collection::vec(proptest::option::of(policy(n)), 1..4);
            (Just(offers), policy(n), keys, Just(strategy))
        })
        .prop_flat_map(|(offers, default, keys, strategy)| {
            let k = keys.len();
            let request = (
                0..k,
                proptest::option::of(
                    jurisdiction_set().prop_filter("non-empty", |s| !s.is_empty()),
                ),
            )
                .prop_map(|(key, header)| Request { key, header });
            (
                Just(offers),
                Just(default),
                Just(keys),
                Just(strategy),
                proptest::collection::vec(request, 30..50),
            )
        })
        .prop_map(|(offers, default, keys, strategy, requests)| Scenario {
            offers,
            default,
            keys,
            strategy,
            requests,
        })
}

/// The test's own statement of the rule (independent of `policy.rs`): the default,
/// the key's own policy (when it declares one) and the header must each allow it.
fn permitted(
    s: &Scenario,
    key: usize,
    header: Option<&BTreeSet<&str>>,
    offer_index: usize,
    offer: &Offer,
) -> bool {
    allows(&s.default, offer_index, offer)
        && s.keys[key]
            .as_ref()
            .is_none_or(|p| allows(p, offer_index, offer))
        && header.is_none_or(|h| h.contains(offer.jurisdiction))
}

fn allows(policy: &Policy, offer_index: usize, offer: &Offer) -> bool {
    policy
        .allow
        .as_ref()
        .is_none_or(|a| a.contains(offer.jurisdiction))
        && !policy.deny.contains(offer.jurisdiction)
        && policy
            .scopes
            .as_ref()
            .is_none_or(|s| s.contains(offer.scope))
        && policy
            .regions
            .as_ref()
            .is_none_or(|r| r.contains(&offer_index))
}

fn toml_list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let quoted: Vec<String> = items.into_iter().map(|i| format!("\"{i}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

/// A policy's fields as TOML `name = value` pairs.
fn policy_fields(policy: &Policy) -> Vec<String> {
    let mut fields = vec![format!("deny_jurisdictions = {}", toml_list(&policy.deny))];
    if let Some(a) = &policy.allow {
        fields.push(format!("allow_jurisdictions = {}", toml_list(a)));
    }
    if let Some(sc) = &policy.scopes {
        fields.push(format!("allow_scopes = {}", toml_list(sc)));
    }
    if let Some(r) = &policy.regions {
        fields.push(format!(
            "allow_regions = {}",
            toml_list(r.iter().map(|i| format!("region-{i}")))
        ));
    }
    fields
}

fn config(s: &Scenario, fakes: &[FakeUpstream]) -> String {
    let mut text = String::from(
        "[routing]\nretry_backoff = \"1ms\"\nmax_backoff = \"2ms\"\nbreaker_failures = 1000\n",
    );
    text.push_str(&format!(
        "[policy]\n{}\n",
        policy_fields(&s.default).join("\n")
    ));
    for (i, policy) in s.keys.iter().enumerate() {
        let residency = policy.as_ref().map_or(String::new(), |p| {
            format!("residency = {{ {} }}\n", policy_fields(p).join(", "))
        });
        text.push_str(&format!(
            "[[keys]]\nname = \"k{i}\"\nhash = \"{}\"\n{residency}",
            tollgate::auth::hash_key(&format!("key-{i}")),
        ));
    }
    let mut offers = Vec::new();
    for (i, (offer, fake)) in s.offers.iter().zip(fakes).enumerate() {
        text.push_str(&format!(
            "[[providers]]\nid = \"p{i}\"\nkind = \"openai_compatible\"\nbase_url = \"{}\"\napi_key = \"env:K\"\nregion = \"region-{i}\"\njurisdiction = \"{}\"\nscope = \"{}\"\n",
            fake.base_url, offer.jurisdiction, offer.scope
        ));
        offers.push(format!("{{ provider = \"p{i}\", upstream_model = \"m{i}\", price = \"together/deepseek-ai/DeepSeek-R1\" }}"));
    }
    text.push_str(&format!(
        "[[models]]\nname = \"r1\"\nrouting = \"{}\"\noffers = [{}]\n",
        s.strategy,
        offers.join(", ")
    ));
    text
}

async fn run(s: Scenario) {
    let mut fakes = Vec::new();
    for offer in &s.offers {
        let fake = FakeUpstream::start(Reply::json(fixture("github_models/chat_r1.json"))).await;
        for f in offer.failures.iter().cycle().take(offer.failures.len() * 8) {
            fake.push(match f {
                1 => Reply::error(500, fixture("deepseek/error_500.json"), vec![]),
                2 => Reply::error(
                    429,
                    fixture("openai/error_429.json"),
                    vec![("retry-after", "0".into())],
                ),
                _ => Reply::json(fixture("github_models/chat_r1.json")),
            });
        }
        fakes.push(fake);
    }
    let mut gw = start_gateway(&config(&s, &fakes)).await;
    let client = Gateway::client();
    for (n, r) in s.requests.iter().enumerate() {
        let mut req = client
            .post(format!("{}/v1/chat/completions", gw.url))
            .bearer_auth(format!("key-{}", r.key))
            .json(&json!({"model": "r1", "messages": [{"role": "user", "content": "hi"}], "x_test": n}));
        if let Some(h) = &r.header {
            req = req.header(
                "x-tollgate-residency",
                h.iter().copied().collect::<Vec<_>>().join(","),
            );
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        let any_allowed = s
            .offers
            .iter()
            .enumerate()
            .any(|(i, o)| permitted(&s, r.key, r.header.as_ref(), i, o));
        if any_allowed {
            assert_ne!(
                status, 403,
                "request {n} was refused though an offer was allowed: {body}"
            );
        } else {
            assert_eq!(status, 403, "request {n} had no allowed offer: {body}");
            assert_eq!(body["error"]["code"], "residency_violation");
        }
    }
    for (i, (fake, offer)) in fakes.iter().zip(&s.offers).enumerate() {
        for received in fake.received() {
            let n = received.body["x_test"].as_u64().unwrap() as usize;
            let r = &s.requests[n];
            assert!(
                permitted(&s, r.key, r.header.as_ref(), i, offer),
                "offer {i} ({}, {}) received request {n} from key {} with header {:?}: outside its policy {:?} under the default {:?}",
                offer.jurisdiction, offer.scope, r.key, r.header, s.keys[r.key], s.default
            );
        }
    }
    gw.stop().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_upstream_ever_receives_a_request_outside_its_callers_policy(s in scenario()) {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(run(s));
    }
}

/// A CN regional, a US global and an EU datazone provider, and two models over them:
/// `CHEAPEST_MODEL` routed cheapest over all three, `CN_OR_US_MODEL` over CN and US only.
const THREE_JURISDICTIONS: &str = r#"
[[providers]]
id = "deepseek"
kind = "deepseek"
base_url = "CN_URL"
api_key = "env:DS"
region = "deepseek:cn"
jurisdiction = "CN"
scope = "regional"

[[providers]]
id = "github"
kind = "github_models"
base_url = "US_URL"
api_key = "env:GH"
region = "github:unspecified"
jurisdiction = "US"
scope = "global"

[[providers]]
id = "azure-eu"
kind = "azure_ai_inference"
base_url = "EU_URL"
api_key = "env:AZ"
api_version = "2024-05-01-preview"
region = "azure:swedencentral"
jurisdiction = "EU"
scope = "datazone"

[[models]]
name = "CHEAPEST_MODEL"
routing = "cheapest"
offers = [
  { provider = "deepseek", upstream_model = "deepseek-chat", price = "deepseek/deepseek-flash" },
  { provider = "github", upstream_model = "deepseek/DeepSeek-R1", price = "github-models/deepseek/DeepSeek-R1/free" },
  { provider = "azure-eu", upstream_model = "DeepSeek-R1", price = "azure-ai-foundry/DeepSeek-R1" },
]

[[models]]
name = "CN_OR_US_MODEL"
offers = [
  { provider = "deepseek", upstream_model = "deepseek-chat" },
  { provider = "github", upstream_model = "deepseek/DeepSeek-R1" },
]
"#;

const WORLD: &str = r#"
[[keys]]
name = "eu-only"
hash = "EU_HASH"
residency = { allow_jurisdictions = ["EU"] }

[[keys]]
name = "no-cn"
hash = "NOCN_HASH"
residency = { deny_jurisdictions = ["CN"] }

"#;

struct World {
    cn: FakeUpstream,
    us: FakeUpstream,
    eu: FakeUpstream,
    gw: Gateway,
}

async fn world(eu_reply: Reply) -> World {
    let ok = || Reply::json(fixture("github_models/chat_r1.json"));
    let (cn, us, eu) = (
        FakeUpstream::start(ok()).await,
        FakeUpstream::start(ok()).await,
        FakeUpstream::start(eu_reply).await,
    );
    let config = [WORLD, THREE_JURISDICTIONS]
        .concat()
        .replace("CHEAPEST_MODEL", "deepseek-r1")
        .replace("CN_OR_US_MODEL", "us-or-cn-only")
        .replace("EU_HASH", &tollgate::auth::hash_key("eu-key"))
        .replace("NOCN_HASH", &tollgate::auth::hash_key("nocn-key"))
        .replace("CN_URL", &cn.base_url)
        .replace("US_URL", &us.base_url)
        .replace("EU_URL", &eu.base_url);
    let gw = start_gateway(&config).await;
    World { cn, us, eu, gw }
}

async fn post(gw: &Gateway, key: &str, model: &str) -> (u16, Value, Option<String>) {
    let resp = Gateway::client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(key)
        .json(&chat_body(model))
        .send()
        .await
        .unwrap();
    let provider = resp
        .headers()
        .get("x-tollgate-provider")
        .map(|v| v.to_str().unwrap().to_owned());
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap(), provider)
}

#[tokio::test]
async fn an_eu_only_key_fails_closed_when_the_eu_offer_fails_instead_of_failing_over_abroad() {
    let mut w = world(Reply::error(
        503,
        fixture("deepseek/error_500.json"),
        vec![],
    ))
    .await;
    let (status, body, _) = post(&w.gw, "eu-key", "deepseek-r1").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "upstream_error");
    assert!(w.eu.count() >= 1);
    assert_eq!(
        (w.cn.count(), w.us.count()),
        (0, 0),
        "failover never leaves the EU"
    );
    let (status, body, _) = post(&w.gw, "eu-key", "us-or-cn-only").await;
    assert_eq!(status, 403);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("offered in CN, US") && message.contains("allows EU"),
        "{message}"
    );
    let rows = w.gw.ledger_rows().await;
    let refused = rows
        .iter()
        .find(|r| r["error_code"] == "residency_violation")
        .unwrap();
    let policy: Value = serde_json::from_str(refused["policy"].as_str().unwrap()).unwrap();
    assert_eq!(policy["excluded"][0]["reason"], "jurisdiction_not_allowed");
    let metrics = Gateway::client()
        .get(format!("{}/metrics", w.gw.admin_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("tollgate_policy_denials_total{model=\"us-or-cn-only\",reason=\"jurisdiction_not_allowed\"}"),
        "{metrics}"
    );
    w.gw.stop().await;
}

#[tokio::test]
async fn a_deny_cn_key_never_touches_deepseeks_own_api_even_when_it_is_cheapest() {
    let mut w = world(Reply::json(fixture("azure_ai_inference/chat_r1.json"))).await;
    for _ in 0..5 {
        let (status, _, provider) = post(&w.gw, "nocn-key", "deepseek-r1").await;
        assert_eq!(status, 200);
        assert_ne!(provider.as_deref(), Some("deepseek"));
    }
    assert_eq!(w.cn.count(), 0);
    // Within what the policy allows, cheapest wins: GitHub's free tier costs $0.
    assert_eq!(w.us.count(), 5);
    w.gw.stop().await;
}

/// `[policy]` denies CN; the key only declares `allow_scopes`. Offers: CN regional
/// (cheapest), US global, EU datazone (model `r1`), and CN regional plus US global
/// (model `cn-or-global`).
const NARROWING: &str = r#"
[policy]
deny_jurisdictions = ["CN"]

[[keys]]
name = "scoped"
hash = "SCOPED_HASH"
residency = { allow_scopes = ["regional", "datazone"] }

"#;

// Regression: #10 (a key's own `residency` replaced the `[policy]` default, so a key
// declaring only `allow_scopes` was served from CN although the default denies it).
#[tokio::test]
async fn a_keys_own_residency_narrows_the_default_so_a_denied_jurisdiction_stays_denied() {
    let ok = || Reply::json(fixture("github_models/chat_r1.json"));
    let (cn, us, eu) = (
        FakeUpstream::start(ok()).await,
        FakeUpstream::start(ok()).await,
        FakeUpstream::start(Reply::json(fixture("azure_ai_inference/chat_r1.json"))).await,
    );
    let config = [NARROWING, THREE_JURISDICTIONS]
        .concat()
        .replace("CHEAPEST_MODEL", "r1")
        .replace("CN_OR_US_MODEL", "cn-or-global")
        .replace("SCOPED_HASH", &tollgate::auth::hash_key("scoped-key"))
        .replace("CN_URL", &cn.base_url)
        .replace("US_URL", &us.base_url)
        .replace("EU_URL", &eu.base_url);
    let mut gw = start_gateway(&config).await;
    for _ in 0..3 {
        let (status, body, provider) = post(&gw, "scoped-key", "r1").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            provider.as_deref(),
            Some("azure-eu"),
            "the only offer both allow"
        );
    }
    let (status, body, _) = post(&gw, "scoped-key", "cn-or-global").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "residency_violation");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("except CN"), "{message}");
    assert_eq!(
        cn.count(),
        0,
        "the default denies CN; the key cannot undo that"
    );
    assert_eq!(us.count(), 0, "the key refuses global processing");
    assert_eq!(eu.count(), 3);
    gw.stop().await;
}
