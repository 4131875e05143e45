//! `tollgate check-config` through the built binary, as operators run it: the command
//! the example config documents works as written (without its secrets set), a
//! malformed secret reference still fails with `--skip-secrets`, and every key's
//! effective residency policy is printed.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers below fail the test loudly"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Run the binary with `args` in `dir`, with an empty environment: no secret is set
/// and no `TOLLGATE__` override leaks in from the test runner.
fn tollgate(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A temporary folder holding the shipped price catalog and `config` as tollgate.toml.
fn config_in(config: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        manifest_dir().join("config/prices.toml"),
        dir.path().join("prices.toml"),
    )
    .unwrap();
    let path = dir.path().join("tollgate.toml");
    std::fs::write(&path, config).unwrap();
    (dir, path)
}

fn example() -> String {
    std::fs::read_to_string(manifest_dir().join("config/tollgate.example.toml")).unwrap()
}

// Regression: #10 (the example's "Validate with" command exited 1: its env: secrets
// were unset).
#[test]
fn the_validate_command_the_example_documents_works_as_written() {
    let example = example();
    let documented = example
        .lines()
        .find_map(|l| l.strip_prefix("# Validate with:"))
        .expect("the example documents how to validate it");
    let mut words = documented.split_whitespace();
    assert_eq!(words.next(), Some("tollgate"));
    let args: Vec<&str> = words.collect();
    let out = tollgate(manifest_dir(), &args);
    assert!(
        out.status.success(),
        "`tollgate {}` failed: {}",
        args.join(" "),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).starts_with("config/tollgate.example.toml: ok ("),
        "{}",
        text(&out.stdout)
    );

    // Without the flag the same file needs its secrets, which is why the flag exists.
    let out = tollgate(
        manifest_dir(),
        &["check-config", "config/tollgate.example.toml"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .contains("providers[0].api_key: environment variable OPENAI_API_KEY is not set"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn skipping_secrets_still_rejects_malformed_references_with_their_paths() {
    let config = example()
        .replace("env:OPENAI_API_KEY", "sk-inline-do-not-print")
        .replace("env:DEEPSEEK_API_KEY", "env:DEEPSEEK API KEY")
        .replace(
            "# api_key = \"env:TOLLGATE_ADMIN_KEY\"",
            "api_key = \"env:\"",
        );
    let (dir, path) = config_in(&config);
    let out = tollgate(
        dir.path(),
        &["check-config", "--skip-secrets", path.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    for expected in [
        "providers[0].api_key: secrets must be references of the form \"env:NAME\"",
        "providers[5].api_key: \"env:DEEPSEEK API KEY\" does not name an environment variable",
        "admin.api_key: \"env:\" does not name an environment variable",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains("sk-inline-do-not-print"),
        "a secret leaked"
    );
}

#[test]
fn skipping_secrets_accepts_url_references_it_cannot_read() {
    let config = example().replace(
        "# url = \"env:TOLLGATE_LEDGER_URL\"",
        "url = \"env:TOLLGATE_LEDGER_URL\"",
    );
    assert!(config.contains("\nurl = \"env:TOLLGATE_LEDGER_URL\""));
    let (dir, path) = config_in(&config);
    let out = tollgate(
        dir.path(),
        &["check-config", "--skip-secrets", path.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn check_config_prints_each_keys_effective_residency_policy() {
    let (dir, path) = config_in(
        r#"
[policy]
deny_jurisdictions = ["CN"]

[[keys]]
name = "scoped"
hash = "sha256:e7aab4b439baa8c615eb31e352f5b4259085813fbcd95a65a5a346a6bdfb1bb3"
residency = { allow_scopes = ["regional", "datazone"], deny_jurisdictions = ["US"] }

[[keys]]
name = "plain"
hash = "sha256:130fb0bdaa1cb416256b5991be9bee5894b3174725916869ab78c31f288a628c"

[[providers]]
id = "ds"
kind = "deepseek"
base_url = "https://api.deepseek.com"
api_key = "env:DEEPSEEK_KEY"
region = "deepseek:cn"
jurisdiction = "CN"
scope = "regional"

[[models]]
name = "r1"
offers = [{ provider = "ds", upstream_model = "deepseek-reasoner", price = "deepseek/deepseek-reasoner" }]
"#,
    );
    let out = tollgate(
        dir.path(),
        &["check-config", "--skip-secrets", path.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for line in [
        "  key \"scoped\": allow_jurisdictions=any deny_jurisdictions=[CN, US] allow_regions=any allow_scopes=[regional, datazone]",
        "  key \"plain\": allow_jurisdictions=any deny_jurisdictions=[CN] allow_regions=any allow_scopes=any",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "missing {line:?} in:\n{stdout}"
        );
    }

    // The example's key: its comment states the effective policy; so does the output.
    let out = tollgate(
        manifest_dir(),
        &[
            "check-config",
            "--skip-secrets",
            "config/tollgate.example.toml",
        ],
    );
    assert!(
        text(&out.stdout).lines().any(|l| l
            == "  key \"team-a\": allow_jurisdictions=[EU] deny_jurisdictions=[CN] allow_regions=any allow_scopes=[regional, datazone]"),
        "{}",
        text(&out.stdout)
    );
}

/// A Bedrock profile or Vertex location that routes prompts wider than the provider
/// declares is valid configuration, but check-config says so.
#[test]
fn cloud_routes_wider_than_their_provider_declares_are_warned_about() {
    let config = r#"
[[providers]]
id = "bedrock-eu"
kind = "bedrock"
aws_region = "eu-central-1"
region = "aws:eu-central-1"
jurisdiction = "EU"
scope = "datazone"

[[providers]]
id = "vertex-global"
kind = "vertex"
gcp_project = "p"
gcp_location = "global"
region = "gcp:global"
jurisdiction = "EU"
scope = "regional"

[[models]]
name = "claude"
offers = [
  { provider = "bedrock-eu", upstream_model = "eu.anthropic.claude-sonnet-4-5-20250929-v1:0" },
  { provider = "bedrock-eu", upstream_model = "us.anthropic.claude-sonnet-4-5-20250929-v1:0" },
  { provider = "bedrock-eu", upstream_model = "global.anthropic.claude-sonnet-4-5-20250929-v1:0" },
  { provider = "vertex-global", upstream_model = "claude-sonnet-4-5@20250929" },
]
"#;
    let (dir, path) = config_in(config);
    let out = tollgate(dir.path(), &["check-config", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let warnings: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    assert_eq!(warnings.len(), 3, "{stdout}");
    assert!(warnings[0].contains("\"us.anthropic") && warnings[0].contains("jurisdiction EU"));
    assert!(warnings[1].contains("global inference profile"));
    assert!(warnings[2].contains("vertex-global") && warnings[2].contains("global location"));
}

/// The cloud kinds' own fields: required where the kind needs them, refused elsewhere.
#[test]
fn cloud_provider_fields_are_checked_with_their_paths() {
    let config = r#"
[[providers]]
id = "b"
kind = "bedrock"
region = "aws:x"
jurisdiction = "EU"
scope = "regional"

[[providers]]
id = "v"
kind = "vertex"
api_key = "env:NOPE"
gcp_project = "p"
region = "gcp:x"
jurisdiction = "EU"
scope = "regional"

[[providers]]
id = "g"
kind = "gemini"
aws_region = "eu-west-1"
region = "google:global"
jurisdiction = "GLOBAL"
scope = "global"
"#;
    let (dir, path) = config_in(config);
    let out = tollgate(
        dir.path(),
        &["check-config", "--skip-secrets", path.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    for problem in [
        "providers[0].aws_region: required for kind = \"bedrock\"",
        "providers[1].api_key: not taken by Vertex AI",
        "providers[1].gcp_location: required for kind = \"vertex\"",
        "providers[2].api_key: required",
        "providers[2].aws_region: only allowed with kind = \"bedrock\"",
    ] {
        assert!(
            stderr.contains(problem),
            "missing {problem:?} in:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains("providers[0].api_key"),
        "optional for bedrock:\n{stderr}"
    );
    assert!(
        !stderr.contains("base_url"),
        "derived for the cloud kinds:\n{stderr}"
    );
}
