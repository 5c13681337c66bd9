//! Waking the relay after events are committed.
//!
//! The relay `LISTEN`s on [`NOTIFY_CHANNEL`]. A `NOTIFY` inside the
//! transaction that inserts events would serialise every commit of the
//! database behind one lock held until the commit is on disk, so writers
//! notify *after* committing: [`CommitNotifier::committed`] is cheap and
//! may be called per append; a background task ([`CommitNotifier::run`])
//! turns a burst of calls into one notification. A writer outside the
//! command API (a bulk loader, a test) calls [`notify_relays`] after its
//! commit. Notifications lost anyway (a crash between commit and notify)
//! are caught by the relay's safety-net poll.

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The channel the relay listens on.
pub const NOTIFY_CHANNEL: &str = "ledger_events";

/// Sends one notification to every listening relay.
pub async fn notify_relays<'e, E>(executor: E) -> Result<(), sqlx::Error>
where
    E: sqlx::PgExecutor<'e>,
{
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(NOTIFY_CHANNEL)
        .execute(executor)
        .await?;
    Ok(())
}

/// [`notify_relays`] as a statement of its own that does not wait for a
/// WAL flush: a NOTIFY commits like a write, and with `synchronous_commit`
/// on the relay would hear of every burst only after a disk flush.
/// Listeners are told at commit; a crash that loses the commit record loses
/// only a wake-up, which the relay's poll makes up for. Not for use inside
/// a transaction, which it would turn asynchronous.
async fn notify_relays_without_flush(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, '')")
        .bind(NOTIFY_CHANNEL)
        .execute(pool)
        .await?;
    Ok(())
}

/// Coalesces "events were committed" signals into notifications.
#[derive(Clone, Default)]
pub struct CommitNotifier {
    pending: Arc<Notify>,
}

impl CommitNotifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that events were committed; never waits.
    pub fn committed(&self) {
        // Stores one permit when the task is busy: a burst of commits
        // during a notification costs exactly one more.
        self.pending.notify_one();
    }

    /// Sends a notification after each burst of [`committed`] calls until
    /// `stop` is cancelled. A failed notification is logged and left to the
    /// relay's poll.
    ///
    /// [`committed`]: CommitNotifier::committed
    pub async fn run(self, pool: PgPool, stop: CancellationToken) {
        loop {
            tokio::select! {
                _ = self.pending.notified() => {}
                _ = stop.cancelled() => {}
            }
            if stop.is_cancelled() {
                return;
            }
            if let Err(err) = notify_relays_without_flush(&pool).await {
                tracing::warn!(error = %err, "could not notify the relay; it will poll");
            }
        }
    }
}
