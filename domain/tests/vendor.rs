//! The Vendor aggregate in given/when/then: registration, earnings, damage
//! credits and payouts within the available balance.

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::{Aggregate, DomainEvent};
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
fn oid(n: u128) -> Uuid {
    Uuid::from_u128(100 + n)
}
fn registered() -> VendorEvent {
    VendorEvent::VendorRegistered {
        vendor_id: vid(),
        name: "Acme Rentals".into(),
        registered_at: at(),
    }
}
fn earned(n: u128, amount: Decimal) -> VendorEvent {
    VendorEvent::EarningsMadeAvailable {
        order_id: oid(n),
        amount,
    }
}

#[test]
fn register_records_trimmed_name() {
    F::with(())
        .given_no_previous_events()
        .when(VendorCommand::Register {
            vendor_id: vid(),
            name: "  Acme Rentals ".into(),
            at: at(),
        })
        .then_expect_events(vec![registered()]);
}

#[test]
fn register_twice_is_rejected() {
    F::with(())
        .given(vec![registered()])
        .when(VendorCommand::Register {
            vendor_id: vid(),
            name: "Other".into(),
            at: at(),
        })
        .then_expect_error(DomainError::AlreadyExists { what: "vendor" });
}

#[test]
fn register_with_blank_name_is_rejected() {
    F::with(())
        .given_no_previous_events()
        .when(VendorCommand::Register {
            vendor_id: vid(),
            name: "   ".into(),
            at: at(),
        })
        .then_expect_error(DomainError::invalid("name", "must not be empty"));
}

#[test]
fn register_with_too_long_name_is_rejected() {
    let r = F::with(())
        .given_no_previous_events()
        .when(VendorCommand::Register {
            vendor_id: vid(),
            name: "x".repeat(201).into(),
            at: at(),
        })
        .inspect_result();
    assert!(matches!(r, Err(DomainError::Validation { errors }) if errors[0].field == "name"));
}

/// A name sealed by the edge (docs/PRIVACY.md): the domain records it as
/// it came, never opening or trimming it.
#[test]
fn a_sealed_name_is_recorded_as_it_came() {
    let sealed = PersonalText::from_stored("pii:v1:0123456789abcdef0123456789abcdef:c2VhbGVk");
    assert!(sealed.is_sealed());
    F::with(())
        .given_no_previous_events()
        .when(VendorCommand::Register {
            vendor_id: vid(),
            name: sealed.clone(),
            at: at(),
        })
        .then_expect_events(vec![VendorEvent::VendorRegistered {
            vendor_id: vid(),
            name: sealed,
            registered_at: at(),
        }]);
}

/// The edge checks a name in clear before it seals it, by the rule the
/// domain applies to clear names.
#[test]
fn the_name_rule_is_checked_before_sealing() {
    assert_eq!(
        domain::vendor::check_name("  Acme Rentals ").unwrap(),
        "Acme Rentals"
    );
    assert!(domain::vendor::check_name(" ").is_err());
    assert!(domain::vendor::check_name(&"x".repeat(201)).is_err());
    assert!(domain::vendor::check_name(&"x".repeat(200)).is_ok());
}

/// A vendor registered before names were sealed (its event holds the
/// name in clear) loads as before: no upcaster, the same text.
#[test]
fn a_vendor_registered_with_a_clear_name_still_loads() {
    let stored = serde_json::json!({"VendorRegistered": {
        "vendor_id": vid(), "name": "Acme Rentals", "registered_at": at()}});
    let event: VendorEvent = serde_json::from_value(stored.clone()).unwrap();
    assert_eq!(event, registered());
    assert_eq!(serde_json::to_value(&event).unwrap(), stored);
    let mut v = Vendor::default();
    v.apply(event);
    assert_eq!(v.name().clear_text(), Some("Acme Rentals"));
}

#[test]
fn commands_before_registration_are_not_found() {
    F::with(())
        .given_no_previous_events()
        .when(VendorCommand::MakeEarningsAvailable {
            order_id: oid(1),
            amount: dec!(10),
        })
        .then_expect_error(DomainError::not_found("vendor"));
    F::with(())
        .given_no_previous_events()
        .when(VendorCommand::CreditDamage {
            order_id: oid(1),
            line_id: oid(2),
            amount: dec!(10),
        })
        .then_expect_error(DomainError::not_found("vendor"));
    F::with(())
        .given_no_previous_events()
        .when(VendorCommand::RequestPayout {
            payout_id: oid(3),
            amount: dec!(10),
            at: at(),
        })
        .then_expect_error(DomainError::not_found("vendor"));
}

#[test]
fn earnings_become_available() {
    F::with(())
        .given(vec![registered()])
        .when(VendorCommand::MakeEarningsAvailable {
            order_id: oid(1),
            amount: dec!(90.00),
        })
        .then_expect_events(vec![earned(1, dec!(90.00))]);
}

#[test]
fn earnings_are_idempotent_per_order() {
    F::with(())
        .given(vec![registered(), earned(1, dec!(90.00))])
        .when(VendorCommand::MakeEarningsAvailable {
            order_id: oid(1),
            amount: dec!(90.00),
        })
        .then_expect_events(vec![]);
}

#[test]
fn earnings_with_invalid_amount_are_rejected() {
    let r = F::with(())
        .given(vec![registered()])
        .when(VendorCommand::MakeEarningsAvailable {
            order_id: oid(1),
            amount: dec!(-1),
        })
        .inspect_result();
    assert!(matches!(r, Err(DomainError::Validation { .. })));
}

#[test]
fn damage_is_credited() {
    F::with(())
        .given(vec![registered()])
        .when(VendorCommand::CreditDamage {
            order_id: oid(1),
            line_id: oid(2),
            amount: dec!(15.00),
        })
        .then_expect_events(vec![VendorEvent::DamageCredited {
            order_id: oid(1),
            line_id: oid(2),
            amount: dec!(15.00),
        }]);
}

#[test]
fn damage_credit_is_idempotent_per_line() {
    F::with(())
        .given(vec![
            registered(),
            VendorEvent::DamageCredited {
                order_id: oid(1),
                line_id: oid(2),
                amount: dec!(15.00),
            },
        ])
        .when(VendorCommand::CreditDamage {
            order_id: oid(1),
            line_id: oid(2),
            amount: dec!(15.00),
        })
        .then_expect_events(vec![]);
}

#[test]
fn damage_credit_with_invalid_amount_is_rejected() {
    let r = F::with(())
        .given(vec![registered()])
        .when(VendorCommand::CreditDamage {
            order_id: oid(1),
            line_id: oid(2),
            amount: dec!(1.001),
        })
        .inspect_result();
    assert!(matches!(r, Err(DomainError::Validation { .. })));
}

#[test]
fn payout_within_available_balance_is_recorded() {
    F::with(())
        .given(vec![
            registered(),
            earned(1, dec!(90.00)),
            VendorEvent::DamageCredited {
                order_id: oid(1),
                line_id: oid(2),
                amount: dec!(10.00),
            },
        ])
        .when(VendorCommand::RequestPayout {
            payout_id: oid(9),
            amount: dec!(100.00),
            at: at(),
        })
        .then_expect_events(vec![VendorEvent::PayoutRecorded {
            payout_id: oid(9),
            amount: dec!(100.00),
            recorded_at: at(),
        }]);
}

#[test]
fn payout_above_available_balance_is_rejected() {
    F::with(())
        .given(vec![
            registered(),
            earned(1, dec!(90.00)),
            VendorEvent::PayoutRecorded {
                payout_id: oid(8),
                amount: dec!(50.00),
                recorded_at: at(),
            },
        ])
        .when(VendorCommand::RequestPayout {
            payout_id: oid(9),
            amount: dec!(40.01),
            at: at(),
        })
        .then_expect_error(DomainError::InsufficientBalance {
            available: dec!(40.00),
            requested: dec!(40.01),
        });
}

#[test]
fn payout_is_idempotent_per_payout_id() {
    F::with(())
        .given(vec![
            registered(),
            earned(1, dec!(90.00)),
            VendorEvent::PayoutRecorded {
                payout_id: oid(9),
                amount: dec!(90.00),
                recorded_at: at(),
            },
        ])
        .when(VendorCommand::RequestPayout {
            payout_id: oid(9),
            amount: dec!(90.00),
            at: at(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn payout_of_zero_or_sub_cent_amount_is_rejected() {
    for amount in [dec!(0), dec!(0.001), dec!(-5)] {
        let r = F::with(())
            .given(vec![registered(), earned(1, dec!(90.00))])
            .when(VendorCommand::RequestPayout {
                payout_id: oid(9),
                amount,
                at: at(),
            })
            .inspect_result();
        assert!(
            matches!(&r, Err(DomainError::Validation { errors }) if errors[0].field == "amount"),
            "{amount}: {r:?}"
        );
    }
}

#[test]
fn balance_and_state_round_trip_through_serde() {
    let mut v = Vendor::default();
    v.apply(registered());
    v.apply(earned(1, dec!(90.00)));
    assert_eq!(v.available_balance(), dec!(90.00));
    let json = serde_json::to_string(&v).unwrap();
    let back: Vendor = serde_json::from_str(&json).unwrap();
    assert_eq!(back, v);
    assert_eq!(back.name().as_stored(), "Acme Rentals");
}

#[test]
fn events_are_externally_tagged() {
    let v = serde_json::to_value(earned(1, dec!(1.50))).unwrap();
    assert_eq!(v["EarningsMadeAvailable"]["amount"], "1.50");
    assert_eq!(earned(1, dec!(1)).event_type(), "EarningsMadeAvailable");
}

// ---- Refunds and disputes of fulfilled parts (API.md "Money")

fn reverse(id: u128, amount: Decimal) -> VendorCommand {
    VendorCommand::ReverseEarnings {
        reversal_id: oid(id),
        order_id: oid(1),
        amount,
    }
}

#[test]
fn a_reversal_within_the_available_balance_takes_it_all_from_available() {
    F::with(())
        .given(vec![registered(), earned(1, dec!(90.00))])
        .when(reverse(50, dec!(40.00)))
        .then_expect_events(vec![VendorEvent::EarningsReversed {
            reversal_id: oid(50),
            order_id: oid(1),
            amount: dec!(40.00),
            from_available: dec!(40.00),
            receivable: dec!(0.00),
        }]);
}

#[test]
fn a_reversal_beyond_the_available_balance_leaves_a_receivable_never_a_negative_balance() {
    let given = vec![
        registered(),
        earned(1, dec!(90.00)),
        VendorEvent::PayoutRecorded {
            payout_id: oid(9),
            amount: dec!(80.00),
            recorded_at: at(),
        },
    ];
    F::with(())
        .given(given)
        .when(reverse(50, dec!(25.00)))
        .then_expect_events(vec![VendorEvent::EarningsReversed {
            reversal_id: oid(50),
            order_id: oid(1),
            amount: dec!(25.00),
            from_available: dec!(10.00),
            receivable: dec!(15.00),
        }]);
}

#[test]
fn a_reversal_is_recorded_once() {
    let reversed = VendorEvent::EarningsReversed {
        reversal_id: oid(50),
        order_id: oid(1),
        amount: dec!(5.00),
        from_available: dec!(5.00),
        receivable: dec!(0.00),
    };
    F::with(())
        .given(vec![registered(), earned(1, dec!(90.00)), reversed])
        .when(reverse(50, dec!(5.00)))
        .then_expect_events(vec![]);
}

fn owing(receivable: Decimal) -> Vec<VendorEvent> {
    vec![
        registered(),
        VendorEvent::EarningsReversed {
            reversal_id: oid(50),
            order_id: oid(1),
            amount: receivable,
            from_available: dec!(0.00),
            receivable,
        },
    ]
}

#[test]
fn the_next_credit_settles_the_receivable_first() {
    F::with(())
        .given(owing(dec!(15.00)))
        .when(VendorCommand::MakeEarningsAvailable {
            order_id: oid(2),
            amount: dec!(40.00),
        })
        .then_expect_events(vec![
            earned(2, dec!(40.00)),
            VendorEvent::ReceivableSettled {
                order_id: Some(oid(2)),
                payout_id: None,
                amount: dec!(15.00),
            },
        ]);
}

#[test]
fn a_payout_cannot_spend_what_a_receivable_takes() {
    let mut given = owing(dec!(15.00));
    given.push(earned(2, dec!(40.00)));
    given.push(VendorEvent::ReceivableSettled {
        order_id: Some(oid(2)),
        payout_id: None,
        amount: dec!(15.00),
    });
    F::with(())
        .given(given)
        .when(VendorCommand::RequestPayout {
            payout_id: oid(9),
            amount: dec!(25.01),
            at: at(),
        })
        .then_expect_error(DomainError::InsufficientBalance {
            available: dec!(25.00),
            requested: dec!(25.01),
        });
}

#[test]
fn a_restoration_settles_the_receivable_then_returns_to_available() {
    F::with(())
        .given(owing(dec!(15.00)))
        .when(VendorCommand::RestoreEarnings {
            reversal_id: oid(60),
            order_id: oid(1),
            amount: dec!(20.00),
        })
        .then_expect_events(vec![VendorEvent::EarningsRestored {
            reversal_id: oid(60),
            order_id: oid(1),
            amount: dec!(20.00),
            receivable_settled: dec!(15.00),
        }]);
}

#[test]
fn a_reversal_of_a_bad_amount_is_refused() {
    let r = F::with(())
        .given(vec![registered()])
        .when(reverse(50, dec!(1.001)))
        .inspect_result();
    assert!(matches!(r, Err(DomainError::Validation { .. })), "{r:?}");
}
