//! The only outbound I/O: one pooled reqwest client for every upstream, the
//! first-byte deadline, and classifying what came back. Failover order and what to
//! tell the client are decided by the caller (`server::chat`).
//!
//! Redirects are never followed: a request (and the provider secret in its headers)
//! goes only to the configured scheme, host and port, and a 3xx is a failed attempt.
//! An upstream's `retry-after` is clamped to `upstream.max_retry_after` here, so no
//! consumer ever sees an unbounded wait.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;

use crate::config::Settings;
use crate::providers::{UpstreamFailure, UpstreamRequest};

/// Largest error body read from an upstream (to extract its message).
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Largest non-streaming response accepted from an upstream.
const MAX_RESPONSE_BODY: usize = 32 * 1024 * 1024;

/// Why an attempt failed before anything reached the client.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    /// No connection could be made (DNS, refused, TLS).
    #[error("could not connect to the upstream")]
    Connect,
    /// No response head or first chunk within the first-byte deadline.
    #[error("the upstream did not answer in time")]
    Timeout,
    /// The upstream answered with an error status.
    #[error("the upstream answered {}", .0.status)]
    Failed(UpstreamFailure),
    /// The upstream's answer broke off or was malformed.
    #[error("the upstream's answer was unusable: {0}")]
    Protocol(&'static str),
    /// The upstream answered with a redirect (the status), which is never followed.
    #[error("the upstream answered with a redirect ({0}), which is never followed")]
    Redirect(u16),
    /// The request could not be authorized (no AWS or Google credentials, a token that
    /// was not issued); the reason names what failed, never a secret. Nothing was sent.
    #[error("tollgate could not authorize the request: {0}")]
    Credentials(String),
}

impl AttemptError {
    /// Whether the next offer should be tried.
    pub fn is_retryable(&self) -> bool {
        match self {
            AttemptError::Connect
            | AttemptError::Timeout
            | AttemptError::Protocol(_)
            | AttemptError::Redirect(_)
            | AttemptError::Credentials(_) => true,
            AttemptError::Failed(f) => f.is_retryable(),
        }
    }

    /// A closed label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            AttemptError::Connect => "connect",
            AttemptError::Timeout => "timeout",
            AttemptError::Failed(_) => "status",
            AttemptError::Protocol(_) => "protocol",
            AttemptError::Redirect(_) => "redirect",
            AttemptError::Credentials(_) => "credentials",
        }
    }
}

/// A boxed upstream byte stream.
pub type ByteStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

/// A streaming answer whose first chunk has arrived: from here on the request is
/// committed to this upstream.
pub struct OpenStream {
    pub first_chunk: Bytes,
    pub rest: ByteStream,
    pub content_type: Option<String>,
}

/// The shared HTTP client and deadlines.
#[derive(Clone)]
pub struct Upstream {
    client: reqwest::Client,
    first_byte_timeout: Duration,
    body_timeout: Duration,
    max_retry_after: Duration,
}

impl Upstream {
    /// One connection pool for the process: every upstream reuses its connections.
    pub fn new(settings: &Settings) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")))
            // Following a redirect would re-send the prompt (and Azure's `api-key`,
            // which reqwest does not strip across hosts) to a host nobody configured,
            // possibly in another jurisdiction or over cleartext.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            client,
            first_byte_timeout: settings.first_byte_timeout,
            body_timeout: settings.idle_timeout,
            max_retry_after: settings.max_retry_after,
        })
    }

    /// Send and wait for a 2xx head; an error status is read and classified.
    async fn head(&self, req: UpstreamRequest) -> Result<reqwest::Response, AttemptError> {
        let send = self
            .client
            .post(&req.url)
            .headers(req.headers)
            .body(req.body)
            .send();
        let resp = match tokio::time::timeout(self.first_byte_timeout, send).await {
            Err(_) => return Err(AttemptError::Timeout),
            Ok(Err(e)) if e.is_timeout() => return Err(AttemptError::Timeout),
            Ok(Err(_)) => return Err(AttemptError::Connect),
            Ok(Ok(r)) => r,
        };
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        if resp.status().is_redirection() {
            // Its body and `location` are not read: nothing of it reaches anyone.
            return Err(AttemptError::Redirect(status));
        }
        let headers = resp.headers().clone();
        let body = read_capped(resp, MAX_ERROR_BODY, self.body_timeout)
            .await
            .unwrap_or_default();
        let mut failure = UpstreamFailure::from_response(status, &headers, &body);
        let max_secs = self.max_retry_after.as_secs();
        failure.retry_after_secs = failure.retry_after_secs.map(|s| s.min(max_secs));
        Err(AttemptError::Failed(failure))
    }

    /// A non-streaming call: the whole JSON body.
    pub async fn call(&self, req: UpstreamRequest) -> Result<Bytes, AttemptError> {
        let resp = self.head(req).await?;
        read_capped(resp, MAX_RESPONSE_BODY, self.body_timeout).await
    }

    /// A streaming call, returned once the first chunk has arrived, so that a
    /// failure before any byte reaches the client can still fail over.
    pub async fn open_stream(&self, req: UpstreamRequest) -> Result<OpenStream, AttemptError> {
        let deadline = tokio::time::Instant::now() + self.first_byte_timeout;
        let resp = self.head(req).await?;
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut rest: ByteStream = Box::pin(resp.bytes_stream());
        loop {
            match tokio::time::timeout_at(deadline, rest.next()).await {
                Err(_) => return Err(AttemptError::Timeout),
                Ok(None) => return Err(AttemptError::Protocol("the stream ended before any data")),
                Ok(Some(Err(_))) => {
                    return Err(AttemptError::Protocol("the stream broke before any data"))
                }
                Ok(Some(Ok(chunk))) if chunk.is_empty() => continue,
                Ok(Some(Ok(first_chunk))) => {
                    return Ok(OpenStream {
                        first_chunk,
                        rest,
                        content_type,
                    })
                }
            }
        }
    }
}

async fn read_capped(
    resp: reqwest::Response,
    cap: usize,
    timeout: Duration,
) -> Result<Bytes, AttemptError> {
    let read = async {
        let mut out = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| AttemptError::Protocol("the response body broke off"))?;
            if out.len() + chunk.len() > cap {
                return Err(AttemptError::Protocol("the response body is too large"));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(out))
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| AttemptError::Timeout)?
}
