//! Setup before the load: vendors and published listings (or the ledger's
//! own, with `--existing`), the hot listing, the deep listing's bookings.

use std::collections::HashMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use futures::stream::{self, StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use super::client::Api;
use super::{Kind, ListingInfo, RunConfig, Scenario, Span};
use crate::BenchError;

pub const CATEGORIES: &[&str] = &[
    "tools", "camping", "party", "photo", "music", "sports", "garden", "kitchen",
];
pub const NOUNS: &[&str] = &[
    "drill",
    "tent",
    "speaker",
    "camera",
    "guitar",
    "kayak",
    "mower",
    "mixer",
    "ladder",
    "projector",
    "bike",
    "saw",
    "lens",
    "grill",
    "canoe",
    "drone",
];
const ADJECTIVES: &[&str] = &[
    "compact", "heavy", "pro", "classic", "portable", "quiet", "large", "vintage",
];

/// Requests in flight during setup.
const SETUP_PARALLELISM: usize = 16;

/// What the load starts from.
pub struct Prepared {
    pub vendors: usize,
    pub listings: Vec<ListingInfo>,
    /// `hot-listing`: the one listing everyone books.
    pub hot: Option<ListingInfo>,
    /// `deep-listing`: the listing with many bookings, and a fresh one.
    pub deep: Option<(ListingInfo, ListingInfo)>,
    pub deep_bookings: usize,
    /// The highest position setup saw.
    pub position: i64,
    /// Rental listings setup already booked, with the span booked.
    pub touched: HashMap<Uuid, Span>,
    pub notes: Vec<String>,
}

/// The first instant a rental may start: midnight UTC two days on.
pub fn base_instant() -> DateTime<Utc> {
    let now = Utc::now();
    now.duration_trunc(TimeDelta::days(1)).unwrap_or(now) + TimeDelta::days(2)
}

/// The `n`-th one-hour slot from `base`.
pub fn slot(base: DateTime<Utc>, n: u64) -> Span {
    let start = base + TimeDelta::hours(i64::try_from(n).unwrap_or(i64::MAX / 4_000_000));
    (start, start + TimeDelta::hours(1))
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn bar(config: &RunConfig, len: usize, what: &str) -> ProgressBar {
    if !config.progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>12} {wide_bar} {pos}/{len} ({per_sec}, {eta})")
    {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar
}

fn position_of(body: &Value) -> i64 {
    body.get("position").and_then(Value::as_i64).unwrap_or(0)
}

fn uuid_of(body: &Value, field: &str) -> Result<Uuid, BenchError> {
    body.get(field)
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| BenchError::Unexpected(format!("no `{field}` in {body}")))
}

fn money(rng: &mut StdRng, low: u32, high: u32) -> String {
    format!("{}.{:02}", rng.gen_range(low..high), rng.gen_range(0..100))
}

pub async fn prepare(
    api: &Api,
    admin: &str,
    config: &RunConfig,
    run_id: &str,
    base: DateTime<Utc>,
) -> Result<Prepared, BenchError> {
    let mut prepared = Prepared {
        vendors: 0,
        listings: Vec::new(),
        hot: None,
        deep: None,
        deep_bookings: 0,
        position: 0,
        touched: HashMap::new(),
        notes: Vec::new(),
    };
    let started = std::time::Instant::now();
    if config.progress {
        eprintln!("setup for `{}` …", config.scenario.name());
    }
    match config.scenario {
        Scenario::Mixed | Scenario::PlaceOrder | Scenario::Reads => {
            if config.existing {
                prepared.listings = existing_listings(api, config, run_id).await?;
                prepared.vendors = {
                    let mut vendors: Vec<Uuid> =
                        prepared.listings.iter().map(|l| l.vendor_id).collect();
                    vendors.sort();
                    vendors.dedup();
                    vendors.len()
                };
            } else {
                let vendors = create_vendors(api, admin, config, run_id, config.vendors).await?;
                prepared.vendors = vendors.len();
                let (listings, position) = create_listings(api, config, run_id, &vendors).await?;
                prepared.listings = listings;
                prepared.position = position;
            }
        }
        Scenario::HotListing => {
            let vendors = create_vendors(api, admin, config, run_id, 1).await?;
            prepared.vendors = 1;
            let (listing, position) = one_rental(api, run_id, vendors[0], "hot").await?;
            prepared.position = position;
            prepared.hot = Some(listing);
        }
        Scenario::DeepListing => {
            let vendors = create_vendors(api, admin, config, run_id, 1).await?;
            prepared.vendors = 1;
            let (a, _) = one_rental(api, run_id, vendors[0], "deep").await?;
            let (b, position) = one_rental(api, run_id, vendors[0], "fresh").await?;
            prepared.position = position;
            let (booked, position) = book_deep(api, config, run_id, base, &a).await?;
            prepared.position = prepared.position.max(position);
            prepared.deep_bookings = booked;
            if booked > 0 {
                let (_, end) = slot(base, booked as u64 - 1);
                prepared.touched.insert(a.listing_id, (base, end));
            }
            if booked < config.bookings {
                prepared.notes.push(format!(
                    "only {booked} of {} bookings on the deep listing succeeded",
                    config.bookings
                ));
            }
            prepared.deep = Some((a, b));
        }
    }
    if config.progress {
        eprintln!(
            "setup done in {:.1} s: {} vendors, {} listings{}",
            started.elapsed().as_secs_f64(),
            prepared.vendors,
            prepared.listings.len()
                + usize::from(prepared.hot.is_some())
                + 2 * usize::from(prepared.deep.is_some()),
            if prepared.deep.is_some() {
                format!(", {} bookings on the deep listing", prepared.deep_bookings)
            } else {
                String::new()
            }
        );
    }
    Ok(prepared)
}

async fn create_vendors(
    api: &Api,
    admin: &str,
    config: &RunConfig,
    run_id: &str,
    n: usize,
) -> Result<Vec<Uuid>, BenchError> {
    let bar = bar(config, n, "vendors");
    let vendors: Vec<Uuid> = stream::iter(0..n)
        .map(|i| {
            let bar = bar.clone();
            async move {
                let body = json!({ "name": format!("loadgen {run_id} vendor {i}") });
                let answer = api
                    .must(
                        "create a vendor",
                        Method::POST,
                        "/v1/vendors",
                        admin,
                        Some(&body),
                    )
                    .await?;
                bar.inc(1);
                uuid_of(&answer, "vendor_id")
            }
        })
        .buffer_unordered(SETUP_PARALLELISM)
        .try_collect()
        .await?;
    bar.finish_and_clear();
    Ok(vendors)
}

pub fn vendor_token(api: &Api, vendor_id: Uuid) -> Result<String, BenchError> {
    api.token(
        "vendor",
        &format!("loadgen-vendor-{vendor_id}"),
        Some(vendor_id),
    )
}

async fn create_and_publish(
    api: &Api,
    vendor_id: Uuid,
    body: &Value,
) -> Result<(Uuid, i64), BenchError> {
    let token = vendor_token(api, vendor_id)?;
    let created = api
        .must(
            "create a listing",
            Method::POST,
            "/v1/listings",
            &token,
            Some(body),
        )
        .await?;
    let listing_id = uuid_of(&created, "listing_id")?;
    let published = api
        .must(
            "publish a listing",
            Method::POST,
            &format!("/v1/listings/{listing_id}/publish"),
            &token,
            None,
        )
        .await?;
    Ok((listing_id, position_of(&published)))
}

async fn create_listings(
    api: &Api,
    config: &RunConfig,
    run_id: &str,
    vendors: &[Uuid],
) -> Result<(Vec<ListingInfo>, i64), BenchError> {
    let bar = bar(config, config.listings, "listings");
    let short = &run_id[run_id.len().saturating_sub(6)..];
    let made: Vec<(ListingInfo, i64)> = stream::iter(0..config.listings)
        .map(|i| {
            let bar = bar.clone();
            let vendor_id = vendors[i % vendors.len()];
            async move {
                let mut rng = StdRng::from_entropy();
                let category = CATEGORIES[i % CATEGORIES.len()];
                let title = format!(
                    "{} {} {short}-{i}",
                    ADJECTIVES[rng.gen_range(0..ADJECTIVES.len())],
                    NOUNS[rng.gen_range(0..NOUNS.len())]
                );
                let description = format!("loadgen listing {i} of run {run_id}");
                let (kind, body) = if i % 10 < 2 {
                    (
                        Kind::Sale,
                        json!({
                            "title": title, "description": description, "category": category,
                            "kind": "sale", "unit_price": money(&mut rng, 3, 200),
                            "stock": 1_000_000,
                        }),
                    )
                } else {
                    let units = rng.gen_range(1..=5u32);
                    let hourly = i % 10 >= 7;
                    (
                        Kind::Rental { units, hourly },
                        json!({
                            "title": title, "description": description, "category": category,
                            "kind": "rental",
                            "pricing_unit": if hourly { "hour" } else { "day" },
                            "price_per_unit": money(&mut rng, 5, 120),
                            "deposit": money(&mut rng, 0, 300),
                            "units": units,
                        }),
                    )
                };
                let (listing_id, position) = create_and_publish(api, vendor_id, &body).await?;
                bar.inc(1);
                Ok::<_, BenchError>((
                    ListingInfo {
                        listing_id,
                        vendor_id,
                        category: category.to_owned(),
                        kind,
                    },
                    position,
                ))
            }
        })
        .buffer_unordered(SETUP_PARALLELISM)
        .try_collect()
        .await?;
    bar.finish_and_clear();
    let position = made.iter().map(|(_, p)| *p).max().unwrap_or(0);
    Ok((made.into_iter().map(|(l, _)| l).collect(), position))
}

/// A published hourly rental of one unit.
async fn one_rental(
    api: &Api,
    run_id: &str,
    vendor_id: Uuid,
    what: &str,
) -> Result<(ListingInfo, i64), BenchError> {
    let body = json!({
        "title": format!("{what} listing {run_id}"),
        "description": format!("loadgen {what} listing"),
        "category": "tools",
        "kind": "rental",
        "pricing_unit": "hour",
        "price_per_unit": "7.50",
        "deposit": "20.00",
        "units": 1,
    });
    let (listing_id, position) = create_and_publish(api, vendor_id, &body).await?;
    Ok((
        ListingInfo {
            listing_id,
            vendor_id,
            category: "tools".to_owned(),
            kind: Kind::Rental {
                units: 1,
                hourly: true,
            },
        },
        position,
    ))
}

/// Books (places and pays) `--bookings` consecutive one-hour slots on `a`.
async fn book_deep(
    api: &Api,
    config: &RunConfig,
    run_id: &str,
    base: DateTime<Utc>,
    a: &ListingInfo,
) -> Result<(usize, i64), BenchError> {
    let n = config.bookings;
    let bar = bar(config, n, "bookings");
    let customers: Vec<String> = (0..config.concurrency.max(1))
        .map(|i| api.token("customer", &format!("loadgen-{run_id}-booker-{i}"), None))
        .collect::<Result<_, _>>()?;
    let results: Vec<Option<i64>> = stream::iter(0..n)
        .map(|k| {
            let bar = bar.clone();
            let token = &customers[k % customers.len()];
            async move {
                let (start, end) = slot(base, k as u64);
                let body = json!({"items": [{
                    "listing_id": a.listing_id, "quantity": 1,
                    "start": rfc3339(start), "end": rfc3339(end),
                }]});
                let placed = api.post("/v1/orders", token, &body).await;
                bar.inc(1);
                if !placed.ok() {
                    return None;
                }
                let paid = super::scenarios::pay(api, &placed, true).await?;
                paid.ok().then(|| paid.position().unwrap_or(0))
            }
        })
        .buffer_unordered(config.concurrency.max(1))
        .collect()
        .await;
    bar.finish_and_clear();
    let booked = results.iter().filter(|r| r.is_some()).count();
    let position = results.iter().flatten().copied().max().unwrap_or(0);
    Ok((booked, position))
}

/// Published listings already in the ledger, up to `--listings`.
async fn existing_listings(
    api: &Api,
    config: &RunConfig,
    run_id: &str,
) -> Result<Vec<ListingInfo>, BenchError> {
    let token = api.token("customer", &format!("loadgen-{run_id}-pager"), None)?;
    let bar = bar(config, config.listings, "listings");
    let mut found = Vec::new();
    let mut cursor: Option<String> = None;
    while found.len() < config.listings {
        let limit = (config.listings - found.len()).clamp(1, 500);
        let mut path = format!("/v1/listings?limit={limit}");
        if let Some(c) = &cursor {
            path.push_str("&cursor=");
            path.push_str(&encode(c));
        }
        let page = api
            .must("page the listings", Method::GET, &path, &token, None)
            .await?;
        let items = page
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for item in &items {
            if let Some(listing) = parse_listing(item) {
                found.push(listing);
                bar.inc(1);
            }
        }
        cursor = page
            .get("next_cursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if cursor.is_none() || items.is_empty() {
            break;
        }
    }
    bar.finish_and_clear();
    if found.is_empty() {
        return Err(BenchError::Config(
            "--existing: the ledger has no published listing".into(),
        ));
    }
    found.truncate(config.listings);
    Ok(found)
}

fn parse_listing(item: &Value) -> Option<ListingInfo> {
    let listing_id = item.get("listing_id")?.as_str()?.parse().ok()?;
    let vendor_id = item.get("vendor_id")?.as_str()?.parse().ok()?;
    let category = item
        .get("category")
        .and_then(Value::as_str)
        .unwrap_or("tools")
        .to_owned();
    if item.get("status").and_then(Value::as_str) != Some("published") {
        return None;
    }
    let kind = match item.get("kind")?.as_str()? {
        "rental" => Kind::Rental {
            units: u32::try_from(item.get("units")?.as_u64()?).ok()?,
            hourly: item.get("pricing_unit").and_then(Value::as_str) == Some("hour"),
        },
        "sale" => Kind::Sale,
        _ => return None,
    };
    Some(ListingInfo {
        listing_id,
        vendor_id,
        category,
        kind,
    })
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
