//! The newest part of the log, read once per process for every live feed
//! of `GET /v1/events/stream`.
//!
//! A feed that read the log itself would ask PostgreSQL for the horizon
//! every 150 ms and for every new page: with thousands of feeds open that
//! is thousands of queries a second and the database is busy with nothing
//! else (measured: 2,000 feeds took place-order from hundreds per second
//! to one or two). Instead one watcher per process ([`LiveLog`]) follows
//! the horizon, reads each new event once, serializes it once, and keeps
//! the newest [`WINDOW`] of them in memory; feeds at or above the window's
//! start take their events from it, filtered in memory, and are woken when
//! it grows. A feed below the window (resuming from an old position, or
//! left behind) reads its pages from the database up to the window's
//! start, as before, then joins it.
//!
//! The watcher starts with the first feed and stops when the server shuts
//! down.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::events::{self, EventView, Filter};

/// Events kept in memory for the feeds.
const WINDOW: usize = 4_096;
/// How often the watcher looks for a new horizon.
const WATCH_INTERVAL: Duration = Duration::from_millis(150);
/// Events the watcher reads at a time.
const WATCH_PAGE: i64 = 1_000;

/// One event as a feed sends it: what feeds filter on, and its `data:`
/// text (the event as `GET /v1/events` shows it), made once for every
/// feed. The parsed payload is not kept: as a JSON tree it is several times
/// the size of its text.
#[derive(Debug)]
pub struct LiveEvent {
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub event_type: String,
    pub data: String,
}

impl LiveEvent {
    pub fn new(view: EventView) -> Self {
        let data = serde_json::to_string(&view).unwrap_or_else(|_| "{}".to_owned());
        let EventView {
            position,
            aggregate_type,
            aggregate_id,
            event_type,
            ..
        } = view;
        Self {
            position,
            aggregate_type,
            aggregate_id,
            event_type,
            data,
        }
    }
}

/// The shared watcher of the log's head (one per process).
#[derive(Default)]
pub struct LiveLog {
    shared: OnceLock<Shared>,
}

struct Shared {
    window: Arc<RwLock<Window>>,
    grown: watch::Receiver<i64>,
}

/// The newest events: every event with a position in `(start, scanned]`
/// is in `events`, in order.
#[derive(Debug, Default)]
struct Window {
    /// `None` until the watcher has read the horizon once.
    bounds: Option<(i64, i64)>,
    events: VecDeque<Arc<LiveEvent>>,
}

/// What a feed at `scanned` gets from the window.
pub enum Take {
    /// These events (filtered), and the position the feed has now scanned
    /// through.
    Events(Vec<Arc<LiveEvent>>, i64),
    /// Nothing new yet: wait for the window to grow.
    Wait,
    /// The feed is below the window: read the database up to this
    /// position (the window's start) first.
    Behind(i64),
}

impl LiveLog {
    /// A receiver that changes whenever the window grows, starting the
    /// watcher on first use.
    pub fn subscribe(
        &self,
        pool: &PgPool,
        stream: &str,
        closing: &CancellationToken,
    ) -> watch::Receiver<i64> {
        self.shared
            .get_or_init(|| {
                let window = Arc::new(RwLock::new(Window::default()));
                let (grow, grown) = watch::channel(0);
                tokio::spawn(watch_head(
                    pool.clone(),
                    stream.to_owned(),
                    window.clone(),
                    grow,
                    closing.clone(),
                ));
                Shared { window, grown }
            })
            .grown
            .clone()
    }

    /// Up to `limit` events after `scanned` that pass `filter`.
    pub fn take(&self, scanned: i64, filter: &Filter, limit: usize) -> Take {
        match self.shared.get() {
            Some(shared) => shared
                .window
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .take(scanned, filter, limit),
            None => Take::Wait,
        }
    }
}

impl Window {
    fn take(&self, scanned: i64, filter: &Filter, limit: usize) -> Take {
        let Some((start, through)) = self.bounds else {
            return Take::Wait;
        };
        if scanned < start {
            return Take::Behind(start);
        }
        if scanned >= through {
            return Take::Wait;
        }
        // Positions are increasing: skip to the first event after `scanned`.
        let first = self
            .events
            .partition_point(|event| event.position <= scanned);
        let mut taken: Vec<Arc<LiveEvent>> = Vec::new();
        for event in self.events.range(first..) {
            if taken.len() == limit {
                let reached = taken.last().map_or(scanned, |e| e.position);
                return Take::Events(taken, reached);
            }
            if passes(event, filter) {
                taken.push(event.clone());
            }
        }
        Take::Events(taken, through)
    }

    /// Appends the events read in `(through, reached]`, dropping the oldest
    /// beyond `capacity`.
    fn extend(&mut self, rows: Vec<EventView>, reached: i64, capacity: usize) {
        let Some((mut start, _)) = self.bounds else {
            return;
        };
        self.events
            .extend(rows.into_iter().map(|view| Arc::new(LiveEvent::new(view))));
        while self.events.len() > capacity {
            if let Some(dropped) = self.events.pop_front() {
                start = dropped.position;
            }
        }
        self.bounds = Some((start, reached));
    }
}

/// Whether an event passes a feed's filter (the same fields the database
/// read filters on).
fn passes(view: &LiveEvent, filter: &Filter) -> bool {
    filter
        .aggregate_type
        .as_ref()
        .is_none_or(|t| *t == view.aggregate_type)
        && filter
            .aggregate_id
            .as_ref()
            .is_none_or(|id| *id == view.aggregate_id)
        && filter
            .event_type
            .as_ref()
            .is_none_or(|t| *t == view.event_type)
}

/// The watcher: follows the horizon, reads what is new once, and wakes
/// the feeds.
async fn watch_head(
    pool: PgPool,
    stream: String,
    window: Arc<RwLock<Window>>,
    grow: watch::Sender<i64>,
    closing: CancellationToken,
) {
    let all = Filter::default();
    loop {
        let pause = match grow_once(&pool, &stream, &window, &all).await {
            Ok(Some(through)) => {
                grow.send_replace(through);
                continue;
            }
            Ok(None) => WATCH_INTERVAL,
            Err(err) => {
                tracing::warn!(error = %err, "live feeds: reading the log failed");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = closing.cancelled() => return,
        }
    }
}

/// Reads one page of new events into the window; the new end of the
/// window when it grew.
async fn grow_once(
    pool: &PgPool,
    stream: &str,
    window: &RwLock<Window>,
    all: &Filter,
) -> Result<Option<i64>, sqlx::Error> {
    let horizon = projectors::checkpoints::published(pool, stream).await?;
    let through = {
        let mut window = window.write().unwrap_or_else(|e| e.into_inner());
        match window.bounds {
            None => {
                // The window starts at the horizon; older events are read
                // from the database by the feeds that want them.
                window.bounds = Some((horizon, horizon));
                return Ok(Some(horizon));
            }
            Some((_, through)) => through,
        }
    };
    if horizon <= through {
        return Ok(None);
    }
    let rows = events::read(pool, through, horizon, all, WATCH_PAGE).await?;
    let reached = if (rows.len() as i64) < WATCH_PAGE {
        horizon
    } else {
        rows.last().map_or(horizon, |e| e.position)
    };
    window
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .extend(rows, reached, WINDOW);
    Ok(Some(reached))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(position: i64, aggregate_type: &str, event_type: &str) -> EventView {
        EventView {
            position,
            event_id: uuid::Uuid::nil(),
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: format!("{aggregate_type}-1"),
            sequence: position,
            event_type: event_type.to_owned(),
            event_version: "1".to_owned(),
            stored_version: None,
            payload: serde_json::json!({}),
            metadata: serde_json::json!({}),
            recorded_at: chrono::DateTime::UNIX_EPOCH,
            hash: None,
            canonical: None,
        }
    }

    fn positions(take: Take) -> (Vec<i64>, i64) {
        match take {
            Take::Events(events, reached) => (events.iter().map(|e| e.position).collect(), reached),
            Take::Wait => panic!("expected events, the feed was told to wait"),
            Take::Behind(upto) => panic!("expected events, the feed is behind {upto}"),
        }
    }

    /// A window opened at 10 holding 11, 13 (a gap: 12 is not committed
    /// yet or belongs to no one), 14 and scanned through 15.
    fn window() -> Window {
        let mut window = Window {
            bounds: Some((10, 10)),
            events: VecDeque::new(),
        };
        window.extend(
            vec![
                event(11, "Order", "OrderPlaced"),
                event(13, "Listing", "ListingPublished"),
                event(14, "Order", "OrderConfirmed"),
            ],
            15,
            100,
        );
        window
    }

    #[test]
    fn a_feed_takes_what_is_after_its_position_and_passes_its_filter() {
        let window = window();
        assert_eq!(
            positions(window.take(10, &Filter::default(), 10)),
            (vec![11, 13, 14], 15)
        );
        assert_eq!(
            positions(window.take(11, &Filter::default(), 10)),
            (vec![13, 14], 15)
        );
        let orders = Filter {
            aggregate_type: Some("Order".to_owned()),
            ..Filter::default()
        };
        assert_eq!(positions(window.take(10, &orders, 10)), (vec![11, 14], 15));
        let confirmed = Filter {
            event_type: Some("OrderConfirmed".to_owned()),
            ..Filter::default()
        };
        // Nothing passes after 14, but the feed has scanned through 15.
        assert_eq!(positions(window.take(14, &confirmed, 10)), (vec![], 15));
    }

    #[test]
    fn a_full_page_stops_at_its_last_event_so_nothing_is_skipped() {
        let window = window();
        assert_eq!(
            positions(window.take(10, &Filter::default(), 2)),
            (vec![11, 13], 13)
        );
        assert_eq!(
            positions(window.take(13, &Filter::default(), 2)),
            (vec![14], 15)
        );
    }

    #[test]
    fn a_feed_at_the_end_waits_and_one_below_the_start_reads_the_database() {
        let window = window();
        assert!(matches!(
            window.take(15, &Filter::default(), 10),
            Take::Wait
        ));
        assert!(matches!(
            window.take(9, &Filter::default(), 10),
            Take::Behind(10)
        ));
        assert!(matches!(
            Window::default().take(0, &Filter::default(), 10),
            Take::Wait
        ));
    }

    #[test]
    fn the_oldest_events_leave_a_full_window_and_its_start_moves_up() {
        let mut window = window();
        window.extend(vec![event(16, "Order", "OrderPaid")], 16, 2);
        // 11 and 13 are gone: a feed at 11 must read the database to 14.
        assert!(matches!(
            window.take(11, &Filter::default(), 10),
            Take::Behind(13)
        ));
        assert_eq!(
            positions(window.take(13, &Filter::default(), 10)),
            (vec![14, 16], 16)
        );
    }
}
