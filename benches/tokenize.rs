//! Token counting: time to count normal prompts (1 KB, 20 KB, 200 KB) and unspaced ones
//! (120 KB and 4 MiB of base64-like text and of one letter), per vocabulary, with the
//! encoder tollgate uses (`count_text`: the `tiktoken` crate), the one used before
//! (tiktoken-rs) and GitHub's linear-time `bpe-openai`, and the RSS each encoder costs once
//! loaded (VmRSS before and after its first use). Every encoder's count is checked equal.
//!
//! Run: `cargo bench --bench tokenize` (release build). Figures are written down in
//! README.md under "Performance".

#![expect(
    clippy::print_stdout,
    reason = "a benchmark binary: it prints its figures"
)]

use std::time::{Duration, Instant};

use tollgate::tokens::estimate::{count_text, vocab, TokenizerKind};

/// Resident set size of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// English-like prose with punctuation, numbers and line breaks, `len` bytes long.
fn prose(len: usize) -> String {
    const WORDS: [&str; 24] = [
        "the",
        "gateway",
        "meters",
        "every",
        "token,",
        "and",
        "streams",
        "never",
        "buffer.",
        "Reasoning",
        "models",
        "think",
        "first;",
        "then",
        "they",
        "answer\n\n",
        "contract",
        "clause",
        "14.2(b)",
        "shall",
        "apply",
        "to",
        "all",
        "invoices",
    ];
    let mut out = String::with_capacity(len + 16);
    let mut i = 0usize;
    while out.len() < len {
        out.push_str(WORDS[(i * 7 + i / 3) % WORDS.len()]);
        out.push(' ');
        i += 1;
    }
    out.truncate(len);
    out
}

/// base64-like text without whitespace: one pre-token of the whole length.
fn base64_like(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut state: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            char::from(ALPHABET[(state % 64) as usize])
        })
        .collect()
}

/// Mean time per call of `f`, repeated for about half a second (at least once).
fn time(mut f: impl FnMut() -> u64) -> (Duration, u64) {
    let start = Instant::now();
    let mut runs = 0u32;
    let mut n = 0;
    while runs == 0 || (start.elapsed() < Duration::from_millis(500) && runs < 1000) {
        n = std::hint::black_box(f());
        runs += 1;
    }
    (start.elapsed() / runs, n)
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn old_o200k(text: &str) -> u64 {
    tiktoken_rs::o200k_base_singleton()
        .encode_ordinary(text)
        .len() as u64
}

/// o200k_base by the `tiktoken` crate (v4: heap merge, compact vocabulary).
fn tiktoken4_o200k(text: &str) -> u64 {
    tiktoken::get_encoding("o200k_base").map_or(0, |e| e.count(text) as u64)
}

/// o200k_base by GitHub's `bpe-openai` (backtracking BPE, linear worst case).
fn bpe_o200k(text: &str) -> u64 {
    bpe_openai::o200k_base().count(text) as u64
}

/// A token counter over one encoder.
type Counter = fn(&str) -> u64;

fn main() {
    println!("RSS per vocabulary (VmRSS after first use minus before, in load order):");
    let mut last = rss_kib();
    println!("  process before any: {last} KiB");
    let loads: [(&str, Counter); 4] = [
        ("o200k_base, tiktoken crate v4", tiktoken4_o200k),
        ("deepseek_v3, tiktoken crate v4", |t| {
            vocab::load(TokenizerKind::DeepSeekV3);
            count_text(TokenizerKind::DeepSeekV3, t)
        }),
        ("o200k_base, bpe-openai", bpe_o200k),
        ("o200k_base, tiktoken-rs (before)", old_o200k),
    ];
    for (name, f) in loads {
        let _ = f(" ");
        let now = rss_kib();
        println!("  {name}: +{} KiB", now.saturating_sub(last));
        last = now;
    }

    let inputs = [
        ("prose 1 KB", prose(1_000)),
        ("prose 20 KB", prose(20_000)),
        ("prose 200 KB", prose(200_000)),
        ("unspaced base64 120 KB", base64_like(120_000)),
        ("unspaced 'a' x 120,000", "a".repeat(120_000)),
        ("unspaced base64 4 MiB", base64_like(4 << 20)),
        ("unspaced 'a' x 4 MiB", "a".repeat(4 << 20)),
    ];
    println!();
    println!("| input | o200k now (count_text) | o200k tiktoken v4 | o200k bpe-openai | o200k tiktoken-rs (before) | deepseek_v3 | bytes/4 estimate |");
    println!("|---|---|---|---|---|---|---|");
    for (name, text) in &inputs {
        let (now, n) = time(|| count_text(TokenizerKind::O200kBase, text));
        let (t4, t4_n) = time(|| tiktoken4_o200k(text));
        let (bp, bp_n) = time(|| bpe_o200k(text));
        assert_eq!((t4_n, bp_n), (n, n), "{name}: encoders disagree");
        // The old encoder is quadratic on one long pre-token: 4 MiB would take hours.
        let before = if text.len() > 200_000 && !text.contains(' ') {
            "not run (quadratic: hours)".to_owned()
        } else {
            let (d, old) = time(|| old_o200k(text));
            assert_eq!(old, n, "{name}: the new encoder disagrees with the old one");
            ms(d)
        };
        let (ds, ds_n) = time(|| count_text(TokenizerKind::DeepSeekV3, text));
        let (est, est_n) = time(|| tollgate::tokens::estimate::prompt_estimate(text));
        println!(
            "| {name} ({n} tokens) | {} | {} | {} | {before} | {} ({ds_n} tokens) | {} ({est_n}) |",
            ms(now),
            ms(t4),
            ms(bp),
            ms(ds),
            ms(est)
        );
    }
}
