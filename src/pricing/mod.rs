//! What prices mean for a configuration and a ledger: every offer a request could have
//! used, priced and checked against the caller's policy ([`compare`]); recorded requests
//! priced again ([`reprice`]); what the cheapest allowed offer would have cost
//! ([`savings`]); and the `tollgate prices` commands ([`commands`]). The catalog itself
//! (rows, lookup, the exact cost function) is `catalog`, a layer below, which the
//! configuration loads.

pub mod commands;
pub mod compare;
pub mod query;
pub mod reprice;
pub mod savings;
