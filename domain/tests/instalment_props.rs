//! Properties of an instalment plan's schedule (issue 15 item 3): the
//! instalments sum to the line's price and tax less the deposit, to the
//! cent; they differ by at most a cent; each falls due once, in order, on
//! its interval from the start (none skipped, none twice); and dunning,
//! however often it runs, marks each instalment overdue at most once.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::Aggregate;
use domain::order::instalments::{schedule, split};
use domain::subscription::billing::period_start;
use domain::*;
use proptest::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

fn start(offset_days: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 1, 1, 9, 30, 0).unwrap() + Duration::days(offset_days)
}

fn interval() -> impl Strategy<Value = Interval> {
    prop_oneof![Just(Interval::Week), Just(Interval::Month)]
}

proptest! {
    #[test]
    fn the_parts_sum_to_the_amount_and_differ_by_at_most_a_cent(
        cents in 1i64..100_000_000_000,
        count in 1u32..=MAX_INSTALMENTS,
    ) {
        prop_assume!(cents >= i64::from(count));
        let amount = Decimal::new(cents, 2);
        let parts = split(amount, count);
        prop_assert_eq!(parts.len(), count as usize);
        prop_assert_eq!(parts.iter().copied().sum::<Decimal>(), amount);
        let (min, max) = (
            parts.iter().min().copied().unwrap(),
            parts.iter().max().copied().unwrap(),
        );
        prop_assert!(max - min <= Decimal::new(1, 2));
        prop_assert!(min > Decimal::ZERO);
        // The larger parts come first.
        prop_assert!(parts.windows(2).all(|w| w[0] >= w[1]));
    }

    #[test]
    fn every_instalment_falls_due_once_in_order_on_its_interval(
        total_cents in 100i64..10_000_000_000,
        deposit_share in 0u32..100,
        count in 1u32..=MAX_INSTALMENTS,
        every in interval(),
        offset in 0i64..1_500,
    ) {
        let total = Decimal::new(total_cents, 2);
        let deposit = Decimal::new(total_cents * i64::from(deposit_share) / 100, 2);
        prop_assume!(total_cents - total_cents * i64::from(deposit_share) / 100 >= i64::from(count));
        let begin = start(offset);
        let request = PlanRequest { deposit, instalments: count, interval: every };
        let plan = schedule(total, &request, begin);
        prop_assert_eq!(plan.scheduled() + plan.deposit, total);
        let numbers: Vec<u32> = plan.schedule.iter().map(|i| i.number).collect();
        prop_assert_eq!(numbers, (1..=count).collect::<Vec<_>>());
        prop_assert!(plan.schedule.windows(2).all(|w| w[0].due < w[1].due));
        for i in &plan.schedule {
            prop_assert_eq!(i.due, period_start(begin, every, i.number - 1));
        }
        prop_assert_eq!(plan.schedule[0].due, begin);
    }

    #[test]
    fn dunning_marks_each_instalment_overdue_at_most_once(
        count in 1u32..=12,
        steps in proptest::collection::vec(0i64..40, 1..30),
        pays in proptest::collection::vec(any::<bool>(), 30),
    ) {
        let begin = start(0);
        let line = LineInput {
            line_id: Uuid::from_u128(21),
            hold_id: Uuid::from_u128(31),
            listing_id: Uuid::from_u128(41),
            vendor_id: Uuid::from_u128(11),
            terms: LineTerms::Rental {
                period: Period::new(begin, begin + Duration::days(400)).unwrap(),
                pricing_unit: PricingUnit::Day,
                price_per_unit: Decimal::new(1000, 2),
                deposit_per_unit: Decimal::ZERO,
                time_zone: Tz::UTC,
                late_fee_per_unit: Decimal::ZERO,
                cancellation_policy: Vec::new(),
            },
            quantity: 1,
        };
        let rates = Rates { tax_rate: Decimal::ZERO, platform_fee_rate: Decimal::new(10, 2) };
        let mut order = Order::default();
        let place = OrderCommand::Place {
            order_id: Uuid::from_u128(1),
            customer_id: "carol".into(),
            currency: "USD".into(),
            lines: vec![line],
            rates,
            fee_rates: Default::default(),
            hold_expires_at: begin,
            placed_at: begin - Duration::hours(1),
            payment_plans: [(Uuid::from_u128(21), PlanRequest {
                deposit: Decimal::new(100, 2),
                instalments: count,
                interval: Interval::Month,
            })].into_iter().collect(),
        };
        let mut all = Vec::new();
        let run = |order: &mut Order, command: OrderCommand, all: &mut Vec<OrderEvent>| {
            let events = domain::Decide::decide(&*order, command).expect("decided");
            for e in &events {
                order.apply(e.clone());
            }
            all.extend(events);
        };
        run(&mut order, place, &mut all);
        let upfront = order.upfront();
        run(&mut order, OrderCommand::RecordPayment {
            payment_id: "evt_up".into(),
            intent_id: "pi".into(),
            amount_minor: to_minor_units(upfront).unwrap(),
            currency: "USD".into(),
            outcome: PaymentOutcome::Succeeded,
            received_at: begin,
        }, &mut all);
        let mut now = begin;
        for (k, step) in steps.iter().enumerate() {
            now += Duration::days(*step);
            run(&mut order, OrderCommand::DunInstalments { dunning: DunningPolicy::default(), at: now }, &mut all);
            if pays[k] {
                let due = order.lease().and_then(|(_, l)| {
                    l.instalments.iter().find(|i| i.status.is_unpaid()).map(|i| i.amount)
                });
                if let Some(amount) = due {
                    run(&mut order, OrderCommand::PayInstalment {
                        instalment: None,
                        payment_id: format!("evt_{k}"),
                        intent_id: format!("pi_{k}"),
                        amount_minor: to_minor_units(amount).unwrap(),
                        currency: "USD".into(),
                        outcome: PaymentOutcome::Succeeded,
                        received_at: now,
                    }, &mut all);
                }
            }
        }
        let mut overdue = std::collections::BTreeSet::new();
        let mut paid = std::collections::BTreeSet::new();
        for e in &all {
            match e {
                OrderEvent::InstalmentOverdue { instalment, .. } => {
                    prop_assert!(overdue.insert(*instalment), "instalment {} overdue twice", instalment)
                }
                OrderEvent::InstalmentPaid { instalment, .. } => {
                    prop_assert!(paid.insert(*instalment), "instalment {} paid twice", instalment)
                }
                _ => {}
            }
        }
        // Every instalment due (with its window) by now went overdue
        // unless it was paid first or the lease ended.
        let (_, lease) = order.lease().unwrap();
        if lease.status != LeaseStatus::Terminated {
            for i in &lease.instalments {
                if i.due + Duration::days(1) <= now {
                    prop_assert!(i.status != InstalmentStatus::Due, "instalment {} skipped", i.number);
                }
            }
        }
    }
}
