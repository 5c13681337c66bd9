//! How a ledger process stops, in one place.
//!
//! Two phases, each one [`CancellationToken`] (the one way every task
//! waits: `token.cancelled().await`):
//!
//! 1. **draining**: the HTTP server stops accepting and finishes the
//!    requests in flight; live event feeds end, so that the drain can;
//! 2. **stopping**: the background tasks (relay, consumers, policies,
//!    sweeper, notifier, sealer, database watch) finish what they hold and
//!    return.
//!
//! The whole drain is bounded by one deadline: whatever has not stopped by
//! then is aborted and named, so that the process can exit with an error
//! that says what hung. Every background task runs inside a span named
//! after it, so that its logs say which task wrote them.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// The background tasks get at least this long after the HTTP drain, even
/// when that drain used up the deadline, so that the report names only
/// those that really do not stop.
const BACKGROUND_GRACE: Duration = Duration::from_secs(1);

/// The shutdown of one process: its two tokens and its background tasks.
///
/// Dropped without [`drain`](Self::drain) (the serve task was aborted, as
/// a crash would), it aborts every task it started.
#[derive(Default)]
pub struct Shutdown {
    draining: CancellationToken,
    stopping: CancellationToken,
    tasks: Vec<(String, JoinHandle<()>)>,
}

/// What a drain left behind.
pub struct Drained {
    /// How the HTTP server ended, if it ran and ended in time.
    pub served: std::io::Result<()>,
    /// The names of what had not stopped by the deadline (aborted since).
    pub unfinished: Vec<String>,
    /// The drain's deadline, for the last steps of the caller.
    pub deadline: Instant,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancelled when the drain begins: the HTTP server and live feeds end.
    pub fn draining(&self) -> CancellationToken {
        self.draining.clone()
    }

    /// Starts a background task named `name`, handing it the token it
    /// stops on, inside a span of its name.
    pub fn spawn<F>(&mut self, name: impl Into<String>, task: impl FnOnce(CancellationToken) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let name = name.into();
        let span = tracing::info_span!("task", task = %name);
        let handle = tokio::spawn(task(self.stopping.clone()).instrument(span));
        self.tasks.push((name, handle));
    }

    /// Drains within `timeout`: first the HTTP server (`http`, when it
    /// runs), then the background tasks.
    pub async fn drain(
        mut self,
        http: Option<JoinHandle<std::io::Result<()>>>,
        timeout: Duration,
    ) -> Drained {
        let deadline = Instant::now() + timeout;
        tracing::info!(
            timeout = %humantime::format_duration(timeout),
            "draining: finishing requests in flight, then stopping background tasks"
        );
        self.draining.cancel();
        let mut served = Ok(());
        let mut unfinished = Vec::new();
        if let Some(mut server) = http {
            match tokio::time::timeout_at(deadline, &mut server).await {
                Ok(ended) => served = ended.unwrap_or_else(|join| Err(std::io::Error::other(join))),
                Err(_) => {
                    server.abort();
                    unfinished.push("http server (connections still open)".to_owned());
                }
            }
        }
        self.stopping.cancel();
        let deadline = deadline.max(Instant::now() + BACKGROUND_GRACE.min(timeout));
        unfinished.extend(join_until(std::mem::take(&mut self.tasks), deadline).await);
        Drained {
            served,
            unfinished,
            deadline,
        }
    }
}

impl Drop for Shutdown {
    fn drop(&mut self) {
        for (_, task) in &self.tasks {
            task.abort();
        }
    }
}

/// Waits for each task until `deadline`; those still running then are
/// aborted, and their names returned.
async fn join_until(tasks: Vec<(String, JoinHandle<()>)>, deadline: Instant) -> Vec<String> {
    let mut unfinished = Vec::new();
    for (name, mut task) in tasks {
        // A finished task is seen even once the deadline has passed: the
        // timeout polls the task before its clock.
        if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
            task.abort();
            unfinished.push(name);
        }
    }
    unfinished
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_drain_stops_every_task_that_listens_and_names_the_one_that_does_not() {
        let mut shutdown = Shutdown::new();
        shutdown.spawn("listens", |stop| async move { stop.cancelled().await });
        shutdown.spawn("ignores", |_stop| std::future::pending());
        let drained = shutdown.drain(None, Duration::from_millis(200)).await;
        assert_eq!(drained.unfinished, vec!["ignores".to_owned()]);
        assert!(drained.served.is_ok());
    }

    #[tokio::test]
    async fn the_http_server_drains_before_the_background_tasks_stop() {
        let mut shutdown = Shutdown::new();
        let draining = shutdown.draining();
        let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
        // The background task records whether the server had finished
        // when it was told to stop.
        let server_done = CancellationToken::new();
        let done = server_done.clone();
        shutdown.spawn("worker", |stop| async move {
            stop.cancelled().await;
            let _ = seen_tx.send(done.is_cancelled());
        });
        let http = tokio::spawn(async move {
            draining.cancelled().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            server_done.cancel();
            Ok(())
        });
        let drained = shutdown.drain(Some(http), Duration::from_secs(5)).await;
        assert!(drained.unfinished.is_empty());
        assert!(
            seen_rx.await.expect("the worker ran"),
            "stopped before the drain"
        );
    }
}
