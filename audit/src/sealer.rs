//! The [`Sealer`]: seals the final part of the log, in ranges of at most
//! N events, signed with the audit key.
//!
//! Only positions at or below the relay's published position are sealed:
//! there, no transaction in flight can still add an event (the relay reads
//! in commit order). Several sealers may run: an advisory lock serialises
//! them, and the table refuses a seal that does not follow the last one.

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use ledger_clock::Clock;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::seal::{DigestBuilder, Seal};

/// Most events per seal, unless configured otherwise.
pub const DEFAULT_MAX_EVENTS: usize = 1000;
/// How often [`Sealer::run`] looks for new final events, by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

const SEALER_LOCK: &str = "ledger.audit.sealer";

/// Writes seals over the final part of the log.
#[derive(Clone)]
pub struct Sealer {
    pool: PgPool,
    clock: Arc<dyn Clock>,
    signing_key: SigningKey,
    key_id: String,
    stream: String,
    max_events: usize,
    interval: Duration,
}

impl Sealer {
    /// A sealer signing with `signing_key` (recorded as `key_id`) up to the
    /// relay's published position for JetStream stream `stream`; each seal's
    /// `sealed_at` is read from `clock`.
    pub fn new(
        pool: PgPool,
        clock: Arc<dyn Clock>,
        signing_key: SigningKey,
        key_id: impl Into<String>,
        stream: impl Into<String>,
    ) -> Self {
        Self {
            pool,
            clock,
            signing_key,
            key_id: key_id.into(),
            stream: stream.into(),
            max_events: DEFAULT_MAX_EVENTS,
            interval: DEFAULT_INTERVAL,
        }
    }

    /// At most `max_events` events per seal (at least 1).
    pub fn with_max_events(mut self, max_events: usize) -> Self {
        self.max_events = max_events.max(1);
        self
    }

    /// How often [`Sealer::run`] looks for new final events.
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Seals every final event not sealed yet; returns the new seals (none
    /// when the relay has published nothing new).
    pub async fn seal_once(&self) -> Result<Vec<Seal>, sqlx::Error> {
        let mut sealed = Vec::new();
        while let Some(seal) = self.seal_next().await? {
            sealed.push(seal);
        }
        Ok(sealed)
    }

    /// Writes the next seal, if there is anything final to seal.
    async fn seal_next(&self) -> Result<Option<Seal>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(SEALER_LOCK)
            .execute(&mut *tx)
            .await?;
        let horizon: Option<i64> =
            sqlx::query_scalar("SELECT position FROM relay_positions WHERE stream = $1")
                .bind(&self.stream)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(horizon) = horizon else {
            return Ok(None);
        };
        let last: Option<(i64, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT seal_id, to_position, digest FROM audit_seals ORDER BY seal_id DESC LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let (seal_id, from_position, previous_digest) = match last {
            Some((id, to, digest)) => (id + 1, to + 1, digest),
            None => (1, 1, Vec::new()),
        };
        if from_position > horizon {
            return Ok(None);
        }
        let limit = i64::try_from(self.max_events).unwrap_or(i64::MAX);
        let rows =
            event_log::statements::audit::hashes_between(&mut *tx, from_position, horizon, limit)
                .await?;
        let Some(&(last_position, _)) = rows.last() else {
            return Ok(None);
        };
        let to_position = if rows.len() == self.max_events {
            last_position
        } else {
            horizon
        };
        let mut digest = DigestBuilder::new(&previous_digest);
        for (position, hash) in &rows {
            digest.push(*position, hash);
        }
        let mut seal = Seal {
            seal_id,
            from_position,
            to_position,
            event_count: rows.len() as i64,
            positions: rows.iter().map(|(position, _)| *position).collect(),
            previous_digest,
            digest: digest.finish(),
            merkle_root: Some(crate::merkle::root(&rows).to_vec()),
            key_id: self.key_id.clone(),
            signature: Vec::new(),
            // The clock keeps microseconds, as PostgreSQL does: what is
            // signed is what will be stored.
            sealed_at: self.clock.now(),
        };
        seal.sign(&self.signing_key);
        sqlx::query(
            "INSERT INTO audit_seals (seal_id, from_position, to_position, event_count,
                                      positions, previous_digest, digest, key_id,
                                      signature, sealed_at, merkle_root)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(seal.seal_id)
        .bind(seal.from_position)
        .bind(seal.to_position)
        .bind(seal.event_count)
        .bind(&seal.positions)
        .bind(&seal.previous_digest)
        .bind(&seal.digest)
        .bind(&seal.key_id)
        .bind(&seal.signature)
        .bind(seal.sealed_at)
        .bind(&seal.merkle_root)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::debug!(
            seal_id = seal.seal_id,
            from = seal.from_position,
            to = seal.to_position,
            events = seal.event_count,
            "audit seal written"
        );
        Ok(Some(seal))
    }

    /// Seals every `interval` until `shutdown` is cancelled. Errors are
    /// logged and retried on the next round.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            if let Err(err) = self.seal_once().await {
                tracing::warn!(error = %err, "audit sealing failed; retrying");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }
}
