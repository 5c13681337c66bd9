//! The inventory hold check and what loading a big Inventory costs the
//! command side.
//!
//! Fixture: a rental listing with `UNITS` identical units and `n` prior
//! bookings (Confirmed holds of quantity 1), built by applying events. Each
//! unit is a lane of bookings over a ~5-year calendar (2024–2028): lane `k`
//! takes bookings `k, k + UNITS, …`, each inside its own equal slot, so at most
//! `UNITS` bookings overlap at any instant (they overlap "within units").
//! Bookings are a mix of hourly (1–8 h) and daily (1–14 days, bounded by the
//! slot) rentals at random offsets. A 72-hour gap is kept free of bookings in
//! the middle of the calendar; the new hold is a one-day rental in that gap:
//! it overlaps nothing, yet the index scan still walks the neighbouring
//! bookings within the longest booking length before it.
//!
//! Groups:
//! - `inventory_place_hold/{n}`: `Aggregate::handle(PlaceHold)` with an
//!   `EventSink` (decide + apply of the `HoldPlaced` event + collect). After
//!   each timed call the hold is released (untimed) so the index is back to
//!   its prior state; the aggregate is re-cloned (untimed) every few thousand
//!   iterations so at most `n / 16` released holds accumulate in its map.
//! - `inventory_load/*/{n}`: what a command-side load costs: deserializing the
//!   snapshot from JSON text and from a `serde_json::Value` (what postgres-es
//!   does with the jsonb it reads; both rebuild the index), serializing it back
//!   to a `Value` (a snapshot write), cloning it (the command bus handles on a
//!   clone) and, for reference, replaying its events (a load without snapshot).

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, SamplingMode};
use domain::{Capacity, HoldRequest, Inventory, InventoryCommand, InventoryEvent, Period};
use serde::Deserialize;
use uuid::Uuid;

const SIZES: [usize; 4] = [0, 1_000, 10_000, 100_000];
const UNITS: u32 = 100;
/// Length of the booked calendar, without the free gap.
const SPAN_HOURS: i64 = 5 * 365 * 24;
const GAP_HOURS: i64 = 72;
const MAX_DAILY_DAYS: i64 = 14;

/// Polls a future that never waits (the aggregate's `handle` and the sink's
/// uncontended mutex) to completion without a runtime.
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// splitmix64: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
    fn uuid(&mut self) -> Uuid {
        Uuid::from_u128((u128::from(self.next()) << 64) | u128::from(self.next()))
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
}

fn hours(h: i64) -> TimeDelta {
    TimeDelta::hours(h)
}

struct Fixture {
    n: usize,
    inventory: Inventory,
    events: Vec<InventoryEvent>,
    /// The new hold's period: one day inside the free gap.
    new_period: Period,
    now: DateTime<Utc>,
}

fn fixture(n: usize) -> Fixture {
    let mut rng = Rng(0x5EED ^ n as u64);
    let listing_id = rng.uuid();
    let mut events = Vec::with_capacity(1 + 2 * n);
    events.push(InventoryEvent::InventoryInitialized {
        listing_id,
        capacity: Capacity::Rental { units: UNITS },
    });
    let per_lane = n.div_ceil(UNITS as usize) as i64;
    let slot = if per_lane == 0 {
        SPAN_HOURS
    } else {
        SPAN_HOURS / per_lane
    };
    // The gap starts at a slot boundary shared by every lane.
    let gap_slot = per_lane / 2;
    let gap_at = if per_lane == 0 {
        SPAN_HOURS / 2
    } else {
        gap_slot * slot
    };
    for i in 0..n {
        let k = (i / UNITS as usize) as i64;
        let len = if (rng.next() & 1) == 0 {
            rng.range(1, 8)
        } else {
            24 * rng.range(1, (slot / 24 * 3 / 4).clamp(1, MAX_DAILY_DAYS))
        }
        .min(slot);
        let offset = rng.range(0, slot - len);
        let shift = if k >= gap_slot { GAP_HOURS } else { 0 };
        let start = t0() + hours(k * slot + offset + shift);
        let period = Period {
            start,
            end: start + hours(len),
        };
        let hold_id = rng.uuid();
        events.push(InventoryEvent::HoldPlaced {
            buffer: None,
            hold_id,
            order_id: rng.uuid(),
            request: HoldRequest::Rental {
                period,
                quantity: 1,
            },
            expires_at: start - hours(24 * 7),
        });
        events.push(InventoryEvent::HoldConfirmed { hold_id });
    }
    let mut inventory = Inventory::default();
    for e in events.iter().cloned() {
        inventory.apply(e);
    }
    let start = t0() + hours(gap_at + 24);
    let new_period = Period {
        start,
        end: start + hours(24),
    };
    let fx = Fixture {
        n,
        inventory,
        events,
        new_period,
        now: start - hours(24 * 14),
    };
    // The command under test must succeed with one HoldPlaced.
    let mut inv = fx.inventory.clone();
    let sink = EventSink::default();
    block_on(inv.handle(
        fx.place_hold(Uuid::from_u128(1), Uuid::from_u128(2)),
        &(),
        &sink,
    ))
    .expect("the new hold fits");
    let placed = block_on(sink.collect());
    assert!(matches!(placed[..], [InventoryEvent::HoldPlaced { .. }]));
    assert_eq!(fx.inventory.holds().count(), n);
    fx
}

impl Fixture {
    fn place_hold(&self, hold_id: Uuid, order_id: Uuid) -> InventoryCommand {
        InventoryCommand::PlaceHold {
            hold_id,
            order_id,
            request: HoldRequest::Rental {
                period: self.new_period,
                quantity: 1,
            },
            expires_at: self.now + TimeDelta::minutes(15),
            now: self.now,
        }
    }
}

fn place_hold(c: &mut Criterion, fixtures: &[Fixture]) {
    let mut group = c.benchmark_group("inventory_place_hold");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.sample_size(30);
    for fx in fixtures {
        let reset_every = (fx.n / 16).max(64) as u64;
        group.bench_with_input(BenchmarkId::from_parameter(fx.n), fx, |b, fx| {
            let mut rng = Rng(42);
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut inv = fx.inventory.clone();
                for i in 0..iters {
                    if i > 0 && i % reset_every == 0 {
                        inv = fx.inventory.clone();
                    }
                    let hold_id = rng.uuid();
                    let command = fx.place_hold(hold_id, rng.uuid());
                    let started = Instant::now();
                    let sink = EventSink::default();
                    let result = block_on(inv.handle(command, &(), &sink));
                    let events = block_on(sink.collect());
                    total += started.elapsed();
                    assert!(result.is_ok() && events.len() == 1);
                    black_box(events);
                    inv.apply(InventoryEvent::HoldReleased {
                        hold_id,
                        reason: String::new(),
                    });
                }
                total
            });
        });
    }
    group.finish();
}

fn load(c: &mut Criterion, fixtures: &[Fixture]) {
    let mut group = c.benchmark_group("inventory_load");
    group.warm_up_time(Duration::from_secs(1));
    for fx in fixtures {
        let text = serde_json::to_string(&fx.inventory).unwrap();
        let value = serde_json::to_value(&fx.inventory).unwrap();
        eprintln!(
            "inventory_load: n = {}: snapshot {} bytes of JSON, {} events",
            fx.n,
            text.len(),
            fx.events.len()
        );
        if fx.n >= 10_000 {
            group.sampling_mode(SamplingMode::Flat);
            group.sample_size(10);
            group.measurement_time(Duration::from_secs(2));
        } else {
            group.sampling_mode(SamplingMode::Auto);
            group.sample_size(30);
            group.measurement_time(Duration::from_secs(2));
        }
        let id = |name: &str| BenchmarkId::new(name, fx.n);
        group.bench_function(id("deserialize_json_text"), |b| {
            b.iter(|| serde_json::from_str::<Inventory>(black_box(&text)).unwrap())
        });
        group.bench_function(id("deserialize_json_value"), |b| {
            b.iter(|| Inventory::deserialize(black_box(&value)).unwrap())
        });
        group.bench_function(id("serialize_json_value"), |b| {
            b.iter(|| serde_json::to_value(black_box(&fx.inventory)).unwrap())
        });
        group.bench_function(id("clone"), |b| b.iter(|| black_box(&fx.inventory).clone()));
        group.bench_function(id("replay_events"), |b| {
            b.iter_batched(
                || fx.events.clone(),
                |events| {
                    let mut inv = Inventory::default();
                    for e in events {
                        inv.apply(e);
                    }
                    inv
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let started = Instant::now();
    let fixtures: Vec<Fixture> = SIZES.iter().map(|&n| fixture(n)).collect();
    eprintln!("fixtures built in {:?}", started.elapsed());
    place_hold(c, &fixtures);
    load(c, &fixtures);
}

criterion_group!(inventory, benches);
criterion_main!(inventory);
