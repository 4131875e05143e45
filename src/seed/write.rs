//! Writing a synthetic ledger: the generator runs on the blocking pool a batch ahead of
//! the sink's `write_batch`, and a ledger that already holds records is refused unless
//! the caller appends on purpose.

use super::{Generator, SeedOptions};
use crate::config::Settings;
use crate::ledger::filter::Filter;
use crate::ledger::sqlite::SqliteSink;
use crate::ledger::{LedgerError, LedgerSink, LedgerStore, UsageRecord};

/// Records per `write_batch` call (one transaction each).
pub const BATCH: usize = 10_000;

/// Why a ledger could not be seeded.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("the ledger already holds records; pass --append to add synthetic ones to them")]
    NotEmpty,
    #[error(transparent)]
    Catalog(#[from] super::EmptyCatalog),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl From<tokio::task::JoinError> for SeedError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::Ledger(e.into())
    }
}

/// Generate every record of `generator` and write it to `sink` in batches of `batch`
/// records, generating the next batch while the last one is written. Returns how many
/// records were written.
pub async fn seed<S: LedgerSink>(
    sink: &S,
    generator: Generator,
    batch: usize,
) -> Result<u64, LedgerError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<UsageRecord>>(2);
    let batch = batch.max(1);
    let producer = tokio::task::spawn_blocking(move || {
        let mut generator = generator;
        loop {
            let records = generator.batch(batch);
            if records.is_empty() || tx.blocking_send(records).is_err() {
                return;
            }
        }
    });
    let mut written = 0u64;
    while let Some(records) = rx.recv().await {
        sink.write_batch(&records).await?;
        written += u64::try_from(records.len()).unwrap_or(u64::MAX);
    }
    producer.await?;
    Ok(written)
}

/// Seed `store` with `opts.records` records drawn from `settings`: a SQLite file is
/// created if missing; a PostgreSQL ledger gets the monthly partitions of the window
/// first. Refused when the ledger has records, unless `append`.
pub async fn seed_store(
    store: &LedgerStore,
    settings: &Settings,
    opts: &SeedOptions,
    append: bool,
) -> Result<u64, SeedError> {
    let generator = Generator::new(settings, opts)?;
    match store {
        LedgerStore::Sqlite(path) => {
            let path = path.clone();
            let sink = tokio::task::spawn_blocking(move || SqliteSink::open(&path)).await??;
            refuse_unless_empty(store, append).await?;
            Ok(seed(&sink, generator, BATCH).await?)
        }
        LedgerStore::Postgres(pg) => {
            refuse_unless_empty(store, append).await?;
            pg.ensure_partitions(opts.start(), opts.end).await?;
            Ok(seed(pg, generator, BATCH).await?)
        }
    }
}

async fn refuse_unless_empty(store: &LedgerStore, append: bool) -> Result<(), SeedError> {
    if append || store.page(&Filter::default(), None, 1).await?.is_empty() {
        Ok(())
    } else {
        Err(SeedError::NotEmpty)
    }
}
