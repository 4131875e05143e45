//! `tollgate ledger seed`, the built binary: it fills a new SQLite ledger with the
//! number of records asked for, which the usage API's own readers then read back
//! (`tollgate report`), and refuses a ledger that already has records unless `--append`.

#![expect(
    clippy::unwrap_used,
    reason = "test code: a failed step fails the test"
)]

use std::path::Path;
use std::process::{Command, Output};

fn tollgate(args: &[&str], ledger: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .arg("--ledger")
        .arg(ledger)
        .output()
        .unwrap()
}

fn report_requests(ledger: &Path) -> u64 {
    let out = tollgate(
        &["report", "--from", "2000-01-01", "--format", "json"],
        ledger,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    report["totals"]["requests"].as_u64().unwrap()
}

#[test]
fn seed_fills_a_new_ledger_and_refuses_one_with_records_unless_appending() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("nested/ledger.db");
    let seed = ["ledger", "seed", "--records", "3000", "--days", "7"];
    let out = tollgate(&seed, &ledger);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .starts_with("wrote 3000 synthetic records over 7 days"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(report_requests(&ledger), 3_000);

    let out = tollgate(&seed, &ledger);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("already holds records; pass --append"),
        "{stderr}"
    );
    assert_eq!(report_requests(&ledger), 3_000, "nothing was written");

    // A different seed, so the new records do not collide with the first ones.
    let out = tollgate(
        &[
            "ledger",
            "seed",
            "--records",
            "500",
            "--days",
            "7",
            "--seed",
            "2",
            "--append",
        ],
        &ledger,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report_requests(&ledger), 3_500);
}
