//! Credentials that are not a static header: Bedrock's (SigV4 with the AWS credential
//! chain, or a Bedrock API key) and Vertex AI's (Google OAuth bearer tokens). They are
//! set up once per configuration generation, one [`ProviderAuth`] per provider, and
//! applied to each finished request just before it is sent ([`Credentials::authorize`]):
//! SigV4 signs the request's exact headers and body, so nothing changes after it.
//!
//! The token caches are the crates' own (`aws-config`'s credentials cache, `gcp_auth`'s
//! token cache), shared by `Arc` inside them: no lock here. Failures name what to fix,
//! never a secret.

use std::sync::Arc;

use axum::http::HeaderValue;

use super::bedrock::sign::BedrockAuth;
use super::gemini::auth::VertexAuth;
use super::UpstreamRequest;
use crate::config::{ProviderKind, ProviderSettings};

/// How one provider's requests are authorized beyond what its adapter wrote.
#[derive(Debug, Clone)]
pub enum ProviderAuth {
    /// The adapter's own header (an API key) is all there is.
    Static,
    Bedrock(BedrockAuth),
    Vertex(VertexAuth),
    /// The credentials could not be set up (why, without secrets): every attempt on
    /// the provider fails with this, so other offers are tried.
    Unavailable(Arc<str>),
}

impl ProviderAuth {
    /// Set up `p`'s credentials: a Bedrock API key or the AWS default chain for
    /// `aws_region`; Vertex's `access_token`, `credentials_file` or the environment's
    /// Google credentials. Reads the service-account file; the AWS chain and Google's
    /// token endpoint are first asked at the first request.
    pub async fn for_provider(p: &ProviderSettings) -> ProviderAuth {
        match p.kind {
            ProviderKind::Bedrock => match (&p.api_key, &p.cloud.aws_region) {
                (Some(key), _) => ProviderAuth::Bedrock(BedrockAuth::ApiKey(key.clone())),
                (None, Some(region)) => {
                    ProviderAuth::Bedrock(BedrockAuth::default_chain(region).await)
                }
                (None, None) => ProviderAuth::Unavailable("no aws_region configured".into()),
            },
            ProviderKind::Vertex => {
                let auth = match (&p.cloud.access_token, &p.cloud.credentials_file) {
                    (Some(token), _) => Ok(VertexAuth::Static(token.clone())),
                    (None, Some(file)) => match std::fs::read_to_string(file) {
                        Ok(json) => VertexAuth::from_service_account_json(&json)
                            .map_err(|e| format!("credentials_file {}: {e}", file.display())),
                        Err(e) => Err(format!(
                            "credentials_file {} cannot be read: {e}",
                            file.display()
                        )),
                    },
                    (None, None) => VertexAuth::from_environment()
                        .await
                        .map_err(|e| e.to_string()),
                };
                auth.map_or_else(
                    |why| {
                        tracing::warn!(provider = %p.id, error = %why, "Vertex AI credentials unavailable; its offers will fail over");
                        ProviderAuth::Unavailable(why.into())
                    },
                    ProviderAuth::Vertex,
                )
            }
            _ => ProviderAuth::Static,
        }
    }

    /// Authorize `req` for `p`: sign it (Bedrock) or add the bearer token (Vertex).
    /// The error says what failed, never a credential.
    pub async fn authorize(
        &self,
        req: &mut UpstreamRequest,
        p: &ProviderSettings,
    ) -> Result<(), String> {
        match self {
            ProviderAuth::Static => Ok(()),
            ProviderAuth::Unavailable(why) => Err(why.to_string()),
            ProviderAuth::Bedrock(auth) => {
                let region = p.cloud.aws_region.as_deref().unwrap_or_default();
                auth.authorize(req, region).await.map_err(|e| e.to_string())
            }
            ProviderAuth::Vertex(auth) => {
                let token = auth.bearer().await.map_err(|e| e.to_string())?;
                let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                    .map_err(|_| "the access token is not a valid header value".to_owned())?;
                value.set_sensitive(true);
                req.headers.insert(axum::http::header::AUTHORIZATION, value);
                Ok(())
            }
        }
    }
}

/// One [`ProviderAuth`] per configured provider, by index.
#[derive(Debug, Default)]
pub struct Credentials(Vec<ProviderAuth>);

impl Credentials {
    /// Set up every provider's credentials (see [`ProviderAuth::for_provider`]).
    pub async fn load(providers: &[ProviderSettings]) -> Self {
        let mut all = Vec::with_capacity(providers.len());
        for p in providers {
            all.push(ProviderAuth::for_provider(p).await);
        }
        Self(all)
    }

    /// Authorize `req` for provider `index` (`p`); a provider without an entry needs none.
    pub async fn authorize(
        &self,
        index: usize,
        p: &ProviderSettings,
        req: &mut UpstreamRequest,
    ) -> Result<(), String> {
        match self.0.get(index) {
            Some(auth) => auth.authorize(req, p).await,
            None => Ok(()),
        }
    }
}
