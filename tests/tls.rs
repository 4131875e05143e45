//! TLS to the fleet's PostgreSQL and Redis. The local servers speak cleartext, so each
//! test puts a TLS-terminating relay in front of them: a rustls server on 127.0.0.1
//! port 0, with a CA and server certificate made by `rcgen` at test time, that
//! forwards the decrypted bytes to the real server. For PostgreSQL the relay first
//! answers the client's `SSLRequest` with `S`, as a TLS-enabled server does. The relay
//! speaks nothing but TLS, so whatever works through it went encrypted.
//!
//! Tests that need the real servers are `#[ignore]`d with the variable they need
//! (`TOLLGATE_TEST_POSTGRES_URL`, `TOLLGATE_TEST_REDIS_URL`); `.ci/run` sets both and
//! runs them with `--ignored`. Refusals (untrusted certificates) need no server.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failed step fails the test"
)]

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tollgate::ledger::postgres::PostgresLedger;

/// PostgreSQL's `SSLRequest`: length 8, then the code 80877103 (1234 << 16 | 5679).
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// A test CA (its PEM written to a file) and a server certificate it issued.
struct Pki {
    ca_file: PathBuf,
    chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl Pki {
    /// A fresh CA, and a certificate from it for `names` (DNS names or IP addresses).
    fn new(names: &[&str]) -> Self {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Each CA its own name: two test CAs are strangers, not look-alikes.
        let name = format!("tollgate test CA {}", uuid::Uuid::now_v7());
        ca.distinguished_name.push(rcgen::DnType::CommonName, name);
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        Self {
            ca_file,
            chain: vec![cert.der().clone(), ca.der().clone()],
            key: key.serialize_der(),
            _dir: dir,
        }
    }

    fn acceptor(&self) -> TlsAcceptor {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), key)
            .unwrap();
        TlsAcceptor::from(Arc::new(config))
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Protocol {
    Postgres,
    Redis,
}

/// A TLS-terminating relay to `upstream`; counts completed handshakes.
struct Relay {
    addr: SocketAddr,
    handshakes: Arc<AtomicUsize>,
}

impl Relay {
    async fn start(protocol: Protocol, pki: &Pki, upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handshakes = Arc::new(AtomicUsize::new(0));
        let acceptor = pki.acceptor();
        let counter = handshakes.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (acceptor, upstream, counter) =
                    (acceptor.clone(), upstream.clone(), counter.clone());
                tokio::spawn(async move {
                    let _ = relay(protocol, client, acceptor, &upstream, &counter).await;
                });
            }
        });
        Self { addr, handshakes }
    }

    fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}

async fn relay(
    protocol: Protocol,
    mut client: TcpStream,
    acceptor: TlsAcceptor,
    upstream: &str,
    handshakes: &AtomicUsize,
) -> std::io::Result<()> {
    if protocol == Protocol::Postgres {
        let mut first = [0; 8];
        client.read_exact(&mut first).await?;
        if first != SSL_REQUEST {
            // A cleartext start-up: this relay serves TLS only.
            return Ok(());
        }
        client.write_all(b"S").await?;
    }
    let mut tls = acceptor.accept(client).await?;
    handshakes.fetch_add(1, Ordering::SeqCst);
    let mut server = TcpStream::connect(upstream).await?;
    tokio::io::copy_bidirectional(&mut tls, &mut server).await?;
    Ok(())
}

/// `host:port` of a `scheme://[user@]host:port/...` URL.
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let authority = rest.split(['/', '?']).next().unwrap();
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, h)| h)
        .to_owned()
}

fn postgres_url() -> String {
    std::env::var("TOLLGATE_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "TOLLGATE_TEST_POSTGRES_URL is unset: run through .ci/run, or point it at a PostgreSQL"
        )
    })
}

fn redis_url() -> String {
    std::env::var("TOLLGATE_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("TOLLGATE_TEST_REDIS_URL is unset: run through .ci/run, or point it at a Redis")
    })
}

/// A fresh database on the test server; its name.
async fn create_database(admin_url: &str) -> String {
    let name = format!("tollgate_tls_{}", uuid::Uuid::now_v7().simple());
    let (client, conn) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    name
}

async fn drop_database(admin_url: &str, name: &str) {
    let (client, conn) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    client.batch_execute(&sql).await.unwrap();
}

/// The user part of the test server's URL (`postgres@`), or nothing.
fn user_of(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let authority = rest.split(['/', '?']).next().unwrap();
    authority
        .rsplit_once('@')
        .map_or(String::new(), |(u, _)| format!("{u}@"))
}

fn gateway_config(base: &str, extra: &str) -> String {
    format!(
        r#"
{extra}

[admin]
api_key = "env:ADMIN"

[[keys]]
name = "demo"
hash = "{KEY_HASH}"
rate_limit = {{ requests_per_minute = 2 }}

[[providers]]
id = "openai"
kind = "openai"
base_url = "{base}"
api_key = "env:OPENAI"
region = "openai:us"
jurisdiction = "US"
scope = "global"

[[models]]
name = "o1"
offers = [{{ provider = "openai", upstream_model = "o1", price = "openai/o1" }}]
"#
    )
}

#[tokio::test]
#[ignore = "needs TOLLGATE_TEST_POSTGRES_URL (a PostgreSQL); .ci/run sets it and runs this"]
async fn verify_full_with_the_test_ca_writes_and_reads_the_ledger_over_tls() {
    let admin_url = postgres_url();
    let db = create_database(&admin_url).await;
    let pki = Pki::new(&["127.0.0.1"]);
    let relay = Relay::start(Protocol::Postgres, &pki, host_port(&admin_url)).await;
    let url = format!(
        "postgres://{}{}/{db}?sslmode=verify-full&sslrootcert={}",
        user_of(&admin_url),
        relay.addr,
        pki.ca_file.display()
    );
    let fake = FakeUpstream::start(Reply::json(fixture("openai/chat_o1.json"))).await;
    let mut gw = start_gateway_on_postgres(&gateway_config(&fake.base_url, ""), &url).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let resp = gw.chat(chat_body("o1")).await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        ids.push(body["tollgate"]["request_id"].as_str().unwrap().to_owned());
    }
    gw.app
        .as_ref()
        .unwrap()
        .state()
        .ledger
        .flush()
        .await
        .unwrap();
    // Read back through the replica (over TLS) ...
    for id in &ids {
        let resp = Gateway::client()
            .get(format!("{}/v1/tollgate/requests/{id}", gw.url))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{id}");
        let record: Value = resp.json().await.unwrap();
        assert_eq!(record["request_id"], id.as_str(), "{record}");
    }
    // ... and straight from the server: both records landed.
    let direct = PostgresLedger::connect(&replace_db(&admin_url, &db))
        .await
        .unwrap();
    for id in &ids {
        assert!(tollgate::ledger::LedgerSink::find(&direct, id)
            .await
            .unwrap()
            .is_some());
    }
    assert!(relay.handshakes() >= 1, "nothing went through the relay");
    gw.stop().await;
    drop_database(&admin_url, &db).await;
}

/// `url` with its database replaced by `name`.
fn replace_db(url: &str, name: &str) -> String {
    let (base, _) = url.split_once('?').unwrap_or((url, ""));
    let (head, _) = base.rsplit_once('/').unwrap();
    format!("{head}/{name}")
}

#[tokio::test]
#[ignore = "needs TOLLGATE_TEST_POSTGRES_URL (a PostgreSQL); .ci/run sets it and runs this"]
async fn each_sslmode_checks_what_libpq_checks() {
    let admin_url = postgres_url();
    let db = create_database(&admin_url).await;
    // Issued for another host name than the 127.0.0.1 tollgate dials.
    let pki = Pki::new(&["db.internal"]);
    let relay = Relay::start(Protocol::Postgres, &pki, host_port(&admin_url)).await;
    let base = format!("postgres://{}{}/{db}", user_of(&admin_url), relay.addr);
    let ca = pki.ca_file.display();
    let connect = |query: String| {
        let url = format!("{base}?{query}");
        async move { PostgresLedger::connect(&url).await.map(|_| ()) }
    };
    // verify-full: trusted chain, wrong name.
    let err = connect(format!("sslmode=verify-full&sslrootcert={ca}"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("certificate not valid for name \"127.0.0.1\""),
        "{err}"
    );
    // verify-ca: the chain is enough.
    connect(format!("sslmode=verify-ca&sslrootcert={ca}"))
        .await
        .unwrap();
    // require: encrypted, nothing checked (and without a CA file: the built-in roots
    // do not know the test CA, so this proves nothing is checked).
    connect("sslmode=require".into()).await.unwrap();
    // verify-full with the built-in roots: the test CA is unknown.
    let err = connect("sslmode=verify-full".into()).await.unwrap_err();
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    // Without sslmode tollgate speaks cleartext, which the TLS-only relay refuses.
    assert!(connect("connect_timeout=2".into()).await.is_err());
    // Only the accepted certificates completed a handshake.
    assert!(relay.handshakes() >= 2);
    drop_database(&admin_url, &db).await;
}

#[tokio::test]
async fn a_replica_given_the_wrong_ca_does_not_start_and_says_why() {
    // The handshake fails before the relay dials its upstream: nothing listens there.
    let (server_pki, other_pki) = (Pki::new(&["127.0.0.1"]), Pki::new(&["127.0.0.1"]));
    let relay = Relay::start(Protocol::Postgres, &server_pki, "127.0.0.1:1".into()).await;
    let url = format!(
        "postgres://tollgate:hunter2@{}/ledger?sslmode=verify-full&sslrootcert={}",
        relay.addr,
        other_pki.ca_file.display()
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/config/prices.toml"),
        dir.path().join("prices.toml"),
    )
    .unwrap();
    let path = dir.path().join("tollgate.toml");
    let config = gateway_config(
        "http://127.0.0.1:1/v1",
        "[ledger]\nurl = \"env:LEDGER_URL\"",
    );
    std::fs::write(&path, config).unwrap();
    let raw = tollgate::config::load(&path, vec![]).unwrap();
    let env = |n: &str| {
        Some(if n == "LEDGER_URL" {
            url.clone()
        } else {
            format!("secret-{n}")
        })
    };
    let settings = tollgate::config::validate(raw, dir.path(), &env).unwrap();
    let Err(err) = tollgate::build_app(settings).await else {
        panic!("started with an untrusted ledger certificate");
    };
    let message = err.to_string();
    assert!(
        message.starts_with(
            "ledger: PostgreSQL ledger: could not connect: error performing TLS handshake"
        ) && message.contains("invalid peer certificate: UnknownIssuer"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
    assert_eq!(relay.handshakes(), 0);
}

fn limits(url: &str, ca: &std::path::Path, extra: &str) -> String {
    format!(
        "[limits]\nredis_url = {url:?}\nredis_ca_file = {:?}\nkey_prefix = \"tollgate-tls-{}:\"\n{extra}",
        ca.display().to_string(),
        uuid::Uuid::now_v7()
    )
}

#[tokio::test]
#[ignore = "needs TOLLGATE_TEST_REDIS_URL (a Redis); .ci/run sets it and runs this"]
async fn rediss_through_a_tls_relay_enforces_the_shared_rate_limit() {
    let pki = Pki::new(&["127.0.0.1"]);
    let relay = Relay::start(Protocol::Redis, &pki, host_port(&redis_url())).await;
    let fake = FakeUpstream::start(Reply::json(fixture("openai/chat_o1.json"))).await;
    let url = format!("rediss://{}/", relay.addr);
    // Rate limits fail closed: a 200 can only come from Redis admitting it.
    let extra = "on_redis_error = { rate_limits = \"deny\", budgets = \"deny\" }";
    let config = gateway_config(&fake.base_url, &limits(&url, &pki.ca_file, extra));
    let mut gws = [start_gateway(&config).await, start_gateway(&config).await];
    let mut statuses = Vec::new();
    for i in 0..3 {
        let (status, body) = error_of(gws[i % 2].chat(chat_body("o1")).await).await;
        statuses.push((status, body["error"]["code"].as_str().map(str::to_owned)));
    }
    // Two a minute across both replicas: the third is refused by the shared limit.
    assert_eq!(
        statuses,
        [
            (200, None),
            (200, None),
            (429, Some("rate_limited".to_owned()))
        ]
    );
    assert!(relay.handshakes() >= 2, "both replicas connect through TLS");
    for gw in &mut gws {
        gw.stop().await;
    }
}

#[tokio::test]
async fn rediss_with_an_untrusted_certificate_is_not_used() {
    let (server_pki, other_pki) = (Pki::new(&["127.0.0.1"]), Pki::new(&["127.0.0.1"]));
    let relay = Relay::start(Protocol::Redis, &server_pki, "127.0.0.1:1".into()).await;
    let fake = FakeUpstream::start(Reply::json(fixture("openai/chat_o1.json"))).await;
    let url = format!("rediss://{}/", relay.addr);
    let extra = "on_redis_error = { rate_limits = \"deny\", budgets = \"deny\" }";
    let config = gateway_config(&fake.base_url, &limits(&url, &other_pki.ca_file, extra));
    let mut gw = start_gateway(&config).await;
    let (status, body) = error_of(gw.chat(chat_body("o1")).await).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("cannot reach the shared store (Redis)"),
        "{message}"
    );
    assert_eq!(relay.handshakes(), 0);
    assert_eq!(fake.count(), 0);
    gw.stop().await;
}
