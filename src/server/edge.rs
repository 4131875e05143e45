//! The listeners' edge: accepting connections (at most `max_connections` per
//! listener, `TCP_NODELAY` on each), bounding how long a client may hold one
//! (headers within `header_read_timeout`, idle keep-alive within
//! `keepalive_timeout`), and shutting down in phases that every listener shares.
//!
//! Shutdown: `stop` closes the listeners and idle connections, and lets requests
//! and streams in flight finish; `cut` (the deadline) makes what remains end itself
//! (streams send a final error event and are recorded, pending requests answer
//! `503 shutting_down`); `CUT_WINDOW` later, connections still open are dropped, which
//! still records each stream through its body's `Drop`. `serve_with` returns only
//! when every connection task has ended, so the ledger can then be flushed knowing
//! no record can arrive after it.
//!
//! This module does not read bodies (`read_body` bounds that) or know about keys.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use bytes::Bytes;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::edge::EdgeSettings;

/// Time streams get, once ended at the deadline, to deliver their final event
/// before their connections are dropped.
pub const CUT_WINDOW: Duration = Duration::from_secs(1);

/// A pause after a failed `accept` (e.g. out of file descriptors), so the loop
/// waits for resources instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The shutdown phases, shared by every listener, request and stream. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    stop: CancellationToken,
    cut: CancellationToken,
}

impl Shutdown {
    /// Not shutting down yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stop accepting; let requests and streams in flight finish.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// The deadline has come: what is still running ends itself now.
    pub fn cut(&self) {
        self.stop.cancel();
        self.cut.cancel();
    }

    /// Whether the deadline has come.
    pub fn is_cut(&self) -> bool {
        self.cut.is_cancelled()
    }

    /// Resolves at the deadline.
    pub async fn cut_requested(&self) {
        self.cut.cancelled().await;
    }

    /// The deadline as a token, for bodies that poll it.
    pub fn cut_token(&self) -> CancellationToken {
        self.cut.clone()
    }
}

/// Serve `router` on `listener` with the edge limits until `shutdown` stops it, then
/// drain as the module docs describe. Returns once every connection has ended.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    limits: EdgeSettings,
    shutdown: Shutdown,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut conns = JoinSet::new();
    loop {
        let Some(permit) = connection_slot(&permits, &shutdown, limits.max_connections).await
        else {
            break;
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = shutdown.stop.cancelled() => break,
        };
        match accepted {
            Ok((stream, _)) => {
                // Small SSE events must leave at once, not wait for Nagle's timer.
                let _ = stream.set_nodelay(true);
                let conn = connection(stream, router.clone(), limits, shutdown.clone(), permit);
                conns.spawn(conn);
            }
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
        while conns.try_join_next().is_some() {}
    }
    drop(listener);
    drain(&mut conns, &shutdown).await;
}

/// A permit for one more connection; waits (leaving new connections in the kernel's
/// accept queue) while the listener is at its cap. `None` once shutdown stops it.
async fn connection_slot(
    permits: &Arc<Semaphore>,
    shutdown: &Shutdown,
    max: usize,
) -> Option<OwnedSemaphorePermit> {
    if let Ok(p) = Arc::clone(permits).try_acquire_owned() {
        return Some(p);
    }
    tracing::warn!(
        max_connections = max,
        "connection cap reached; new connections wait to be accepted"
    );
    tokio::select! {
        p = Arc::clone(permits).acquire_owned() => p.ok(),
        () = shutdown.stop.cancelled() => None,
    }
}

/// Wait for every connection to end; `CUT_WINDOW` after the deadline, drop the rest.
async fn drain(conns: &mut JoinSet<()>, shutdown: &Shutdown) {
    let past_deadline = async {
        shutdown.cut.cancelled().await;
        tokio::time::sleep(CUT_WINDOW).await;
    };
    tokio::select! {
        () = join_all(conns) => return,
        () = past_deadline => {}
    }
    if !conns.is_empty() {
        tracing::warn!(
            connections = conns.len(),
            "closing connections still open after the shutdown deadline"
        );
    }
    conns.abort_all();
    join_all(conns).await;
}

async fn join_all(conns: &mut JoinSet<()>) {
    while conns.join_next().await.is_some() {}
}

/// One HTTP/1.1 connection, watched for the header and keep-alive deadlines.
async fn connection(
    stream: TcpStream,
    router: Router,
    limits: EdgeSettings,
    shutdown: Shutdown,
    _permit: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: Arc::clone(&activity),
    });
    let on_request = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let guard = RequestActivity::begin(&on_request);
        let router = router.clone();
        async move {
            let resp = tower::ServiceExt::oneshot(router, req.map(Body::new)).await;
            resp.map(|r| r.map(|b| Body::new(Guarded::new(b, guard))))
        }
    });
    // hyper's own header timer also runs while a keep-alive connection is idle, so
    // the two deadlines are kept here instead (see `Activity`).
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .serve_connection(io, service);
    tokio::pin!(conn);
    // Once a graceful close is asked for, the connection ends after its current
    // response (or at once when idle); the deadline then bounds what remains.
    let mut closing = false;
    loop {
        let deadline = if closing {
            None
        } else {
            activity.deadline(&limits)
        };
        tokio::select! {
            _ = conn.as_mut() => return,
            () = activity.changed.notified() => {}
            () = sleep_until(deadline) => {
                let expired = activity.deadline(&limits).is_some_and(|d| d <= Instant::now());
                match activity.phase() {
                    Phase::Head if expired => {
                        tracing::debug!("request headers not received in time; closing the connection");
                        return;
                    }
                    Phase::Idle if expired => {
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    _ => {}
                }
            }
            () = shutdown.stop.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What a connection is doing, for its deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Between requests, nothing received: `keepalive_timeout` runs.
    Idle = 0,
    /// A request has begun arriving (or the connection is new): `header_read_timeout` runs.
    Head = 1,
    /// A request is being served; its body read and response have their own bounds.
    Busy = 2,
}

/// A connection's phase and since when, updated by its reads and requests (all on
/// the connection's own task; atomics only because the pieces must be `Send`).
struct Activity {
    base: Instant,
    phase: AtomicU8,
    since_ms: AtomicU64,
    in_flight: AtomicUsize,
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            phase: AtomicU8::new(Phase::Head as u8),
            since_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            changed: Notify::new(),
        }
    }

    fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Idle,
            1 => Phase::Head,
            _ => Phase::Busy,
        }
    }

    fn enter(&self, phase: Phase) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.since_ms.store(ms, Ordering::Release);
        self.phase.store(phase as u8, Ordering::Release);
        self.changed.notify_one();
    }

    /// Bytes arrived: an idle connection starts receiving a request.
    fn on_bytes(&self) {
        if self.phase() == Phase::Idle {
            self.enter(Phase::Head);
        }
    }

    fn deadline(&self, limits: &EdgeSettings) -> Option<Instant> {
        let limit = match self.phase() {
            Phase::Idle => limits.keepalive_timeout,
            Phase::Head => limits.header_read_timeout,
            Phase::Busy => return None,
        };
        let since = Duration::from_millis(self.since_ms.load(Ordering::Acquire));
        Some(self.base + since + limit)
    }
}

/// Marks a request in flight on its connection until its response body ends.
struct RequestActivity(Arc<Activity>);

impl RequestActivity {
    fn begin(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.enter(Phase::Busy);
        Self(Arc::clone(activity))
    }
}

impl Drop for RequestActivity {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.enter(Phase::Idle);
        }
    }
}

/// The socket, noting when bytes arrive.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.on_bytes();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A response body that holds `G` until it ends (or is dropped): whatever must last
/// as long as the response, streams included.
pub(crate) struct Guarded<G> {
    inner: Body,
    guard: Option<G>,
}

impl<G> Guarded<G> {
    /// Hold `guard` for as long as `inner` is being sent.
    pub(crate) fn new(inner: Body, guard: G) -> Self {
        Self {
            inner,
            guard: Some(guard),
        }
    }
}

impl<G: Send + Unpin + 'static> http_body::Body for Guarded<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.guard = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
