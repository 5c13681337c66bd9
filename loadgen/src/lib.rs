//! `ledger-bench`: measures a ledger.
//!
//! - [`run`]: the HTTP load generator. It drives a running ledger with a
//!   realistic mix (searches, availability, orders, payment webhooks,
//!   cancellations) and reports throughput, latency percentiles per
//!   operation, errors by status, projection lag and a consistency check.
//! - [`bulk`]: benchmarks on large logs that HTTP would take too long to
//!   build: a bulk seeder writing valid histories straight to the events
//!   table, the relay draining a backlog, and rebuilding every read model.

pub mod bulk;
mod error;
mod flood;
mod peer;
mod raw;
pub mod run;
mod streams;

pub use error::BenchError;

#[derive(clap::Subcommand)]
pub enum BenchTask {
    /// Drive a running ledger over HTTP and report what it sustained.
    Run(run::RunArgs),
    #[command(flatten)]
    Bulk(bulk::BulkTask),
    /// Open many connections at once and hold them: does the server stay
    /// alive and answering?
    Flood(flood::FloodArgs),
    /// Drive `ledger-peer` (the standard cqrs-es wiring) for comparison.
    Peer(peer::PeerArgs),
    /// Delete the JetStream streams a benchmark made.
    DropStreams(streams::DropStreamsArgs),
}

/// Runs one benchmark; the report goes to stdout, progress to stderr.
pub async fn execute(task: BenchTask) -> Result<(), BenchError> {
    match task {
        BenchTask::Run(args) => run::execute(args).await,
        BenchTask::Bulk(task) => bulk::execute(task).await,
        BenchTask::Flood(args) => flood::execute(args).await,
        BenchTask::Peer(args) => peer::execute(args).await,
        BenchTask::DropStreams(args) => streams::drop_streams(args).await,
    }
}
