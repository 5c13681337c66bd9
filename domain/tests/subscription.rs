//! The Subscription and Plan aggregates in given/when/then: start with and
//! without a trial, billing each period once, payments, dunning through to
//! suspension and cancellation, cancellation at period end and plan
//! changes prorated to the cent.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use domain::subscription::{CancelCause, InvoiceKind};
use domain::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use uuid::Uuid;

type S = TestFramework<Subscription>;
type P = TestFramework<Plan>;

fn at(d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 1, d, h, 0, 0).unwrap()
}
fn month(m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, m, d, 9, 0, 0).unwrap()
}
fn sid() -> Uuid {
    Uuid::from_u128(1)
}
fn inv(n: u128) -> Uuid {
    Uuid::from_u128(1000 + n)
}
fn monthly(price: rust_decimal::Decimal, trial_days: u32) -> PlanTerms {
    PlanTerms {
        plan_id: Uuid::from_u128(50 + trial_days as u128 + price.mantissa() as u128),
        price,
        interval: Interval::Month,
        trial_days,
    }
}
fn started(plan: PlanTerms, trial_end: Option<DateTime<Utc>>) -> SubscriptionEvent {
    SubscriptionEvent::SubscriptionStarted {
        subscription_id: sid(),
        customer: "cust-1".into(),
        plan,
        dunning: DunningPolicy::default(),
        started_at: month(1, 31),
        anchor: trial_end.unwrap_or(month(1, 31)),
        trial_end,
        tax_rate: Decimal::ZERO,
    }
}
fn period(index: u32, start: DateTime<Utc>, end: DateTime<Utc>) -> BillingPeriod {
    BillingPeriod { index, start, end }
}
fn issued(n: u32, index: u32, start: DateTime<Utc>, end: DateTime<Utc>) -> SubscriptionEvent {
    SubscriptionEvent::InvoiceIssued {
        invoice_id: inv(n as u128),
        number: n,
        kind: InvoiceKind::Period,
        period: Some(period(index, start, end)),
        amount: dec!(30.00),
        credit_applied: dec!(0.00),
        tax: Decimal::ZERO,
        due_at: start,
    }
}
fn paid(n: u32, when: DateTime<Utc>) -> SubscriptionEvent {
    SubscriptionEvent::InvoicePaid {
        invoice_id: inv(n as u128),
        amount: dec!(30.00),
        payment_ref: format!("pi_{n}"),
        paid_at: when,
    }
}
/// Started on Jan 31 without a trial, first invoice paid.
fn active() -> Vec<SubscriptionEvent> {
    vec![
        started(monthly(dec!(30.00), 0), None),
        issued(1, 0, month(1, 31), month(2, 28)),
        paid(1, month(1, 31)),
        SubscriptionEvent::SubscriptionActivated {
            at: month(1, 31),
            resumes_with_period: 1,
        },
    ]
}

#[test]
fn a_plan_is_created_with_its_terms_and_bad_input_is_refused_field_by_field() {
    P::with(())
        .given_no_previous_events()
        .when(PlanCommand::Create {
            plan_id: Uuid::from_u128(9),
            name: " Monthly garage pass ".into(),
            price: dec!(89.00),
            interval: Interval::Month,
            trial_days: 7,
            entitlement: Some("any space, weekdays".into()),
            at: at(1, 9),
        })
        .then_expect_events(vec![PlanEvent::PlanCreated {
            plan_id: Uuid::from_u128(9),
            name: "Monthly garage pass".into(),
            price: dec!(89.00),
            interval: Interval::Month,
            trial_days: 7,
            entitlement: Some("any space, weekdays".into()),
            created_at: at(1, 9),
        }]);
    let refused = P::with(())
        .given_no_previous_events()
        .when(PlanCommand::Create {
            plan_id: Uuid::from_u128(9),
            name: " ".into(),
            price: dec!(0),
            interval: Interval::Week,
            trial_days: 400,
            entitlement: None,
            at: at(1, 9),
        })
        .inspect_result();
    match refused {
        Err(DomainError::Validation { errors }) => {
            let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
            assert_eq!(fields, ["name", "price", "trial_days"]);
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn without_a_trial_the_first_period_is_invoiced_at_once_and_the_subscription_is_pending() {
    S::with(())
        .given_no_previous_events()
        .when(SubscriptionCommand::Start {
            subscription_id: sid(),
            customer: "cust-1".into(),
            plan: monthly(dec!(30.00), 0),
            dunning: DunningPolicy::default(),
            tax_rate: Decimal::ZERO,
            first_invoice_id: inv(1),
            at: month(1, 31),
        })
        .then_expect_events(vec![
            started(monthly(dec!(30.00), 0), None),
            issued(1, 0, month(1, 31), month(2, 28)),
        ]);
}

#[test]
fn with_a_trial_nothing_is_invoiced_until_the_trial_ends() {
    let trial_end = month(1, 31) + Duration::days(14);
    let plan = monthly(dec!(30.00), 14);
    S::with(())
        .given_no_previous_events()
        .when(SubscriptionCommand::Start {
            subscription_id: sid(),
            customer: "cust-1".into(),
            plan: plan.clone(),
            dunning: DunningPolicy::default(),
            tax_rate: Decimal::ZERO,
            first_invoice_id: inv(1),
            at: month(1, 31),
        })
        .then_expect_events(vec![started(plan.clone(), Some(trial_end))]);
    S::with(())
        .given(vec![started(plan.clone(), Some(trial_end))])
        .when(SubscriptionCommand::Bill {
            invoice_id: inv(1),
            at: trial_end - Duration::seconds(1),
        })
        .then_expect_events(vec![]);
    S::with(())
        .given(vec![started(plan, Some(trial_end))])
        .when(SubscriptionCommand::Bill {
            invoice_id: inv(1),
            at: trial_end,
        })
        .then_expect_events(vec![SubscriptionEvent::InvoiceIssued {
            invoice_id: inv(1),
            number: 1,
            kind: InvoiceKind::Period,
            period: Some(period(0, trial_end, month(3, 14))),
            amount: dec!(30.00),
            credit_applied: dec!(0.00),
            tax: Decimal::ZERO,
            due_at: trial_end,
        }]);
}

#[test]
fn a_period_is_billed_once_when_it_begins_and_never_before() {
    S::with(())
        .given(active())
        .when(SubscriptionCommand::Bill {
            invoice_id: inv(2),
            at: month(2, 27),
        })
        .then_expect_events(vec![]);
    S::with(())
        .given(active())
        .when(SubscriptionCommand::Bill {
            invoice_id: inv(2),
            at: month(2, 28),
        })
        .then_expect_events(vec![issued(2, 1, month(2, 28), month(3, 31))]);
    // A second scheduler with its own invoice id, on the updated state.
    let mut given = active();
    given.push(issued(2, 1, month(2, 28), month(3, 31)));
    S::with(())
        .given(given)
        .when(SubscriptionCommand::Bill {
            invoice_id: inv(99),
            at: month(3, 1),
        })
        .then_expect_events(vec![]);
}

#[test]
fn the_first_payment_activates_and_a_repeated_payment_changes_nothing() {
    let pending = vec![
        started(monthly(dec!(30.00), 0), None),
        issued(1, 0, month(1, 31), month(2, 28)),
    ];
    S::with(())
        .given(pending.clone())
        .when(SubscriptionCommand::RecordPayment {
            invoice_id: inv(1),
            amount: dec!(30.00),
            payment_ref: "pi_1".into(),
            at: month(1, 31),
        })
        .then_expect_events(vec![
            paid(1, month(1, 31)),
            SubscriptionEvent::SubscriptionActivated {
                at: month(1, 31),
                resumes_with_period: 1,
            },
        ]);
    S::with(())
        .given(active())
        .when(SubscriptionCommand::RecordPayment {
            invoice_id: inv(1),
            amount: dec!(30.00),
            payment_ref: "pi_1".into(),
            at: month(2, 1),
        })
        .then_expect_events(vec![]);
    S::with(())
        .given(pending)
        .when(SubscriptionCommand::RecordPayment {
            invoice_id: inv(1),
            amount: dec!(29.99),
            payment_ref: "pi_1".into(),
            at: month(1, 31),
        })
        .then_expect_error(DomainError::invalid_state(
            "a payment of 29.99 does not match the invoice's 30.00",
        ));
}

#[test]
fn an_unknown_invoice_or_subscription_is_not_found() {
    S::with(())
        .given(active())
        .when(SubscriptionCommand::RecordPayment {
            invoice_id: inv(7),
            amount: dec!(30.00),
            payment_ref: "pi".into(),
            at: month(2, 1),
        })
        .then_expect_error(DomainError::not_found("invoice"));
    S::with(())
        .given_no_previous_events()
        .when(SubscriptionCommand::Dun { at: month(2, 1) })
        .then_expect_error(DomainError::not_found("subscription"));
}

/// Dunning, step by step, on the default policy: unpaid a day after it is
/// due → failed and past due; retries on days 1, 3 and 5 after that;
/// suspended on day 7; cancelled 14 days later with the invoice voided.
#[test]
fn dunning_runs_from_a_missing_payment_to_suspension_and_cancellation() {
    let mut history = active();
    history.push(issued(2, 1, month(2, 28), month(3, 31)));
    let failed_at = month(2, 28) + Duration::days(1);
    let steps: Vec<(DateTime<Utc>, Vec<SubscriptionEvent>)> = vec![
        (failed_at - Duration::seconds(1), vec![]),
        (
            failed_at,
            vec![
                SubscriptionEvent::InvoicePaymentFailed {
                    invoice_id: inv(2),
                    failure: 1,
                    reason: "no payment by the due date".into(),
                    failed_at,
                    payment_ref: None,
                },
                SubscriptionEvent::SubscriptionPastDue { at: failed_at },
            ],
        ),
        (failed_at + Duration::hours(23), vec![]),
        (
            failed_at + Duration::days(1),
            vec![SubscriptionEvent::PaymentRetryRequested {
                invoice_id: inv(2),
                attempt: 1,
                requested_at: failed_at + Duration::days(1),
            }],
        ),
        (
            failed_at + Duration::days(3),
            vec![SubscriptionEvent::PaymentRetryRequested {
                invoice_id: inv(2),
                attempt: 2,
                requested_at: failed_at + Duration::days(3),
            }],
        ),
        (
            failed_at + Duration::days(5),
            vec![SubscriptionEvent::PaymentRetryRequested {
                invoice_id: inv(2),
                attempt: 3,
                requested_at: failed_at + Duration::days(5),
            }],
        ),
        (failed_at + Duration::days(6), vec![]),
        (
            failed_at + Duration::days(7),
            vec![SubscriptionEvent::SubscriptionSuspended {
                at: failed_at + Duration::days(7),
            }],
        ),
        (failed_at + Duration::days(20), vec![]),
        (
            failed_at + Duration::days(21),
            vec![
                SubscriptionEvent::SubscriptionCancelled {
                    cause: CancelCause::NonPayment,
                    at: failed_at + Duration::days(21),
                },
                SubscriptionEvent::InvoiceVoided {
                    invoice_id: inv(2),
                    at: failed_at + Duration::days(21),
                },
            ],
        ),
        (failed_at + Duration::days(60), vec![]),
    ];
    for (when, expected) in steps {
        S::with(())
            .given(history.clone())
            .when(SubscriptionCommand::Dun { at: when })
            .then_expect_events(expected.clone());
        history.extend(expected);
    }
    // Nothing is billed while suspended or after the end.
    S::with(())
        .given(history)
        .when(SubscriptionCommand::Bill {
            invoice_id: inv(3),
            at: month(6, 1),
        })
        .then_expect_events(vec![]);
}

#[test]
fn paying_while_suspended_reactivates_and_billing_resumes_with_the_current_period() {
    let mut history = active();
    history.push(issued(2, 1, month(2, 28), month(3, 31)));
    history.push(SubscriptionEvent::InvoicePaymentFailed {
        invoice_id: inv(2),
        failure: 1,
        reason: "card declined".into(),
        failed_at: month(3, 1),
        payment_ref: None,
    });
    history.push(SubscriptionEvent::SubscriptionPastDue { at: month(3, 1) });
    history.push(SubscriptionEvent::SubscriptionSuspended { at: month(3, 8) });
    let paid_at = month(5, 2);
    S::with(())
        .given(history.clone())
        .when(SubscriptionCommand::RecordPayment {
            invoice_id: inv(2),
            amount: dec!(30.00),
            payment_ref: "pi_2".into(),
            at: paid_at,
        })
        .then_expect_events(vec![
            paid(2, paid_at),
            // Mar 31 – Apr 30 passed while suspended: not billed.
            SubscriptionEvent::SubscriptionActivated {
                at: paid_at,
                resumes_with_period: 3,
            },
        ]);
}

#[test]
fn a_failure_report_makes_an_active_subscription_past_due_once() {
    let mut history = active();
    history.push(issued(2, 1, month(2, 28), month(3, 31)));
    S::with(())
        .given(history.clone())
        .when(SubscriptionCommand::RecordPaymentFailure {
            invoice_id: inv(2),
            reason: "card declined".into(),
            at: month(2, 28),
        })
        .then_expect_events(vec![
            SubscriptionEvent::InvoicePaymentFailed {
                invoice_id: inv(2),
                failure: 1,
                reason: "card declined".into(),
                failed_at: month(2, 28),
                payment_ref: None,
            },
            SubscriptionEvent::SubscriptionPastDue { at: month(2, 28) },
        ]);
    history.push(SubscriptionEvent::InvoicePaymentFailed {
        invoice_id: inv(2),
        failure: 1,
        reason: "card declined".into(),
        failed_at: month(2, 28),
        payment_ref: None,
    });
    history.push(SubscriptionEvent::SubscriptionPastDue { at: month(2, 28) });
    S::with(())
        .given(history)
        .when(SubscriptionCommand::RecordPaymentFailure {
            invoice_id: inv(2),
            reason: "insufficient funds".into(),
            at: month(3, 2),
        })
        .then_expect_events(vec![SubscriptionEvent::InvoicePaymentFailed {
            invoice_id: inv(2),
            failure: 2,
            reason: "insufficient funds".into(),
            failed_at: month(3, 2),
            payment_ref: None,
        }]);
}

#[test]
fn cancelling_at_period_end_ends_it_when_the_next_period_would_begin() {
    S::with(())
        .given(active())
        .when(SubscriptionCommand::Cancel {
            at_period_end: true,
            at: month(2, 10),
        })
        .then_expect_events(vec![SubscriptionEvent::CancellationScheduled {
            effective_at: month(2, 28),
        }]);
    let mut history = active();
    history.push(SubscriptionEvent::CancellationScheduled {
        effective_at: month(2, 28),
    });
    S::with(())
        .given(history.clone())
        .when(SubscriptionCommand::Bill {
            invoice_id: inv(2),
            at: month(2, 28),
        })
        .then_expect_events(vec![SubscriptionEvent::SubscriptionCancelled {
            cause: CancelCause::AtPeriodEnd,
            at: month(2, 28),
        }]);
    // Asking again changes nothing.
    S::with(())
        .given(history)
        .when(SubscriptionCommand::Cancel {
            at_period_end: true,
            at: month(2, 11),
        })
        .then_expect_events(vec![]);
}

#[test]
fn cancelling_now_voids_what_is_unpaid() {
    let pending = vec![
        started(monthly(dec!(30.00), 0), None),
        issued(1, 0, month(1, 31), month(2, 28)),
    ];
    S::with(())
        .given(pending)
        .when(SubscriptionCommand::Cancel {
            at_period_end: false,
            at: month(2, 1),
        })
        .then_expect_events(vec![
            SubscriptionEvent::SubscriptionCancelled {
                cause: CancelCause::Requested,
                at: month(2, 1),
            },
            SubscriptionEvent::InvoiceVoided {
                invoice_id: inv(1),
                at: month(2, 1),
            },
        ]);
}

#[test]
fn an_upgrade_is_invoiced_for_the_rest_of_the_period_to_the_cent() {
    // Feb 28 – Mar 31 is 31 days; 10 days are left on Mar 21 at 09:00.
    let mut history = active();
    history.push(issued(2, 1, month(2, 28), month(3, 31)));
    history.push(paid(2, month(2, 28)));
    let gold = PlanTerms {
        plan_id: Uuid::from_u128(77),
        price: dec!(45.00),
        interval: Interval::Month,
        trial_days: 0,
    };
    // 15.00 × 10 / 31 = 4.8387… → 4.84.
    S::with(())
        .given(history.clone())
        .when(SubscriptionCommand::ChangePlan {
            plan: gold.clone(),
            invoice_id: inv(3),
            at: month(3, 21),
        })
        .then_expect_events(vec![
            SubscriptionEvent::PlanChanged {
                from_plan_id: monthly(dec!(30.00), 0).plan_id,
                plan: gold.clone(),
                proration: dec!(4.84),
                at: month(3, 21),
            },
            SubscriptionEvent::InvoiceIssued {
                invoice_id: inv(3),
                number: 3,
                kind: InvoiceKind::Proration,
                period: None,
                amount: dec!(4.84),
                credit_applied: dec!(0.00),
                tax: Decimal::ZERO,
                due_at: month(3, 21),
            },
        ]);
}

#[test]
fn a_downgrade_is_a_credit_taken_off_the_next_invoice() {
    let mut history = active();
    let bronze = PlanTerms {
        plan_id: Uuid::from_u128(78),
        price: dec!(20.00),
        interval: Interval::Month,
        trial_days: 0,
    };
    // Jan 31 – Feb 28 is 28 days; 14 left on Feb 14: 10.00 × 14/28 = 5.00.
    history.push(SubscriptionEvent::PlanChanged {
        from_plan_id: monthly(dec!(30.00), 0).plan_id,
        plan: bronze.clone(),
        proration: dec!(-5.00),
        at: month(2, 14),
    });
    S::with(())
        .given(active())
        .when(SubscriptionCommand::ChangePlan {
            plan: bronze.clone(),
            invoice_id: inv(2),
            at: month(2, 14),
        })
        .then_expect_events(vec![SubscriptionEvent::PlanChanged {
            from_plan_id: monthly(dec!(30.00), 0).plan_id,
            plan: bronze.clone(),
            proration: dec!(-5.00),
            at: month(2, 14),
        }]);
    S::with(())
        .given(history)
        .when(SubscriptionCommand::Bill {
            invoice_id: inv(2),
            at: month(2, 28),
        })
        .then_expect_events(vec![SubscriptionEvent::InvoiceIssued {
            invoice_id: inv(2),
            number: 2,
            kind: InvoiceKind::Period,
            period: Some(period(1, month(2, 28), month(3, 31))),
            amount: dec!(15.00),
            credit_applied: dec!(5.00),
            tax: Decimal::ZERO,
            due_at: month(2, 28),
        }]);
}

#[test]
fn a_plan_of_another_interval_is_refused() {
    let weekly = PlanTerms {
        plan_id: Uuid::from_u128(79),
        price: dec!(9.00),
        interval: Interval::Week,
        trial_days: 0,
    };
    let result = S::with(())
        .given(active())
        .when(SubscriptionCommand::ChangePlan {
            plan: weekly,
            invoice_id: inv(2),
            at: month(2, 14),
        })
        .inspect_result();
    assert!(
        matches!(&result, Err(DomainError::Validation { errors }) if errors[0].field == "plan_id"),
        "{result:?}"
    );
}
