//! The Vendor aggregate's payout lifecycle and fee rate in given/when/then:
//! a payout requested is paid or fails as the provider reports, once; a
//! failed payout's amount is available again; a vendor's own fee rate
//! prices its new orders.

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use domain::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use uuid::Uuid;

type F = TestFramework<Vendor>;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap()
}
fn vid() -> Uuid {
    Uuid::from_u128(1)
}
fn pid(n: u128) -> Uuid {
    Uuid::from_u128(500 + n)
}
fn registered() -> VendorEvent {
    VendorEvent::VendorRegistered {
        vendor_id: vid(),
        name: "Acme Rentals".into(),
        registered_at: at(),
    }
}
fn earned(amount: Decimal) -> VendorEvent {
    VendorEvent::EarningsMadeAvailable {
        order_id: Uuid::from_u128(100),
        amount,
    }
}
fn requested(n: u128, amount: Decimal) -> VendorEvent {
    VendorEvent::PayoutRecorded {
        payout_id: pid(n),
        amount,
        recorded_at: at(),
    }
}
fn paid(n: u128, amount: Decimal) -> VendorEvent {
    VendorEvent::PayoutPaid {
        payout_id: pid(n),
        amount,
        paid_at: at(),
    }
}
fn failed(n: u128, amount: Decimal) -> VendorEvent {
    VendorEvent::PayoutFailed {
        payout_id: pid(n),
        amount,
        reason: "account closed".into(),
        failed_at: at(),
    }
}
fn settle(n: u128, outcome: PayoutOutcome) -> VendorCommand {
    VendorCommand::SettlePayout {
        payout_id: pid(n),
        outcome,
        at: at(),
    }
}
fn fail() -> PayoutOutcome {
    PayoutOutcome::Failed {
        reason: "account closed".into(),
    }
}
fn state(events: Vec<VendorEvent>) -> Vendor {
    let mut vendor = Vendor::default();
    for e in events {
        vendor.apply(e);
    }
    vendor
}

#[test]
fn a_requested_payout_is_paid_when_the_provider_says_so() {
    F::with(())
        .given(vec![
            registered(),
            earned(dec!(100)),
            requested(1, dec!(60)),
        ])
        .when(settle(1, PayoutOutcome::Paid))
        .then_expect_events(vec![paid(1, dec!(60))]);
}

#[test]
fn a_requested_payout_fails_with_the_providers_reason() {
    F::with(())
        .given(vec![
            registered(),
            earned(dec!(100)),
            requested(1, dec!(60)),
        ])
        .when(settle(1, fail()))
        .then_expect_events(vec![failed(1, dec!(60))]);
}

#[test]
fn a_failed_payout_returns_its_amount_to_the_available_balance() {
    let vendor = state(vec![
        registered(),
        earned(dec!(100)),
        requested(1, dec!(60)),
        failed(1, dec!(60)),
    ]);
    assert_eq!(vendor.available_balance(), dec!(100));
    assert_eq!(vendor.paid_out(), dec!(0));
    assert_eq!(vendor.payout_status(pid(1)), Some(PayoutStatus::Failed));
    // And it can be paid out again.
    F::with(())
        .given(vec![
            registered(),
            earned(dec!(100)),
            requested(1, dec!(60)),
            failed(1, dec!(60)),
        ])
        .when(VendorCommand::RequestPayout {
            payout_id: pid(2),
            amount: dec!(100),
            at: at(),
        })
        .then_expect_events(vec![requested(2, dec!(100))]);
}

#[test]
fn a_paid_payout_stays_out_of_the_available_balance() {
    let vendor = state(vec![
        registered(),
        earned(dec!(100)),
        requested(1, dec!(60)),
        paid(1, dec!(60)),
    ]);
    assert_eq!(vendor.available_balance(), dec!(40));
    assert_eq!(vendor.payout_status(pid(1)), Some(PayoutStatus::Paid));
}

#[test]
fn the_same_outcome_again_records_nothing() {
    F::with(())
        .given(vec![
            registered(),
            earned(dec!(100)),
            requested(1, dec!(60)),
            paid(1, dec!(60)),
        ])
        .when(settle(1, PayoutOutcome::Paid))
        .then_expect_events(vec![]);
    F::with(())
        .given(vec![
            registered(),
            earned(dec!(100)),
            requested(1, dec!(60)),
            failed(1, dec!(60)),
        ])
        .when(settle(1, fail()))
        .then_expect_events(vec![]);
}

#[test]
fn the_other_outcome_after_one_is_refused() {
    F::with(())
        .given(vec![
            registered(),
            earned(dec!(100)),
            requested(1, dec!(60)),
            paid(1, dec!(60)),
        ])
        .when(settle(1, fail()))
        .then_expect_error(DomainError::invalid_state(format!(
            "payout {} is already paid",
            pid(1)
        )));
    F::with(())
        .given(vec![
            registered(),
            earned(dec!(100)),
            requested(1, dec!(60)),
            failed(1, dec!(60)),
        ])
        .when(settle(1, PayoutOutcome::Paid))
        .then_expect_error(DomainError::invalid_state(format!(
            "payout {} is already failed",
            pid(1)
        )));
}

#[test]
fn an_unknown_payout_cannot_be_settled() {
    F::with(())
        .given(vec![registered(), earned(dec!(100))])
        .when(settle(9, PayoutOutcome::Paid))
        .then_expect_error(DomainError::not_found("payout"));
}

#[test]
fn a_payout_requested_while_another_is_in_transit_sees_the_lower_balance() {
    // Two payouts racing on one vendor are decided one after the other: the
    // second sees what the first took, in transit or not.
    F::with(())
        .given(vec![
            registered(),
            earned(dec!(100)),
            requested(1, dec!(60)),
        ])
        .when(VendorCommand::RequestPayout {
            payout_id: pid(2),
            amount: dec!(60),
            at: at(),
        })
        .then_expect_error(DomainError::InsufficientBalance {
            available: dec!(40),
            requested: dec!(60),
        });
}

#[test]
fn a_fee_rate_is_set_for_new_orders() {
    F::with(())
        .given(vec![registered()])
        .when(VendorCommand::SetFeeRate {
            rate: dec!(0.08),
            at: at(),
        })
        .then_expect_events(vec![VendorEvent::FeeRateSet {
            rate: dec!(0.08),
            set_at: at(),
        }]);
    let vendor = state(vec![
        registered(),
        VendorEvent::FeeRateSet {
            rate: dec!(0.08),
            set_at: at(),
        },
    ]);
    assert_eq!(vendor.fee_rate(), Some(dec!(0.08)));
}

#[test]
fn the_same_fee_rate_again_records_nothing() {
    F::with(())
        .given(vec![
            registered(),
            VendorEvent::FeeRateSet {
                rate: dec!(0.08),
                set_at: at(),
            },
        ])
        .when(VendorCommand::SetFeeRate {
            rate: dec!(0.080),
            at: at(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_fee_rate_outside_zero_to_one_or_too_fine_is_refused() {
    for rate in [dec!(-0.01), dec!(1.01), dec!(0.00001)] {
        let result = state(vec![registered()]).decide(VendorCommand::SetFeeRate { rate, at: at() });
        assert!(
            matches!(result, Err(DomainError::Validation { .. })),
            "{rate}: {result:?}"
        );
    }
    for rate in [dec!(0), dec!(1), dec!(0.0825)] {
        let result = state(vec![registered()]).decide(VendorCommand::SetFeeRate { rate, at: at() });
        assert!(result.is_ok(), "{rate}: {result:?}");
    }
}

#[test]
fn a_fee_rate_for_an_unregistered_vendor_is_not_found() {
    F::with(())
        .given_no_previous_events()
        .when(VendorCommand::SetFeeRate {
            rate: dec!(0.08),
            at: at(),
        })
        .then_expect_error(DomainError::not_found("vendor"));
}

fn sale_line(n: u128, vendor: u128, price: Decimal) -> LineInput {
    LineInput {
        line_id: Uuid::from_u128(1000 + n),
        hold_id: Uuid::from_u128(2000 + n),
        listing_id: Uuid::from_u128(3000 + n),
        vendor_id: Uuid::from_u128(vendor),
        terms: LineTerms::Sale { unit_price: price },
        quantity: 1,
    }
}

#[test]
fn a_vendor_with_its_own_rate_pays_it_and_the_others_the_orders() {
    let rates = Rates {
        tax_rate: dec!(0),
        platform_fee_rate: dec!(0.10),
    };
    let lines = [sale_line(1, 7, dec!(33.33)), sale_line(2, 8, dec!(33.33))];
    let own = FeeRates::from([(Uuid::from_u128(7), dec!(0.08))]);
    let priced = price_order_with_fee_rates(&lines, rates, &own);
    let seven = priced.vendor(Uuid::from_u128(7)).expect("vendor 7");
    let eight = priced.vendor(Uuid::from_u128(8)).expect("vendor 8");
    // round(33.33 × 0.08) = 2.67; round(33.33 × 0.10) = 3.33.
    assert_eq!((seven.platform_fee, seven.net), (dec!(2.67), dec!(30.66)));
    assert_eq!(seven.fee_rate, Some(dec!(0.08)));
    assert_eq!((eight.platform_fee, eight.net), (dec!(3.33), dec!(30.00)));
    assert_eq!(eight.fee_rate, None);
    // Without own rates, pricing is as it always was.
    assert_eq!(
        price_order(&lines, rates),
        price_order_with_fee_rates(&lines, rates, &FeeRates::new())
    );
}

#[test]
fn a_failed_payout_settles_what_the_vendor_owes_before_it_is_available() {
    // Everything was paid out, then a refund took back 30.00 the balance
    // could not cover: a receivable. The payout fails: its 100.00 comes
    // back, 30.00 of it settles the receivable, 70.00 is available.
    let owing = VendorEvent::EarningsReversed {
        reversal_id: Uuid::from_u128(900),
        order_id: Uuid::from_u128(100),
        amount: dec!(30.00),
        from_available: dec!(0.00),
        receivable: dec!(30.00),
    };
    let given = vec![
        registered(),
        earned(dec!(100.00)),
        requested(1, dec!(100.00)),
        owing,
    ];
    let settled = VendorEvent::ReceivableSettled {
        order_id: None,
        payout_id: Some(pid(1)),
        amount: dec!(30.00),
    };
    F::with(())
        .given(given.clone())
        .when(settle(1, fail()))
        .then_expect_events(vec![failed(1, dec!(100.00)), settled.clone()]);
    let vendor = state(
        given
            .into_iter()
            .chain([failed(1, dec!(100.00)), settled])
            .collect(),
    );
    assert_eq!(vendor.receivable(), dec!(0.00));
    assert_eq!(vendor.available_balance(), dec!(70.00));
}
