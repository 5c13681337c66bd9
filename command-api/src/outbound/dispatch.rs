//! Sends due deliveries: `POST url` with the envelope as JSON, signed
//! `Ledger-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">` with the
//! endpoint's secret, `Ledger-Event-Id` to deduplicate by. A 2xx is
//! success; anything else (an error status, a refused connection, a
//! timeout) is retried with exponential backoff and jitter until 24 h have
//! passed since the delivery was first due, then it is marked failed.
//!
//! A delivery is claimed by pushing its `next_attempt_at` past the attempt
//! (a lease) before it is sent: a process that dies mid-delivery leaves it
//! due again after the lease, so it is sent again (at least once, with the
//! same event id). Time is the injected clock's; waiting between rounds is
//! tokio's.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ledger_clock::Clock;
use rand::Rng;
use serde_json::Value;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::OutboundConfig;

/// How long retries go on.
pub const RETRY_FOR: chrono::Duration = chrono::Duration::hours(24);
/// The first retry's delay; each next one doubles, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF_SECS: i64 = 10;
const MAX_BACKOFF_SECS: i64 = 60 * 60;
/// How often the dispatcher looks for due deliveries.
const POLL: Duration = Duration::from_millis(200);
/// Deliveries sent per round.
const BATCH: i64 = 20;

/// The delay before attempt `attempts + 1`, with ±20 % jitter.
pub fn backoff(attempts: i32, jitter: f64) -> chrono::Duration {
    let exponent = attempts.saturating_sub(1).clamp(0, 20) as u32;
    let base = (FIRST_BACKOFF_SECS.saturating_mul(1_i64 << exponent)).min(MAX_BACKOFF_SECS);
    let factor = 1.0 + (jitter.clamp(-1.0, 1.0) * 0.2);
    chrono::Duration::milliseconds(((base * 1000) as f64 * factor) as i64)
}

pub struct Dispatcher {
    pool: PgPool,
    clock: Arc<dyn Clock>,
    config: OutboundConfig,
    client: reqwest::Client,
    /// Opens the personal fields of a body when it is sent (deliveries
    /// keep the sealed envelope, so an erasure before an attempt holds).
    personal: privacy::Keyring,
}

/// A claimed delivery as read: ids, body, attempts, retry start, the
/// endpoint's URL and secret, and whether the endpoint was deleted.
type DueRow = (Uuid, Uuid, Value, i32, DateTime<Utc>, String, String, bool);

struct Due {
    delivery_id: Uuid,
    event_id: Uuid,
    body: Value,
    attempts: i32,
    retry_since: DateTime<Utc>,
    url: String,
    secret: String,
    deleted: bool,
}

impl Dispatcher {
    pub fn new(pool: PgPool, clock: Arc<dyn Clock>, config: OutboundConfig) -> Self {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            personal: privacy::Keyring::new(pool.clone()),
            pool,
            clock,
            config,
            client,
        }
    }

    /// Opens personal fields with `keyring` (the app's, with its
    /// key-encryption key) instead of a plain one on the pool.
    pub fn with_keyring(mut self, keyring: privacy::Keyring) -> Self {
        self.personal = keyring;
        self
    }

    /// Sends due deliveries until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        loop {
            // A shutdown cuts attempts short: they are leased, so they are
            // sent again once the lease ends (the same event id).
            let round = tokio::select! {
                round = self.round() => round,
                _ = stop.cancelled() => return,
            };
            match round {
                Ok(sent) if sent > 0 => continue,
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "webhook dispatcher: a round failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    /// Claims and sends the deliveries due now; how many were attempted.
    pub async fn round(&self) -> Result<usize, sqlx::Error> {
        let now = self.clock.now();
        // The lease: past the longest attempt, so no other round takes it.
        let lease = now
            + chrono::Duration::from_std(self.config.timeout)
                .unwrap_or(chrono::Duration::seconds(10))
            + chrono::Duration::seconds(5);
        let due: Vec<DueRow> = sqlx::query_as(
            "WITH due AS (
                SELECT delivery_id FROM webhook_deliveries
                 WHERE status = 'pending' AND next_attempt_at <= $1
                 ORDER BY next_attempt_at, position
                 LIMIT $3 FOR UPDATE SKIP LOCKED)
             UPDATE webhook_deliveries d SET next_attempt_at = $2
               FROM due, webhook_endpoints e
              WHERE d.delivery_id = due.delivery_id AND e.endpoint_id = d.endpoint_id
             RETURNING d.delivery_id, d.event_id, d.body, d.attempts, d.retry_since,
                       e.url, e.secret, e.deleted_at IS NOT NULL",
        )
        .bind(now)
        .bind(lease)
        .bind(BATCH)
        .fetch_all(&self.pool)
        .await?;
        let count = due.len();
        let sends = due.into_iter().map(
            |(delivery_id, event_id, body, attempts, retry_since, url, secret, deleted)| {
                self.attempt(Due {
                    delivery_id,
                    event_id,
                    body,
                    attempts,
                    retry_since,
                    url,
                    secret,
                    deleted,
                })
            },
        );
        for outcome in futures::future::join_all(sends).await {
            outcome?;
        }
        Ok(count)
    }

    async fn attempt(&self, due: Due) -> Result<(), sqlx::Error> {
        if due.deleted {
            return self
                .finish(
                    due.delivery_id,
                    "failed",
                    None,
                    Some("the endpoint was deleted"),
                )
                .await;
        }
        let mut body = due.body;
        self.personal
            .reveal(&mut body)
            .await
            .map_err(|err| match err {
                privacy::Error::Database(err) => err,
                other => sqlx::Error::Protocol(other.to_string()),
            })?;
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let timestamp = self.clock.now().timestamp();
        let signature = crate::routes::webhooks::sign(&body, &due.secret, timestamp);
        let sent = self
            .client
            .post(&due.url)
            .header("content-type", "application/json")
            .header("ledger-signature", signature)
            .header("ledger-event-id", due.event_id.to_string())
            .header("ledger-delivery-id", due.delivery_id.to_string())
            .body(body)
            .send()
            .await;
        let (code, error) = match sent {
            Ok(response) if response.status().is_success() => {
                let code = i32::from(response.status().as_u16());
                return self
                    .finish(due.delivery_id, "delivered", Some(code), None)
                    .await;
            }
            Ok(response) => (
                Some(i32::from(response.status().as_u16())),
                format!("answered {}", response.status()),
            ),
            Err(err) if err.is_timeout() => (None, "timed out".to_owned()),
            Err(err) => (None, format!("not reached: {err}")),
        };
        let attempts = due.attempts + 1;
        let now = self.clock.now();
        let jitter = rand::thread_rng().gen_range(-1.0..=1.0);
        let next = now + backoff(attempts, jitter);
        if next > due.retry_since + RETRY_FOR {
            tracing::warn!(delivery_id = %due.delivery_id, %error, "webhook delivery failed for 24 h: given up");
            return self
                .finish(due.delivery_id, "failed", code, Some(&error))
                .await;
        }
        tracing::info!(delivery_id = %due.delivery_id, attempts, %error, next_attempt_at = %next, "webhook delivery will be retried");
        sqlx::query(
            "UPDATE webhook_deliveries
                SET attempts = attempts + 1, last_status_code = $2, last_error = $3,
                    next_attempt_at = $4
              WHERE delivery_id = $1 AND status = 'pending'",
        )
        .bind(due.delivery_id)
        .bind(code)
        .bind(&error)
        .bind(next)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn finish(
        &self,
        delivery_id: Uuid,
        status: &str,
        code: Option<i32>,
        error: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE webhook_deliveries
                SET status = $2, attempts = attempts + 1, last_status_code = $3, last_error = $4,
                    delivered_at = CASE WHEN $2 = 'delivered' THEN $5 END
              WHERE delivery_id = $1 AND status = 'pending'",
        )
        .bind(delivery_id)
        .bind(status)
        .bind(code)
        .bind(error)
        .bind(self.clock.now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_an_hour() {
        assert_eq!(backoff(1, 0.0), chrono::Duration::seconds(10));
        assert_eq!(backoff(2, 0.0), chrono::Duration::seconds(20));
        assert_eq!(backoff(5, 0.0), chrono::Duration::seconds(160));
        assert_eq!(backoff(30, 0.0), chrono::Duration::hours(1));
        assert_eq!(backoff(1, 1.0), chrono::Duration::seconds(12));
        assert_eq!(backoff(1, -1.0), chrono::Duration::seconds(8));
        // Enough attempts fit in 24 h and none takes longer than 72 min.
        let mut total = chrono::Duration::zero();
        let mut attempts = 0;
        while total < RETRY_FOR {
            attempts += 1;
            total += backoff(attempts, 1.0);
        }
        assert!(attempts > 20, "{attempts}");
    }
}
