//! Metering: the incremental per-stream meter, and the single `finalize` that turns a
//! finished request into its priced ledger record. The normalised usage shape and the
//! token counters it settles with are in `tokens`.
//!
//! Provider-specific usage field names are translated by the adapters
//! (`providers::*::usage_from_wire`); pricing arithmetic lives in `pricing`.

pub mod audit;
pub mod embeddings;
pub mod facts;
pub mod finalize;
pub mod plausible;
pub mod stream;
pub mod summary;
