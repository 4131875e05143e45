//! `/admin/export`: every record of a window as CSV, produced a page at a time so memory
//! stays bounded by one page whatever the window holds. Records come newest first (the
//! order of `/admin/requests`), read with the ledger's keyset paging; each page becomes
//! one chunk of CSV text (the rows of `format::records_csv`, written by `format::CsvText`
//! into one buffer per page). The stream is lazy: a page
//! is read only when the previous chunk has been taken, so a slow client slows the reads
//! rather than filling memory. Reading only; serving it is `server::export`.

use bytes::Bytes;
use chrono::DateTime;
use futures_util::Stream;

use super::{format, UsageError};
use crate::ledger::filter::Filter;
use crate::ledger::LedgerStore;

/// Records read per page.
pub const PAGE: i64 = 1_000;

/// Where the export has got to.
struct Position {
    store: LedgerStore,
    filter: Filter,
    /// The last record sent (`created_at_ms`, `request_id`); `None` before the first page.
    cursor: Option<(i64, String)>,
    /// The first chunk carries the header row.
    first: bool,
    done: bool,
}

/// The CSV of every record matching `filter`, newest first, as chunks: the first holds the
/// header and the first page (so an empty window is a header alone), each later one a
/// page. After an error the stream ends.
pub fn csv_pages(
    store: LedgerStore,
    filter: Filter,
) -> impl Stream<Item = Result<Bytes, UsageError>> {
    let start = Position {
        store,
        filter,
        cursor: None,
        first: true,
        done: false,
    };
    futures_util::stream::unfold(start, |mut at| async move {
        if at.done {
            return None;
        }
        let chunk = next_chunk(&mut at).await;
        if chunk.is_err() {
            at.done = true;
        }
        Some((chunk, at))
    })
}

async fn next_chunk(at: &mut Position) -> Result<Bytes, UsageError> {
    let mut window = at.filter.clone();
    if let Some((ms, _)) = &at.cursor {
        // Bound the scan at the cursor too, so each page's index range starts where the
        // last one ended instead of skipping over every record already sent.
        let through = DateTime::from_timestamp_millis(ms.saturating_add(1));
        window.to = match (window.to, through) {
            (Some(to), Some(t)) => Some(to.min(t)),
            (to, t) => t.or(to),
        };
    }
    let records = at.store.page(&window, at.cursor.take(), PAGE).await?;
    // One buffer for the page, sized once; rows are written straight into it.
    let mut text = format::CsvText::with_capacity(format::RECORD_ROW_BYTES * (records.len() + 1));
    if at.first {
        text.record_header()?;
        at.first = false;
    }
    for r in &records {
        text.record_row(r)?;
    }
    at.done = i64::try_from(records.len()).unwrap_or(i64::MAX) < PAGE;
    at.cursor = records
        .last()
        .map(|r| (r.created_at.timestamp_millis(), r.request_id.clone()));
    Ok(Bytes::from(text.into_bytes()?))
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;
    use crate::ledger::sqlite::SqliteSink;
    use crate::ledger::{LedgerSink, Outcome, PricingStatus, UsageRecord, UsageSource};

    fn record(i: i64) -> UsageRecord {
        UsageRecord {
            request_id: format!("r-{i:05}"),
            // Pairs share a millisecond: the cursor's request id breaks the tie.
            created_at: DateTime::from_timestamp_millis(1_760_000_000_000 + i / 2).unwrap(),
            key_name: "k".into(),
            team: None,
            route: "chat_completions".into(),
            logical_model: None,
            provider: None,
            upstream_model: None,
            region: None,
            jurisdiction: None,
            processing_scope: None,
            stream: false,
            input_tokens: None,
            cached_input_tokens: None,
            cache_write_tokens: None,
            cache_write_1h_tokens: None,
            output_tokens: None,
            reasoning_tokens: None,
            usage_source: UsageSource::None,
            cost_usd: None,
            price_id: None,
            pricing: PricingStatus::NotApplicable,
            latency_ms: 1,
            ttfb_ms: None,
            status: 401,
            outcome: Outcome::Rejected,
            error_code: Some("invalid_api_key".into()),
            attempts: 0,
            policy: crate::ledger::PolicyJson::default(),
            audit: crate::ledger::PriceAudit::default(),
        }
    }

    #[tokio::test]
    async fn pages_cover_every_record_once_and_a_read_error_ends_the_stream() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let sink = SqliteSink::open(&path).unwrap();
        let records: Vec<UsageRecord> = (0..2_500).map(record).collect();
        sink.write_batch(&records).await.unwrap();
        drop(sink);

        let all = csv_pages(LedgerStore::Sqlite(path.clone()), Filter::default());
        let chunks: Vec<Bytes> = all.map(Result::unwrap).collect().await;
        assert_eq!(chunks.len(), 3, "1,000 + 1,000 + 500 records");
        let text: String = chunks
            .iter()
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let ids: Vec<&str> = text
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap())
            .collect();
        let expected: Vec<String> = (0..2_500).rev().map(|i| format!("r-{i:05}")).collect();
        assert_eq!(ids, expected, "every record once, newest first");

        // The header went with the first page; the ledger is gone before the second.
        let mut pages = Box::pin(csv_pages(
            LedgerStore::Sqlite(path.clone()),
            Filter::default(),
        ));
        let first = pages.next().await.unwrap().unwrap();
        assert!(first.starts_with(b"request_id,created_at,"));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        assert!(pages.next().await.unwrap().is_err());
        assert!(
            pages.next().await.is_none(),
            "the stream ends after an error"
        );
    }
}
