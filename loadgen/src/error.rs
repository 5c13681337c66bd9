//! The one error type of `ledger-bench`.

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("nats: {0}")]
    Nats(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("configuration: {0}")]
    Config(String),
    /// The ledger answered something the benchmark cannot go on from.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    /// A consistency check after the run failed.
    #[error("consistency check failed: {0}")]
    Check(String),
}
