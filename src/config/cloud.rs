//! The cloud providers' own settings: `bedrock` (an AWS region), `vertex` (a Google
//! Cloud project and location, and where its bearer tokens come from) and `gemini`
//! (the Gemini API, an API key). Validated here, beside the rules every provider
//! follows in `validate`: which kinds take which fields, whether `api_key` is
//! required, optional or refused, the `base_url` derived from the region or location,
//! and the residency contradictions `check-config` warns about.

use std::path::{Path, PathBuf};

use super::residency::Scope;
use super::secret::{self, Secret};
use super::validate::{OfferSettings, ProviderKind, ProviderSettings};
use super::RawProvider;

/// A cloud provider's settings besides `base_url` and `api_key`; all `None` for the
/// other kinds.
#[derive(Debug, Clone, Default)]
pub struct CloudSettings {
    /// `bedrock`: the region requests are signed for (SigV4's scope).
    pub aws_region: Option<String>,
    /// `vertex`: the project and location in every request's path.
    pub gcp_project: Option<String>,
    pub gcp_location: Option<String>,
    /// `vertex`: a static bearer token, sent instead of Google credentials' tokens.
    pub access_token: Option<Secret>,
    /// `vertex`: a service-account JSON key, read at start-up and at each reload.
    pub credentials_file: Option<PathBuf>,
}

/// Whether a kind takes `api_key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRule {
    Required,
    /// `bedrock`: a Bedrock API key; without one, the AWS credential chain signs.
    Optional,
    /// `vertex` (OAuth tokens only) and `mock`.
    Refused,
}

/// The `api_key` rule of `kind`.
pub fn key_rule(kind: &ProviderKind) -> KeyRule {
    match kind {
        ProviderKind::Bedrock => KeyRule::Optional,
        ProviderKind::Vertex | ProviderKind::Mock => KeyRule::Refused,
        _ => KeyRule::Required,
    }
}

/// The base URL of a provider that configures none, when its kind has one.
/// The Gemini API's default base (`generativelanguage`, authenticated by API key).
pub const GEMINI_BASE_URL: &str = "https://generativelanguage.googleapis.com";

/// Bedrock Runtime's endpoint in `region`: where requests go and the region signed
/// into them.
pub fn bedrock_base_url(region: &str) -> String {
    format!("https://bedrock-runtime.{region}.amazonaws.com")
}

/// Vertex AI's service base for `location`:
/// - a region (`europe-west4`, `us-central1`): `https://{region}-aiplatform.googleapis.com`;
/// - `global`: `https://aiplatform.googleapis.com` ("exclude the location from the
///   endpoint name", cloud.google.com/vertex-ai/generative-ai/docs/learn/locations
///   #use_the_global_endpoint); no residency: Google may process anywhere;
/// - the multi-regions `eu` and `us`: the jurisdictional endpoints
///   `https://aiplatform.{eu,us}.rep.googleapis.com`, whose ML processing stays in the
///   EU or the US (same page, "Multi-region endpoints", and .../learn/data-residency;
///   Anthropic's "Claude on Vertex AI" page names the same hosts). Only the host
///   differs: the path still says `locations/eu`.
pub fn vertex_base_url(location: &str) -> String {
    match location {
        "global" => "https://aiplatform.googleapis.com".to_owned(),
        "eu" | "us" => format!("https://aiplatform.{location}.rep.googleapis.com"),
        region => format!("https://{region}-aiplatform.googleapis.com"),
    }
}

pub fn default_base_url(kind: &ProviderKind, cloud: &CloudSettings) -> Option<String> {
    match kind {
        ProviderKind::Bedrock => cloud.aws_region.as_deref().map(bedrock_base_url),
        ProviderKind::Vertex => cloud.gcp_location.as_deref().map(vertex_base_url),
        ProviderKind::Gemini => Some(GEMINI_BASE_URL.to_owned()),
        _ => None,
    }
}

/// Check the cloud fields of `rp` (a provider of `kind` at `path`), reporting each
/// problem through `push(field_path, message)`.
pub fn validate(
    path: &str,
    kind: &ProviderKind,
    rp: &RawProvider,
    config_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    push: &mut dyn FnMut(String, String),
) -> CloudSettings {
    let fields = [
        (
            "aws_region",
            rp.aws_region.is_some(),
            *kind == ProviderKind::Bedrock,
        ),
        (
            "gcp_project",
            rp.gcp_project.is_some(),
            *kind == ProviderKind::Vertex,
        ),
        (
            "gcp_location",
            rp.gcp_location.is_some(),
            *kind == ProviderKind::Vertex,
        ),
        (
            "access_token",
            rp.access_token.is_some(),
            *kind == ProviderKind::Vertex,
        ),
        (
            "credentials_file",
            rp.credentials_file.is_some(),
            *kind == ProviderKind::Vertex,
        ),
    ];
    for (field, set, allowed) in fields {
        if set && !allowed {
            let owner = if field == "aws_region" {
                "bedrock"
            } else {
                "vertex"
            };
            push(
                format!("{path}.{field}"),
                format!("only allowed with kind = \"{owner}\""),
            );
        }
    }
    let mut word = |field: &str, value: &Option<String>, example: &str, required: bool| match value
        .as_deref()
    {
        Some(v) if is_word(v) => Some(v.to_owned()),
        Some(v) => {
            push(
                format!("{path}.{field}"),
                format!("{v:?} is not a {field}; expected e.g. \"{example}\""),
            );
            None
        }
        None if required => {
            push(
                format!("{path}.{field}"),
                format!(
                    "required for kind = \"{}\", e.g. \"{example}\"",
                    kind.as_str()
                ),
            );
            None
        }
        None => None,
    };
    let mut cloud = CloudSettings::default();
    match kind {
        ProviderKind::Bedrock => {
            cloud.aws_region = word("aws_region", &rp.aws_region, "eu-central-1", true);
        }
        ProviderKind::Vertex => {
            cloud.gcp_project = word("gcp_project", &rp.gcp_project, "my-project", true);
            cloud.gcp_location = word("gcp_location", &rp.gcp_location, "europe-west4", true);
            cloud.access_token = rp.access_token.as_deref().and_then(|r| {
                secret::resolve(r, env)
                    .map_err(|e| push(format!("{path}.access_token"), e.to_string()))
                    .ok()
            });
            cloud.credentials_file = rp.credentials_file.as_deref().map(|f| config_dir.join(f));
            if rp.access_token.is_some() && rp.credentials_file.is_some() {
                push(
                    format!("{path}.credentials_file"),
                    "set either access_token or credentials_file, not both".into(),
                );
            }
        }
        _ => {}
    }
    cloud
}

/// A region, project or location: lower-case letters, digits and dashes.
fn is_word(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Bedrock's cross-region inference profile prefixes and the jurisdiction each keeps
/// prompts in (docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-support.html):
/// a geographic profile routes between the regions of its geography, `global.` to any
/// commercial region. `apac.` spans several countries, so no single jurisdiction fits it.
const PROFILE_GEOGRAPHIES: [(&str, Option<&str>); 6] = [
    ("us-gov.", Some("US")),
    ("us.", Some("US")),
    ("eu.", Some("EU")),
    ("apac.", None),
    ("jp.", Some("JP")),
    ("au.", Some("AU")),
];

/// What `check-config` warns about a cloud offer whose model id or location routes
/// prompts wider than its provider declares: Bedrock's `global.` profile on a
/// provider whose scope is not global, a geographic profile (`us.`, `eu.`, ...) on a
/// provider of another jurisdiction or of regional scope, and Vertex's `global`
/// location with a non-global scope. Warnings, not errors: the declaration may be
/// deliberate (a stricter policy than the route), but it is worth a look.
pub fn residency_warnings(
    provider: &ProviderSettings,
    offer: &OfferSettings,
    model: &str,
) -> Option<String> {
    let r = &provider.residency;
    let id = &provider.id;
    let up = &offer.upstream_model;
    match provider.kind {
        ProviderKind::Bedrock if up.starts_with("global.") && r.scope != Scope::Global => Some(format!(
            "model {model:?}: {up:?} is a global inference profile (AWS may process the prompt in any commercial region), but provider {id:?} declares scope {}; declare scope = \"global\" or use a geographic profile",
            r.scope.as_str()
        )),
        ProviderKind::Bedrock => {
            let (prefix, geography) = PROFILE_GEOGRAPHIES
                .iter()
                .find(|(p, _)| up.starts_with(p))?;
            let fits = r.jurisdiction == "GLOBAL" || geography.is_some_and(|g| r.jurisdiction == g);
            if !fits {
                let spans = geography.unwrap_or("APAC");
                return Some(format!(
                    "model {model:?}: {up:?} is a {prefix} inference profile (prompts are processed in {spans} regions), but provider {id:?} declares jurisdiction {}",
                    r.jurisdiction
                ));
            }
            (r.scope == Scope::Regional).then(|| format!(
                "model {model:?}: {up:?} is a {prefix} inference profile (AWS routes between the regions of its geography), but provider {id:?} declares scope regional; declare scope = \"datazone\" or use the in-region model id"
            ))
        }
        ProviderKind::Vertex
            if provider.cloud.gcp_location.as_deref() == Some("global")
                && r.scope != Scope::Global =>
        {
            Some(format!(
                "model {model:?}: provider {id:?} uses Vertex AI's global location (Google may process the prompt in any region), but declares scope {}; declare scope = \"global\" or use a regional location",
                r.scope.as_str()
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Residency;

    fn provider(kind: ProviderKind, jurisdiction: &str, scope: Scope) -> ProviderSettings {
        ProviderSettings {
            id: "p".into(),
            kind,
            base_url: String::new(),
            api_key: None,
            api_version: None,
            residency: Residency {
                region: "r".into(),
                jurisdiction: jurisdiction.into(),
                scope,
            },
            mock_flavor: None,
            cloud: CloudSettings {
                gcp_location: Some("global".into()),
                ..CloudSettings::default()
            },
        }
    }

    fn warns(p: &ProviderSettings, upstream_model: &str) -> bool {
        let offer = OfferSettings {
            provider: 0,
            upstream_model: upstream_model.into(),
            price: None,
            weight: 1,
            quota: crate::config::Quota::default(),
        };
        residency_warnings(p, &offer, "m").is_some()
    }

    #[test]
    fn bedrock_profiles_that_route_wider_than_declared_are_warned_about() {
        let eu = provider(ProviderKind::Bedrock, "EU", Scope::Datazone);
        assert!(!warns(&eu, "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"));
        assert!(warns(&eu, "us.anthropic.claude-sonnet-4-5-20250929-v1:0"));
        assert!(warns(&eu, "apac.anthropic.claude-sonnet-4-5-20250929-v1:0"));
        assert!(warns(
            &eu,
            "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
        ));
        assert!(!warns(&eu, "anthropic.claude-3-haiku-20240307-v1:0"));
        let regional = provider(ProviderKind::Bedrock, "US", Scope::Regional);
        assert!(warns(&regional, "us.deepseek.r1-v1:0"));
        let global = provider(ProviderKind::Bedrock, "GLOBAL", Scope::Global);
        assert!(!warns(
            &global,
            "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
        ));
        assert!(!warns(&global, "us.deepseek.r1-v1:0"));
    }

    #[test]
    fn vertex_global_location_needs_a_global_scope() {
        assert!(warns(
            &provider(ProviderKind::Vertex, "EU", Scope::Regional),
            "gemini-2.5-pro"
        ));
        assert!(!warns(
            &provider(ProviderKind::Vertex, "GLOBAL", Scope::Global),
            "gemini-2.5-pro"
        ));
    }
}
