//! Request ids: `tg-` and a UUIDv7 in its 32-hex-digit form. The UUIDv7's leading
//! 48 bits are the request's start in Unix milliseconds, so ids sort by time and a
//! partitioned ledger can be looked up by one. Every id tollgate hands out (answers,
//! errors, ledger records, synthetic ledgers) is made here, so they all look alike.

use chrono::{DateTime, Utc};

/// A new id for a request starting now.
pub fn new() -> String {
    format(uuid::Uuid::now_v7())
}

/// The id of a request that started at `at`, with `random` as its random part:
/// synthetic ledgers (`tollgate ledger seed`) are reproducible from their seed.
pub fn at(at: DateTime<Utc>, random: &[u8; 10]) -> String {
    let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    format(uuid::Builder::from_unix_timestamp_millis(ms, random).into_uuid())
}

fn format(id: uuid::Uuid) -> String {
    format!("tg-{}", id.simple())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ids_are_tg_and_32_hex_digits_and_carry_their_instant() {
        let id = new();
        assert_eq!(id.len(), 35, "{id}");
        assert!(id.starts_with("tg-") && id[3..].bytes().all(|b| b.is_ascii_hexdigit()));
        let t = Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap();
        let seeded = at(t, &[7; 10]);
        let uuid = uuid::Uuid::parse_str(&seeded[3..]).unwrap();
        let (secs, _) = uuid.get_timestamp().unwrap().to_unix();
        assert_eq!(secs, 1_795_770_000);
        assert_eq!(seeded, at(t, &[7; 10]));
    }
}
