//! Vertex AI's credentials: an OAuth access token for the `cloud-platform` scope, sent
//! as `Authorization: Bearer`. Either a static token (`access_token = "env:NAME"`, for
//! tests and tokens managed outside tollgate) or Google's own credentials through the
//! `gcp_auth` crate: a service-account JSON named by `GOOGLE_APPLICATION_CREDENTIALS`,
//! gcloud's application-default credentials, the metadata server on Google Cloud
//! (GCE, GKE workload identity, Cloud Run), then the `gcloud` CLI, in that order.
//!
//! Caching and refresh are `gcp_auth`'s: each `TokenProvider` keeps the token per
//! scope set and fetches a new one only when the cached one "has expired", which its
//! `Token::has_expired` reckons 20 seconds before the real expiry (gcp_auth 0.12
//! `types.rs`, documented on `TokenProvider::token`: "Tokens are cached until they
//! expire"). So [`VertexAuth::bearer`] is called per request and costs a token
//! request only about once an hour; tollgate keeps no token cache of its own.
//!
//! This is the only I/O in the Gemini provider (the token exchange); nothing here
//! logs, and neither `Debug` nor the errors carry a token or a private key.

use std::fmt;
use std::sync::Arc;

use crate::config::secret::Secret;

/// The OAuth scope Vertex AI's prediction methods take.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// Where a Vertex provider's bearer tokens come from.
#[derive(Clone)]
pub enum VertexAuth {
    /// A token resolved from `access_token = "env:NAME"`, sent as it is.
    Static(Secret),
    /// Google's credentials; `gcp_auth` caches and refreshes the tokens.
    Google(Arc<dyn gcp_auth::TokenProvider>),
}

/// Why no token could be had. The messages name what to fix, never a credential.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No method found credentials.
    #[error(
        "no Google credentials found: set GOOGLE_APPLICATION_CREDENTIALS to a service-account \
         JSON file, run on Google Cloud (metadata server), or log in with `gcloud auth \
         application-default login`; or give the provider an access_token"
    )]
    NoCredentials,
    /// Credentials were found but are not usable (unreadable file, bad key).
    #[error("the Google credentials cannot be used: {0}")]
    BadCredentials(String),
    /// The token endpoint (or the metadata server) did not issue a token.
    #[error("Google did not issue an access token: {0}")]
    Token(String),
}

/// `gcp_auth`'s error's own message, without its source chain (which carries transport
/// detail, never a credential, but is noise in a client-facing message).
fn message(e: &gcp_auth::Error) -> String {
    e.to_string()
}

impl VertexAuth {
    /// Google's credentials from the environment, found as `gcp_auth::provider` looks
    /// for them (see the module header). Run once at start-up or reload, not per request.
    pub async fn from_environment() -> Result<VertexAuth, AuthError> {
        match gcp_auth::provider().await {
            Ok(provider) => Ok(VertexAuth::Google(provider)),
            Err(gcp_auth::Error::NoAuthMethod(..)) => Err(AuthError::NoCredentials),
            Err(e) => Err(AuthError::BadCredentials(message(&e))),
        }
    }

    /// A service account from its JSON key (the file `GOOGLE_APPLICATION_CREDENTIALS`
    /// names, read by the caller): tests and configurations that name the file
    /// themselves rather than through the process environment.
    pub fn from_service_account_json(json: &str) -> Result<VertexAuth, AuthError> {
        gcp_auth::CustomServiceAccount::from_json(json)
            .map(|sa| VertexAuth::Google(Arc::new(sa)))
            .map_err(|e| AuthError::BadCredentials(message(&e)))
    }

    /// The bearer token for one request: the static one, or `gcp_auth`'s cached token
    /// (fetched or refreshed only when it is within 20 seconds of expiry).
    pub async fn bearer(&self) -> Result<Secret, AuthError> {
        match self {
            VertexAuth::Static(token) => Ok(token.clone()),
            VertexAuth::Google(provider) => provider
                .token(&[CLOUD_PLATFORM_SCOPE])
                .await
                .map(|t| Secret::new(t.as_str().to_owned()))
                .map_err(|e| AuthError::Token(message(&e))),
        }
    }
}

impl fmt::Debug for VertexAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VertexAuth::Static(_) => f.write_str("VertexAuth::Static(<redacted>)"),
            VertexAuth::Google(_) => f.write_str("VertexAuth::Google"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_static_token_is_the_bearer_and_debug_never_shows_it() {
        let auth = VertexAuth::Static(Secret::new("ya29.static-token".into()));
        assert_eq!(auth.bearer().await.unwrap().expose(), "ya29.static-token");
        let shown = format!("{auth:?}");
        assert!(!shown.contains("ya29"), "{shown}");
    }

    #[test]
    fn a_malformed_service_account_is_refused_without_echoing_it() {
        let json = r#"{"client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\nnot-a-key\n-----END PRIVATE KEY-----\n","token_uri":"http://127.0.0.1:9/token"}"#;
        let err = VertexAuth::from_service_account_json(json).unwrap_err();
        assert!(matches!(err, AuthError::BadCredentials(_)));
        assert!(!err.to_string().contains("not-a-key"), "{err}");
    }
}
