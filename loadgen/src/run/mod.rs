//! The HTTP load generator (`ledger bench run`).

use crate::BenchError;

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {}

pub async fn execute(_args: RunArgs) -> Result<(), BenchError> {
    Err(BenchError::Config("not yet written".into()))
}
