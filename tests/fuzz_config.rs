//! Property-based fuzzing of the config loader: valid documents (the shipped example
//! and demo configs, and a minimal one) mutated at random (values swapped for hostile
//! ones, lines deleted, duplicated or inserted, characters inserted, the text cut
//! short), with random `TOLLGATE__` overrides, go through `config::load` and
//! `config::validate`. Neither ever panics, and every rejection is a `ConfigError`
//! whose every problem names where (a key path, or the file) and what, and never
//! echoes a resolved secret. Bounded: a fixed number of cases of bounded size.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test set-up and checks fail the test loudly"
)]

use std::path::Path;

use proptest::prelude::*;
use proptest::sample::Index;
use tollgate::config::{load, validate, ConfigError};

const MINIMAL: &str = r#"
[policy]
deny_jurisdictions = ["CN"]

[[teams]]
name = "t"
budget = { usd_per_day = "1.00" }

[[keys]]
name = "k"
hash = "sha256:e7aab4b439baa8c615eb31e352f5b4259085813fbcd95a65a5a346a6bdfb1bb3"
team = "t"
residency = { allow_scopes = ["regional"] }
rate_limit = { requests_per_minute = 2 }

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
offers = [{ provider = "ds", upstream_model = "deepseek-reasoner", price = "deepseek/deepseek-reasoner", quota = { requests_per_day = 8 } }]
"#;

/// Values that have broken parsers before: wrong types, out-of-range numbers,
/// malformed durations, hashes, references and URLs, odd Unicode.
const VALUES: &[&str] = &[
    "\"\"",
    "\"x\"",
    "-1",
    "0",
    "18446744073709551615",
    "9223372036854775807",
    "1.5",
    "nan",
    "-inf",
    "true",
    "[]",
    "[\"a\", 1]",
    "[[]]",
    "{}",
    "{ a = 1 }",
    "\"env:\"",
    "\"env:UNSET NAME\"",
    "\"sk-inline\"",
    "\"0s\"",
    "\"-5s\"",
    "\"999999999999999d\"",
    "\"sha256:zz\"",
    "\"redis://:pw@h/0\"",
    "\"postgres://u:pw@h/db\"",
    "\"\\u0000\"",
    "\"💥\"",
    "\"global\"",
    "\"GLOBAL\"",
    "\"../../../../nonexistent\"",
    "1979-05-27T07:32:00Z",
];

/// Lines to insert: headers out of place, unknown keys, broken syntax.
const LINES: &[&str] = &[
    "[[keys]]",
    "[[providers]]",
    "[[models]]",
    "[policy]",
    "[server]",
    "[limits]",
    "[limits.on_redis_error]",
    "bogus = 1",
    "name = \"x\"",
    "offers = [{ provider = \"nope\", upstream_model = \"m\" }]",
    "residency = { allow_jurisdictions = [\"EU\"], deny_jurisdictions = 3 }",
    "=",
    "[",
    "\"unterminated",
    "a.b.c = 1",
    "[[teams]]\nname = \"t\"",
];

/// Environment overrides to apply, `TOLLGATE__` prefix included.
const OVERRIDES: &[&str] = &[
    "TOLLGATE__SERVER__LISTEN",
    "TOLLGATE__SERVER__MAX_BODY_BYTES",
    "TOLLGATE__UPSTREAM__MAX_ATTEMPTS",
    "TOLLGATE__LEDGER__FLUSH_INTERVAL",
    "TOLLGATE__POLICY__DENY_JURISDICTIONS",
    "TOLLGATE__LIMITS__REDIS_URL",
    "TOLLGATE__BOGUS",
    "TOLLGATE__",
];

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the value of the chosen `key = value` line.
    Value(Index, &'static str),
    DeleteLine(Index),
    DuplicateLine(Index),
    InsertLine(Index, &'static str),
    /// Insert a character at a character position.
    InsertChar(Index, char),
    /// Cut the text at a character position.
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), proptest::sample::select(VALUES)).prop_map(|(i, v)| Mutation::Value(i, v)),
        2 => any::<Index>().prop_map(Mutation::DeleteLine),
        1 => any::<Index>().prop_map(Mutation::DuplicateLine),
        2 => (any::<Index>(), proptest::sample::select(LINES)).prop_map(|(i, l)| Mutation::InsertLine(i, l)),
        2 => (any::<Index>(), any::<char>()).prop_map(|(i, c)| Mutation::InsertChar(i, c)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    match m {
        Mutation::Value(i, value) => {
            let assignments: Vec<usize> = (0..lines.len())
                .filter(|&n| lines[n].contains(" = "))
                .collect();
            if !assignments.is_empty() {
                let n = assignments[i.index(assignments.len())];
                let key = lines[n].split(" = ").next().unwrap_or_default().to_owned();
                lines[n] = format!("{key} = {value}");
            }
        }
        Mutation::DeleteLine(i) if !lines.is_empty() => {
            lines.remove(i.index(lines.len()));
        }
        Mutation::DuplicateLine(i) if !lines.is_empty() => {
            let n = i.index(lines.len());
            lines.insert(n, lines[n].clone());
        }
        Mutation::InsertLine(i, line) => {
            lines.insert(i.index(lines.len() + 1), (*line).to_owned());
        }
        Mutation::InsertChar(i, c) => {
            let mut chars: Vec<char> = text.chars().collect();
            chars.insert(i.index(chars.len() + 1), *c);
            return chars.into_iter().collect();
        }
        Mutation::Truncate(i) => return text.chars().take(i.index(text.len() + 1)).collect(),
        _ => {}
    }
    lines.join("\n")
}

fn shipped(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("config")
            .join(name),
    )
    .unwrap()
}

fn document() -> impl Strategy<Value = (String, Vec<(String, String)>)> {
    let base = prop_oneof![
        Just(MINIMAL.to_owned()),
        Just(shipped("tollgate.example.toml")),
        Just(shipped("demo.toml")),
    ];
    let overrides = proptest::collection::vec(
        (
            proptest::sample::select(OVERRIDES),
            proptest::sample::select(VALUES),
        )
            .prop_map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned())),
        0..3,
    );
    (base, proptest::collection::vec(mutation(), 1..6), overrides).prop_map(
        |(base, mutations, overrides)| {
            let text = mutations.iter().fold(base, |t, m| apply(&t, m));
            (text, overrides)
        },
    )
}

/// Every problem says where (before `: `) and what (after it).
fn assert_well_formed(err: &ConfigError, text: &str) {
    assert!(
        !err.problems.is_empty(),
        "a rejection without problems for:\n{text}"
    );
    for problem in &err.problems {
        let (path, message) = problem
            .split_once(": ")
            .unwrap_or_else(|| panic!("no path in {problem:?} for:\n{text}"));
        assert!(
            !path.trim().is_empty() && !message.trim().is_empty(),
            "{problem:?} for:\n{text}"
        );
        assert!(
            !problem.contains("resolved-secret-"),
            "a secret leaked: {problem:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_configs_never_panic_and_every_rejection_names_its_path(
        (text, overrides) in document()
    ) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("config/prices.toml"),
            dir.path().join("prices.toml"),
        )
        .unwrap();
        let path = dir.path().join("tollgate.toml");
        std::fs::write(&path, &text).unwrap();
        let env = |name: &str| Some(format!("resolved-secret-{name}"));
        match load(&path, overrides) {
            Ok(raw) => {
                if let Err(e) = validate(raw, dir.path(), &env) {
                    assert_well_formed(&e, &text);
                }
            }
            Err(e) => assert_well_formed(&e, &text),
        }
    }
}
