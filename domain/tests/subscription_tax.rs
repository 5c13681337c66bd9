//! Tax on subscription invoices, given/when/then: the plan's price is net
//! (like an order line's); every invoice carries the tax on its subtotal at
//! the rate the subscription started with, rounded to the cent half away
//! from zero; a proration is taxed alike; a downgrade credit is net.

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use domain::subscription::InvoiceKind;
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
fn plan(id: u128, price: Decimal) -> PlanTerms {
    PlanTerms {
        plan_id: Uuid::from_u128(id),
        price,
        interval: Interval::Month,
        trial_days: 0,
    }
}
fn start(rate: Decimal) -> SubscriptionCommand {
    SubscriptionCommand::Start {
        subscription_id: Uuid::from_u128(1),
        customer: "cust-1".into(),
        plan: plan(50, dec!(30.00)),
        dunning: DunningPolicy::default(),
        tax_rate: rate,
        first_invoice_id: inv(1),
        at: month(1, 31),
    }
}
fn started() -> SubscriptionEvent {
    SubscriptionEvent::SubscriptionStarted {
        subscription_id: Uuid::from_u128(1),
        customer: "cust-1".into(),
        plan: plan(50, dec!(30.00)),
        dunning: DunningPolicy::default(),
        started_at: month(1, 31),
        anchor: month(1, 31),
        trial_end: None,
        tax_rate: dec!(0.0825),
    }
}
fn first_period() -> BillingPeriod {
    BillingPeriod {
        index: 0,
        start: month(1, 31),
        end: month(2, 28),
    }
}
fn first_invoice() -> SubscriptionEvent {
    // 30.00 × 0.0825 = 2.475 → 2.48.
    SubscriptionEvent::InvoiceIssued {
        invoice_id: inv(1),
        number: 1,
        kind: InvoiceKind::Period,
        period: Some(first_period()),
        amount: dec!(32.48),
        credit_applied: dec!(0.00),
        tax: dec!(2.48),
        due_at: month(1, 31),
    }
}

#[test]
fn every_invoice_carries_the_tax_on_its_net_price_at_the_subscriptions_rate() {
    S::with(())
        .given_no_previous_events()
        .when(start(dec!(0.0825)))
        .then_expect_events(vec![started(), first_invoice()]);
    // The next period, at the rate kept from the start.
    S::with(())
        .given(vec![
            started(),
            first_invoice(),
            SubscriptionEvent::InvoicePaid {
                invoice_id: inv(1),
                amount: dec!(32.48),
                payment_ref: "evt_1".into(),
                paid_at: month(1, 31),
            },
        ])
        .when(SubscriptionCommand::Bill {
            invoice_id: inv(2),
            at: month(2, 28),
        })
        .then_expect_events(vec![SubscriptionEvent::InvoiceIssued {
            invoice_id: inv(2),
            number: 2,
            kind: InvoiceKind::Period,
            period: Some(BillingPeriod {
                index: 1,
                start: month(2, 28),
                end: month(3, 31),
            }),
            amount: dec!(32.48),
            credit_applied: dec!(0.00),
            tax: dec!(2.48),
            due_at: month(2, 28),
        }]);
}

#[test]
fn an_upgrades_proration_is_taxed_alike() {
    // 15.00 × 13 / 28 = 6.9642… → 6.96; tax 6.96 × 0.0825 = 0.5742 → 0.57.
    let gold = plan(77, dec!(45.00));
    S::with(())
        .given(vec![started(), first_invoice()])
        .when(SubscriptionCommand::ChangePlan {
            plan: gold.clone(),
            invoice_id: inv(2),
            at: month(2, 15),
        })
        .then_expect_events(vec![
            SubscriptionEvent::PlanChanged {
                from_plan_id: plan(50, dec!(30.00)).plan_id,
                plan: gold,
                proration: dec!(6.96),
                at: month(2, 15),
            },
            SubscriptionEvent::InvoiceIssued {
                invoice_id: inv(2),
                number: 2,
                kind: InvoiceKind::Proration,
                period: None,
                amount: dec!(7.53),
                credit_applied: dec!(0.00),
                tax: dec!(0.57),
                due_at: month(2, 15),
            },
        ]);
}

#[test]
fn a_tax_rate_outside_zero_to_one_is_refused() {
    for rate in [dec!(-0.01), dec!(1)] {
        let refused = S::with(())
            .given_no_previous_events()
            .when(start(rate))
            .inspect_result();
        assert!(
            matches!(refused, Err(DomainError::Validation { .. })),
            "{refused:?}"
        );
    }
}
