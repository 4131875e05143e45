use std::collections::BTreeSet;

use axum::http::HeaderMap;

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
