//! Benchmarks on large logs (`ledger bench seed|relay-drain|rebuild`).

use crate::BenchError;

#[derive(clap::Subcommand, Debug, Clone)]
pub enum BulkTask {}

pub async fn execute(task: BulkTask) -> Result<(), BenchError> {
    match task {}
}
