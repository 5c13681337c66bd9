//! Live feeds held open during a run (`--feeds N`): N clients of
//! `GET /v1/events/stream`, each on a plain TCP connection of its own,
//! counting the events they receive, while the scenario's load runs. They
//! show what many open feeds cost the server (its RSS, its latency) and
//! that every one of them keeps receiving the log live.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::client::Api;
use crate::raw::Target;
use crate::BenchError;

/// Connections opened at once while the feeds are set up.
const OPENING_IN_FLIGHT: usize = 128;
/// How long a feed may take to answer its request.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// What the held feeds saw.
#[derive(Serialize, Clone, Debug, Default)]
pub struct FeedsReport {
    /// Feeds asked for.
    pub requested: usize,
    /// Feeds answered 200 and streaming.
    pub opened: u64,
    /// Feeds refused, by status (or `transport`).
    pub refused: BTreeMap<String, u64>,
    /// Feeds still streaming when the load ended.
    pub open_at_end: u64,
    /// Events received by all feeds during the run.
    pub events_received: u64,
    /// The fewest events one open feed received (each should see every
    /// event the load wrote).
    pub min_events_per_feed: u64,
    pub max_events_per_feed: u64,
}

/// The feeds being held; [`HeldFeeds::finish`] closes them and reports.
pub struct HeldFeeds {
    requested: usize,
    stop: CancellationToken,
    tasks: JoinSet<FeedOutcome>,
    refused: Arc<Mutex<BTreeMap<String, u64>>>,
    opened: Arc<AtomicU64>,
}

/// One feed's end.
struct FeedOutcome {
    streaming_at_end: bool,
    events: u64,
}

/// Which feeds to open.
pub struct FeedsPlan {
    pub count: usize,
    /// Feeds per analyst token subject (the server caps feeds per subject).
    pub per_subject: usize,
    /// The filter's query string (`aggregate_type=Vendor`), if any.
    pub query: Option<String>,
    /// Feeds that follow the whole log whatever `query` says.
    pub whole: usize,
}

/// Opens the planned feeds from `after` and returns once every one is
/// answered.
pub async fn open(
    api: &Api,
    url: &str,
    plan: FeedsPlan,
    after: i64,
    progress: bool,
) -> Result<HeldFeeds, BenchError> {
    let FeedsPlan {
        count,
        per_subject,
        query,
        whole,
    } = plan;
    let target = Target::of(url)?;
    let subjects = count.div_ceil(per_subject.max(1)).max(1);
    let tokens = (0..subjects)
        .map(|s| api.token("analyst", &format!("loadgen-feed-{s}"), None))
        .collect::<Result<Vec<_>, _>>()?;
    crate::raw::raise_open_files(count as u64 + 4_096);
    let held = HeldFeeds {
        requested: count,
        stop: CancellationToken::new(),
        tasks: JoinSet::new(),
        refused: Arc::default(),
        opened: Arc::default(),
    };
    if progress {
        eprintln!(
            "opening {count} live feeds ({subjects} subjects, filter {query:?} but for {whole})"
        );
    }
    let answered = Arc::new(AtomicU64::new(0));
    let streams: Vec<_> = stream::iter(0..count)
        .map(|i| {
            let target = target.clone();
            let token = tokens[i % subjects].clone();
            let refused = held.refused.clone();
            let answered = answered.clone();
            let filter = match &query {
                Some(query) if i >= whole => format!("&{query}"),
                _ => String::new(),
            };
            async move {
                let opened = subscribe(&target, i, &token, after, &filter).await;
                answered.fetch_add(1, Ordering::Relaxed);
                match opened {
                    Ok(stream) => Some(stream),
                    Err(label) => {
                        if let Ok(mut refused) = refused.lock() {
                            *refused.entry(label).or_default() += 1;
                        }
                        None
                    }
                }
            }
        })
        .buffer_unordered(OPENING_IN_FLIGHT)
        .collect()
        .await;
    let mut held = held;
    for stream in streams.into_iter().flatten() {
        held.opened.fetch_add(1, Ordering::Relaxed);
        held.tasks.spawn(follow(stream, held.stop.clone()));
    }
    if progress {
        eprintln!(
            "{} live feeds open, {} refused",
            held.opened.load(Ordering::Relaxed),
            count as u64 - held.opened.load(Ordering::Relaxed)
        );
    }
    Ok(held)
}

impl HeldFeeds {
    /// Closes every feed and reports what they received.
    pub async fn finish(mut self) -> FeedsReport {
        self.stop.cancel();
        let mut report = FeedsReport {
            requested: self.requested,
            opened: self.opened.load(Ordering::Relaxed),
            refused: self.refused.lock().map(|r| r.clone()).unwrap_or_default(),
            min_events_per_feed: u64::MAX,
            ..FeedsReport::default()
        };
        while let Some(joined) = self.tasks.join_next().await {
            let Ok(outcome) = joined else { continue };
            report.open_at_end += u64::from(outcome.streaming_at_end);
            report.events_received += outcome.events;
            report.min_events_per_feed = report.min_events_per_feed.min(outcome.events);
            report.max_events_per_feed = report.max_events_per_feed.max(outcome.events);
        }
        if report.opened == 0 {
            report.min_events_per_feed = 0;
        }
        report
    }
}

/// Opens one feed: the connection, the request, a 200 status line. The
/// error is the label it is counted under.
async fn subscribe(
    target: &Target,
    index: usize,
    token: &str,
    after: i64,
    filter: &str,
) -> Result<TcpStream, String> {
    let mut stream = target
        .connect(index)
        .await
        .map_err(|_| "transport".to_owned())?;
    let request = format!(
        "GET /v1/events/stream?after={after}{filter} HTTP/1.1\r\nHost: {}\r\n\
         Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n",
        target.host
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|_| "transport".to_owned())?;
    // The status line is in the first bytes of the answer's head.
    let mut head = [0u8; 12];
    tokio::time::timeout(ANSWER_TIMEOUT, stream.read_exact(&mut head))
        .await
        .map_err(|_| "transport".to_owned())?
        .map_err(|_| "transport".to_owned())?;
    let status = std::str::from_utf8(&head[9..12])
        .unwrap_or("???")
        .to_owned();
    if status == "200" {
        Ok(stream)
    } else {
        Err(status)
    }
}

/// Reads a feed until told to stop, counting its events (`id:` lines).
async fn follow(mut stream: TcpStream, stop: CancellationToken) -> FeedOutcome {
    let mut buffer = vec![0u8; 8 * 1024];
    let mut events = 0u64;
    // The last bytes of the previous read, so that an `\nid:` split between
    // two reads is counted once.
    let mut carry: Vec<u8> = Vec::with_capacity(4);
    loop {
        let read = tokio::select! {
            read = stream.read(&mut buffer) => read,
            _ = stop.cancelled() => return FeedOutcome { streaming_at_end: true, events },
        };
        match read {
            Ok(0) | Err(_) => {
                return FeedOutcome {
                    streaming_at_end: false,
                    events,
                }
            }
            Ok(n) => {
                carry.extend_from_slice(&buffer[..n]);
                events += carry.windows(4).filter(|w| w == b"\nid:").count() as u64;
                let keep = carry.len().min(3);
                carry.drain(..carry.len() - keep);
            }
        }
    }
}
