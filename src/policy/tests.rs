use std::collections::BTreeSet;

use axum::http::HeaderMap;
use proptest::prelude::Strategy;

use super::*;
use crate::config::{
    ModelSettings, OfferSettings, ProviderKind, ProviderSettings, Residency, RoutingStrategy, Scope,
};

fn provider(id: &str, jurisdiction: &str, region: &str, scope: Scope) -> ProviderSettings {
    ProviderSettings {
        id: id.into(),
        kind: ProviderKind::OpenaiCompatible,
        base_url: "http://x".into(),
        api_key: None,
        api_version: None,
        residency: Residency {
            region: region.into(),
            jurisdiction: jurisdiction.into(),
            scope,
        },
        mock_flavor: None,
        cloud: Default::default(),
    }
}

fn world() -> (ModelSettings, Vec<ProviderSettings>) {
    let providers = vec![
        provider("azure-eu", "EU", "azure:swedencentral", Scope::Datazone),
        provider(
            "azure-global",
            "GLOBAL",
            "azure:swedencentral",
            Scope::Global,
        ),
        provider("github", "US", "github:unspecified", Scope::Global),
        provider("deepseek", "CN", "deepseek:cn", Scope::Regional),
    ];
    let offers = (0..providers.len())
        .map(|i| OfferSettings {
            provider: i,
            upstream_model: "r1".into(),
            price: None,
            weight: 1,
            quota: Default::default(),
        })
        .collect();
    let model = ModelSettings {
        name: "deepseek-r1".into(),
        kind: Default::default(),
        strategy: RoutingStrategy::Priority,
        offers,
    };
    (model, providers)
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn header(value: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-tollgate-residency", value.parse().unwrap());
    h
}

#[test]
fn an_eu_only_key_keeps_only_eu_offers() {
    let (model, providers) = world();
    let policy = ResidencyPolicy {
        allow_jurisdictions: Some(set(&["EU"])),
        ..Default::default()
    };
    let d = evaluate(&policy, &model, &providers, &HeaderMap::new()).unwrap();
    assert_eq!(d.allowed, vec![0]);
    assert_eq!(
        d.reasons(),
        [Exclusion::JurisdictionNotAllowed].into_iter().collect()
    );
}

#[test]
fn a_deny_cn_key_never_gets_deepseeks_own_api() {
    let (model, providers) = world();
    let policy = ResidencyPolicy {
        deny_jurisdictions: set(&["CN"]),
        ..Default::default()
    };
    let d = evaluate(&policy, &model, &providers, &HeaderMap::new()).unwrap();
    assert_eq!(d.allowed, vec![0, 1, 2]);
    assert_eq!(
        d.excluded,
        vec![(3, "deepseek".to_owned(), Exclusion::JurisdictionDenied)]
    );
}

#[test]
fn a_key_refusing_global_scope_drops_global_deployments() {
    let (model, providers) = world();
    let policy = ResidencyPolicy {
        allow_scopes: Some([Scope::Regional, Scope::Datazone].into_iter().collect()),
        ..Default::default()
    };
    let d = evaluate(&policy, &model, &providers, &HeaderMap::new()).unwrap();
    assert_eq!(d.allowed, vec![0, 3]);
}

#[test]
fn the_header_narrows_but_never_widens() {
    let (model, providers) = world();
    let eu_only = ResidencyPolicy {
        allow_jurisdictions: Some(set(&["EU"])),
        ..Default::default()
    };
    let d = evaluate(&eu_only, &model, &providers, &header("US")).unwrap();
    assert!(
        d.allowed.is_empty(),
        "asking for US must not widen an EU-only key"
    );
    let err = refusal(&eu_only, &d, &model, &providers);
    assert_eq!(err.code, ErrorCode::ResidencyViolation);
    assert!(
        err.message.contains("CN, EU, GLOBAL, US") && err.message.contains("allows EU"),
        "{}",
        err.message
    );

    let open = ResidencyPolicy::default();
    let d = evaluate(&open, &model, &providers, &header("us, cn")).unwrap();
    assert_eq!(d.allowed, vec![2, 3]);
    assert!(d
        .excluded
        .iter()
        .all(|(_, _, r)| *r == Exclusion::NotRequested));
}

#[test]
fn a_region_allow_list_is_enforced() {
    let (model, providers) = world();
    let policy = ResidencyPolicy {
        allow_regions: Some(set(&["azure:swedencentral"])),
        ..Default::default()
    };
    let d = evaluate(&policy, &model, &providers, &HeaderMap::new()).unwrap();
    assert_eq!(d.allowed, vec![0, 1]);
}

#[test]
fn a_malformed_header_is_refused_not_ignored() {
    let (model, providers) = world();
    for bad in ["", "Europe", "EU;US"] {
        let err = evaluate(
            &ResidencyPolicy::default(),
            &model,
            &providers,
            &header(bad),
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest, "{bad:?}");
    }
}

const JURISDICTIONS: [&str; 5] = ["EU", "US", "CN", "GLOBAL", "SE"];
const REGIONS: [&str; 3] = ["region-0", "region-1", "region-2"];
const SCOPES: [Scope; 3] = [Scope::Regional, Scope::Datazone, Scope::Global];

/// The rule stated independently of `policy.rs`: every condition of the policy holds.
fn permits(p: &ResidencyPolicy, r: &Residency) -> bool {
    let in_allow =
        |list: &Option<BTreeSet<String>>, v: &String| list.as_ref().is_none_or(|l| l.contains(v));
    !p.deny_jurisdictions.contains(&r.jurisdiction)
        && in_allow(&p.allow_jurisdictions, &r.jurisdiction)
        && in_allow(&p.allow_regions, &r.region)
        && p.allow_scopes.as_ref().is_none_or(|s| s.contains(&r.scope))
}

fn strings(from: &'static [&'static str]) -> impl Strategy<Value = BTreeSet<String>> {
    proptest::sample::subsequence(from.to_vec(), 0..=from.len())
        .prop_map(|v| v.into_iter().map(str::to_owned).collect())
}

fn any_policy() -> impl Strategy<Value = ResidencyPolicy> {
    (
        proptest::option::of(strings(&JURISDICTIONS)),
        strings(&JURISDICTIONS),
        proptest::option::of(strings(&REGIONS)),
        proptest::option::of(
            proptest::sample::subsequence(SCOPES.to_vec(), 0..=3)
                .prop_map(|v| v.into_iter().collect()),
        ),
    )
        .prop_map(|(allow, deny, regions, scopes)| ResidencyPolicy {
            allow_jurisdictions: allow,
            deny_jurisdictions: deny,
            allow_regions: regions,
            allow_scopes: scopes,
        })
}

fn any_offer() -> impl Strategy<Value = Residency> {
    (
        proptest::sample::select(JURISDICTIONS.to_vec()),
        proptest::sample::select(REGIONS.to_vec()),
        proptest::sample::select(SCOPES.to_vec()),
    )
        .prop_map(|(j, region, scope)| Residency {
            region: region.into(),
            jurisdiction: j.into(),
            scope,
        })
}

fn model_of(offers: &[Residency]) -> (ModelSettings, Vec<ProviderSettings>) {
    let providers: Vec<ProviderSettings> = offers
        .iter()
        .enumerate()
        .map(|(i, r)| provider(&format!("p{i}"), &r.jurisdiction, &r.region, r.scope))
        .collect();
    let offers = (0..providers.len())
        .map(|i| OfferSettings {
            provider: i,
            upstream_model: "m".into(),
            price: None,
            weight: 1,
            quota: Default::default(),
        })
        .collect();
    let model = ModelSettings {
        name: "m".into(),
        kind: Default::default(),
        strategy: RoutingStrategy::Priority,
        offers,
    };
    (model, providers)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, failure_persistence: None, ..Default::default() })]

    /// Narrowing is exact: the default narrowed by the key (at validation) and then by
    /// the header (per request) allows an offer exactly when the default, the key and
    /// the header each allow it, so nothing a key or a request declares can widen
    /// the default, and nothing they all allow is lost.
    #[test]
    fn the_effective_policy_allows_exactly_what_default_key_and_header_all_allow(
        default in any_policy(),
        key in any_policy(),
        requested in proptest::option::of(strings(&JURISDICTIONS).prop_filter("a header names at least one", |s| !s.is_empty())),
        offers in proptest::collection::vec(any_offer(), 1..8),
    ) {
        let effective = default.narrow(&key);
        for r in &offers {
            proptest::prop_assert_eq!(permits(&effective, r), permits(&default, r) && permits(&key, r), "{:?}", r);
            if default.deny_jurisdictions.contains(&r.jurisdiction) {
                proptest::prop_assert!(!permits(&effective, r), "the default denies {}", r.jurisdiction);
            }
        }
        let (model, providers) = model_of(&offers);
        let headers = requested.as_ref().map_or_else(HeaderMap::new, |h| {
            header(&h.iter().cloned().collect::<Vec<_>>().join(","))
        });
        let decision = evaluate(&effective, &model, &providers, &headers).unwrap();
        for (i, r) in offers.iter().enumerate() {
            let by_header = requested.as_ref().is_none_or(|h| h.contains(&r.jurisdiction));
            let expected = permits(&default, r) && permits(&key, r) && by_header;
            proptest::prop_assert_eq!(decision.allowed.contains(&i), expected, "offer {} {:?}", i, r);
        }
    }
}

#[test]
fn narrowing_unites_denials_and_intersects_allow_lists() {
    let default = ResidencyPolicy {
        allow_jurisdictions: Some(set(&["EU", "US", "CN"])),
        deny_jurisdictions: set(&["CN"]),
        ..Default::default()
    };
    let key = ResidencyPolicy {
        allow_jurisdictions: Some(set(&["EU", "SE"])),
        deny_jurisdictions: set(&["US"]),
        allow_scopes: Some([Scope::Regional].into_iter().collect()),
        ..Default::default()
    };
    let effective = default.narrow(&key);
    assert_eq!(effective.allow_jurisdictions, Some(set(&["EU"])));
    assert_eq!(effective.deny_jurisdictions, set(&["CN", "US"]));
    assert_eq!(
        effective.allow_regions, None,
        "neither side constrains regions"
    );
    assert_eq!(
        effective.summary(),
        "allow_jurisdictions=[EU] deny_jurisdictions=[CN, US] allow_regions=any allow_scopes=[regional]"
    );
}
