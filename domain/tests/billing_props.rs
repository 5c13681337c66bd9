//! Property tests of a subscription's billing schedule (issue 15 item 5):
//! whatever the payments, failures, plan changes and cancellations, and
//! however often (and by how many schedulers) the billing and dunning
//! ticks run, no period is billed twice or skipped while the subscription
//! is in good standing, periods follow each other without gap or overlap,
//! and invoice numbers run 1, 2, 3 … without a gap.

use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::subscription::billing::{period, period_index_at, period_start};
use domain::subscription::{InvoiceKind, InvoiceStatus};
use domain::*;
use proptest::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 1, 31, 9, 0, 0).unwrap()
}

#[derive(Clone, Debug)]
enum Op {
    /// The clock moves on by this many hours.
    Advance(i64),
    PayOldest,
    FailOldest,
    CancelAtPeriodEnd,
    ChangePlan(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1i64..24 * 40).prop_map(Op::Advance),
        4 => Just(Op::PayOldest),
        2 => Just(Op::FailOldest),
        1 => Just(Op::CancelAtPeriodEnd),
        1 => (0u8..3).prop_map(Op::ChangePlan),
    ]
}

fn interval() -> impl Strategy<Value = Interval> {
    prop_oneof![
        Just(Interval::Week),
        Just(Interval::Month),
        Just(Interval::Year)
    ]
}

fn plan(n: u8, interval: Interval, trial_days: u32) -> PlanTerms {
    PlanTerms {
        plan_id: Uuid::from_u128(100 + u128::from(n)),
        price: Decimal::new(1000 + 1250 * i64::from(n), 2),
        interval,
        trial_days,
    }
}

struct Run {
    state: Subscription,
    /// Every event with the scheduler's time when it was decided.
    events: Vec<(DateTime<Utc>, SubscriptionEvent)>,
    now: DateTime<Utc>,
    next_id: u128,
}

impl Run {
    fn id(&mut self) -> Uuid {
        self.next_id += 1;
        Uuid::from_u128(10_000 + self.next_id)
    }

    /// Decides and applies; a refusal changes nothing.
    fn run(&mut self, command: SubscriptionCommand) -> Vec<SubscriptionEvent> {
        let events = self.state.decide(command).unwrap_or_default();
        for e in &events {
            cqrs_es::Aggregate::apply(&mut self.state, e.clone());
        }
        self.events
            .extend(events.iter().map(|e| (self.now, e.clone())));
        events
    }

    /// What the scheduler does at `now`: bill and dun until nothing is
    /// due, then a second scheduler does the same and must find nothing.
    fn tick(&mut self, now: DateTime<Utc>) -> Result<(), TestCaseError> {
        self.now = now;
        for _ in 0..10_000 {
            let billed = {
                let id = self.id();
                self.run(SubscriptionCommand::Bill {
                    invoice_id: id,
                    at: now,
                })
            };
            let dunned = self.run(SubscriptionCommand::Dun { at: now });
            if billed.is_empty() && dunned.is_empty() {
                break;
            }
        }
        let id = self.id();
        let again = self.state.decide(SubscriptionCommand::Bill {
            invoice_id: id,
            at: now,
        });
        prop_assert_eq!(again.unwrap_or_default(), vec![]);
        let again = self.state.decide(SubscriptionCommand::Dun { at: now });
        prop_assert_eq!(again.unwrap_or_default(), vec![]);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn no_period_is_billed_twice_or_skipped(
        interval in interval(),
        trial_days in prop_oneof![Just(0u32), 1u32..20],
        ops in prop::collection::vec(op(), 1..60),
    ) {
        let mut run = Run { state: Subscription::default(), events: vec![], now: t0(), next_id: 0 };
        let first = run.id();
        let started = run.run(SubscriptionCommand::Start {
            subscription_id: Uuid::from_u128(1),
            customer: "c".into(),
            plan: plan(0, interval, trial_days),
            dunning: DunningPolicy::default(),
            tax_rate: Decimal::ZERO,
            first_invoice_id: first,
            at: t0(),
        });
        prop_assert!(!started.is_empty());
        let anchor = match &started[0] {
            SubscriptionEvent::SubscriptionStarted { anchor, .. } => *anchor,
            other => return Err(TestCaseError::fail(format!("{other:?}"))),
        };
        let mut now = t0();
        for op in ops {
            match op {
                Op::Advance(hours) => {
                    now += Duration::hours(hours);
                    run.tick(now)?;
                }
                Op::PayOldest | Op::FailOldest => {
                    let oldest = run.state.invoices()
                        .find(|i| i.status == InvoiceStatus::Open)
                        .map(|i| (i.invoice_id, i.amount));
                    if let Some((invoice_id, amount)) = oldest {
                        let command = if matches!(op, Op::PayOldest) {
                            SubscriptionCommand::RecordPayment {
                                invoice_id, amount, payment_ref: "pi".into(), at: now,
                            }
                        } else {
                            SubscriptionCommand::RecordPaymentFailure {
                                invoice_id, reason: "declined".into(), at: now,
                            }
                        };
                        run.run(command);
                    }
                }
                Op::CancelAtPeriodEnd => {
                    run.run(SubscriptionCommand::Cancel { at_period_end: true, at: now });
                }
                Op::ChangePlan(n) => {
                    let id = run.id();
                    run.run(SubscriptionCommand::ChangePlan {
                        plan: plan(n, interval, trial_days), invoice_id: id, at: now,
                    });
                }
            }
        }

        // The scheduler runs once more after the last operation.
        run.tick(now)?;

        // Invoice numbers: 1..=n, each once.
        let numbers: Vec<u32> = run.events.iter().filter_map(|(_, e)| match e {
            SubscriptionEvent::InvoiceIssued { number, .. } => Some(*number),
            _ => None,
        }).collect();
        prop_assert_eq!(numbers.clone(), (1..=numbers.len() as u32).collect::<Vec<_>>());

        // Period invoices: each period at most once, in order, each the
        // schedule's own period, never issued before it began; a gap only
        // where a reactivation after suspension said billing resumes.
        let mut expected_next = 0u32;
        for (decided_at, e) in &run.events {
            match e {
                SubscriptionEvent::SubscriptionActivated { resumes_with_period, .. } => {
                    prop_assert!(*resumes_with_period >= expected_next);
                    expected_next = *resumes_with_period;
                }
                SubscriptionEvent::InvoiceIssued { kind: InvoiceKind::Period, period: Some(p), due_at, .. } => {
                    prop_assert_eq!(p.index, expected_next);
                    prop_assert_eq!(*p, period(anchor, interval, p.index));
                    prop_assert_eq!(*due_at, p.start);
                    prop_assert!(p.start <= *decided_at, "period {} billed at {decided_at}, before it began", p.index);
                    expected_next = p.index + 1;
                }
                _ => {}
            }
        }

        // Nothing owed is left unbilled: unless the subscription ended or
        // is suspended, the next period has not begun yet.
        let status = run.state.status();
        if !matches!(status, SubscriptionStatus::Cancelled | SubscriptionStatus::Suspended) {
            if let Some(due) = run.state.next_due() {
                prop_assert!(due > now,
                    "something due at {due} is left at {now} ({status:?})");
            }
            if status != SubscriptionStatus::Trialing {
                prop_assert!(period_start(anchor, interval, expected_next) > now);
                prop_assert_eq!(expected_next, period_index_at(anchor, interval, now) + 1);
            }
        }
    }
}
