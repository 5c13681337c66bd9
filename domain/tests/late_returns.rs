//! Late returns (API.md "Rentals"): a late fee per started pricing unit late
//! × quantity, taken from the deposit first, the rest owed by the customer;
//! decided by the Order when the line comes back.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
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

/// 2 units by `unit` from t(0) to t(48), deposit 30.00 each (60.00), late
/// fee `fee` per unit, in `zone`; paid and picked up at t(0).
fn picked_up(unit: PricingUnit, fee: Decimal, zone: Tz) -> Vec<E> {
    let lines = vec![LineInput {
        line_id: u(LINE),
        hold_id: u(31),
        listing_id: u(41),
        vendor_id: u(VENDOR),
        terms: LineTerms::Rental {
            period: Period::new(t(0), t(48)).unwrap(),
            pricing_unit: unit,
            price_per_unit: dec!(10.00),
            deposit_per_unit: dec!(30.00),
            time_zone: zone,
            late_fee_per_unit: fee,
            cancellation_policy: Vec::new(),
        },
        quantity: 2,
    }];
    let rates = Rates {
        tax_rate: Decimal::ZERO,
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
            hold_expires_at: t(-1),
            placed_at: t(-2),
        },
        E::PaymentCaptured {
            payment_id: "evt_1".into(),
            intent_id: "pi_1".into(),
            amount: total,
        },
        E::OrderConfirmed {
            confirmed_at: t(-1),
        },
        E::LinePickedUp {
            line_id: u(LINE),
            at: t(0),
        },
    ]
}

fn returned(given: Vec<E>, at: i64, damage: Decimal) -> Result<Vec<E>, DomainError> {
    F::with(())
        .given(given)
        .when(C::ReturnLine {
            line_id: u(LINE),
            returned_at: t(at),
            damage_withheld: damage,
            now: t(at),
        })
        .inspect_result()
}

/// (deposit_refunded, damage_withheld, late_fee, late_fee_owed).
fn settled(events: &[E]) -> (Decimal, Decimal, Decimal, Decimal) {
    events
        .iter()
        .find_map(|e| match e {
            E::LineReturned {
                deposit_refunded,
                damage_withheld,
                late_fee,
                late_fee_owed,
                ..
            } => Some((
                *deposit_refunded,
                *damage_withheld,
                *late_fee,
                *late_fee_owed,
            )),
            _ => None,
        })
        .expect("LineReturned")
}

#[test]
fn an_on_time_or_early_return_costs_no_late_fee() {
    let given = picked_up(PricingUnit::Hour, dec!(5.00), Tz::UTC);
    for at in [10, 48] {
        let events = returned(given.clone(), at, dec!(0)).expect("returned");
        assert_eq!(
            settled(&events),
            (dec!(60.00), dec!(0.00), dec!(0.00), dec!(0.00))
        );
    }
}

#[test]
fn a_late_fee_per_started_hour_comes_from_the_deposit() {
    // 2 h 30 min late: 3 started hours × 5.00 × 2 units = 30.00 of 60.00.
    let given = picked_up(PricingUnit::Hour, dec!(5.00), Tz::UTC);
    let events = F::with(())
        .given(given)
        .when(C::ReturnLine {
            line_id: u(LINE),
            returned_at: t(50) + Duration::minutes(30),
            damage_withheld: dec!(10.00),
            now: t(51),
        })
        .inspect_result()
        .expect("returned");
    assert_eq!(
        settled(&events),
        (dec!(20.00), dec!(10.00), dec!(30.00), dec!(0.00))
    );
}

#[test]
fn what_the_deposit_does_not_cover_is_owed() {
    // 2 started days late × 20.00 × 2 = 80.00: 60.00 from the deposit,
    // 20.00 owed.
    let given = picked_up(PricingUnit::Day, dec!(20.00), Tz::UTC);
    let events = returned(given.clone(), 48 + 25, dec!(0)).expect("returned");
    assert_eq!(
        settled(&events),
        (dec!(0.00), dec!(0.00), dec!(80.00), dec!(20.00))
    );
    // No damage can be withheld from a deposit the late fee took.
    let r = returned(given, 48 + 25, dec!(0.01));
    assert!(matches!(r, Err(DomainError::Validation { .. })), "{r:?}");
}

#[test]
fn days_late_are_calendar_days_of_the_listings_zone() {
    // The order's end, t(48), is 2030-01-09 10:00 UTC, 11:00 in Berlin;
    // 23 hours later is 10:00 the next day in Berlin: 1 started day, but
    // 25 hours later is 2.
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    let given = picked_up(PricingUnit::Day, dec!(1.00), berlin);
    let one = returned(given.clone(), 48 + 24, dec!(0)).expect("returned");
    assert_eq!(settled(&one).2, dec!(2.00));
    let two = returned(given, 48 + 25, dec!(0)).expect("returned");
    assert_eq!(settled(&two).2, dec!(4.00));
}

#[test]
fn a_listing_without_a_late_fee_charges_none() {
    let given = picked_up(PricingUnit::Day, Decimal::ZERO, Tz::UTC);
    let events = returned(given, 200, dec!(0)).expect("returned");
    assert_eq!(settled(&events).2, dec!(0.00));
}

// ---- The listing's policy

#[test]
fn a_rental_listing_sets_its_late_fee_and_a_sale_listing_cannot() {
    let created = |terms: ListingTerms| ListingEvent::ListingCreated {
        listing_id: u(41),
        vendor_id: u(VENDOR),
        title: "Kayak".into(),
        description: String::new(),
        category: "boats".into(),
        terms,
    };
    let rental = created(ListingTerms::Rental {
        pricing_unit: PricingUnit::Day,
        price_per_unit: dec!(10.00),
        deposit: dec!(30.00),
        units: 1,
    });
    TestFramework::<Listing>::with(())
        .given(vec![rental.clone()])
        .when(ListingCommand::SetPolicies {
            late_fee_per_unit: dec!(20.00),
            cancellation_policy: vec![],
        })
        .then_expect_events(vec![ListingEvent::PoliciesSet {
            late_fee_per_unit: dec!(20.00),
            cancellation_policy: vec![],
        }]);
    let bad = TestFramework::<Listing>::with(())
        .given(vec![rental])
        .when(ListingCommand::SetPolicies {
            late_fee_per_unit: dec!(-1.00),
            cancellation_policy: vec![],
        })
        .inspect_result();
    assert!(matches!(bad, Err(DomainError::Validation { .. })));
    let sale = TestFramework::<Listing>::with(())
        .given(vec![created(ListingTerms::Sale {
            unit_price: dec!(5.00),
            stock: 3,
        })])
        .when(ListingCommand::SetPolicies {
            late_fee_per_unit: dec!(1.00),
            cancellation_policy: vec![],
        })
        .inspect_result();
    assert!(matches!(sale, Err(DomainError::InvalidState(_))));
}

// ---- Collecting what the deposit did not cover

/// Returned a day and an hour late by day: 80.00, 60.00 from the deposit,
/// 20.00 owed.
fn owing() -> Vec<E> {
    let mut given = picked_up(PricingUnit::Day, dec!(20.00), Tz::UTC);
    let events = returned(given.clone(), 48 + 25, dec!(0)).expect("returned");
    given.extend(events);
    given
}

fn payment(id: &str, minor: i64) -> C {
    C::RecordPayment {
        payment_id: id.into(),
        intent_id: format!("pi_{id}"),
        amount_minor: minor,
        currency: "usd".into(),
        outcome: PaymentOutcome::Succeeded,
        received_at: t(80),
    }
}

fn late_fee_paid(id: &str, intent: &str, amount: Decimal, from_unapplied: bool) -> E {
    E::LateFeePaid {
        payment_id: id.into(),
        intent_id: intent.into(),
        amount,
        from_unapplied,
        parts: vec![LateFeePart {
            line_id: u(LINE),
            vendor_id: u(VENDOR),
            amount,
        }],
        at: t(80),
    }
}

#[test]
fn a_payment_of_exactly_what_is_owed_pays_the_late_fee_and_only_once() {
    let paid = late_fee_paid("evt_9", "pi_evt_9", dec!(20.00), false);
    F::with(())
        .given(owing())
        .when(payment("evt_9", 2000))
        .then_expect_events(vec![paid.clone()]);
    // Redelivered: nothing new; nothing is owed any more.
    let mut given = owing();
    given.push(paid);
    F::with(())
        .given(given.clone())
        .when(payment("evt_9", 2000))
        .then_expect_events(vec![]);
    let order = given.into_iter().fold(Order::default(), |mut o, e| {
        cqrs_es::Aggregate::apply(&mut o, e);
        o
    });
    assert_eq!(order.late_fee_owed(), dec!(0.00));
    assert_eq!(order.late_fee_paid(), dec!(20.00));
}

#[test]
fn another_amount_is_unapplied_cash_that_an_admin_applies_up_to_what_is_owed() {
    let short = E::PaymentUnapplied {
        payment_id: "evt_5".into(),
        intent_id: "pi_evt_5".into(),
        amount: dec!(5.00),
    };
    F::with(())
        .given(owing())
        .when(payment("evt_5", 500))
        .then_expect_events(vec![short.clone()]);
    let mut given = owing();
    given.push(short);
    F::with(())
        .given(given.clone())
        .when(C::ApplyPayment {
            payment_id: "evt_5".into(),
            at: t(80),
        })
        .then_expect_events(vec![late_fee_paid("evt_5", "", dec!(5.00), true)]);

    // 25.00 held against 20.00 owed: 20.00 applied, 5.00 stays to refund.
    let mut given = owing();
    given.push(E::PaymentUnapplied {
        payment_id: "evt_25".into(),
        intent_id: "pi_evt_25".into(),
        amount: dec!(25.00),
    });
    let applied = late_fee_paid("evt_25", "", dec!(20.00), true);
    F::with(())
        .given(given.clone())
        .when(C::ApplyPayment {
            payment_id: "evt_25".into(),
            at: t(80),
        })
        .then_expect_events(vec![applied.clone()]);
    given.push(applied);
    // Nothing owed now: applying again is refused; the rest is refunded.
    let again = F::with(())
        .given(given.clone())
        .when(C::ApplyPayment {
            payment_id: "evt_25".into(),
            at: t(80),
        })
        .inspect_result();
    assert!(
        matches!(again, Err(DomainError::InvalidState(_))),
        "{again:?}"
    );
    F::with(())
        .given(given)
        .when(C::RefundPayment {
            payment_id: "evt_25".into(),
            at: t(80),
        })
        .then_expect_events(vec![E::UnappliedPaymentRefunded {
            payment_id: "evt_25".into(),
            amount: dec!(5.00),
        }]);
}

#[test]
fn the_vendor_collects_a_paid_late_fee_once_settling_what_it_owes_first() {
    let registered = VendorEvent::VendorRegistered {
        vendor_id: u(VENDOR),
        name: "Kayaks".into(),
        registered_at: t(0),
    };
    let collect = || VendorCommand::CollectLateFee {
        order_id: u(1),
        line_id: u(LINE),
        payment_id: "evt_9".into(),
        amount: dec!(20.00),
    };
    let collected = VendorEvent::LateFeeCollected {
        order_id: u(1),
        line_id: u(LINE),
        payment_id: "evt_9".into(),
        amount: dec!(20.00),
    };
    TestFramework::<Vendor>::with(())
        .given(vec![registered.clone()])
        .when(collect())
        .then_expect_events(vec![collected.clone()]);
    TestFramework::<Vendor>::with(())
        .given(vec![registered.clone(), collected.clone()])
        .when(collect())
        .then_expect_events(vec![]);
    // A vendor owing 15.00 (a refund beyond its balance) settles it first.
    let owes = VendorEvent::EarningsReversed {
        reversal_id: u(70),
        order_id: u(2),
        amount: dec!(15.00),
        from_available: dec!(0.00),
        receivable: dec!(15.00),
    };
    TestFramework::<Vendor>::with(())
        .given(vec![registered, owes])
        .when(collect())
        .then_expect_events(vec![
            collected,
            VendorEvent::ReceivableSettled {
                order_id: Some(u(1)),
                payout_id: None,
                amount: dec!(15.00),
            },
        ]);
}
