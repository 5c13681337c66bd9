//! The lease used by the instalment tests (`instalments.rs`,
//! `lease_dunning.rs`): 90 days from Jan 31 at 10.00 a day, paid by a
//! plan, and the commands and checks they share.
#![allow(dead_code)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use domain::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use uuid::Uuid;

pub type F = TestFramework<Order>;
pub use domain::OrderCommand as C;
pub use domain::OrderEvent as E;

pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 1, 31, 10, 0, 0).unwrap()
}
pub fn day(d: i64) -> DateTime<Utc> {
    start() + Duration::days(d)
}
pub fn u(n: u128) -> Uuid {
    Uuid::from_u128(n)
}
pub const LINE: u128 = 21;
pub const SALE: u128 = 22;
pub const VENDOR: u128 = 11;

pub fn rates() -> Rates {
    Rates {
        tax_rate: dec!(0.10),
        platform_fee_rate: dec!(0.10),
    }
}

/// 90 days from Jan 31 at 10.00 a day (900.00, tax 90.00), a security
/// deposit of 100.00: the line costs 990.00, the order 1090.00.
pub fn lease_line(policy: Vec<CancellationTier>) -> LineInput {
    LineInput {
        line_id: u(LINE),
        hold_id: u(31),
        listing_id: u(41),
        vendor_id: u(VENDOR),
        terms: LineTerms::Rental {
            period: Period::new(start(), day(90)).unwrap(),
            pricing_unit: PricingUnit::Day,
            price_per_unit: dec!(10.00),
            deposit_per_unit: dec!(100.00),
            time_zone: Tz::UTC,
            late_fee_per_unit: Decimal::ZERO,
            cancellation_policy: policy,
        },
        quantity: 1,
    }
}

pub fn sale_line() -> LineInput {
    LineInput {
        line_id: u(SALE),
        hold_id: u(32),
        listing_id: u(42),
        vendor_id: u(VENDOR),
        terms: LineTerms::Sale {
            unit_price: dec!(5.00),
        },
        quantity: 1,
    }
}

pub fn plan(deposit: Decimal, instalments: u32, interval: Interval) -> PlanRequest {
    PlanRequest {
        deposit,
        instalments,
        interval,
    }
}

pub fn place(lines: Vec<LineInput>, plans: Vec<(u128, PlanRequest)>) -> C {
    C::Place {
        order_id: u(1),
        customer_id: "carol".into(),
        currency: "USD".into(),
        lines,
        rates: rates(),
        fee_rates: Default::default(),
        hold_expires_at: day(-1),
        placed_at: day(-2),
        payment_plans: plans.into_iter().map(|(l, p)| (u(l), p)).collect(),
    }
}

pub fn decide(given: &[E], command: C) -> Result<Vec<E>, DomainError> {
    F::with(())
        .given(given.to_vec())
        .when(command)
        .inspect_result()
}

pub fn state(events: &[E]) -> Order {
    let mut order = Order::default();
    for e in events {
        order.apply(e.clone());
    }
    order
}

/// The lease placed (policy `policy`), not paid: 90.00 with the order,
/// then 3 monthly instalments of 300.00.
pub fn placed_with(policy: Vec<CancellationTier>) -> Vec<E> {
    decide(
        &[],
        place(
            vec![lease_line(policy)],
            vec![(LINE, plan(dec!(90.00), 3, Interval::Month))],
        ),
    )
    .expect("placed")
}

pub fn pay(id: &str, minor: i64, instalment: Option<u32>, at: DateTime<Utc>) -> C {
    C::PayInstalment {
        instalment,
        payment_id: id.into(),
        intent_id: format!("pi_{id}"),
        amount_minor: minor,
        currency: "usd".into(),
        outcome: PaymentOutcome::Succeeded,
        received_at: at,
    }
}

pub fn record(id: &str, minor: i64, at: DateTime<Utc>) -> C {
    C::RecordPayment {
        payment_id: id.into(),
        intent_id: format!("pi_{id}"),
        amount_minor: minor,
        currency: "usd".into(),
        outcome: PaymentOutcome::Succeeded,
        received_at: at,
    }
}

/// Placed and its upfront 190.00 (1090.00 less 900.00) paid.
pub fn confirmed_with(policy: Vec<CancellationTier>) -> Vec<E> {
    let mut events = placed_with(policy);
    let paid = decide(&events, record("evt_up", 19_000, day(-2))).expect("paid");
    events.extend(paid);
    events
}

pub fn confirmed() -> Vec<E> {
    confirmed_with(Vec::new())
}

pub fn dun(at: DateTime<Utc>) -> C {
    C::DunInstalments {
        dunning: DunningPolicy::default(),
        at,
    }
}

pub fn names(events: &[E]) -> Vec<String> {
    events
        .iter()
        .map(cqrs_es::DomainEvent::event_type)
        .collect()
}

pub fn field_errors(result: Result<Vec<E>, DomainError>) -> Vec<String> {
    match result {
        Err(DomainError::Validation { errors }) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}
