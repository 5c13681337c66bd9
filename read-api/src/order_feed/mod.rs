//! `GET /v1/orders/stream` (API.md "Webhooks out, live feeds, dashboard"):
//! order events, live, scoped to who asks: a customer follows its own
//! orders, a vendor its parts of the orders it takes part in, an admin all.
//!
//! One watcher per process ([`OrderHub`]) reads the order events below the
//! relay's published position (the horizon, as `/v1/events/stream`) once,
//! works out whose order each belongs to, and broadcasts them in batches;
//! every open feed filters the batches in memory. A feed only reads the
//! database itself to catch up: from `after`/`Last-Event-ID` to the horizon
//! when it opens, and over a gap when it fell behind the broadcast.
//!
//! Caps, shutdown and token expiry are those of `/v1/events/stream`.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::{DateTime, Utc};
use futures::Stream;
use ledger_http::extract::ApiQuery;
use ledger_http::{ApiError, Principal, Role};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast;
use tokio::time::Instant;
use uuid::Uuid;

use crate::events::{self, EventView, Filter};
use crate::ReadState;

/// The aggregate type of orders in the log.
const ORDER: &str = "Order";
/// How often the watcher looks for a new horizon.
const WATCH_INTERVAL: Duration = Duration::from_millis(150);
/// Events read (and broadcast) at a time.
const PAGE: i64 = 500;
/// Batches the broadcast holds for a slow feed before it lags (and then
/// catches up from the database).
const CHANNEL: usize = 64;
/// Orders whose parties are remembered; the memory is emptied past it.
const PARTIES_CACHED: usize = 20_000;
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Who may follow orders.
pub const FOLLOWERS: &[Role] = &[Role::Customer, Role::Vendor, Role::Admin];

/// One order event as the feed shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct OrderEventView {
    pub position: i64,
    pub event_id: Uuid,
    pub order_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// The event's fields (upcast to the current schema). A vendor sees
    /// `OrderPlaced` with its own lines and part only, and no customer.
    pub payload: Value,
    pub recorded_at: DateTime<Utc>,
}

/// Whose an order is, from its `OrderPlaced`.
#[derive(Debug, Default)]
struct Parties {
    customer_id: String,
    vendors: Vec<Uuid>,
    /// Each line's vendor.
    lines: HashMap<Uuid, Uuid>,
}

impl Parties {
    /// From an `OrderPlaced` payload (externally tagged or not).
    fn of_placed(payload: &Value) -> Self {
        let placed = inner(payload, "OrderPlaced");
        let uuid = |v: &Value| v.as_str().and_then(|s| s.parse::<Uuid>().ok());
        let priced = &placed["priced"];
        let lines = priced["lines"]
            .as_array()
            .map(|lines| {
                lines
                    .iter()
                    .filter_map(|l| Some((uuid(&l["line_id"])?, uuid(&l["vendor_id"])?)))
                    .collect()
            })
            .unwrap_or_default();
        let vendors = priced["vendors"]
            .as_array()
            .map(|parts| parts.iter().filter_map(|p| uuid(&p["vendor_id"])).collect())
            .unwrap_or_default();
        Self {
            customer_id: placed["customer_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            vendors,
            lines,
        }
    }
}

/// The fields of an externally tagged payload.
fn inner<'a>(payload: &'a Value, event_type: &str) -> &'a Value {
    payload.get(event_type).unwrap_or(payload)
}

/// An order event with its order's tenant and parties (none when its
/// `OrderPlaced` could not be found: then only an admin sees it).
#[derive(Debug)]
struct Routed {
    view: OrderEventView,
    /// The event's tenant (its metadata's `tenant`, absent: the default).
    tenant: String,
    parties: Option<Arc<Parties>>,
}

/// The order events in `(after, upto]`, all of them.
#[derive(Debug)]
struct Batch {
    after: i64,
    upto: i64,
    events: Vec<Arc<Routed>>,
}

/// Whose feed it is: a tenant's, and in it, whose orders.
#[derive(Clone, Debug)]
struct Scope {
    tenant: String,
    who: Who,
}

#[derive(Clone, Debug)]
enum Who {
    All,
    Customer(String),
    Vendor(Uuid),
}

impl Scope {
    fn of(principal: &Principal) -> Result<Self, ApiError> {
        principal.require(FOLLOWERS)?;
        let who = match principal.role {
            Role::Customer => Who::Customer(principal.subject.clone()),
            Role::Vendor => principal.vendor_id.map(Who::Vendor).ok_or_else(|| {
                ApiError::Forbidden("a vendor token must name its vendor_id".to_owned())
            })?,
            _ => Who::All,
        };
        Ok(Self {
            tenant: principal.tenant.clone(),
            who,
        })
    }

    /// The event as this scope may see it, if at all: never another
    /// tenant's (API.md "Tenants"), even for an admin.
    fn shown(&self, routed: &Routed) -> Option<OrderEventView> {
        if routed.tenant != self.tenant {
            return None;
        }
        let view = &routed.view;
        match &self.who {
            Who::All => Some(view.clone()),
            Who::Customer(subject) => routed
                .parties
                .as_ref()
                .filter(|p| &p.customer_id == subject)
                .map(|_| view.clone()),
            Who::Vendor(vendor) => {
                let parties = routed.parties.as_ref()?;
                if !parties.vendors.contains(vendor) {
                    return None;
                }
                vendor_view(view, parties, *vendor)
            }
        }
    }
}

/// What vendor `vendor` of an order it takes part in sees of one event.
fn vendor_view(view: &OrderEventView, parties: &Parties, vendor: Uuid) -> Option<OrderEventView> {
    let payload =
        ledger_http::order_share::vendor_share(&view.event_type, &view.payload, vendor, |line| {
            parties.lines.get(&line).copied()
        })?;
    let mut shown = view.clone();
    shown.payload = payload;
    Some(shown)
}

/// The process's one watcher of order events, started by the first feed.
#[derive(Debug, Default)]
pub struct OrderHub {
    sender: OnceLock<broadcast::Sender<Arc<Batch>>>,
    parties: Mutex<HashMap<String, Arc<Parties>>>,
}

impl OrderHub {
    /// A receiver of the batches to come; starts the watcher if need be.
    fn subscribe(&self, app: &ReadState) -> broadcast::Receiver<Arc<Batch>> {
        self.sender
            .get_or_init(|| {
                let (sender, _) = broadcast::channel(CHANNEL);
                tokio::spawn(watch(app.clone(), sender.clone()));
                sender
            })
            .subscribe()
    }

    fn remembered(&self, order_id: &str) -> Option<Arc<Parties>> {
        let parties = self.parties.lock().unwrap_or_else(|e| e.into_inner());
        parties.get(order_id).cloned()
    }

    fn remember(&self, order_id: &str, parties: Arc<Parties>) {
        let mut known = self.parties.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() >= PARTIES_CACHED {
            known.clear();
        }
        known.insert(order_id.to_owned(), parties);
    }

    /// Open feeds (receivers) right now; for tests and metrics.
    pub fn receivers(&self) -> usize {
        self.sender.get().map_or(0, |s| s.receiver_count())
    }
}

/// The watcher: broadcasts every order event below the horizon, once.
async fn watch(app: ReadState, sender: broadcast::Sender<Arc<Batch>>) {
    let mut last: Option<i64> = None;
    loop {
        let pause = match step(&app, &sender, &mut last).await {
            Ok(true) => continue,
            Ok(false) => WATCH_INTERVAL,
            Err(err) => {
                tracing::warn!(error = %err, "order feed watcher: reading the log failed");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = app.closing.cancelled() => return,
        }
    }
}

/// One read of the watcher; true when there may be more right away.
async fn step(
    app: &ReadState,
    sender: &broadcast::Sender<Arc<Batch>>,
    last: &mut Option<i64>,
) -> Result<bool, sqlx::Error> {
    let horizon = events::horizon(app).await?;
    let Some(after) = *last else {
        // Feeds catch up by themselves to the horizon they saw when they
        // opened; the watcher starts from here, and says so with an empty
        // batch: a feed that saw an older horizon reads the events in
        // between from the database instead of waiting for the next batch.
        *last = Some(horizon);
        let _ = sender.send(Arc::new(Batch {
            after: horizon,
            upto: horizon,
            events: Vec::new(),
        }));
        return Ok(false);
    };
    if horizon <= after {
        return Ok(false);
    }
    let (events, upto) = read_routed(app, after, horizon).await?;
    // No receiver is no error: the batch is for whoever listens.
    let _ = sender.send(Arc::new(Batch {
        after,
        upto,
        events,
    }));
    *last = Some(upto);
    Ok(upto < horizon)
}

/// Up to a page of the order events in `(after, upto]` with their
/// parties, and how far that read covers.
async fn read_routed(
    app: &ReadState,
    after: i64,
    upto: i64,
) -> Result<(Vec<Arc<Routed>>, i64), sqlx::Error> {
    let filter = Filter {
        aggregate_type: Some(ORDER.to_owned()),
        aggregate_id: None,
        event_type: None,
    };
    let views = events::read(&app.pool, after, upto, &filter, PAGE).await?;
    // A short page means nothing else up to `upto` is an order event.
    let covered = if (views.len() as i64) < PAGE {
        upto
    } else {
        views.last().map_or(upto, |v| v.position)
    };
    let mut routed = Vec::with_capacity(views.len());
    for view in views {
        let parties = parties_of(app, &view).await?;
        let tenant = tenant_of(&view).to_owned();
        routed.push(Arc::new(Routed {
            view: feed_view(view),
            tenant,
            parties,
        }));
    }
    Ok((routed, covered))
}

/// An event's tenant, as the events table derives it (migration 0038).
fn tenant_of(view: &EventView) -> &str {
    view.metadata
        .get("tenant")
        .and_then(Value::as_str)
        .unwrap_or(event_log::DEFAULT_TENANT)
}

fn feed_view(view: EventView) -> OrderEventView {
    OrderEventView {
        position: view.position,
        event_id: view.event_id,
        order_id: view.aggregate_id,
        sequence: view.sequence,
        event_type: view.event_type,
        event_version: view.event_version,
        payload: view.payload,
        recorded_at: view.recorded_at,
    }
}

/// The parties of the order `view` belongs to.
async fn parties_of(
    app: &ReadState,
    view: &EventView,
) -> Result<Option<Arc<Parties>>, sqlx::Error> {
    let hub = &app.orders_feed;
    if view.event_type == "OrderPlaced" {
        let parties = Arc::new(Parties::of_placed(&view.payload));
        hub.remember(&view.aggregate_id, parties.clone());
        return Ok(Some(parties));
    }
    if let Some(parties) = hub.remembered(&view.aggregate_id) {
        return Ok(Some(parties));
    }
    let placed = event_log::statements::reads::of_aggregate(&app.pool, ORDER, &view.aggregate_id)
        .await?
        .into_iter()
        .find(|linked| linked.event.event_type == "OrderPlaced");
    Ok(placed.map(|linked| {
        let parties = Arc::new(Parties::of_placed(&linked.event.payload));
        hub.remember(&view.aggregate_id, parties.clone());
        parties
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamParams {
    /// Events after this position; negative is 422.
    #[param(minimum = 0)]
    after: Option<i64>,
}

/// `GET /v1/orders/stream`: the order events the caller may see after
/// `after` (or `Last-Event-ID`, which wins), up to the horizon, then live.
/// Each message has `id:` = position, `event:` = event type and `data:` =
/// the event (`OrderEventView`). A customer gets the events of its own
/// orders; a vendor those of the orders it takes part in that concern the
/// whole order or its own part (its `OrderPlaced` shows its own lines and
/// part only; payments and other vendors' parts are left out); an admin
/// all. It ends as `/v1/events/stream` does: `event: token-expired` at the
/// token's `exp`, or when the server shuts down.
#[utoipa::path(get, path = "/v1/orders/stream", tag = "queries", params(StreamParams, ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this position")), responses((status = 200, description = "Order events the caller may see, live, as server-sent events (`id:` = position, `data:` = OrderEventView)", content_type = "text/event-stream", body = String)), security(("bearer" = [])))]
pub async fn stream(
    State(app): State<ReadState>,
    principal: Principal,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<StreamParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let scope = Scope::of(&principal)?;
    let after = crate::feeds::resume_point(params.after, &headers)?;
    let expires = crate::feeds::expiry(&principal, app.clock.as_ref());
    // The same subject in two tenants is two principals.
    let permit = app
        .feeds
        .open(&format!("{}/{}", principal.tenant, principal.subject))?;
    // Subscribed before the horizon is read: nothing falls between the
    // catch-up and the first batch.
    let batches = app.orders_feed.subscribe(&app);
    let target = events::horizon(&app).await?;
    let tail = OrderTail {
        _permit: permit,
        app,
        expires,
        scope,
        batches,
        scanned: after,
        target,
        buffer: VecDeque::new(),
        opened: true,
    };
    let messages = futures::stream::unfold(Some(tail), |tail| async move {
        let mut tail = tail?;
        match tail.next().await? {
            Next::Event(view) => Some((Ok(message(&view)), Some(tail))),
            Next::Expired(at) => Some((Ok(events::expired(at)), None)),
        }
    });
    Ok(Sse::new(messages).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

fn message(view: &OrderEventView) -> Event {
    let data = serde_json::to_string(view).unwrap_or_else(|_| "{}".to_owned());
    Event::default()
        .id(view.position.to_string())
        .event(&view.event_type)
        .data(data)
}

enum Next {
    Event(Box<OrderEventView>),
    Expired(DateTime<Utc>),
}

/// One open feed: at most a page (or a batch) of events in memory.
struct OrderTail {
    _permit: crate::feeds::FeedPermit,
    app: ReadState,
    expires: Option<(DateTime<Utc>, Instant)>,
    scope: Scope,
    batches: broadcast::Receiver<Arc<Batch>>,
    /// Every order event at or below it was looked at.
    scanned: i64,
    /// Read from the database up to here before taking batches.
    target: i64,
    buffer: VecDeque<OrderEventView>,
    /// Whether the personal fields of `buffer` were opened (once, before
    /// the first of what was added goes out; the shared batches stay
    /// sealed).
    opened: bool,
}

impl OrderTail {
    async fn next(&mut self) -> Option<Next> {
        loop {
            if let Some((at, deadline)) = self.expires {
                if Instant::now() >= deadline {
                    return Some(Next::Expired(at));
                }
            }
            if !self.opened {
                let mut payloads: Vec<&mut Value> =
                    self.buffer.iter_mut().map(|v| &mut v.payload).collect();
                match crate::personal::reveal_values(&self.app, &mut payloads).await {
                    Ok(()) => self.opened = true,
                    Err(err) => {
                        tracing::warn!(error = ?err, "order feed: reading the personal data keys failed");
                        let closing = self.app.closing.clone();
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                            _ = closing.cancelled() => return None,
                        }
                    }
                }
            }
            if let Some(view) = self.buffer.pop_front() {
                return Some(Next::Event(Box::new(view)));
            }
            if self.app.closing.is_cancelled() {
                return None;
            }
            let mut pause = None;
            if self.target > self.scanned {
                match self.catch_up().await {
                    Ok(()) => continue,
                    Err(err) => {
                        tracing::warn!(error = %err, "order feed: reading the log failed");
                        pause = Some(Duration::from_secs(1));
                    }
                }
            }
            let expires = self.expires;
            let expiry = async {
                match expires {
                    Some((_, deadline)) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            let retry = async {
                match pause {
                    Some(pause) => tokio::time::sleep(pause).await,
                    None => std::future::pending().await,
                }
            };
            let closing = self.app.closing.clone();
            let woke = tokio::select! {
                batch = self.batches.recv(), if pause.is_none() => Some(batch),
                _ = retry => None,
                _ = expiry => None,
                _ = closing.cancelled() => None,
            };
            match woke {
                Some(Ok(batch)) => self.take(&batch),
                // Fell behind: the database has what was missed.
                Some(Err(broadcast::error::RecvError::Lagged(_))) => {
                    match events::horizon(&self.app).await {
                        Ok(horizon) => self.target = self.target.max(horizon),
                        Err(err) => {
                            tracing::warn!(error = %err, "order feed: reading the horizon failed")
                        }
                    }
                }
                Some(Err(broadcast::error::RecvError::Closed)) => return None,
                None => {}
            }
        }
    }

    /// Reads the next page of the backlog from the database.
    async fn catch_up(&mut self) -> Result<(), sqlx::Error> {
        let (events, covered) = read_routed(&self.app, self.scanned, self.target).await?;
        self.buffer
            .extend(events.iter().filter_map(|e| self.scope.shown(e)));
        self.opened = false;
        self.scanned = covered;
        Ok(())
    }

    /// Takes what is new in a broadcast batch; a gap before it is read from
    /// the database instead.
    fn take(&mut self, batch: &Batch) {
        match taken(self.scanned, batch, &self.scope) {
            Taken::Nothing => {}
            Taken::Gap(upto) => self.target = self.target.max(upto),
            Taken::Events(scanned, views) => {
                self.buffer.extend(views);
                self.opened = false;
                self.scanned = scanned;
            }
        }
    }
}

/// What a feed that looked at everything up to `scanned` makes of a batch.
#[derive(Debug)]
enum Taken {
    /// Nothing new in it.
    Nothing,
    /// It starts past `scanned`: read from the database up to here.
    Gap(i64),
    /// What it shows of the batch, and how far it has now looked.
    Events(i64, Vec<OrderEventView>),
}

fn taken(scanned: i64, batch: &Batch, scope: &Scope) -> Taken {
    if batch.upto <= scanned {
        return Taken::Nothing;
    }
    if batch.after > scanned {
        return Taken::Gap(batch.upto);
    }
    let shown = batch
        .events
        .iter()
        .filter(|e| e.view.position > scanned)
        .filter_map(|e| scope.shown(e))
        .collect();
    Taken::Events(batch.upto, shown)
}

#[cfg(test)]
mod tests;
