//! Instalment plans for long rentals (issue 15 item 3): placing a line
//! paid by a schedule, the upfront payment that confirms it and
//! instalments paid by the webhook, as given/when/then tests of the Order
//! aggregate (dunning and termination: `lease_dunning.rs`).

mod lease_support;

use chrono::{TimeZone, Utc};
use domain::*;
use lease_support::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

#[test]
fn a_lease_is_placed_with_its_schedule_anchored_on_the_start() {
    let events = placed_with(Vec::new());
    let E::OrderPlaced { priced, .. } = &events[0] else {
        panic!("OrderPlaced first");
    };
    let plan = priced.lines[0].payment_plan.as_ref().expect("a plan");
    assert_eq!(plan.deposit, dec!(90.00));
    let dues: Vec<_> = plan.schedule.iter().map(|i| i.due).collect();
    assert_eq!(
        dues,
        [
            start(),
            Utc.with_ymd_and_hms(2031, 2, 28, 10, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2031, 3, 31, 10, 0, 0).unwrap()
        ]
    );
    assert!(plan.schedule.iter().all(|i| i.amount == dec!(300.00)));
    assert_eq!(priced.total, dec!(1090.00));
    assert_eq!(priced.upfront(), dec!(190.00));
    let order = state(&events);
    let (_, lease) = order.lease().expect("a lease");
    assert_eq!(lease.status, LeaseStatus::Pending);
}

#[test]
fn instalments_split_to_the_cent_the_first_ones_taking_the_remainder() {
    // 990.00 − 0.01 = 989.99 in 7: 141.43 × 5 and 141.42 × 2.
    let events = decide(
        &[],
        place(
            vec![lease_line(Vec::new())],
            vec![(LINE, plan(dec!(0.01), 7, Interval::Week))],
        ),
    )
    .expect("placed");
    let E::OrderPlaced { priced, .. } = &events[0] else {
        panic!("OrderPlaced first");
    };
    let plan = priced.lines[0].payment_plan.as_ref().expect("a plan");
    let amounts: Vec<Decimal> = plan.schedule.iter().map(|i| i.amount).collect();
    assert_eq!(
        amounts,
        [
            dec!(141.43),
            dec!(141.43),
            dec!(141.43),
            dec!(141.43),
            dec!(141.43),
            dec!(141.42),
            dec!(141.42)
        ]
    );
    assert_eq!(plan.scheduled() + plan.deposit, dec!(990.00));
    assert_eq!(plan.schedule[1].due, day(7));
}

#[test]
fn plans_are_refused_field_by_field() {
    type Case = (Vec<LineInput>, Vec<(u128, PlanRequest)>, &'static str);
    let cases: Vec<Case> = vec![
        (
            vec![lease_line(Vec::new()), sale_line()],
            vec![(SALE, plan(dec!(0), 2, Interval::Month))],
            "items[1].payment_plan",
        ),
        (
            vec![lease_line(Vec::new())],
            vec![(LINE, plan(dec!(0), 0, Interval::Month))],
            "items[0].payment_plan.instalments",
        ),
        (
            vec![lease_line(Vec::new())],
            vec![(LINE, plan(dec!(0), MAX_INSTALMENTS + 1, Interval::Week))],
            "items[0].payment_plan.instalments",
        ),
        (
            vec![lease_line(Vec::new())],
            vec![(LINE, plan(dec!(990.00), 1, Interval::Month))],
            "items[0].payment_plan.deposit",
        ),
        (
            vec![lease_line(Vec::new())],
            vec![(LINE, plan(dec!(1.001), 1, Interval::Month))],
            "items[0].payment_plan.deposit",
        ),
        (
            vec![lease_line(Vec::new())],
            vec![(LINE, plan(dec!(0), 1, Interval::Month))],
            "items[0].payment_plan.deposit",
        ),
        // A fifth month would fall due on May 31, after the rental ends.
        (
            vec![lease_line(Vec::new())],
            vec![(LINE, plan(dec!(10.00), 5, Interval::Month))],
            "items[0].payment_plan.instalments",
        ),
        (
            vec![lease_line(Vec::new())],
            vec![(LINE, plan(dec!(0), 1, Interval::Year))],
            "items[0].payment_plan.interval",
        ),
        // 0.05 left for 10 instalments.
        (
            vec![lease_line(Vec::new())],
            vec![(LINE, plan(dec!(989.95), 10, Interval::Week))],
            "items[0].payment_plan.instalments",
        ),
    ];
    for (lines, plans, field) in cases {
        let errors = field_errors(decide(&[], place(lines, plans)));
        assert!(errors.iter().any(|f| f == field), "{field} in {errors:?}");
    }
}

#[test]
fn only_one_line_of_an_order_may_be_paid_by_a_plan() {
    let mut second = lease_line(Vec::new());
    second.line_id = u(23);
    second.hold_id = u(33);
    let errors = field_errors(decide(
        &[],
        place(
            vec![lease_line(Vec::new()), second],
            vec![
                (LINE, plan(dec!(10.00), 2, Interval::Month)),
                (23, plan(dec!(10.00), 2, Interval::Month)),
            ],
        ),
    ));
    assert_eq!(errors, ["items[1].payment_plan"]);
}

#[test]
fn the_upfront_payment_confirms_the_order_and_activates_the_lease() {
    let events = confirmed();
    assert_eq!(names(&events[1..]), ["PaymentCaptured", "OrderConfirmed"]);
    let order = state(&events);
    assert_eq!(order.status(), OrderStatus::Confirmed);
    assert_eq!(order.lease().unwrap().1.status, LeaseStatus::Active);
}

#[test]
fn paying_the_whole_total_upfront_is_not_what_is_due() {
    let given = placed_with(Vec::new());
    let events = decide(&given, record("evt_all", 109_000, day(-2))).unwrap();
    assert_eq!(names(&events), ["PaymentUnapplied"]);
}

#[test]
fn an_instalment_named_by_number_is_paid_once() {
    let given = confirmed();
    let events = decide(&given, pay("evt_2", 30_000, Some(2), day(1))).unwrap();
    assert_eq!(
        events,
        [E::InstalmentPaid {
            line_id: u(LINE),
            instalment: 2,
            payment_id: "evt_2".into(),
            intent_id: "pi_evt_2".into(),
            amount: dec!(300.00),
            at: day(1),
        }]
    );
    let mut after = given.clone();
    after.extend(events);
    // The same provider event again: nothing.
    assert_eq!(
        decide(&after, pay("evt_2", 30_000, Some(2), day(1))).unwrap(),
        []
    );
    // Another charge of the paid instalment: cash held, unapplied.
    let again = decide(&after, pay("evt_2b", 30_000, Some(2), day(1))).unwrap();
    assert_eq!(names(&again), ["PaymentUnapplied"]);
}

#[test]
fn a_payment_naming_no_instalment_pays_the_oldest_unpaid_one() {
    let mut given = confirmed();
    given.extend(decide(&given, pay("evt_1", 30_000, Some(1), day(0))).unwrap());
    let events = decide(&given, record("evt_next", 30_000, day(20))).unwrap();
    assert!(matches!(
        events.as_slice(),
        [E::InstalmentPaid { instalment: 2, .. }]
    ));
}

#[test]
fn another_amount_an_unknown_instalment_or_a_failure() {
    let given = confirmed();
    let other = decide(&given, pay("evt_x", 29_999, Some(1), day(0))).unwrap();
    assert_eq!(names(&other), ["PaymentUnapplied"]);
    let eur = C::PayInstalment {
        instalment: Some(1),
        payment_id: "evt_eur".into(),
        intent_id: "pi_eur".into(),
        amount_minor: 30_000,
        currency: "eur".into(),
        outcome: PaymentOutcome::Succeeded,
        received_at: day(0),
    };
    assert_eq!(
        names(&decide(&given, eur).unwrap()),
        ["PaymentAmountMismatch"]
    );
    assert!(matches!(
        decide(&given, pay("evt_9", 30_000, Some(9), day(0))),
        Err(DomainError::NotFound { .. })
    ));
    let failed = C::PayInstalment {
        instalment: Some(1),
        payment_id: "evt_f".into(),
        intent_id: "pi_f".into(),
        amount_minor: 30_000,
        currency: "usd".into(),
        outcome: PaymentOutcome::Failed {
            reason: "card declined".into(),
            code: None,
            decline_code: None,
        },
        received_at: day(0),
    };
    assert_eq!(names(&decide(&given, failed).unwrap()), ["PaymentFailed"]);
}

#[test]
fn an_instalment_payment_before_the_upfront_one_is_taken_as_the_upfront_payment() {
    let given = placed_with(Vec::new());
    let events = decide(&given, pay("evt_up", 19_000, Some(1), day(-2))).unwrap();
    assert_eq!(names(&events), ["PaymentCaptured", "OrderConfirmed"]);
}
