//! The PostgreSQL ledger of a fleet: two gateways (two replicas, in one test process,
//! each with its own writer and pool) write into one database, and the usage API,
//! the request look-up and `tollgate report` of either see every record of both; and
//! when the database goes away under load, records wait in the queue (`/readyz` says
//! so) and all land once it is back.
//!
//! The tests need a PostgreSQL at `TOLLGATE_TEST_POSTGRES_URL`, so a plain `cargo test`
//! lists them as ignored (with that reason), never as passed; `.ci/run` sets the
//! variable to the local server, starting it if needed, and runs them with
//! `--ignored`. Run by hand without the variable, they fail saying what is missing.
//! Each test creates its own database and drops it at the end.
//!
//! The rollup tests here are `tests/rollups.rs`' on PostgreSQL: a 100,000-record fleet
//! ledger answers exactly like the per-record fold, `rebuild-rollups` reproduces the
//! writer's rollups, and a database from before rollups upgrades in place.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failed step fails the test"
)]

mod common;
mod ledger_fixture;

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rust_decimal::Decimal;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// A fresh database on the test server, dropped with the value.
struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    async fn create() -> Self {
        let Ok(admin_url) = std::env::var("TOLLGATE_TEST_POSTGRES_URL") else {
            panic!("TOLLGATE_TEST_POSTGRES_URL is unset: there is no PostgreSQL for the fleet ledger (.ci/run sets it)");
        };
        let name = format!("tollgate_test_{}", uuid::Uuid::now_v7().simple());
        execute(&admin_url, &format!("CREATE DATABASE {name}")).await;
        let url = replace_database(&admin_url, &name);
        Self {
            admin_url,
            name,
            url,
        }
    }

    async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    }

    /// Number of rows in `requests`.
    async fn count(&self) -> i64 {
        let sql = "SELECT count(*) FROM requests";
        self.client()
            .await
            .query_one(sql, &[])
            .await
            .unwrap()
            .get(0)
    }

    /// Exact sum of `cost_usd` as PostgreSQL's NUMERIC adds it.
    async fn cost_sum(&self) -> Decimal {
        let sql = "SELECT COALESCE(sum(cost_usd), 0) FROM requests";
        self.client()
            .await
            .query_one(sql, &[])
            .await
            .unwrap()
            .get(0)
    }

    async fn drop_now(self) {
        execute(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        )
        .await;
    }
}

async fn execute(url: &str, sql: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client.batch_execute(sql).await.unwrap();
}

/// `url` with its database path replaced by `name` (query string kept).
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn config(base: &str) -> String {
    format!(
        r#"
[admin]
api_key = "env:ADMIN"

[[keys]]
name = "demo"
hash = "{KEY_HASH}"

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

async fn admin_json(gw: &Gateway, path: &str) -> Value {
    let resp = Gateway::client()
        .get(format!("{}{path}", gw.admin_url))
        .bearer_auth("secret-ADMIN")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap()
}

/// Send a chat, return its request id and the cost it reported.
async fn chat(gw: &Gateway) -> (String, Decimal) {
    let resp = gw.chat(chat_body("o1")).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let id = body["tollgate"]["request_id"].as_str().unwrap().to_owned();
    let cost = Decimal::from_str(body["tollgate"]["cost_usd"].as_str().unwrap()).unwrap();
    (id, cost)
}

#[tokio::test]
#[ignore = "needs TOLLGATE_TEST_POSTGRES_URL (a PostgreSQL); .ci/run sets it and runs this"]
async fn two_replicas_share_one_postgres_ledger() {
    let db = TestDatabase::create().await;
    let fake = FakeUpstream::start(Reply::json(fixture("openai/chat_o1.json"))).await;
    let config = config(&fake.base_url);
    // Started together: both migrate the same new database at once.
    let (a, b) = tokio::join!(
        start_gateway_on_postgres(&config, &db.url),
        start_gateway_on_postgres(&config, &db.url)
    );
    let mut gws = [a, b];
    let mut sent = Vec::new();
    for i in 0..10 {
        sent.push(chat(&gws[i % 2]).await);
    }
    let expected: Decimal = sent.iter().map(|(_, c)| *c).sum();
    assert!(expected > Decimal::ZERO);

    // Each replica flushes only its own writer: make both durable, then read.
    for gw in &gws {
        gw.app
            .as_ref()
            .unwrap()
            .state()
            .ledger
            .flush()
            .await
            .unwrap();
    }
    for gw in &gws {
        let usage = admin_json(gw, "/admin/usage?from=2000-01-01&group_by=key").await;
        assert_eq!(usage["totals"]["requests"], 10, "{usage}");
        assert_eq!(
            Decimal::from_str(usage["totals"]["cost_usd"].as_str().unwrap()).unwrap(),
            expected
        );
        let page = admin_json(gw, "/admin/requests?from=2000-01-01&limit=4").await;
        assert_eq!(page["requests"].as_array().unwrap().len(), 4);
        let mut ids = Vec::new();
        let mut cursor = page["next_cursor"].as_str().map(str::to_owned);
        ids.extend(page["requests"].as_array().unwrap().iter().cloned());
        while let Some(c) = cursor {
            let next = admin_json(
                gw,
                &format!("/admin/requests?from=2000-01-01&limit=4&cursor={c}"),
            )
            .await;
            ids.extend(next["requests"].as_array().unwrap().iter().cloned());
            cursor = next["next_cursor"].as_str().map(str::to_owned);
        }
        assert_eq!(ids.len(), 10, "paging through both replicas' records");
    }
    // A record written by replica 0 is served by replica 1, field for field.
    let (id, cost) = &sent[0];
    let resp = Gateway::client()
        .get(format!("{}/v1/tollgate/requests/{id}", gws[1].url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let record: Value = resp.json().await.unwrap();
    assert_eq!(record["request_id"], id.as_str());
    assert_eq!(
        Decimal::from_str(record["cost_usd"].as_str().unwrap()).unwrap(),
        *cost
    );
    // The NUMERIC column holds the exact same money.
    assert_eq!(db.count().await, 10);
    assert_eq!(db.cost_sum().await, expected);

    for gw in &mut gws {
        gw.stop().await;
    }
    // `tollgate report` reads the same database through the config's ledger.url.
    let config_path = gws[0].write_config(&config);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["report", "--config"])
        .arg(&config_path)
        .args([
            "--from",
            "2000-01-01",
            "--group-by",
            "model",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["totals"]["requests"], 10);
    assert_eq!(
        Decimal::from_str(report["totals"]["cost_usd"].as_str().unwrap()).unwrap(),
        expected
    );
    db.drop_now().await;
}

/// A TCP relay in front of PostgreSQL that can be cut (every connection closed, new
/// ones refused) and restored, as the database going down and coming back looks to
/// its clients.
struct Relay {
    url: String,
    up: Arc<AtomicBool>,
    conns: Arc<std::sync::Mutex<JoinSet<()>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(target_url: &str) -> Self {
        let target = host_port(target_url);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = target_url.replacen(&target, &format!("127.0.0.1:{port}"), 1);
        let up = Arc::new(AtomicBool::new(true));
        let conns = Arc::new(std::sync::Mutex::new(JoinSet::new()));
        let accept = {
            let (up, conns) = (up.clone(), conns.clone());
            tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let target = target.clone();
                    conns.lock().unwrap().spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(&target).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                }
            })
        };
        Self {
            url,
            up,
            conns,
            accept,
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.conns.lock().unwrap().abort_all();
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// `host:port` of a PostgreSQL URL (default port 5432).
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let authority = rest.split(['/', '?']).next().unwrap();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    }
}

#[tokio::test]
#[ignore = "needs TOLLGATE_TEST_POSTGRES_URL (a PostgreSQL); .ci/run sets it and runs this"]
async fn records_wait_out_a_postgres_outage_and_none_are_lost() {
    let db = TestDatabase::create().await;
    let relay = Relay::start(&db.url).await;
    let fake = FakeUpstream::start(Reply::json(fixture("openai/chat_o1.json"))).await;
    let mut gw = start_gateway_on_postgres(&config(&fake.base_url), &relay.url).await;
    let ready = |gw: &Gateway| {
        let url = format!("{}/readyz", gw.admin_url);
        async move {
            Gateway::client()
                .get(url)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let mut sent = Vec::new();
    for _ in 0..5 {
        sent.push(chat(&gw).await);
    }
    assert_eq!(ready(&gw).await, 200);

    relay.cut();
    // Requests keep being served while the ledger cannot be written.
    for _ in 0..20 {
        sent.push(chat(&gw).await);
    }
    let mut saw_unready = false;
    for _ in 0..100 {
        if ready(&gw).await == 503 {
            saw_unready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(saw_unready, "/readyz must say the ledger cannot be written");
    let queued = gw.app.as_ref().unwrap().state().ledger.queue_depth();
    assert!(
        queued > 0,
        "records wait in the queue while the database is down"
    );

    relay.restore();
    let mut recovered = false;
    for _ in 0..200 {
        if ready(&gw).await == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        recovered,
        "the writer must recover once the database is back"
    );
    let dropped = gw.app.as_ref().unwrap().state().ledger.dropped_total();
    assert_eq!(
        dropped, 0,
        "no record may be dropped within the queue bound"
    );
    gw.stop().await;
    assert_eq!(db.count().await, 25);
    let expected: Decimal = sent.iter().map(|(_, c)| *c).sum();
    assert_eq!(db.cost_sum().await, expected);
    drop(relay);
    db.drop_now().await;
}

/// Both rollup tables, every row as PostgreSQL prints it, in key order.
async fn dump_rollups(db: &TestDatabase) -> Vec<String> {
    let client = db.client().await;
    let mut out = Vec::new();
    for t in ["usage_hourly", "usage_daily"] {
        let sql = format!("SELECT t::text FROM {t} t ORDER BY 1");
        for row in client.query(&sql, &[]).await.unwrap() {
            out.push(row.get(0));
        }
    }
    out
}

#[tokio::test]
#[ignore = "needs TOLLGATE_TEST_POSTGRES_URL (a PostgreSQL); .ci/run sets it and runs this"]
async fn a_100k_record_fleet_ledger_answers_exactly_like_the_per_record_fold() {
    use ledger_fixture::checks;
    let db = TestDatabase::create().await;
    let records = ledger_fixture::records(100_000, 12);
    let stored = ledger_fixture::stored(&records);
    let mut gw = start_gateway_on_postgres(&checks::config(), &db.url).await;
    let app = gw.app.as_ref().unwrap().state();
    checks::write(&app.ledger, &records).await;
    assert_eq!(
        db.count().await,
        stored.len() as i64,
        "duplicates are not stored"
    );
    checks::assert_answers_equal_the_fold(&gw, &stored).await;
    checks::assert_daily_spend_equals_the_fold(&app.store, &stored).await;
    drop(app);
    gw.stop().await;

    let before = dump_rollups(&db).await;
    assert!(before.len() > 1_000, "{} rollup rows", before.len());
    let config_path = gw.write_config(&checks::config());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["ledger", "rebuild-rollups", "--config"])
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("rolled up {} records", stored.len())),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(dump_rollups(&db).await, before);
    db.drop_now().await;
}

/// The fleet ledger's schema before rollups (version 1), as tollgate created it.
const PG_V1_SCHEMA: &str = "
    CREATE TABLE requests (
        request_id TEXT PRIMARY KEY, created_at TIMESTAMPTZ NOT NULL,
        created_at_ms BIGINT NOT NULL, key_name TEXT NOT NULL, logical_model TEXT,
        provider TEXT, region TEXT, jurisdiction TEXT, processing_scope TEXT,
        input_tokens BIGINT, cached_input_tokens BIGINT, cache_write_tokens BIGINT,
        output_tokens BIGINT, reasoning_tokens BIGINT, usage_source TEXT NOT NULL,
        cost_usd NUMERIC, pricing TEXT NOT NULL, latency_ms BIGINT NOT NULL, ttfb_ms BIGINT,
        status INTEGER NOT NULL, outcome TEXT NOT NULL, error_code TEXT, record JSON NOT NULL
    );
    CREATE INDEX requests_created_at_ms ON requests (created_at_ms);
    CREATE INDEX requests_key_name ON requests (key_name, created_at_ms);
    CREATE INDEX requests_logical_model ON requests (logical_model, created_at_ms);
    CREATE TABLE tollgate_schema (version INTEGER NOT NULL);
    INSERT INTO tollgate_schema VALUES (1);
";

#[tokio::test]
#[ignore = "needs TOLLGATE_TEST_POSTGRES_URL (a PostgreSQL); .ci/run sets it and runs this"]
async fn a_fleet_database_from_before_rollups_upgrades_in_place() {
    let db = TestDatabase::create().await;
    let mut stored = ledger_fixture::stored(&ledger_fixture::records(12_000, 2));
    // Records of that version carry no team, in their columns or their JSON.
    for r in &mut stored {
        r.team = None;
    }
    {
        let mut client = db.client().await;
        client.batch_execute(PG_V1_SCHEMA).await.unwrap();
        let tx = client.transaction().await.unwrap();
        let insert = tx
            .prepare(
                "INSERT INTO requests (request_id, created_at, created_at_ms, key_name,
                 logical_model, provider, usage_source, cost_usd, pricing, latency_ms, status,
                 outcome, record) VALUES ($1, $2, $3, $4, $5, $6, 'x', $7, 'x', 0, 0, 'x', $8)",
            )
            .await
            .unwrap();
        for r in &stored {
            let mut json = serde_json::to_value(r).unwrap();
            json.as_object_mut().unwrap().remove("team");
            tx.execute(
                &insert,
                &[
                    &r.request_id,
                    &r.created_at,
                    &r.created_at.timestamp_millis(),
                    &r.key_name,
                    &r.logical_model,
                    &r.provider,
                    &r.cost_usd,
                    &tokio_postgres::types::Json(&json),
                ],
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
    let pg = tollgate::ledger::postgres::PostgresLedger::connect(&db.url)
        .await
        .unwrap();
    let store = tollgate::ledger::LedgerStore::Postgres(pg);
    for (query, from, to) in ledger_fixture::windows() {
        let mut parts = query.split('&').map(|p| p.split_once('=').unwrap().1);
        let filter =
            tollgate::usage::Filter::parse(parts.next(), parts.next(), chrono::Utc::now()).unwrap();
        for grouping in ["", "key,team", "model,provider,jurisdiction", "hour"] {
            let group_by = tollgate::usage::parse_group_by(Some(grouping)).unwrap();
            let names: Vec<&str> = group_by.iter().map(|g| g.as_str()).collect();
            let summary = tollgate::usage::summary(&store, &filter, &group_by)
                .await
                .unwrap();
            let body = serde_json::to_value(&summary).unwrap();
            let want = ledger_fixture::usage(&stored, from, to, &names, None, None);
            assert_eq!(
                ledger_fixture::usage_from_api(&body, &names),
                want,
                "{query} {grouping}"
            );
        }
    }
    let version: i32 = db
        .client()
        .await
        .query_one("SELECT version FROM tollgate_schema", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, 3, "rollups, then monthly partitions");
    drop(store);
    db.drop_now().await;
}

#[tokio::test]
#[ignore = "needs TOLLGATE_TEST_POSTGRES_URL (a PostgreSQL); .ci/run sets it and runs this"]
async fn a_record_sent_twice_in_one_batch_or_again_later_is_stored_and_rolled_up_once() {
    use tollgate::ledger::postgres::PostgresLedger;
    use tollgate::ledger::LedgerSink;
    let db = TestDatabase::create().await;
    let ledger = PostgresLedger::connect(&db.url).await.unwrap();
    let records = ledger_fixture::records(3, 7);
    let (a, b, c) = (&records[0], &records[1], &records[2]);
    let mut a_again = b.clone();
    a_again.request_id = a.request_id.clone();
    a_again.created_at = a.created_at;
    // One batch with a duplicate inside it, then a batch repeating a stored record.
    ledger
        .write_batch(&[a.clone(), a_again.clone(), b.clone()])
        .await
        .unwrap();
    ledger
        .write_batch(&[b.clone(), c.clone(), a_again])
        .await
        .unwrap();
    assert_eq!(db.count().await, 3);
    let client = db.client().await;
    for table in ["usage_hourly", "usage_daily"] {
        let sql = format!("SELECT SUM(requests)::BIGINT, SUM(cost_usd) FROM {table}");
        let row = client.query_one(&sql, &[]).await.unwrap();
        assert_eq!(row.get::<_, i64>(0), 3, "{table} counts each record once");
        let cost: Decimal = row.get(1);
        let expected: Decimal = [a, b, c].iter().filter_map(|r| r.cost_usd).sum();
        assert_eq!(cost, expected, "{table} sums the first of each record");
    }
    let stored = ledger.find(&a.request_id).await.unwrap().unwrap();
    assert_eq!(stored, *a, "the first of a request id stands");
    drop(client);
    db.drop_now().await;
}
