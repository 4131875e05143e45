//! `ledger.retention`: how long raw ledger records are kept. Checked here; the
//! background task that deletes older records is `ledger::retention`.

use std::time::Duration;

/// The shortest retention accepted: anything shorter would delete records the usage
/// API's default window (the last 24 hours) and the writer's retries still need.
pub const MIN_RETENTION: Duration = Duration::from_secs(3600);

/// Check `ledger.retention`; problems go to `push` (dotted path, message). `None` (absent)
/// keeps records forever.
pub fn retention(raw: Option<Duration>, push: &mut dyn FnMut(String, String)) -> Option<Duration> {
    let keep = raw?;
    if keep < MIN_RETENTION {
        push(
            "ledger.retention".into(),
            format!(
                "{} is too short; keep records at least 1h (e.g. \"90d\"), or leave it out to keep them forever",
                humantime_serde::re::humantime::format_duration(keep)
            ),
        );
        return None;
    }
    Some(keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_under_an_hour_is_refused_with_its_path() {
        let mut problems = Vec::new();
        let got = retention(Some(Duration::from_secs(59 * 60)), &mut |k, m| {
            problems.push(format!("{k}: {m}"));
        });
        assert_eq!(got, None);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("ledger.retention: 59m is too short"),
            "{problems:?}"
        );
        let mut none = |_: String, _: String| panic!("no problem expected");
        assert_eq!(retention(None, &mut none), None);
        let day = Duration::from_secs(86_400);
        assert_eq!(retention(Some(90 * day), &mut none), Some(90 * day));
        assert_eq!(
            retention(Some(MIN_RETENTION), &mut none),
            Some(MIN_RETENTION)
        );
    }
}
