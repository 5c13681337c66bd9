//! Benchmarks on large logs (`ledger-bench seed|relay-drain|rebuild`).
//!
//! - `seed`: a valid history (vendors, published listings with their
//!   inventories, paid and confirmed rental orders) produced by the domain
//!   aggregates in memory and written in bulk straight to the events table;
//! - `relay-drain`: the relay publishing a seeded backlog, then the
//!   commit → published latency under a steady write rate;
//! - `rebuild`: every read model rebuilt from the events table.

mod rebuild;
mod relay_drain;
mod seed;
mod sim;
mod store;

use crate::BenchError;

pub use rebuild::RebuildArgs;
pub use relay_drain::RelayDrainArgs;
pub use seed::SeedArgs;

#[derive(clap::Subcommand, Debug, Clone)]
pub enum BulkTask {
    /// Write a valid event history in bulk into a fresh database.
    Seed(SeedArgs),
    /// Publish a seeded backlog with the relay and time it; optionally
    /// measure commit -> published latency at a steady write rate.
    RelayDrain(RelayDrainArgs),
    /// Rebuild every read model from the events table and time it.
    Rebuild(RebuildArgs),
}

pub async fn execute(task: BulkTask) -> Result<(), BenchError> {
    match task {
        BulkTask::Seed(args) => seed::run(args).await,
        BulkTask::RelayDrain(args) => relay_drain::run(args).await,
        BulkTask::Rebuild(args) => rebuild::run(args).await,
    }
}
