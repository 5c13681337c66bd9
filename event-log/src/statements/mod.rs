//! Every statement on the `events` table, and on the snapshots beside it.
//!
//! Positions are handed out at insert time, not at commit time: a
//! transaction may commit an event below positions already visible. No
//! statement here pretends otherwise; the readers that must never skip an
//! event (the relay, the consumers' catch-up, the event API) read only up
//! to a horizon every event below which is final (the relay's published
//! position), or settle a gap by waiting for the writers that could fill it
//! ([`commit_order`]).
//!
//! - `positions`: the head, counts, existence and the positions present in
//!   a range (the runner's gap check, the relay's gap probe);
//! - `commit_order`: which transactions still write to the table;
//! - `reads`: events by position range, by position, after a position
//!   (verbatim, for the relay), by aggregate, and the event API's pages;
//! - `export`: the analysts' filtered export, streamed;
//! - `append`: the command bus's append, an aggregate's latest event, the
//!   snapshot upsert, and the load generator's inserts;
//! - `audit`: what the hash chain's verifier and the sealer read.

pub mod append;
pub mod audit;
pub mod commit_order;
pub mod export;
pub mod positions;
pub mod reads;
