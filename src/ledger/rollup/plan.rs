//! Which source answers which part of a query window `[from, to)`: whole UTC days from
//! `usage_daily` (when the query's dimensions allow), whole hours from `usage_hourly`,
//! and the ragged minutes at either end from the records themselves. Pure arithmetic.

use super::{floor_to, DAY_MS, HOUR_MS};

/// Where one part of a window is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Daily,
    Hourly,
    Records,
}

/// One part of a window: `[from_ms, to_ms)` read from `source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub source: Source,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// A whole number of days beyond any time chrono represents (about ±36 million years),
/// so the period arithmetic below never overflows; open ends of a window are clamped
/// to it, which keeps them whole days.
const FAR_MS: i64 = 13_343_998_895 * DAY_MS;

/// Split `[from_ms, to_ms)` into non-overlapping segments covering it exactly, the
/// coarsest source first. `daily` says whether the daily tier may serve the query.
pub fn plan(from_ms: i64, to_ms: i64, daily: bool) -> Vec<Segment> {
    let (from, to) = (from_ms.clamp(-FAR_MS, FAR_MS), to_ms.clamp(-FAR_MS, FAR_MS));
    let mut out = Vec::new();
    if from >= to {
        return out;
    }
    let (h_from, h_to) = (ceil_to(from, HOUR_MS), floor_to(to, HOUR_MS));
    if h_from >= h_to {
        push(&mut out, Source::Records, from, to);
        return out;
    }
    push(&mut out, Source::Records, from, h_from);
    let (d_from, d_to) = (ceil_to(h_from, DAY_MS), floor_to(h_to, DAY_MS));
    if daily && d_from < d_to {
        push(&mut out, Source::Hourly, h_from, d_from);
        push(&mut out, Source::Daily, d_from, d_to);
        push(&mut out, Source::Hourly, d_to, h_to);
    } else {
        push(&mut out, Source::Hourly, h_from, h_to);
    }
    push(&mut out, Source::Records, h_to, to);
    out
}

/// Whether `[from_ms, to_ms)` has an end inside an hour, which records would answer.
pub fn is_ragged(from_ms: i64, to_ms: i64) -> bool {
    let (from, to) = (from_ms.clamp(-FAR_MS, FAR_MS), to_ms.clamp(-FAR_MS, FAR_MS));
    from < to && (floor_to(from, HOUR_MS) != from || floor_to(to, HOUR_MS) != to)
}

/// The window widened to whole hours at each end whose ragged part lies before
/// `oldest_record_ms`, the oldest record still stored: retention (or an operator) deleted
/// the records there, so reading that part from records would count short, while the
/// hourly rollup still holds the whole hour. Counting the edge's whole hour is the closest
/// answer left; where nothing was deleted it is exact, since the hour then holds no
/// records outside the window. `i64::MAX` stands for an empty table.
pub fn widen_before(from_ms: i64, to_ms: i64, oldest_record_ms: i64) -> (i64, i64) {
    let from = if from_ms < oldest_record_ms {
        floor_to(from_ms.max(-FAR_MS), HOUR_MS)
    } else {
        from_ms
    };
    let to = if to_ms <= oldest_record_ms {
        ceil_to(to_ms.min(FAR_MS), HOUR_MS)
    } else {
        to_ms
    };
    (from, to)
}

fn push(out: &mut Vec<Segment>, source: Source, from_ms: i64, to_ms: i64) {
    if from_ms < to_ms {
        out.push(Segment {
            source,
            from_ms,
            to_ms,
        });
    }
}

fn ceil_to(ms: i64, period: i64) -> i64 {
    let floor = floor_to(ms, period);
    if floor == ms {
        ms
    } else {
        floor + period
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Source::*;

    const H: i64 = HOUR_MS;
    const D: i64 = DAY_MS;

    fn seg(source: Source, from_ms: i64, to_ms: i64) -> Segment {
        Segment {
            source,
            from_ms,
            to_ms,
        }
    }

    #[test]
    fn ragged_ends_come_from_records_whole_days_from_the_daily_tier() {
        let (from, to) = (10 * D + 90 * 60_000, 13 * D + 2 * H + 5);
        assert_eq!(
            plan(from, to, true),
            vec![
                seg(Records, from, 10 * D + 2 * H),
                seg(Hourly, 10 * D + 2 * H, 11 * D),
                seg(Daily, 11 * D, 13 * D),
                seg(Hourly, 13 * D, 13 * D + 2 * H),
                seg(Records, 13 * D + 2 * H, to),
            ]
        );
        assert_eq!(
            plan(from, to, false),
            vec![
                seg(Records, from, 10 * D + 2 * H),
                seg(Hourly, 10 * D + 2 * H, 13 * D + 2 * H),
                seg(Records, 13 * D + 2 * H, to),
            ]
        );
    }

    #[test]
    fn aligned_windows_need_no_records_and_short_ones_only_records() {
        assert_eq!(plan(2 * D, 4 * D, true), vec![seg(Daily, 2 * D, 4 * D)]);
        assert_eq!(plan(5 * H, 7 * H, true), vec![seg(Hourly, 5 * H, 7 * H)]);
        assert_eq!(
            plan(5 * H + 1, 6 * H - 1, true),
            vec![seg(Records, 5 * H + 1, 6 * H - 1)]
        );
        assert_eq!(
            plan(5 * H + 1, 6 * H + 1, true),
            vec![seg(Records, 5 * H + 1, 6 * H + 1)],
            "no whole hour inside: one range of records"
        );
        assert!(plan(7, 7, true).is_empty());
    }

    #[test]
    fn edges_before_the_oldest_record_widen_to_whole_hours() {
        let (from, to) = (5 * H + 10, 9 * H + 20);
        assert_eq!(
            widen_before(from, to, i64::MIN),
            (from, to),
            "nothing deleted"
        );
        assert_eq!(
            widen_before(from, to, 5 * H + 10),
            (from, to),
            "from is kept"
        );
        assert_eq!(widen_before(from, to, 5 * H + 11), (5 * H, to));
        assert_eq!(widen_before(from, to, 9 * H + 20), (5 * H, 10 * H));
        assert_eq!(
            widen_before(from, to, i64::MAX),
            (5 * H, 10 * H),
            "empty table"
        );
        assert_eq!(
            widen_before(5 * H, 6 * H, i64::MAX),
            (5 * H, 6 * H),
            "aligned"
        );
        assert!(is_ragged(from, 9 * H) && is_ragged(5 * H, to));
        assert!(!is_ragged(5 * H, 9 * H) && !is_ragged(i64::MIN, i64::MAX));
    }

    #[test]
    fn open_ends_are_whole_days() {
        let p = plan(i64::MIN, i64::MAX, true);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].source, Daily);
        assert!(p[0].from_ms < -(1 << 59) && p[0].to_ms > 1 << 59);
        assert_eq!((p[0].from_ms % D, p[0].to_ms % D), (0, 0));
    }
}
