//! Authorizing a Bedrock request: SigV4 (service `bedrock`, the provider's region)
//! with credentials from the standard AWS chain, or a Bedrock API key sent as a
//! bearer token. Signing is `aws-sigv4`'s (canonical request, double-encoded path,
//! session token); this module only feeds it the request and copies its headers back.

use std::fmt;
use std::time::SystemTime;

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{self, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use axum::http::{HeaderName, HeaderValue};

use crate::config::secret::Secret;
use crate::providers::UpstreamRequest;

/// The SigV4 signing name of Bedrock Runtime (its endpoint is `bedrock-runtime`, its
/// signing name is not).
pub const SIGNING_NAME: &str = "bedrock";

/// Why a request could not be authorized. Never carries a secret: the credential
/// chain's and the signer's messages name what failed, not the values.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("no AWS credentials: {0}")]
    Credentials(String),
    #[error("SigV4 signing failed: {0}")]
    Signing(String),
}

/// Sign `req` (a POST of its body to its URL) with `credentials` for `region` at
/// `time`: adds `authorization`, `x-amz-date` and, with temporary credentials,
/// `x-amz-security-token`. Every header already on the request is signed, so headers
/// must be final before this is called.
pub fn sign(
    req: &mut UpstreamRequest,
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<(), SignError> {
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SIGNING_NAME)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| SignError::Signing(e.to_string()))?
        .into();
    let headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect();
    let signable = SignableRequest::new(
        "POST",
        req.url.as_str(),
        headers.into_iter(),
        SignableBody::Bytes(&req.body),
    )
    .map_err(|e| SignError::Signing(e.to_string()))?;
    let (instructions, _signature) = http_request::sign(signable, &params)
        .map_err(|e| SignError::Signing(e.to_string()))?
        .into_parts();
    let (headers, _query) = instructions.into_parts();
    for header in headers {
        let name = HeaderName::from_static(header.name());
        let mut value = HeaderValue::from_str(header.value())
            .map_err(|_| SignError::Signing(format!("unusable {} value", header.name())))?;
        value.set_sensitive(header.sensitive() || name == "authorization");
        req.headers.insert(name, value);
    }
    Ok(())
}

/// A chain that never answers (see [`BedrockAuth::default_chain`]).
#[derive(Debug)]
struct NoCredentials;

impl ProvideCredentials for NoCredentials {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::ready(Err(
            aws_credential_types::provider::error::CredentialsError::not_loaded(
                "no credentials provider",
            ),
        ))
    }
}

/// How a Bedrock provider authorizes its requests.
#[derive(Clone)]
pub enum BedrockAuth {
    /// A Bedrock API key, sent as `Authorization: Bearer <key>` (no signing).
    ApiKey(Secret),
    /// AWS credentials, resolved (and refreshed) by the provider, each request signed.
    Aws(SharedCredentialsProvider),
}

impl fmt::Debug for BedrockAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Neither the key nor whatever a credentials provider caches is printed.
        match self {
            BedrockAuth::ApiKey(_) => f.write_str("BedrockAuth::ApiKey(<redacted>)"),
            BedrockAuth::Aws(_) => f.write_str("BedrockAuth::Aws(<credentials provider>)"),
        }
    }
}

impl BedrockAuth {
    /// The standard AWS credential chain, as the AWS SDKs resolve it: environment
    /// (`AWS_ACCESS_KEY_ID`, …), the shared config and credentials files (`AWS_PROFILE`),
    /// web identity (`AWS_WEB_IDENTITY_TOKEN_FILE`, i.e. EKS IRSA), the ECS container
    /// endpoint and the EC2 instance metadata service. Credentials are looked up on
    /// first use and cached until shortly before they expire. The chain's STS, ECS and
    /// IMDS calls go through a rustls client on ring, the TLS stack tollgate already has.
    pub async fn default_chain(region: &str) -> BedrockAuth {
        use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_owned()))
            .http_client(http)
            .load()
            .await;
        // `load` always sets the default chain; were it ever absent, every request
        // fails with a credentials error instead of going out unsigned.
        BedrockAuth::Aws(
            config
                .credentials_provider()
                .unwrap_or_else(|| SharedCredentialsProvider::new(NoCredentials)),
        )
    }

    /// Authorize `req` for `region`: a bearer API key, or SigV4 with credentials from
    /// the chain (resolved now, from its cache when still fresh).
    pub async fn authorize(
        &self,
        req: &mut UpstreamRequest,
        region: &str,
    ) -> Result<(), SignError> {
        match self {
            BedrockAuth::ApiKey(key) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
                    .map_err(|_| {
                        SignError::Credentials("the API key is not a valid header value".into())
                    })?;
                value.set_sensitive(true);
                req.headers.insert(axum::http::header::AUTHORIZATION, value);
                Ok(())
            }
            BedrockAuth::Aws(provider) => {
                let credentials = provider
                    .provide_credentials()
                    .await
                    .map_err(|e| SignError::Credentials(e.to_string()))?;
                sign(req, &credentials, region, SystemTime::now())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;
    use bytes::Bytes;
    use std::time::{Duration, UNIX_EPOCH};

    fn request() -> UpstreamRequest {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        UpstreamRequest {
            url: "https://bedrock-runtime.eu-central-1.amazonaws.com/model/eu.anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse".into(),
            headers,
            body: Bytes::from_static(br#"{"messages":[]}"#),
        }
    }

    /// 2015-08-30T12:36:00Z, the time of AWS's SigV4 test suite.
    fn time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    #[test]
    fn a_signed_request_carries_the_scope_signed_headers_and_session_token() {
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("session-token".into()),
            None,
            "test",
        );
        let mut req = request();
        sign(&mut req, &creds, "eu-central-1", time()).unwrap();
        let h = |n: &str| req.headers.get(n).unwrap().to_str().unwrap().to_owned();
        assert_eq!(h("x-amz-date"), "20150830T123600Z");
        assert_eq!(h("x-amz-security-token"), "session-token");
        let auth = h("authorization");
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-central-1/bedrock/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="
            ),
            "{auth}"
        );
        assert!(req.headers.get("authorization").unwrap().is_sensitive());
        // The signature covers the body: another body, another signature.
        let mut other = request();
        other.body = Bytes::from_static(br#"{"messages":[1]}"#);
        sign(&mut other, &creds, "eu-central-1", time()).unwrap();
        assert_ne!(other.headers["authorization"], req.headers["authorization"]);
    }

    #[tokio::test]
    async fn an_api_key_is_a_bearer_token_and_debug_prints_no_secret() {
        let auth = BedrockAuth::ApiKey(Secret::new("ABSKsecretvalue".into()));
        let mut req = request();
        auth.authorize(&mut req, "eu-central-1").await.unwrap();
        assert_eq!(req.headers["authorization"], "Bearer ABSKsecretvalue");
        assert!(req.headers["authorization"].is_sensitive());
        assert!(!format!("{auth:?}").contains("ABSK"));
        let aws = BedrockAuth::Aws(SharedCredentialsProvider::new(Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        )));
        assert!(!format!("{aws:?}").contains("AKID"));
        let mut req = request();
        aws.authorize(&mut req, "eu-central-1").await.unwrap();
        assert!(req.headers["authorization"]
            .to_str()
            .unwrap()
            .contains("Credential=AKIDEXAMPLE/"));
        assert!(req.headers.get("x-amz-security-token").is_none());
    }
}
