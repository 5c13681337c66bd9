//! Early returns refunded by the cancellation policy (API.md "Rentals",
//! issue 13 item 5): the whole pricing units between the return (rounded up
//! to the next unit boundary) and the line's end are cancelled, each with
//! the notice from the return to its start, refunded by the line's tier; a
//! `RefundRecorded` (refund id = the line id) reverses fee and net pro rata
//! from the part's pending net, before the return completes the part.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use domain::order::early_return::EARLY_RETURN_REASON;
use domain::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use uuid::Uuid;

type F = TestFramework<Order>;
use OrderCommand as C;
use OrderEvent as E;

fn t(h: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 7, 10, 0, 0).unwrap() + Duration::hours(h)
}
fn u(n: u128) -> Uuid {
    Uuid::from_u128(n)
}
const LINE: u128 = 21;
const VENDOR: u128 = 11;

fn tier(notice: &str, refund_percent: u8) -> CancellationTier {
    CancellationTier {
        notice: IsoDuration::parse(notice).unwrap(),
        refund_percent,
    }
}

/// One unit of a listing priced 10.00 an `unit` over `period`, deposit
/// 30.00, tax 10 %, fee 10 %, under `policy`; paid and picked up at its
/// start.
fn picked_up(unit: PricingUnit, period: Period, zone: Tz, policy: Vec<CancellationTier>) -> Vec<E> {
    let lines = vec![LineInput {
        line_id: u(LINE),
        hold_id: u(31),
        listing_id: u(41),
        vendor_id: u(VENDOR),
        terms: LineTerms::Rental {
            period,
            pricing_unit: unit,
            price_per_unit: dec!(10.00),
            deposit_per_unit: dec!(30.00),
            time_zone: zone,
            late_fee_per_unit: Decimal::ZERO,
            cancellation_policy: policy,
        },
        quantity: 1,
    }];
    let rates = Rates {
        tax_rate: dec!(0.10),
        platform_fee_rate: dec!(0.10),
    };
    let priced = price_order(&lines, rates);
    let total = priced.total;
    vec![
        E::OrderPlaced {
            order_id: u(1),
            customer_id: "carol".into(),
            currency: "USD".into(),
            priced,
            rates,
            hold_expires_at: period.start - Duration::hours(1),
            placed_at: period.start - Duration::hours(2),
        },
        E::PaymentCaptured {
            payment_id: "evt_1".into(),
            intent_id: "pi_1".into(),
            amount: total,
        },
        E::OrderConfirmed {
            confirmed_at: period.start - Duration::hours(1),
        },
        E::LinePickedUp {
            line_id: u(LINE),
            at: period.start,
        },
    ]
}

/// Ten hours, t(0) to t(10): 100.00 + 10.00 tax; 100 % with two hours'
/// notice, 50 % with less.
fn ten_hours() -> Vec<E> {
    picked_up(
        PricingUnit::Hour,
        Period::new(t(0), t(10)).unwrap(),
        Tz::UTC,
        vec![tier("PT2H", 100), tier("PT0S", 50)],
    )
}

fn return_at(at: DateTime<Utc>) -> C {
    C::ReturnLine {
        line_id: u(LINE),
        returned_at: at,
        damage_withheld: Decimal::ZERO,
        now: at,
    }
}

fn refund_of(events: &[E]) -> Option<Decimal> {
    events.iter().find_map(|e| match e {
        E::RefundRecorded { amount, .. } => Some(*amount),
        _ => None,
    })
}

#[test]
fn the_unused_hours_are_refunded_by_their_notice_before_the_return_completes_the_part() {
    // Back at 03:30: hours 4..9 are unused. Hour 4 starts in 30 min and
    // hour 5 in 1 h 30 (50 %), hours 6 to 9 with 2 h or more (100 %):
    // (50 + 50 + 4 × 100) / (100 × 10) = half the line: 50.00 + 5.00 tax.
    // The fee is reversed pro rata (5.00), the net (45.00) from pending.
    let back = t(3) + Duration::minutes(30);
    F::with(())
        .given(ten_hours())
        .when(return_at(back))
        .then_expect_events(vec![
            E::RefundRecorded {
                refund_id: u(LINE),
                order_id: u(1),
                amount: dec!(55.00),
                reason: EARLY_RETURN_REASON.into(),
                provider_refund_id: None,
                parts: vec![RefundPart {
                    vendor_id: u(VENDOR),
                    lines: vec![RefundLine {
                        line_id: u(LINE),
                        subtotal: dec!(50.00),
                        tax: dec!(5.00),
                    }],
                    amount: dec!(55.00),
                    subtotal: dec!(50.00),
                    tax: dec!(5.00),
                    fee_reversed: dec!(5.00),
                    net_reversed: dec!(45.00),
                    from_pending: dec!(45.00),
                    from_available: dec!(0.00),
                }],
                at: back,
            },
            E::LineReturned {
                line_id: u(LINE),
                vendor_id: u(VENDOR),
                returned_at: back,
                deposit_refunded: dec!(30.00),
                damage_withheld: dec!(0.00),
                late_fee: dec!(0.00),
                late_fee_owed: dec!(0.00),
                refund: dec!(55.00),
            },
            // What the refund left of the net is made available.
            E::VendorPartFulfilled {
                vendor_id: u(VENDOR),
                net: dec!(45.00),
            },
            E::OrderCompleted { at: back },
        ]);
}

#[test]
fn a_return_in_the_last_started_hour_or_on_time_refunds_nothing() {
    for back in [t(9) + Duration::minutes(1), t(10)] {
        let events = F::with(())
            .given(ten_hours())
            .when(return_at(back))
            .inspect_result()
            .expect("returned");
        assert_eq!(refund_of(&events), None, "back at {back}");
        assert!(matches!(events[0], E::LineReturned { refund, .. } if refund.is_zero()));
    }
}

#[test]
fn without_a_policy_nothing_is_refunded_once_picked_up() {
    let given = picked_up(
        PricingUnit::Hour,
        Period::new(t(0), t(10)).unwrap(),
        Tz::UTC,
        Vec::new(),
    );
    let events = F::with(())
        .given(given)
        .when(return_at(t(1)))
        .inspect_result()
        .expect("returned");
    assert_eq!(refund_of(&events), None);
}

#[test]
fn units_starting_within_less_notice_than_any_tier_are_not_refunded() {
    // One day's notice for anything back: every unused hour is closer.
    let given = picked_up(
        PricingUnit::Hour,
        Period::new(t(0), t(10)).unwrap(),
        Tz::UTC,
        vec![tier("P1D", 100)],
    );
    let events = F::with(())
        .given(given)
        .when(return_at(t(1)))
        .inspect_result()
        .expect("returned");
    assert_eq!(refund_of(&events), None);
}

#[test]
fn unused_days_are_calendar_days_of_the_listings_zone_across_dst() {
    // Berlin, 3 days from Sat 2030-03-30 10:00 (CET) to Tue 04-02 10:00
    // (CEST): 30.00 + 3.00 tax. Back Sat 20:00: day 1 (Sun 10:00) starts
    // 13 real hours later, the night being an hour short (50 %), day 2 (Mon
    // 10:00) 37 hours later (100 %): (50 + 100) / 300 = half.
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    let start = Utc.with_ymd_and_hms(2030, 3, 30, 9, 0, 0).unwrap();
    let end = Utc.with_ymd_and_hms(2030, 4, 2, 8, 0, 0).unwrap();
    let given = picked_up(
        PricingUnit::Day,
        Period::new(start, end).unwrap(),
        berlin,
        vec![tier("PT14H", 100), tier("PT0S", 50)],
    );
    let back = Utc.with_ymd_and_hms(2030, 3, 30, 19, 0, 0).unwrap();
    let events = F::with(())
        .given(given)
        .when(return_at(back))
        .inspect_result()
        .expect("returned");
    assert_eq!(refund_of(&events), Some(dec!(16.50)));
}

#[test]
fn an_early_return_gives_back_at_most_what_earlier_refunds_left_of_the_line() {
    // 50.00 of the line's 110.00 refunded already: the policy's 55.00 is
    // capped by what is left of its price (50.00) and tax (5.00 + …).
    let mut given = ten_hours();
    let refunded = F::with(())
        .given(given.clone())
        .when(C::Refund(RefundRequest {
            refund_id: u(99),
            amount: Some(dec!(88.00)),
            lines: None,
            vendor_id: None,
            reason: "goodwill".into(),
            provider_refund_id: None,
            at: t(1),
        }))
        .inspect_result()
        .expect("refunded");
    given.extend(refunded);
    // Left of the line: 20.00 + 2.00 tax; the policy would give 55.00.
    let back = t(3) + Duration::minutes(30);
    let events = F::with(())
        .given(given)
        .when(return_at(back))
        .inspect_result()
        .expect("returned");
    assert_eq!(refund_of(&events), Some(dec!(22.00)));
    let fulfilled = events.iter().find_map(|e| match e {
        E::VendorPartFulfilled { net, .. } => Some(*net),
        _ => None,
    });
    assert_eq!(fulfilled, Some(dec!(0.00)), "nothing is left of the net");
}
