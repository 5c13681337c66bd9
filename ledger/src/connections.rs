//! The HTTP server's accept loop, and how long and how many connections it
//! keeps (API.md "Conventions", issue 23 item 1).
//!
//! `axum::serve` waits for ever for a client's headers, keeps an idle
//! keep-alive connection for ever and accepts without limit, so a few
//! thousand slow clients use up the process without one request. Here:
//!
//! - a request's head must arrive within the header-read timeout, or the
//!   connection is closed without an answer: timed from the accept for the
//!   first request, and from the first byte of each later one (hyper's own
//!   timer would also run while a keep-alive connection waits for its next
//!   request, closing idle connections at the header-read timeout);
//! - a connection on which no byte has moved either way for the idle
//!   timeout is closed (after the response in flight, if there is one);
//! - at most `max_connections` are open at once: past the cap a new
//!   connection is answered 503 (problem+json, `Connection: close`) and
//!   closed, and the ones already open keep working.
//!
//! The open-connection semaphore is also what the graceful drain waits on:
//! when draining begins the loop stops accepting, tells each connection to
//! finish its response in flight and close, and returns once every permit
//! is back. Each request carries `ConnectInfo<SocketAddr>` as
//! `into_make_service_with_connect_info` would give it (the rate limiter
//! keys on it).

use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use ledger_http::ApiError;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How long and how many connections the server keeps.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// A request's head must arrive within it.
    pub header_read_timeout: Duration,
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// Connections open at once; past it new ones are answered 503.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
        }
    }
}

/// Descriptors kept out of the connection cap: the database pool, NATS,
/// files, and the connections being refused past the cap.
const RESERVED_FILES: u64 = 1_024;

/// Raises the process's open-file limit to its hard limit and returns the
/// soft limit in force (`None` when it cannot be read). A server that
/// runs out of descriptors fails everything (new database connections
/// too), so the connection cap is kept below the limit.
pub fn raise_open_files_limit() -> Option<u64> {
    if let Err(err) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!(error = %err, "could not raise the open-file limit");
    }
    rlimit::getrlimit(rlimit::Resource::NOFILE)
        .ok()
        .map(|(soft, _)| soft)
}

/// The connections the server will hold at once: the configured cap, or
/// fewer when the open-file limit would run out first.
pub fn effective_cap(configured: usize, open_files: Option<u64>) -> usize {
    let configured = configured.clamp(1, Semaphore::MAX_PERMITS);
    match open_files {
        Some(limit) => {
            let room = usize::try_from(limit.saturating_sub(RESERVED_FILES)).unwrap_or(usize::MAX);
            configured.min(room.max(1))
        }
        None => configured,
    }
}

/// Serves `router` on `listener` until `draining` is cancelled, then
/// drains the open connections and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    draining: CancellationToken,
) -> std::io::Result<()> {
    let open_files = raise_open_files_limit();
    let cap = effective_cap(limits.max_connections, open_files);
    if cap < limits.max_connections {
        tracing::warn!(
            configured = limits.max_connections,
            open_files_limit = open_files,
            cap,
            "LEDGER_MAX_CONNECTIONS is more than the open-file limit allows; \
             holding at most `cap` connections (raise `ulimit -n` for more)"
        );
    }
    let open = Arc::new(Semaphore::new(cap));
    // HTTP/1.1, as `axum::serve` spoke with axum's default features.
    // Hyper's header-read timer is off: `Connection::run` times the head.
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(None);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = draining.cancelled() => break,
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let connection = Connection {
            builder: builder.clone(),
            router: router.clone(),
            remote,
            header_read_timeout: limits.header_read_timeout,
            idle_timeout: limits.idle_timeout,
            draining: draining.clone(),
        };
        tokio::spawn(connection.run(stream, permit));
    }
    drop(listener);
    // Every connection holds a permit until it is closed.
    let _all = open.acquire_many(cap as u32).await;
    Ok(())
}

/// Past the cap: a 503 problem, then the connection is closed. Bounded in
/// time, so that refused clients cannot hold tasks either.
async fn refuse(mut stream: TcpStream) {
    let body = ApiError::ServiceUnavailable("too many open connections".to_owned())
        .problem()
        .to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

/// One accepted connection and what it is served with.
struct Connection {
    builder: http1::Builder,
    router: Router,
    remote: SocketAddr,
    header_read_timeout: Duration,
    idle_timeout: Duration,
    draining: CancellationToken,
}

impl Connection {
    /// Serves the connection until it closes; `_permit` goes back then.
    async fn run(self, stream: TcpStream, _permit: OwnedSemaphorePermit) {
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Tracked {
            inner: stream,
            activity: activity.clone(),
        });
        let (router, remote) = (self.router, self.remote);
        let heads = activity.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            // The head has arrived: its timer stops until the next one.
            heads.head_arrived();
            request.extensions_mut().insert(ConnectInfo(remote));
            let heads = heads.clone();
            let answered = router.clone().oneshot(request);
            async move {
                let answer = answered.await;
                heads.answered();
                answer
            }
        });
        let mut served = pin!(self.builder.serve_connection(io, service).with_upgrades());
        let mut closing = false;
        loop {
            let idle_at = activity.last() + self.idle_timeout;
            let head_due = activity
                .head_started()
                .map(|at| at + self.header_read_timeout);
            tokio::select! {
                ended = served.as_mut() => {
                    if let Err(err) = ended {
                        tracing::debug!(error = %err, %remote, "connection ended");
                    }
                    return;
                }
                _ = self.draining.cancelled(), if !closing => {
                    served.as_mut().graceful_shutdown();
                    closing = true;
                }
                _ = activity.head_began.notified() => {}
                _ = sleep_until_some(head_due) => {
                    if activity.head_started().is_some_and(|at| at + self.header_read_timeout <= Instant::now()) {
                        tracing::debug!(%remote, "request head not read in time; closing");
                        return;
                    }
                }
                _ = tokio::time::sleep_until(idle_at), if !closing => {
                    if activity.last() + self.idle_timeout <= Instant::now() {
                        served.as_mut().graceful_shutdown();
                        closing = true;
                    }
                }
            }
        }
    }
}

/// Sleeps until `at`, or for ever when there is nothing to wait for.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// No request head is being read.
const NO_HEAD: u64 = u64::MAX;

/// When a byte last moved on a connection, and when the head being read
/// began.
struct Activity {
    start: Instant,
    /// Milliseconds from `start`.
    last: AtomicU64,
    /// Milliseconds from `start` at which the pending request head began
    /// ([`NO_HEAD`]: none pending); the first begins at the accept.
    head_started: AtomicU64,
    /// Between a request's head and its answer: bytes read then are its
    /// body, not a new head.
    in_request: AtomicBool,
    /// Wakes the connection's loop when a head begins, to time it.
    head_began: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
            in_request: AtomicBool::new(false),
            head_began: Notify::new(),
        }
    }

    fn now_millis(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(NO_HEAD - 1)
    }

    /// Bytes were read: between requests, they begin the next head.
    fn read(&self) {
        self.touch();
        if !self.in_request.load(Ordering::Acquire)
            && self
                .head_started
                .compare_exchange(
                    NO_HEAD,
                    self.now_millis(),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
        {
            self.head_began.notify_one();
        }
    }

    fn head_arrived(&self) {
        self.in_request.store(true, Ordering::Release);
        self.head_started.store(NO_HEAD, Ordering::Release);
    }

    fn answered(&self) {
        self.in_request.store(false, Ordering::Release);
    }

    fn head_started(&self) -> Option<Instant> {
        match self.head_started.load(Ordering::Acquire) {
            NO_HEAD => None,
            at => Some(self.start + Duration::from_millis(at)),
        }
    }

    fn touch(&self) {
        let since = self.start.elapsed().as_millis();
        self.last
            .store(u64::try_from(since).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last.load(Ordering::Relaxed))
    }
}

/// A TCP stream that notes each read and write in its [`Activity`].
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_below_the_open_file_limit() {
        assert_eq!(effective_cap(10_000, Some(1_048_576)), 10_000);
        assert_eq!(
            effective_cap(10_000, Some(4_096)),
            4_096 - RESERVED_FILES as usize
        );
        // A limit smaller than the reserve still lets one connection in.
        assert_eq!(effective_cap(10_000, Some(512)), 1);
        assert_eq!(effective_cap(10_000, None), 10_000);
        assert_eq!(effective_cap(0, Some(1_048_576)), 1);
    }
}
