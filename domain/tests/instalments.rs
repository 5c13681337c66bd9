//! Instalment plans for long rentals (issue 15 item 3): placing a line
//! paid by a schedule, the upfront payment that confirms it, instalments
//! paid by the webhook, dunning through to termination for non-payment,
//! and early termination by the customer, as given/when/then tests of the
//! Order aggregate.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use domain::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use uuid::Uuid;

type F = TestFramework<Order>;
use OrderCommand as C;
use OrderEvent as E;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 1, 31, 10, 0, 0).unwrap()
}
fn day(d: i64) -> DateTime<Utc> {
    start() + Duration::days(d)
}
fn u(n: u128) -> Uuid {
    Uuid::from_u128(n)
}
const LINE: u128 = 21;
const SALE: u128 = 22;
const VENDOR: u128 = 11;

fn rates() -> Rates {
    Rates {
        tax_rate: dec!(0.10),
        platform_fee_rate: dec!(0.10),
    }
}

/// 90 days from Jan 31 at 10.00 a day (900.00, tax 90.00), a security
/// deposit of 100.00: the line costs 990.00, the order 1090.00.
fn lease_line(policy: Vec<CancellationTier>) -> LineInput {
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

fn sale_line() -> LineInput {
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

fn plan(deposit: Decimal, instalments: u32, interval: Interval) -> PlanRequest {
    PlanRequest {
        deposit,
        instalments,
        interval,
    }
}

fn place(lines: Vec<LineInput>, plans: Vec<(u128, PlanRequest)>) -> C {
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

fn decide(given: &[E], command: C) -> Result<Vec<E>, DomainError> {
    F::with(())
        .given(given.to_vec())
        .when(command)
        .inspect_result()
}

fn state(events: &[E]) -> Order {
    let mut order = Order::default();
    for e in events {
        order.apply(e.clone());
    }
    order
}

/// The lease placed (policy `policy`), not paid: 90.00 with the order,
/// then 3 monthly instalments of 300.00.
fn placed_with(policy: Vec<CancellationTier>) -> Vec<E> {
    decide(
        &[],
        place(
            vec![lease_line(policy)],
            vec![(LINE, plan(dec!(90.00), 3, Interval::Month))],
        ),
    )
    .expect("placed")
}

fn pay(id: &str, minor: i64, instalment: Option<u32>, at: DateTime<Utc>) -> C {
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

fn record(id: &str, minor: i64, at: DateTime<Utc>) -> C {
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
fn confirmed_with(policy: Vec<CancellationTier>) -> Vec<E> {
    let mut events = placed_with(policy);
    let paid = decide(&events, record("evt_up", 19_000, day(-2))).expect("paid");
    events.extend(paid);
    events
}

fn confirmed() -> Vec<E> {
    confirmed_with(Vec::new())
}

fn dun(at: DateTime<Utc>) -> C {
    C::DunInstalments {
        dunning: DunningPolicy::default(),
        at,
    }
}

fn names(events: &[E]) -> Vec<String> {
    events
        .iter()
        .map(cqrs_es::DomainEvent::event_type)
        .collect()
}

fn field_errors(result: Result<Vec<E>, DomainError>) -> Vec<String> {
    match result {
        Err(DomainError::Validation { errors }) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

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

#[test]
fn dunning_marks_overdue_then_suspends_then_terminates_for_non_payment() {
    let mut given = confirmed();
    // Nothing is late until a day after the first due date.
    assert_eq!(
        decide(&given, dun(day(0) + Duration::hours(23))).unwrap(),
        []
    );
    let late = decide(&given, dun(day(1))).unwrap();
    assert_eq!(
        late,
        [
            E::InstalmentOverdue {
                line_id: u(LINE),
                instalment: 1,
                at: day(1),
            },
            E::LeasePastDue {
                line_id: u(LINE),
                at: day(1),
            }
        ]
    );
    given.extend(late);
    let order = state(&given);
    assert_eq!(
        order.lease_next_due(&DunningPolicy::default()),
        Some(day(8))
    );
    // Dunning again at the same time: nothing new.
    assert_eq!(decide(&given, dun(day(1))).unwrap(), []);
    let suspended = decide(&given, dun(day(8))).unwrap();
    assert_eq!(names(&suspended), ["LeaseSuspended"]);
    given.extend(suspended);
    let ended = decide(&given, dun(day(22))).unwrap();
    assert_eq!(
        names(&ended),
        [
            "LeaseTerminated",
            "InstalmentsWrittenOff",
            "LineReturned",
            "VendorPartFulfilled",
            "OrderCompleted"
        ]
    );
    let written_off = ended
        .iter()
        .find_map(|e| match e {
            E::InstalmentsWrittenOff {
                instalments,
                amount,
                parts,
                ..
            } => Some((instalments.clone(), *amount, parts.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(written_off.0, [1, 2, 3]);
    assert_eq!(written_off.1, dec!(900.00));
    // The vendor's part gives up its share of what was never paid.
    let part = &written_off.2[0];
    assert_eq!(part.subtotal + part.tax, dec!(900.00));
    assert_eq!(part.fee_reversed + part.net_reversed, part.subtotal);
    assert_eq!(part.from_pending, part.net_reversed);
    given.extend(ended);
    let order = state(&given);
    assert_eq!(order.lease().unwrap().1.status, LeaseStatus::Terminated);
    assert_eq!(order.lease_next_due(&DunningPolicy::default()), None);
    // The security deposit comes back; the vendor keeps the upfront share.
    assert_eq!(
        order.line_return(u(LINE)).unwrap().deposit_refunded,
        dec!(100.00)
    );
    assert_eq!(order.fulfilled_net(u(VENDOR)), Some(dec!(73.64)));
}

#[test]
fn paying_every_overdue_instalment_reinstates_the_lease() {
    let mut given = confirmed();
    given.extend(decide(&given, dun(day(1))).unwrap());
    given.extend(decide(&given, dun(day(8))).unwrap());
    assert_eq!(
        state(&given).lease().unwrap().1.status,
        LeaseStatus::Suspended
    );
    let paid = decide(&given, pay("evt_1", 30_000, None, day(9))).unwrap();
    assert_eq!(names(&paid), ["InstalmentPaid", "LeaseReinstated"]);
    given.extend(paid);
    let order = state(&given);
    assert_eq!(order.lease().unwrap().1.status, LeaseStatus::Active);
    // The next look: instalment 2, a day after Feb 28.
    assert_eq!(
        order.lease_next_due(&DunningPolicy::default()),
        Some(Utc.with_ymd_and_hms(2031, 3, 1, 10, 0, 0).unwrap())
    );
}

#[test]
fn a_customer_terminating_before_pickup_is_waived_the_rest_by_a_full_policy() {
    let mut given = confirmed();
    given.extend(decide(&given, pay("evt_1", 30_000, Some(1), day(0))).unwrap());
    let ended = decide(
        &given,
        C::TerminateLease {
            line_id: u(LINE),
            at: day(10),
        },
    )
    .unwrap();
    assert_eq!(
        names(&ended),
        [
            "LeaseTerminated",
            "InstalmentsWrittenOff",
            "LineReturned",
            "VendorPartFulfilled",
            "OrderCompleted"
        ]
    );
    assert!(
        matches!(&ended[0], E::LeaseTerminated { cancelled, charge: None, cause: LeaseEnd::Customer, .. } if cancelled == &[2, 3])
    );
    assert!(
        matches!(&ended[1], E::InstalmentsWrittenOff { instalments, amount, .. } if instalments.is_empty() && *amount == dec!(600.00))
    );
    given.extend(ended);
    let lease = state(&given).lease().unwrap().1.clone();
    let statuses: Vec<_> = lease.instalments.iter().map(|i| i.status).collect();
    assert_eq!(
        statuses,
        [
            InstalmentStatus::Paid,
            InstalmentStatus::Cancelled,
            InstalmentStatus::Cancelled
        ]
    );
}

#[test]
fn a_customer_terminating_after_pickup_owes_the_rest_at_once() {
    let mut given = confirmed();
    given.push(E::LinePickedUp {
        line_id: u(LINE),
        at: start(),
    });
    given.extend(decide(&given, pay("evt_1", 30_000, Some(1), day(0))).unwrap());
    let ended = decide(
        &given,
        C::TerminateLease {
            line_id: u(LINE),
            at: day(10),
        },
    )
    .unwrap();
    assert_eq!(
        ended,
        [E::LeaseTerminated {
            line_id: u(LINE),
            cause: LeaseEnd::Customer,
            cancelled: vec![2, 3],
            charge: Some(Instalment {
                number: 4,
                due: day(10),
                amount: dec!(600.00),
            }),
            at: day(10),
        }]
    );
    given.extend(ended);
    let order = state(&given);
    assert_eq!(order.lease().unwrap().1.unpaid(), dec!(600.00));
    // The charge is paid like any instalment.
    let paid = decide(&given, pay("evt_4", 60_000, Some(4), day(11))).unwrap();
    assert_eq!(names(&paid), ["InstalmentPaid"]);
}

#[test]
fn a_policy_tier_waives_its_percentage_of_the_rest() {
    let tiers = vec![CancellationTier {
        notice: IsoDuration::from_seconds(86_400),
        refund_percent: 50,
    }];
    let given = confirmed_with(tiers);
    // Terminated two days before the start: 50 % of 900.00 waived.
    let ended = decide(
        &given,
        C::TerminateLease {
            line_id: u(LINE),
            at: day(-2),
        },
    )
    .unwrap();
    assert!(
        matches!(&ended[0], E::LeaseTerminated { cancelled, charge: Some(charge), .. }
        if cancelled == &[1, 2, 3] && charge.amount == dec!(450.00))
    );
    assert!(
        matches!(&ended[1], E::InstalmentsWrittenOff { amount, .. } if *amount == dec!(450.00))
    );
}

#[test]
fn termination_is_refused_where_there_is_no_lease_to_end() {
    let terminate = |at| C::TerminateLease {
        line_id: u(LINE),
        at,
    };
    // Not paid yet.
    assert!(matches!(
        decide(&placed_with(Vec::new()), terminate(day(0))),
        Err(DomainError::InvalidState { .. })
    ));
    // Not a line paid by instalments.
    let plain = decide(&[], place(vec![lease_line(Vec::new())], vec![])).unwrap();
    assert!(matches!(
        decide(&plain, terminate(day(0))),
        Err(DomainError::InvalidState { .. })
    ));
    // An unknown line.
    assert!(matches!(
        decide(
            &confirmed(),
            C::TerminateLease {
                line_id: u(99),
                at: day(0)
            }
        ),
        Err(DomainError::NotFound { .. })
    ));
    // Already terminated: nothing more.
    let mut ended = confirmed();
    ended.extend(decide(&ended, terminate(day(1))).unwrap());
    assert_eq!(decide(&ended, terminate(day(2))).unwrap(), []);
}

#[test]
fn a_lease_is_not_cancelled_refunded_or_extended() {
    let given = confirmed();
    assert!(matches!(
        decide(
            &given,
            C::Cancel {
                reason: None,
                at: day(-2)
            }
        ),
        Err(DomainError::InvalidState { .. })
    ));
    let refund = C::Refund(RefundRequest {
        refund_id: u(77),
        amount: Some(dec!(10.00)),
        lines: None,
        vendor_id: None,
        reason: "goodwill".into(),
        provider_refund_id: None,
        at: day(0),
    });
    assert!(matches!(
        decide(&given, refund),
        Err(DomainError::InvalidState { .. })
    ));
    // Unpaid, it is cancelled as any order.
    let placed = placed_with(Vec::new());
    assert_eq!(
        names(
            &decide(
                &placed,
                C::Cancel {
                    reason: None,
                    at: day(-2)
                }
            )
            .unwrap()
        ),
        ["OrderCancelled"]
    );
}

#[test]
fn every_event_of_a_lease_round_trips_through_json() {
    let mut given = confirmed();
    given.extend(decide(&given, dun(day(30))).unwrap());
    given.extend(decide(&given, pay("evt_1", 30_000, Some(1), day(31))).unwrap());
    given.extend(decide(&given, dun(day(60))).unwrap());
    for e in &given {
        let json = serde_json::to_value(e).unwrap();
        let back: E = serde_json::from_value(json).unwrap();
        assert_eq!(&back, e);
    }
    let order = state(&given);
    let json = serde_json::to_value(&order).unwrap();
    let back: Order = serde_json::from_value(json).unwrap();
    assert_eq!(back, order);
}
