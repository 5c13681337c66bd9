//! The analysts' event-stream API (API.md "Queries"):
//!
//! - `GET /v1/events`: a page of the log by global position;
//! - `GET /v1/events/stream`: the same events as server-sent events, live.
//!
//! Commit-order safety: positions are handed out at insert time, so a
//! transaction may commit an event below positions already visible. Both
//! routes therefore stop at the relay's published position (the horizon,
//! `projectors::checkpoints::published`): every event at or below it is
//! final, so a client that goes on from `next_after` (or `Last-Event-ID`)
//! never skips one.
//!
//! Payloads are shown at their current schema: an event stored with an
//! older `event_version` is upcast (`domain::upcast`) and keeps the version
//! it was stored with in `stored_version`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use chrono::{DateTime, Utc};
use event_log::statements::reads::{self, Linked};
use futures::Stream;
use ledger_http::extract::ApiQuery;
use ledger_http::{ApiError, Principal, Role};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::live::{LiveEvent, Take};
use crate::{freshness, page, ReadState};

/// Who may read the log.
pub const READERS: &[Role] = &[Role::Analyst, Role::Auditor, Role::Admin];
/// Rows a live stream reads at a time.
const TAIL_PAGE: i64 = 500;
/// Comment lines that keep an idle stream (and its proxies) open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The name of a live feed's last message when its token expires.
pub const TOKEN_EXPIRED: &str = "token-expired";

/// One event as the API shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct EventView {
    pub position: i64,
    pub event_id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    /// The schema version of `payload` (the current one, after upcasting).
    pub event_version: String,
    /// The version the event was stored with, when it was upcast.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored_version: Option<String>,
    pub payload: serde_json::Value,
    pub metadata: serde_json::Value,
    pub recorded_at: DateTime<Utc>,
    /// The event's link in its aggregate's hash chain, hex.
    pub hash: Option<String>,
    /// The exact bytes that were hashed, hex: the canonical content of
    /// docs/AUDIT.md, with `payload` and `metadata` as the text they are
    /// stored as (`hash = sha256(previous hash ‖ canonical)`), so that a
    /// client can recompute the chain from this API alone.
    pub canonical: Option<String>,
}

impl EventView {
    /// The API's view of a stored event, its payload upcast.
    pub(crate) fn new(linked: Linked) -> Self {
        let Linked {
            event,
            hash,
            canonical,
        } = linked;
        let (event_version, payload, stored_version) = match event.upcast() {
            Some((version, payload)) => (version, payload, Some(event.event_version)),
            None => (event.event_version, event.payload, None),
        };
        Self {
            position: event.position,
            event_id: event.event_id,
            aggregate_type: event.aggregate_type,
            aggregate_id: event.aggregate_id,
            sequence: event.sequence,
            event_type: event.event_type,
            event_version,
            stored_version,
            payload,
            metadata: event.metadata,
            recorded_at: event.recorded_at,
            hash,
            canonical,
        }
    }
}

/// Which events a reader wants.
pub(crate) type Filter = reads::Filter;

fn filter_of(
    aggregate_type: Option<String>,
    aggregate_id: Option<String>,
    event_type: Option<String>,
) -> Filter {
    let given = |v: Option<String>| v.filter(|s| !s.is_empty());
    Filter {
        aggregate_type: given(aggregate_type),
        aggregate_id: given(aggregate_id),
        event_type: given(event_type),
    }
}

/// The horizon: every event at or below it is final.
pub(crate) async fn horizon(app: &ReadState) -> Result<i64, sqlx::Error> {
    projectors::checkpoints::published(&app.pool, &app.stream).await
}

/// Up to `limit` events in `(after, upto]` that pass `filter`, by position.
pub(crate) async fn read(
    pool: &PgPool,
    after: i64,
    upto: i64,
    filter: &Filter,
    limit: i64,
) -> Result<Vec<EventView>, sqlx::Error> {
    let page = reads::page(pool, after, upto, filter, limit).await?;
    Ok(page.into_iter().map(EventView::new).collect())
}

/// [`read`], of `tenant`'s events only: the event API shows a principal
/// its own tenant's log (API.md "Tenants").
pub(crate) async fn read_in(
    pool: &PgPool,
    tenant: &str,
    after: i64,
    upto: i64,
    filter: &Filter,
    limit: i64,
) -> Result<Vec<EventView>, sqlx::Error> {
    let page = reads::page_in(pool, Some(tenant), after, upto, filter, limit).await?;
    Ok(page.into_iter().map(EventView::new).collect())
}

/// Whether a live event is `tenant`'s: the `tenant` of its metadata, or
/// the default tenant without one (as the events table's `tenant` column).
/// The shared live window is every tenant's and keeps only the text a feed
/// sends, so the metadata is read back from it; an event that cannot be
/// read is nobody's (fail closed).
fn of_tenant(event: &LiveEvent, tenant: &str) -> bool {
    #[derive(Deserialize)]
    struct Head {
        #[serde(default)]
        metadata: serde_json::Value,
    }
    serde_json::from_str::<Head>(&event.data).is_ok_and(|head| {
        head.metadata
            .get("tenant")
            .and_then(serde_json::Value::as_str)
            .unwrap_or(ledger_http::DEFAULT_TENANT)
            == tenant
    })
}

fn check_after(after: Option<i64>) -> Result<i64, ApiError> {
    match after {
        None => Ok(0),
        Some(after) if after >= 0 => Ok(after),
        Some(_) => Err(ledger_http::invalid("after", "must be at least 0")),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Events after this position; negative is 422.
    #[param(minimum = 0)]
    after: Option<i64>,
    limit: Option<i64>,
    aggregate_type: Option<String>,
    aggregate_id: Option<String>,
    event_type: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EventPage {
    events: Vec<EventView>,
    /// Where to go on from: the last event's position, or `after` when
    /// there was none (poll again with it).
    next_after: i64,
    /// The horizon the page was read up to.
    horizon: i64,
}

/// `GET /v1/events`.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(ListParams), responses((status = 200, description = "A page of the log by position", body = EventPage, headers(("Ledger-Position" = i64, description = "The position the read model stood at")))), security(("bearer" = [])))]
pub async fn list(
    State(app): State<ReadState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<([(HeaderName, HeaderValue); 1], Json<EventPage>), ApiError> {
    principal.require(READERS)?;
    let after = check_after(params.after)?;
    let limit = page::limit(params.limit)?;
    let filter = filter_of(
        params.aggregate_type,
        params.aggregate_id,
        params.event_type,
    );
    let horizon = horizon(&app).await?;
    let mut events = read_in(&app.pool, &principal.tenant, after, horizon, &filter, limit).await?;
    crate::personal::reveal_views(&app, &mut events).await?;
    let next_after = events.last().map_or(after, |e| e.position);
    Ok((
        [freshness::header_value(horizon)],
        Json(EventPage {
            events,
            next_after,
            horizon,
        }),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamParams {
    /// Events after this position; negative is 422.
    #[param(minimum = 0)]
    after: Option<i64>,
    aggregate_type: Option<String>,
    aggregate_id: Option<String>,
    event_type: Option<String>,
}

/// `GET /v1/events/stream`: everything after `after` (or `Last-Event-ID`,
/// which wins) up to the horizon, then new events as the horizon moves.
/// Each message has `id:` = position, `event:` = event type and `data:` =
/// the event as `GET /v1/events` shows it. It ends when the client goes
/// away or the server shuts down, and when the token expires: at its `exp`
/// a last message `event: token-expired` (no `id:`, so that the client's
/// `Last-Event-ID` stays at the last event it got) closes it, and no event
/// is sent after `exp`. The client resumes with a fresh token.
#[utoipa::path(get, path = "/v1/events/stream", tag = "events", params(StreamParams, ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this position")), responses((status = 200, description = "The events, live, as server-sent events (`id:` = position)", content_type = "text/event-stream", body = String)), security(("bearer" = [])))]
pub async fn stream(
    State(app): State<ReadState>,
    principal: Principal,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<StreamParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    principal.require(READERS)?;
    let after = crate::feeds::resume_point(params.after, &headers)?;
    // The feed lasts as long as the token.
    let expires = crate::feeds::expiry(&principal, app.clock.as_ref());
    // Held for as long as the feed is open (429 beyond the caps).
    // The same subject in two tenants is two principals.
    let permit = app
        .feeds
        .open(&format!("{}/{}", principal.tenant, principal.subject))?;
    let grown = app.live.subscribe(&app.pool, &app.stream, &app.closing);
    let tail = Tail {
        grown,
        _permit: permit,
        closing: app.closing.clone(),
        expires,
        app,
        scanned: after,
        tenant: principal.tenant.clone(),
        filter: filter_of(
            params.aggregate_type,
            params.aggregate_id,
            params.event_type,
        ),
        buffer: VecDeque::new(),
        opened: true,
    };
    let events = futures::stream::unfold(Some(tail), |tail| async move {
        let mut tail = tail?;
        match tail.next().await? {
            Next::Event(event) => Some((Ok(message(&event)), Some(tail))),
            // The last message: the stream ends after it.
            Next::Expired(at) => Some((Ok(expired(at)), None)),
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

fn message(event: &LiveEvent) -> Event {
    Event::default()
        .id(event.position.to_string())
        .event(&event.event_type)
        .data(&event.data)
}

/// The message that ends a feed whose token expired.
pub(crate) fn expired(at: DateTime<Utc>) -> Event {
    let data = serde_json::json!({
        "detail": "the token expired: resume with a fresh token and Last-Event-ID",
        "expired_at": at,
    });
    Event::default().event(TOKEN_EXPIRED).data(data.to_string())
}

/// What a live reader hands on.
enum Next {
    Event(Arc<LiveEvent>),
    /// The token expired (at this time): nothing more is sent.
    Expired(DateTime<Utc>),
}

/// A live reader of the log: it takes new events from the process's
/// shared window ([`crate::live`]) and reads the database only for what
/// is below it; at most one page in memory.
struct Tail {
    /// The feed's place under the caps, given back when it ends.
    _permit: crate::feeds::FeedPermit,
    app: ReadState,
    closing: CancellationToken,
    /// When the token expires, and the instant that is on tokio's clock.
    expires: Option<(DateTime<Utc>, Instant)>,
    /// Changes whenever the shared window grows.
    grown: watch::Receiver<i64>,
    /// Every event at or below it was read (into `buffer` or sent).
    scanned: i64,
    /// The principal's tenant: only its events go out.
    tenant: String,
    filter: Filter,
    buffer: VecDeque<Arc<LiveEvent>>,
    /// Whether the personal fields of `buffer` were opened (they are,
    /// once, before the first of a new page goes out).
    opened: bool,
}

impl Tail {
    /// The next event, or the token's expiry; `None` once the server
    /// shuts down.
    async fn next(&mut self) -> Option<Next> {
        loop {
            // Checked before every event: none goes out after `exp`.
            if let Some((at, deadline)) = self.expires {
                if Instant::now() >= deadline {
                    return Some(Next::Expired(at));
                }
            }
            if !self.opened {
                match crate::personal::reveal_live(&self.app, &mut self.buffer).await {
                    Ok(()) => self.opened = true,
                    Err(err) => {
                        tracing::warn!(error = %err, "event stream: reading the personal data keys failed");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                            _ = self.closing.cancelled() => return None,
                        }
                    }
                }
            }
            if let Some(event) = self.buffer.pop_front() {
                return Some(Next::Event(event));
            }
            if self.closing.is_cancelled() {
                return None;
            }
            // Seen now: a growth after this wakes the wait below.
            self.grown.borrow_and_update();
            let pause = match self
                .app
                .live
                .take(self.scanned, &self.filter, TAIL_PAGE as usize)
            {
                Take::Events(events, reached) => {
                    self.scanned = reached;
                    let tenant = &self.tenant;
                    self.buffer
                        .extend(events.into_iter().filter(|e| of_tenant(e, tenant)));
                    self.opened = false;
                    continue;
                }
                Take::Behind(upto) => match self.fill(upto).await {
                    Ok(()) => continue,
                    Err(err) => {
                        tracing::warn!(error = %err, "event stream: reading the log failed");
                        Some(Duration::from_secs(1))
                    }
                },
                Take::Wait => None,
            };
            let expiry = async {
                match self.expires {
                    Some((_, deadline)) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            let pause = async {
                match pause {
                    Some(pause) => tokio::time::sleep(pause).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.grown.changed() => {}
                _ = pause => {}
                _ = expiry => {}
                _ = self.closing.cancelled() => {}
            }
        }
    }

    /// Reads the next page below `upto` (the shared window's start) from
    /// the database.
    async fn fill(&mut self, upto: i64) -> Result<(), sqlx::Error> {
        let rows = read_in(
            &self.app.pool,
            &self.tenant,
            self.scanned,
            upto,
            &self.filter,
            TAIL_PAGE,
        )
        .await?;
        // A short page means nothing else passes the filter up to `upto`.
        self.scanned = if (rows.len() as i64) < TAIL_PAGE {
            upto
        } else {
            rows.last().map_or(upto, |e| e.position)
        };
        self.buffer
            .extend(rows.into_iter().map(|view| Arc::new(LiveEvent::new(view))));
        self.opened = false;
        Ok(())
    }
}
