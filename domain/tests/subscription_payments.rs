//! A provider's payment events about subscription invoices, given/when/then:
//! recorded once per event id; the exact amount pays; another amount, a
//! second charge, a voided invoice or another currency is unapplied cash;
//! a failure is one failed attempt that dunning counts.

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use domain::subscription::{InvoiceKind, InvoicePaymentOutcome, UnappliedReason};
use domain::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use uuid::Uuid;

type S = TestFramework<Subscription>;

fn month(m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, m, d, 9, 0, 0).unwrap()
}
fn inv(n: u128) -> Uuid {
    Uuid::from_u128(1000 + n)
}
/// Started on Jan 31 at 30.00 a month, the first invoice open.
fn pending() -> Vec<SubscriptionEvent> {
    vec![
        SubscriptionEvent::SubscriptionStarted {
            subscription_id: Uuid::from_u128(1),
            customer: "cust-1".into(),
            plan: PlanTerms {
                plan_id: Uuid::from_u128(50),
                price: dec!(30.00),
                interval: Interval::Month,
                trial_days: 0,
            },
            dunning: DunningPolicy::default(),
            started_at: month(1, 31),
            anchor: month(1, 31),
            trial_end: None,
            tax_rate: Decimal::ZERO,
        },
        SubscriptionEvent::InvoiceIssued {
            invoice_id: inv(1),
            number: 1,
            kind: InvoiceKind::Period,
            period: Some(BillingPeriod {
                index: 0,
                start: month(1, 31),
                end: month(2, 28),
            }),
            amount: dec!(30.00),
            credit_applied: dec!(0.00),
            tax: Decimal::ZERO,
            due_at: month(1, 31),
        },
    ]
}
fn receive(
    event: &str,
    minor: i64,
    currency: &str,
    outcome: InvoicePaymentOutcome,
) -> SubscriptionCommand {
    SubscriptionCommand::ReceivePayment {
        invoice_id: inv(1),
        payment_ref: event.into(),
        amount_minor: minor,
        currency: currency.into(),
        ledger_currency: "USD".into(),
        outcome,
        at: month(2, 1),
    }
}
fn succeeded(event: &str, minor: i64) -> SubscriptionCommand {
    receive(event, minor, "usd", InvoicePaymentOutcome::Succeeded)
}
fn paid(event: &str) -> Vec<SubscriptionEvent> {
    vec![
        SubscriptionEvent::InvoicePaid {
            invoice_id: inv(1),
            amount: dec!(30.00),
            payment_ref: event.into(),
            paid_at: month(2, 1),
        },
        SubscriptionEvent::SubscriptionActivated {
            at: month(2, 1),
            resumes_with_period: 1,
        },
    ]
}
fn unapplied(
    event: &str,
    amount: rust_decimal::Decimal,
    minor: i64,
    currency: &str,
    reason: UnappliedReason,
) -> SubscriptionEvent {
    SubscriptionEvent::InvoicePaymentUnapplied {
        invoice_id: inv(1),
        payment_ref: event.into(),
        amount,
        received_minor: minor,
        currency: currency.into(),
        reason,
        received_at: month(2, 1),
    }
}

#[test]
fn the_exact_amount_in_the_ledgers_currency_pays_the_invoice() {
    S::with(())
        .given(pending())
        .when(succeeded("evt_1", 3000))
        .then_expect_events(paid("evt_1"));
}

#[test]
fn a_provider_event_already_recorded_records_nothing() {
    let mut history = pending();
    history.extend(paid("evt_1"));
    S::with(())
        .given(history)
        .when(succeeded("evt_1", 3000))
        .then_expect_events(vec![]);
    let mut history = pending();
    history.push(unapplied(
        "evt_1",
        dec!(10.00),
        1000,
        "usd",
        UnappliedReason::AmountMismatch,
    ));
    S::with(())
        .given(history)
        .when(succeeded("evt_1", 1000))
        .then_expect_events(vec![]);
}

#[test]
fn another_amount_is_unapplied_cash_and_leaves_the_invoice_open() {
    let mut history = pending();
    history.push(unapplied(
        "evt_1",
        dec!(10.00),
        1000,
        "usd",
        UnappliedReason::AmountMismatch,
    ));
    S::with(())
        .given(pending())
        .when(succeeded("evt_1", 1000))
        .then_expect_events(vec![history[2].clone()]);
    // The invoice is still open: the right amount then pays it.
    S::with(())
        .given(history)
        .when(succeeded("evt_2", 3000))
        .then_expect_events(paid("evt_2"));
}

#[test]
fn a_second_charge_of_a_paid_invoice_is_unapplied_cash() {
    let mut history = pending();
    history.extend(paid("evt_1"));
    S::with(())
        .given(history)
        .when(succeeded("evt_2", 3000))
        .then_expect_events(vec![unapplied(
            "evt_2",
            dec!(30.00),
            3000,
            "usd",
            UnappliedReason::AlreadyPaid,
        )]);
}

#[test]
fn a_payment_of_a_voided_invoice_is_unapplied_cash() {
    let mut history = pending();
    history.push(SubscriptionEvent::SubscriptionCancelled {
        cause: subscription::CancelCause::Requested,
        at: month(1, 31),
    });
    history.push(SubscriptionEvent::InvoiceVoided {
        invoice_id: inv(1),
        at: month(1, 31),
    });
    S::with(())
        .given(history)
        .when(succeeded("evt_1", 3000))
        .then_expect_events(vec![unapplied(
            "evt_1",
            dec!(30.00),
            3000,
            "usd",
            UnappliedReason::InvoiceVoided,
        )]);
}

#[test]
fn another_currency_is_recorded_and_nothing_is_booked() {
    S::with(())
        .given(pending())
        .when(receive(
            "evt_1",
            3000,
            "eur",
            InvoicePaymentOutcome::Succeeded,
        ))
        .then_expect_events(vec![unapplied(
            "evt_1",
            dec!(0.00),
            3000,
            "eur",
            UnappliedReason::CurrencyMismatch,
        )]);
}

#[test]
fn a_failure_is_one_failed_attempt_recorded_once_per_provider_event() {
    let failed = |event: &str| {
        receive(
            event,
            3000,
            "usd",
            InvoicePaymentOutcome::Failed {
                reason: "card declined".into(),
            },
        )
    };
    let first = SubscriptionEvent::InvoicePaymentFailed {
        invoice_id: inv(1),
        failure: 1,
        reason: "card declined".into(),
        failed_at: month(2, 1),
        payment_ref: Some("evt_1".into()),
    };
    let past_due = SubscriptionEvent::SubscriptionPastDue { at: month(2, 1) };
    S::with(())
        .given(pending())
        .when(failed("evt_1"))
        .then_expect_events(vec![first.clone(), past_due.clone()]);
    let mut history = pending();
    history.extend([first, past_due]);
    S::with(())
        .given(history.clone())
        .when(failed("evt_1"))
        .then_expect_events(vec![]);
    S::with(())
        .given(history)
        .when(failed("evt_2"))
        .then_expect_events(vec![SubscriptionEvent::InvoicePaymentFailed {
            invoice_id: inv(1),
            failure: 2,
            reason: "card declined".into(),
            failed_at: month(2, 1),
            payment_ref: Some("evt_2".into()),
        }]);
}

#[test]
fn an_invoice_the_subscription_never_issued_is_not_found() {
    let mut command = succeeded("evt_1", 3000);
    if let SubscriptionCommand::ReceivePayment { invoice_id, .. } = &mut command {
        *invoice_id = inv(9);
    }
    S::with(())
        .given(pending())
        .when(command)
        .then_expect_error(DomainError::not_found("invoice"));
}

fn refund(event: &str) -> SubscriptionCommand {
    SubscriptionCommand::RefundUnappliedPayment {
        payment_ref: event.into(),
        at: month(2, 3),
    }
}
fn refunded(event: &str, amount: rust_decimal::Decimal) -> SubscriptionEvent {
    SubscriptionEvent::UnappliedPaymentRefunded {
        invoice_id: inv(1),
        payment_ref: event.into(),
        amount,
        refunded_at: month(2, 3),
    }
}

#[test]
fn unapplied_cash_is_refunded_whole_and_the_invoice_stays_open() {
    let mut history = pending();
    history.push(unapplied(
        "evt_1",
        dec!(10.00),
        1000,
        "usd",
        UnappliedReason::AmountMismatch,
    ));
    S::with(())
        .given(history.clone())
        .when(refund("evt_1"))
        .then_expect_events(vec![refunded("evt_1", dec!(10.00))]);
    // The invoice can still be paid afterwards.
    history.push(refunded("evt_1", dec!(10.00)));
    S::with(())
        .given(history)
        .when(succeeded("evt_2", 3000))
        .then_expect_events(paid("evt_2"));
}

#[test]
fn unapplied_cash_is_refunded_once() {
    let mut history = pending();
    history.push(unapplied(
        "evt_1",
        dec!(10.00),
        1000,
        "usd",
        UnappliedReason::AmountMismatch,
    ));
    history.push(refunded("evt_1", dec!(10.00)));
    let refused = S::with(())
        .given(history)
        .when(refund("evt_1"))
        .inspect_result();
    assert!(
        matches!(refused, Err(DomainError::InvalidState(_))),
        "{refused:?}"
    );
}

#[test]
fn a_payment_that_paid_its_invoice_or_is_unknown_has_nothing_to_refund() {
    let mut history = pending();
    history.extend(paid("evt_1"));
    for payment in ["evt_1", "evt_unknown"] {
        let refused = S::with(())
            .given(history.clone())
            .when(refund(payment))
            .inspect_result();
        assert!(
            matches!(refused, Err(DomainError::NotFound { .. })),
            "{refused:?}"
        );
    }
}

#[test]
fn cash_in_another_currency_is_refunded_at_the_zero_it_was_booked_at() {
    let mut history = pending();
    history.push(unapplied(
        "evt_1",
        dec!(0.00),
        1000,
        "eur",
        UnappliedReason::CurrencyMismatch,
    ));
    S::with(())
        .given(history)
        .when(refund("evt_1"))
        .then_expect_events(vec![refunded("evt_1", dec!(0.00))]);
}
