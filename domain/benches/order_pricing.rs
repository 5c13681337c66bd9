//! Order pricing and the Order aggregate's Place command.
//!
//! Orders of 1, 3 and 10 lines cycling through a day rental (3 days, ×1), a
//! sale (×2) and an hour rental (5 h 30 min, billed 6 hours, ×1), spread over
//! up to four vendors, with an 8.25 % tax and a 10 % platform fee.
//!
//! - `order_pricing/price_order/{lines}`: `domain::price_order` alone;
//! - `order_pricing/place_order/{lines}`: `Aggregate::handle(OrderCommand::Place)`
//!   on a fresh `Order` with an `EventSink` (validation, pricing, apply of
//!   `OrderPlaced`, collect); the command is cloned outside the timing.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use domain::{price_order, LineInput, LineTerms, Order, OrderCommand, Period, PricingUnit, Rates};
use rust_decimal::Decimal;
use uuid::Uuid;

const LINE_COUNTS: [usize; 3] = [1, 3, 10];

/// Polls a future that never waits to completion without a runtime.
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0).unwrap()
}

fn rates() -> Rates {
    Rates {
        tax_rate: Decimal::new(825, 4),
        platform_fee_rate: Decimal::new(10, 2),
    }
}

fn lines(n: usize) -> Vec<LineInput> {
    (0..n)
        .map(|i| {
            let i128 = i as u128;
            let (terms, quantity) = match i % 3 {
                0 => (
                    LineTerms::Rental {
                        late_fee_per_unit: Default::default(),
                        cancellation_policy: Vec::new(),
                        time_zone: domain::Tz::UTC,
                        period: Period {
                            start: t0() + TimeDelta::days(i as i64),
                            end: t0() + TimeDelta::days(i as i64 + 3),
                        },
                        pricing_unit: PricingUnit::Day,
                        price_per_unit: Decimal::new(4500, 2),
                        deposit_per_unit: Decimal::new(10000, 2),
                    },
                    1,
                ),
                1 => (
                    LineTerms::Sale {
                        unit_price: Decimal::new(1999, 2),
                    },
                    2,
                ),
                _ => (
                    LineTerms::Rental {
                        late_fee_per_unit: Default::default(),
                        cancellation_policy: Vec::new(),
                        time_zone: domain::Tz::UTC,
                        period: Period {
                            start: t0() + TimeDelta::hours(i as i64),
                            end: t0() + TimeDelta::hours(i as i64) + TimeDelta::minutes(330),
                        },
                        pricing_unit: PricingUnit::Hour,
                        price_per_unit: Decimal::new(1250, 2),
                        deposit_per_unit: Decimal::new(2000, 2),
                    },
                    1,
                ),
            };
            LineInput {
                line_id: Uuid::from_u128(0x1000 + i128),
                hold_id: Uuid::from_u128(0x2000 + i128),
                listing_id: Uuid::from_u128(0x3000 + i128),
                vendor_id: Uuid::from_u128(0x4000 + i128 % 4),
                terms,
                quantity,
            }
        })
        .collect()
}

fn place(lines: Vec<LineInput>) -> OrderCommand {
    OrderCommand::Place {
        order_id: Uuid::from_u128(0x5000),
        customer_id: "customer-42".to_string(),
        currency: "USD".to_string(),
        lines,
        rates: rates(),
        fee_rates: Default::default(),
        hold_expires_at: t0() - TimeDelta::days(6),
        placed_at: t0() - TimeDelta::days(7),
        payment_plans: Default::default(),
    }
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("order_pricing");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(2));
    for n in LINE_COUNTS {
        let input = lines(n);
        let priced = price_order(&input, rates());
        assert_eq!(priced.lines.len(), n);
        group.bench_with_input(BenchmarkId::new("price_order", n), &input, |b, input| {
            b.iter(|| price_order(black_box(input), black_box(rates())))
        });
        let command = place(input);
        {
            let mut order = Order::default();
            let sink = EventSink::default();
            block_on(order.handle(command.clone(), &(), &sink)).expect("a valid order");
            assert_eq!(block_on(sink.collect()).len(), 1);
            assert_eq!(order.total(), priced.total);
        }
        group.bench_with_input(
            BenchmarkId::new("place_order", n),
            &command,
            |b, command| {
                b.iter_batched(
                    || (Order::default(), command.clone()),
                    |(mut order, command)| {
                        let sink = EventSink::default();
                        block_on(order.handle(command, &(), &sink)).unwrap();
                        (order, block_on(sink.collect()))
                    },
                    BatchSize::SmallInput,
                )
            },
        );
    }
    group.finish();
}

criterion_group!(order, benches);
criterion_main!(order);
