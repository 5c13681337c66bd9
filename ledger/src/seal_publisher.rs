//! Copies every audit seal to the seal stream (`ledger_nats::seals`), so
//! that the seals live outside the database too. Runs beside the sealer:
//! each round it reads the newest seal on the stream and publishes the
//! database's seals after it, in order. A seal is never published twice
//! under another content: a seal re-made in the database with a number the
//! stream already holds stays unpublished, and verification against the
//! stream reports it (`seal_rewritten`).

use std::time::Duration;

use audit::seal::{self, SealRecord};
use ledger_nats::{seals, StreamSettings};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// Seals read from the database per query.
const BATCH: i64 = 100;

use crate::LedgerError;

/// Publishes the seals the stream lacks; returns how many.
pub async fn publish_pending(
    pool: &PgPool,
    js: &async_nats::jetstream::Context,
    settings: &StreamSettings,
) -> Result<usize, LedgerError> {
    let stream = seals::provision(js, settings).await?;
    let mut last = match seals::newest(&stream, settings).await? {
        Some(body) => {
            SealRecord::decode(&body)
                .map_err(|e| LedgerError::Audit(format!("the seal stream's newest message: {e}")))?
                .seal_id
        }
        None => 0,
    };
    let mut published = 0;
    loop {
        let batch = seal::after(pool, last, BATCH).await?;
        for seal in &batch {
            let body = serde_json::to_vec(&SealRecord::from(seal))
                .map_err(|e| LedgerError::Audit(e.to_string()))?;
            seals::publish(js, settings, seal.seal_id, body).await?;
            last = seal.seal_id;
            published += 1;
        }
        if (batch.len() as i64) < BATCH {
            return Ok(published);
        }
    }
}

/// Publishes pending seals every `interval` until `shutdown`.
pub async fn run(
    pool: PgPool,
    nats: async_nats::Client,
    settings: StreamSettings,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let js = async_nats::jetstream::new(nats);
    loop {
        match publish_pending(&pool, &js, &settings).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(seals = n, "audit seals published to the seal stream"),
            Err(err) => tracing::warn!(error = %err, "publishing audit seals failed; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
