use std::path::{Path, PathBuf};

use super::*;

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

fn fake_env(name: &str) -> Option<String> {
    name.ends_with("_KEY").then(|| format!("secret-for-{name}"))
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    std::fs::copy(config_dir().join("prices.toml"), dir.join("prices.toml")).unwrap();
    let path = dir.join("tollgate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const MINIMAL: &str = r#"
[[keys]]
name = "k"
hash = "sha256:e7aab4b439baa8c615eb31e352f5b4259085813fbcd95a65a5a346a6bdfb1bb3"

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
"#;

#[test]
fn every_shipped_config_file_validates() {
    for name in ["demo.toml", "tollgate.example.toml"] {
        let path = config_dir().join(name);
        let raw = load(&path, vec![]).unwrap_or_else(|e| panic!("{name}: {e}"));
        validate(raw, &config_dir(), &fake_env).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn a_typo_in_a_nested_key_is_rejected_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let text = MINIMAL.replace(
        "upstream_model = \"deepseek-reasoner\"",
        "upstream_modle = \"x\", upstream_model = \"deepseek-reasoner\"",
    );
    let err = load(&write_config(dir.path(), &text), vec![]).unwrap_err();
    assert!(
        err.problems
            .iter()
            .any(|p| p.starts_with("models[0].offers[0].upstream_modle: unknown key")),
        "{err}"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let text = MINIMAL
        .replace("jurisdiction = \"CN\"", "jurisdiction = \"China\"")
        .replace("scope = \"regional\"", "scope = \"everywhere\"")
        .replace("env:DEEPSEEK_KEY", "sk-inline-secret")
        .replace("provider = \"ds\"", "provider = \"nope\"");
    let raw = load(&write_config(dir.path(), &text), vec![]).unwrap();
    let err = validate(raw, dir.path(), &fake_env).unwrap_err();
    let joined = err.problems.join("\n");
    for expected in [
        "providers[0].jurisdiction:",
        "providers[0].scope: unknown scope \"everywhere\"; expected one of: regional, datazone, global",
        "providers[0].api_key: secrets must be references",
        "models[0].offers[0].provider: unknown provider \"nope\"",
    ] {
        assert!(joined.contains(expected), "missing {expected:?} in:\n{joined}");
    }
    assert!(
        !joined.contains("sk-inline-secret"),
        "a secret leaked into an error"
    );
}

#[test]
fn environment_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), MINIMAL);
    let env = vec![(
        "TOLLGATE__SERVER__LISTEN".to_owned(),
        "127.0.0.1:18080".to_owned(),
    )];
    let raw = load(&path, env).unwrap();
    let settings = validate(raw, dir.path(), &fake_env).unwrap();
    assert_eq!(settings.listen.port(), 18080);
}

#[test]
fn an_offer_naming_a_price_missing_from_the_catalog_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = MINIMAL.replace("deepseek/deepseek-reasoner\"", "deepseek/no-such-price\"");
    let raw = load(&write_config(dir.path(), &text), vec![]).unwrap();
    let err = validate(raw, dir.path(), &fake_env).unwrap_err();
    assert!(
        err.problems
            .iter()
            .any(|p| p.starts_with("models[0].offers[0].price:")),
        "{err}"
    );
}

// Regression: #10 (a key's own residency replaced `[policy]` instead of narrowing it).
#[test]
fn a_keys_residency_narrows_the_default_and_never_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[policy]\ndeny_jurisdictions = [\"CN\"]\nallow_regions = [\"a\", \"b\"]\n{}",
        MINIMAL.replace(
            "hash = \"sha256:",
            "residency = { allow_scopes = [\"regional\", \"datazone\"], allow_regions = [\"b\", \"c\"], allow_jurisdictions = [\"EU\", \"CN\"] }\nhash = \"sha256:",
        )
    );
    let raw = load(&write_config(dir.path(), &text), vec![]).unwrap();
    let settings = validate(raw, dir.path(), &fake_env).unwrap();
    let policy = &settings.keys[0].residency;
    assert_eq!(policy.deny_jurisdictions, ["CN".to_owned()].into());
    assert_eq!(policy.allow_jurisdictions, Some(["EU".to_owned()].into()));
    assert_eq!(policy.allow_regions, Some(["b".to_owned()].into()));
    assert_eq!(
        policy.allow_scopes,
        Some([Scope::Regional, Scope::Datazone].into())
    );
}

// Found by tests/fuzz_config.rs: an empty key gave a problem without a path.
#[test]
fn an_empty_key_is_reported_with_a_path_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &format!("\"\" = 1\n{MINIMAL}"));
    let err = load(&path, vec![]).unwrap_err();
    assert_eq!(
        err.problems,
        ["\"\": unknown key; see config/tollgate.example.toml for every accepted key"]
    );
    let env = vec![("TOLLGATE__".to_owned(), "x".to_owned())];
    let err = load(&write_config(dir.path(), MINIMAL), env).unwrap_err();
    assert!(err.problems[0].starts_with("\"\": unknown key"), "{err}");
}
