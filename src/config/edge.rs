//! `[server]` limits at the listeners' edge (how long a client may take, how many
//! connections and in-flight requests it may hold) and the admin listener's exposure
//! rule. Checked here; enforced by `server` and `auth`.

use std::net::SocketAddr;
use std::time::Duration;

use super::RawConfig;

/// Timeouts and caps at the edge, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeSettings {
    /// Longest from a request's first byte to the end of its headers.
    pub header_read_timeout: Duration,
    /// Longest a request's body may take to arrive.
    pub body_read_timeout: Duration,
    /// Longest an idle keep-alive connection waits for its next request.
    pub keepalive_timeout: Duration,
    /// Open connections per listener (at least 1).
    pub max_connections: usize,
    /// Requests one key may have in flight; `None` = no cap.
    pub max_in_flight_per_key: Option<u32>,
}

impl Default for EdgeSettings {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(75),
            max_connections: 1024,
            max_in_flight_per_key: Some(64),
        }
    }
}

/// Check `[server]`'s edge keys and the admin listener's exposure; problems go to `push`.
pub fn edge(
    raw: &RawConfig,
    admin_listen: Option<SocketAddr>,
    push: &mut dyn FnMut(String, String),
) -> EdgeSettings {
    let s = &raw.server;
    for (key, value) in [
        ("header_read_timeout", s.header_read_timeout),
        ("body_read_timeout", s.body_read_timeout),
        ("keepalive_timeout", s.keepalive_timeout),
    ] {
        if value.is_zero() {
            push(
                format!("server.{key}"),
                "must be longer than 0s, e.g. \"10s\"".into(),
            );
        }
    }
    if s.max_connections == 0 {
        push("server.max_connections".into(), "must be at least 1".into());
    }
    // Without a key the admin listener is only safe where only this machine reaches it.
    if raw.admin.api_key.is_none() && admin_listen.is_some_and(|a| !a.ip().is_loopback()) {
        push(
            "admin.listen".into(),
            format!(
                "{} is reachable from other hosts and admin.api_key is not set; set admin.api_key = \"env:NAME\" or listen on 127.0.0.1 / [::1]",
                raw.admin.listen
            ),
        );
    }
    EdgeSettings {
        header_read_timeout: s.header_read_timeout,
        body_read_timeout: s.body_read_timeout,
        keepalive_timeout: s.keepalive_timeout,
        max_connections: s.max_connections.max(1),
        max_in_flight_per_key: (s.max_in_flight_per_key > 0).then_some(s.max_in_flight_per_key),
    }
}
