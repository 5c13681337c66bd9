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

fn t(h: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap() + Duration::hours(h)
}
fn u(n: u128) -> Uuid {
    Uuid::from_u128(n)
}
const ORDER: u128 = 1;
const V1: u128 = 11;
const V2: u128 = 12;
const RENTAL_LINE: u128 = 21;
const SALE_LINE: u128 = 22;

fn rates() -> Rates {
    Rates {
        tax_rate: dec!(0.10),
        platform_fee_rate: dec!(0.10),
    }
}
/// V1 rents 2 units for 25 h at 10.00/day (2 days) with a 50.00 deposit;
/// V2 sells 3 × 5.00.
fn lines() -> Vec<LineInput> {
    vec![
        LineInput {
            line_id: u(RENTAL_LINE),
            hold_id: u(31),
            listing_id: u(41),
            vendor_id: u(V1),
            terms: LineTerms::Rental {
                late_fee_per_unit: Default::default(),
                cancellation_policy: Vec::new(),
                time_zone: domain::Tz::UTC,
                period: Period::new(t(0), t(25)).unwrap(),
                pricing_unit: PricingUnit::Day,
                price_per_unit: dec!(10.00),
                deposit_per_unit: dec!(50.00),
            },
            quantity: 2,
        },
        LineInput {
            line_id: u(SALE_LINE),
            hold_id: u(32),
            listing_id: u(42),
            vendor_id: u(V2),
            terms: LineTerms::Sale {
                unit_price: dec!(5.00),
            },
            quantity: 3,
        },
    ]
}
fn place_cmd(lines: Vec<LineInput>) -> C {
    C::Place {
        order_id: u(ORDER),
        customer_id: "cust-1".into(),
        currency: "USD".into(),
        lines,
        rates: rates(),
        fee_rates: Default::default(),
        hold_expires_at: t(-1),
        placed_at: t(-2),
        payment_plans: Default::default(),
    }
}
fn placed() -> E {
    E::OrderPlaced {
        order_id: u(ORDER),
        customer_id: "cust-1".into(),
        currency: "USD".into(),
        priced: price_order(&lines(), rates()),
        rates: rates(),
        hold_expires_at: t(-1),
        placed_at: t(-2),
    }
}
// subtotal 40 + 15 = 55, tax 5.50, deposit 100 → total 160.50
const TOTAL_MINOR: i64 = 16050;

fn pay(id: &str, amount_minor: i64) -> C {
    C::RecordPayment {
        payment_id: id.into(),
        intent_id: "pi_1".into(),
        amount_minor,
        currency: "usd".into(),
        outcome: PaymentOutcome::Succeeded,
        received_at: t(-1),
    }
}
fn captured(id: &str) -> E {
    E::PaymentCaptured {
        payment_id: id.into(),
        intent_id: "pi_1".into(),
        amount: dec!(160.50),
    }
}
fn paid() -> Vec<E> {
    vec![
        placed(),
        captured("evt_1"),
        E::OrderConfirmed {
            confirmed_at: t(-1),
        },
    ]
}
fn expired() -> E {
    E::OrderCancelled {
        reason: Some("hold expired".into()),
        cause: CancelCause::Expiry,
        at: t(0),
    }
}
fn with(mut base: Vec<E>, more: Vec<E>) -> Vec<E> {
    base.extend(more);
    base
}
fn invalid_state(r: Result<Vec<E>, DomainError>) -> bool {
    matches!(r, Err(DomainError::InvalidState(_)))
}
fn fields(r: Result<Vec<E>, DomainError>) -> Vec<String> {
    match r {
        Err(DomainError::Validation { errors }) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected validation error, got {other:?}"),
    }
}

// ---- Place

#[test]
fn place_prices_the_order() {
    F::with(())
        .given_no_previous_events()
        .when(place_cmd(lines()))
        .then_expect_events(vec![placed()]);
    let p = price_order(&lines(), rates());
    assert_eq!(p.subtotal, dec!(55.00));
    assert_eq!(p.tax, dec!(5.50));
    assert_eq!(p.deposit, dec!(100.00));
    assert_eq!(p.total, dec!(160.50));
    assert_eq!(p.lines[0].billable_units, Some(2));
    assert_eq!(p.vendors[0].platform_fee, dec!(4.00));
    assert_eq!(p.vendors[0].net, dec!(36.00));
    assert_eq!(p.vendors[1].net, dec!(13.50));
}

#[test]
fn place_twice_is_rejected() {
    F::with(())
        .given(vec![placed()])
        .when(place_cmd(lines()))
        .then_expect_error(DomainError::AlreadyExists { what: "order" });
}

#[test]
fn order_without_items_is_rejected() {
    let r = F::with(())
        .given_no_previous_events()
        .when(place_cmd(vec![]))
        .inspect_result();
    assert_eq!(fields(r), vec!["items"]);
}

#[test]
fn a_rental_starting_before_the_order_is_placed_is_in_the_past() {
    let mut command = place_cmd(lines());
    if let C::Place { placed_at, .. } = &mut command {
        *placed_at = t(1);
    }
    let r = F::with(())
        .given_no_previous_events()
        .when(command)
        .inspect_result();
    let Err(DomainError::Validation { errors }) = r else {
        panic!("refused: {r:?}");
    };
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field, "items[0].start");
    assert_eq!(errors[0].code.as_deref(), Some("in_past"));
}

#[test]
fn an_order_over_the_total_bound_is_refused_as_too_large() {
    let mut l = lines();
    l[1].terms = LineTerms::Sale {
        unit_price: MAX_AMOUNT,
    };
    l[1].quantity = 1_001;
    let r = F::with(())
        .given_no_previous_events()
        .when(place_cmd(l))
        .inspect_result();
    let Err(DomainError::Validation { errors }) = r else {
        panic!("refused: {r:?}");
    };
    assert_eq!(errors[0].field, "items");
    assert_eq!(errors[0].code.as_deref(), Some("too_large"));
}

#[test]
fn zero_quantity_line_is_rejected() {
    let mut l = lines();
    l[1].quantity = 0;
    let r = F::with(())
        .given_no_previous_events()
        .when(place_cmd(l))
        .inspect_result();
    assert_eq!(fields(r), vec!["items[1].quantity"]);
}

#[test]
fn commands_before_placement_are_not_found() {
    F::with(())
        .given_no_previous_events()
        .when(C::Cancel {
            reason: None,
            at: t(0),
        })
        .then_expect_error(DomainError::NotFound { what: "order" });
}

// ---- RecordPayment

#[test]
fn matching_payment_captures_and_confirms() {
    F::with(())
        .given(vec![placed()])
        .when(pay("evt_1", TOTAL_MINOR))
        .then_expect_events(vec![
            captured("evt_1"),
            E::OrderConfirmed {
                confirmed_at: t(-1),
            },
        ]);
}

#[test]
fn replayed_payment_is_idempotent() {
    F::with(())
        .given(paid())
        .when(pay("evt_1", TOTAL_MINOR))
        .then_expect_events(vec![]);
}

#[test]
fn failed_payment_leaves_order_placed() {
    F::with(())
        .given(vec![placed()])
        .when(C::RecordPayment {
            payment_id: "evt_2".into(),
            intent_id: "pi_1".into(),
            amount_minor: TOTAL_MINOR,
            currency: "usd".into(),
            outcome: PaymentOutcome::Failed {
                reason: "card declined".into(),
                code: Some("card_declined".into()),
                decline_code: Some("insufficient_funds".into()),
            },
            received_at: t(-1),
        })
        .then_expect_events(vec![E::PaymentFailed {
            payment_id: "evt_2".into(),
            intent_id: "pi_1".into(),
            reason: "card declined".into(),
            code: Some("card_declined".into()),
            decline_code: Some("insufficient_funds".into()),
        }]);
}

/// Events recorded before the provider's codes were kept still load (no
/// upcaster: the codes are optional), and one without codes is stored
/// without them.
#[test]
fn a_payment_failure_recorded_without_codes_still_loads() {
    let old = serde_json::json!({"PaymentFailed": {
        "payment_id": "evt_2", "intent_id": "pi_1", "reason": "card declined"
    }});
    let event: E = serde_json::from_value(old.clone()).expect("an old PaymentFailed loads");
    assert_eq!(
        event,
        E::PaymentFailed {
            payment_id: "evt_2".into(),
            intent_id: "pi_1".into(),
            reason: "card declined".into(),
            code: None,
            decline_code: None,
        }
    );
    assert_eq!(serde_json::to_value(&event).expect("serialise"), old);
}

/// API.md "Money": posted as unapplied cash (see `refunds.rs`), no
/// longer a mismatch outside the books.
#[test]
fn payment_of_another_amount_is_unapplied_cash() {
    F::with(())
        .given(vec![placed()])
        .when(pay("evt_1", 100))
        .then_expect_events(vec![E::PaymentUnapplied {
            payment_id: "evt_1".into(),
            intent_id: "pi_1".into(),
            amount: dec!(1.00),
        }]);
}

#[test]
fn payment_in_another_currency_is_a_mismatch() {
    let r = F::with(())
        .given(vec![placed()])
        .when(C::RecordPayment {
            payment_id: "evt_1".into(),
            intent_id: "pi_1".into(),
            amount_minor: TOTAL_MINOR,
            currency: "eur".into(),
            outcome: PaymentOutcome::Succeeded,
            received_at: t(-1),
        })
        .inspect_result()
        .unwrap();
    assert!(matches!(r[..], [E::PaymentAmountMismatch { .. }]));
}

#[test]
fn payment_after_expiry_is_captured_without_confirming() {
    F::with(())
        .given(vec![placed(), expired()])
        .when(pay("evt_1", TOTAL_MINOR))
        .then_expect_events(vec![captured("evt_1")]);
}

#[test]
fn payment_after_customer_cancel_is_refunded() {
    F::with(())
        .given(vec![
            placed(),
            E::OrderCancelled {
                reason: None,
                cause: CancelCause::Customer,
                at: t(0),
            },
        ])
        .when(pay("evt_1", TOTAL_MINOR))
        .then_expect_events(vec![
            captured("evt_1"),
            E::RefundIssued {
                amount: dec!(160.50),
                reason: "order cancelled".into(),
            },
        ]);
}

#[test]
fn duplicate_payment_is_refunded() {
    F::with(())
        .given(paid())
        .when(pay("evt_2", TOTAL_MINOR))
        .then_expect_events(vec![
            captured("evt_2"),
            E::RefundIssued {
                amount: dec!(160.50),
                reason: "duplicate payment".into(),
            },
        ]);
}

// ---- Reconfirm / RefundLapsed

#[test]
fn reconfirm_paid_expired_order() {
    F::with(())
        .given(vec![placed(), expired(), captured("evt_1")])
        .when(C::Reconfirm { at: t(1) })
        .then_expect_events(vec![E::OrderReconfirmed { at: t(1) }]);
}

#[test]
fn reconfirm_without_payment_is_rejected() {
    let r = F::with(())
        .given(vec![placed(), expired()])
        .when(C::Reconfirm { at: t(1) })
        .inspect_result();
    assert!(invalid_state(r));
}

#[test]
fn reconfirm_of_customer_cancelled_order_is_rejected() {
    let r = F::with(())
        .given(vec![
            placed(),
            E::OrderCancelled {
                reason: None,
                cause: CancelCause::Customer,
                at: t(0),
            },
        ])
        .when(C::Reconfirm { at: t(1) })
        .inspect_result();
    assert!(invalid_state(r));
}

#[test]
fn reconfirm_is_idempotent() {
    F::with(())
        .given(vec![
            placed(),
            expired(),
            captured("evt_1"),
            E::OrderReconfirmed { at: t(1) },
        ])
        .when(C::Reconfirm { at: t(2) })
        .then_expect_events(vec![]);
}

#[test]
fn refund_lapsed_refunds_captured_payment() {
    F::with(())
        .given(vec![placed(), expired(), captured("evt_1")])
        .when(C::RefundLapsed { at: t(1) })
        .then_expect_events(vec![E::RefundIssued {
            amount: dec!(160.50),
            reason: "units no longer available".into(),
        }]);
}

#[test]
fn refund_lapsed_is_idempotent() {
    F::with(())
        .given(vec![
            placed(),
            expired(),
            captured("evt_1"),
            E::RefundIssued {
                amount: dec!(160.50),
                reason: "units no longer available".into(),
            },
        ])
        .when(C::RefundLapsed { at: t(1) })
        .then_expect_events(vec![]);
}

#[test]
fn refund_lapsed_without_payment_is_rejected() {
    let r = F::with(())
        .given(vec![placed(), expired()])
        .when(C::RefundLapsed { at: t(1) })
        .inspect_result();
    assert!(invalid_state(r));
}

#[test]
fn refund_lapsed_of_confirmed_order_is_rejected() {
    let r = F::with(())
        .given(paid())
        .when(C::RefundLapsed { at: t(1) })
        .inspect_result();
    assert!(invalid_state(r));
}

// ---- Cancel

#[test]
fn cancel_placed_order() {
    F::with(())
        .given(vec![placed()])
        .when(C::Cancel {
            reason: Some("changed my mind".into()),
            at: t(0),
        })
        .then_expect_events(vec![E::OrderCancelled {
            reason: Some("changed my mind".into()),
            cause: CancelCause::Customer,
            at: t(0),
        }]);
}

#[test]
fn cancel_confirmed_order_refunds_it() {
    F::with(())
        .given(paid())
        .when(C::Cancel {
            reason: None,
            at: t(0),
        })
        .then_expect_events(vec![
            E::OrderCancelled {
                reason: None,
                cause: CancelCause::Customer,
                at: t(0),
            },
            E::RefundIssued {
                amount: dec!(160.50),
                reason: "order cancelled".into(),
            },
        ]);
}

/// A reason sealed by the edge under the customer's key is recorded as it
/// came, and the refund repeats it sealed (docs/PRIVACY.md).
#[test]
fn a_sealed_cancellation_reason_is_repeated_sealed_by_the_refund() {
    let sealed =
        domain::PersonalText::from_stored("pii:v1:0123456789abcdef0123456789abcdef:c2VhbGVk");
    F::with(())
        .given(paid())
        .when(C::Cancel {
            reason: Some(sealed.clone()),
            at: t(0),
        })
        .then_expect_events(vec![
            E::OrderCancelled {
                reason: Some(sealed.clone()),
                cause: CancelCause::Customer,
                at: t(0),
            },
            E::RefundIssued {
                amount: dec!(160.50),
                reason: sealed,
            },
        ]);
}

#[test]
fn cancel_after_fulfilment_started_is_rejected() {
    F::with(())
        .given(with(
            paid(),
            vec![E::PartShipped {
                vendor_id: u(V2),
                at: t(0),
            }],
        ))
        .when(C::Cancel {
            reason: None,
            at: t(1),
        })
        .then_expect_error(DomainError::InvalidState("fulfilment has started".into()));
}

#[test]
fn cancel_is_idempotent() {
    F::with(())
        .given(vec![placed(), expired()])
        .when(C::Cancel {
            reason: None,
            at: t(1),
        })
        .then_expect_events(vec![]);
}

#[test]
fn cancel_completed_order_is_rejected() {
    let r = F::with(())
        .given(with(paid(), vec![E::OrderCompleted { at: t(5) }]))
        .when(C::Cancel {
            reason: None,
            at: t(6),
        })
        .inspect_result();
    assert!(invalid_state(r));
}

// ---- ExpireUnpaid

#[test]
fn expire_unpaid_order_after_hold_expiry() {
    F::with(())
        .given(vec![placed()])
        .when(C::ExpireUnpaid { at: t(0) })
        .then_expect_events(vec![expired()]);
}

#[test]
fn expire_unpaid_before_hold_expiry_is_rejected() {
    let r = F::with(())
        .given(vec![placed()])
        .when(C::ExpireUnpaid { at: t(-2) })
        .inspect_result();
    assert!(invalid_state(r));
}

#[test]
fn expire_unpaid_of_paid_order_does_nothing() {
    F::with(())
        .given(paid())
        .when(C::ExpireUnpaid { at: t(0) })
        .then_expect_events(vec![]);
}

// ---- Fulfilment

fn shipped() -> E {
    E::PartShipped {
        vendor_id: u(V2),
        at: t(1),
    }
}
fn picked_up() -> E {
    E::LinePickedUp {
        line_id: u(RENTAL_LINE),
        at: t(1),
    }
}
fn returned(damage: Decimal) -> E {
    E::LineReturned {
        late_fee: Default::default(),
        late_fee_owed: Default::default(),
        refund: Default::default(),
        line_id: u(RENTAL_LINE),
        vendor_id: u(V1),
        returned_at: t(20),
        deposit_refunded: dec!(100.00) - damage,
        damage_withheld: damage,
    }
}
fn return_cmd(damage: Decimal) -> C {
    C::ReturnLine {
        line_id: u(RENTAL_LINE),
        returned_at: t(20),
        damage_withheld: damage,
        now: t(21),
    }
}

#[test]
fn ship_part_of_confirmed_order() {
    F::with(())
        .given(paid())
        .when(C::ShipPart {
            vendor_id: u(V2),
            at: t(1),
        })
        .then_expect_events(vec![shipped()]);
}

#[test]
fn ship_before_payment_is_rejected() {
    let r = F::with(())
        .given(vec![placed()])
        .when(C::ShipPart {
            vendor_id: u(V2),
            at: t(1),
        })
        .inspect_result();
    assert!(invalid_state(r));
}

#[test]
fn ship_for_vendor_without_sale_lines_is_not_found() {
    F::with(())
        .given(paid())
        .when(C::ShipPart {
            vendor_id: u(V1),
            at: t(1),
        })
        .then_expect_error(DomainError::NotFound {
            what: "sale lines for vendor",
        });
}

#[test]
fn ship_twice_is_idempotent() {
    F::with(())
        .given(with(paid(), vec![shipped()]))
        .when(C::ShipPart {
            vendor_id: u(V2),
            at: t(2),
        })
        .then_expect_events(vec![]);
}

#[test]
fn deliver_fulfils_the_vendor_part() {
    F::with(())
        .given(with(paid(), vec![shipped()]))
        .when(C::DeliverPart {
            vendor_id: u(V2),
            at: t(2),
        })
        .then_expect_events(vec![
            E::PartDelivered {
                vendor_id: u(V2),
                at: t(2),
            },
            E::VendorPartFulfilled {
                vendor_id: u(V2),
                net: dec!(13.50),
            },
        ]);
}

#[test]
fn deliver_before_ship_is_rejected() {
    let r = F::with(())
        .given(paid())
        .when(C::DeliverPart {
            vendor_id: u(V2),
            at: t(2),
        })
        .inspect_result();
    assert!(invalid_state(r));
}

#[test]
fn deliver_twice_is_idempotent() {
    F::with(())
        .given(with(
            paid(),
            vec![
                shipped(),
                E::PartDelivered {
                    vendor_id: u(V2),
                    at: t(2),
                },
            ],
        ))
        .when(C::DeliverPart {
            vendor_id: u(V2),
            at: t(3),
        })
        .then_expect_events(vec![]);
}

#[test]
fn pick_up_rental_line() {
    F::with(())
        .given(paid())
        .when(C::PickUpLine {
            line_id: u(RENTAL_LINE),
            at: t(1),
        })
        .then_expect_events(vec![picked_up()]);
}

#[test]
fn pick_up_twice_is_idempotent() {
    F::with(())
        .given(with(paid(), vec![picked_up()]))
        .when(C::PickUpLine {
            line_id: u(RENTAL_LINE),
            at: t(2),
        })
        .then_expect_events(vec![]);
}

#[test]
fn pick_up_unknown_line_is_not_found() {
    F::with(())
        .given(paid())
        .when(C::PickUpLine {
            line_id: u(99),
            at: t(1),
        })
        .then_expect_error(DomainError::NotFound { what: "line" });
}

#[test]
fn pick_up_sale_line_is_rejected() {
    let r = F::with(())
        .given(paid())
        .when(C::PickUpLine {
            line_id: u(SALE_LINE),
            at: t(1),
        })
        .inspect_result();
    assert!(invalid_state(r));
}

#[test]
fn pick_up_before_payment_is_rejected() {
    let r = F::with(())
        .given(vec![placed()])
        .when(C::PickUpLine {
            line_id: u(RENTAL_LINE),
            at: t(1),
        })
        .inspect_result();
    assert!(invalid_state(r));
}

#[test]
fn return_settles_deposit_and_fulfils_part() {
    F::with(())
        .given(with(paid(), vec![picked_up()]))
        .when(return_cmd(dec!(30.00)))
        .then_expect_events(vec![
            returned(dec!(30.00)),
            E::VendorPartFulfilled {
                vendor_id: u(V1),
                net: dec!(36.00),
            },
        ]);
}

#[test]
fn last_part_fulfilled_completes_the_order() {
    F::with(())
        .given(with(
            paid(),
            vec![
                shipped(),
                E::PartDelivered {
                    vendor_id: u(V2),
                    at: t(2),
                },
                E::VendorPartFulfilled {
                    vendor_id: u(V2),
                    net: dec!(13.50),
                },
                picked_up(),
            ],
        ))
        .when(return_cmd(dec!(0)))
        .then_expect_events(vec![
            returned(dec!(0)),
            E::VendorPartFulfilled {
                vendor_id: u(V1),
                net: dec!(36.00),
            },
            E::OrderCompleted { at: t(20) },
        ]);
}

#[test]
fn return_before_pick_up_is_rejected() {
    let r = F::with(())
        .given(paid())
        .when(return_cmd(dec!(0)))
        .inspect_result();
    assert!(invalid_state(r));
}

#[test]
fn damage_above_deposit_is_rejected() {
    let r = F::with(())
        .given(with(paid(), vec![picked_up()]))
        .when(return_cmd(dec!(100.01)))
        .inspect_result();
    assert_eq!(fields(r), vec!["damage_withheld"]);
}

#[test]
fn return_twice_is_idempotent() {
    F::with(())
        .given(with(paid(), vec![picked_up(), returned(dec!(0))]))
        .when(return_cmd(dec!(0)))
        .then_expect_events(vec![]);
}

#[test]
fn return_of_sale_line_is_rejected() {
    let r = F::with(())
        .given(paid())
        .when(C::ReturnLine {
            line_id: u(SALE_LINE),
            returned_at: t(2),
            damage_withheld: dec!(0),
            now: t(3),
        })
        .inspect_result();
    assert!(invalid_state(r));
}

// ---- Returns at the right time, overdue lines

fn returned_at_problem(returned_at: i64, now: i64) -> Vec<(String, Option<String>)> {
    let mut given = paid();
    given.push(picked_up());
    match F::with(())
        .given(given)
        .when(C::ReturnLine {
            line_id: u(RENTAL_LINE),
            returned_at: t(returned_at),
            damage_withheld: dec!(0),
            now: t(now),
        })
        .inspect_result()
    {
        Err(DomainError::Validation { errors }) => {
            errors.into_iter().map(|e| (e.field, e.code)).collect()
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn a_return_after_now_is_refused() {
    assert_eq!(
        returned_at_problem(5, 4),
        vec![("returned_at".to_owned(), Some("in_future".to_owned()))]
    );
}

#[test]
fn a_return_before_the_pickup_is_refused() {
    // Picked up at t(1).
    assert_eq!(
        returned_at_problem(0, 4),
        vec![("returned_at".to_owned(), Some("before_pickup".to_owned()))]
    );
}

#[test]
fn a_picked_up_line_past_its_end_becomes_overdue_once() {
    let mut given = paid();
    given.push(picked_up());
    let end = paid_rental_end();
    F::with(())
        .given(given.clone())
        .when(C::MarkLineOverdue {
            line_id: u(RENTAL_LINE),
            at: end,
        })
        .then_expect_events(vec![E::LineOverdue {
            line_id: u(RENTAL_LINE),
            at: end,
        }]);
    let r = F::with(())
        .given(given.clone())
        .when(C::MarkLineOverdue {
            line_id: u(RENTAL_LINE),
            at: end - chrono::Duration::seconds(1),
        })
        .inspect_result();
    assert!(invalid_state(r));
    given.push(E::LineOverdue {
        line_id: u(RENTAL_LINE),
        at: end,
    });
    F::with(())
        .given(given.clone())
        .when(C::MarkLineOverdue {
            line_id: u(RENTAL_LINE),
            at: end,
        })
        .then_expect_events(vec![]);
    // An overdue line can still be returned.
    let events = F::with(())
        .given(given)
        .when(C::ReturnLine {
            line_id: u(RENTAL_LINE),
            returned_at: end + chrono::Duration::hours(1),
            damage_withheld: dec!(0),
            now: end + chrono::Duration::hours(2),
        })
        .inspect_result()
        .expect("returned");
    assert!(matches!(events[0], E::LineReturned { .. }));
}

#[test]
fn a_line_not_picked_up_is_never_overdue() {
    let r = F::with(())
        .given(paid())
        .when(C::MarkLineOverdue {
            line_id: u(RENTAL_LINE),
            at: paid_rental_end(),
        })
        .inspect_result();
    assert!(invalid_state(r));
}

/// The end of the rental line of `paid()`.
fn paid_rental_end() -> DateTime<Utc> {
    let mut order = Order::default();
    for e in paid() {
        order.apply(e);
    }
    order
        .line(u(RENTAL_LINE))
        .and_then(|l| l.end)
        .expect("rental end")
}

// ---- accessors and serde

#[test]
fn accessors_and_serde_round_trip() {
    let mut o = Order::default();
    assert!(!o.is_placed());
    for e in with(paid(), vec![shipped(), picked_up()]) {
        o.apply(e);
    }
    assert!(o.is_placed());
    assert_eq!(o.status(), OrderStatus::Confirmed);
    assert_eq!(o.customer_id(), "cust-1");
    assert_eq!(o.total(), dec!(160.50));
    assert_eq!(o.captured_amount(), dec!(160.50));
    assert_eq!(o.hold_ids(), vec![(u(41), u(31)), (u(42), u(32))]);
    assert_eq!(o.vendor_ids(), vec![u(V1), u(V2)]);
    assert_eq!(o.line_vendor(u(SALE_LINE)), Some(u(V2)));
    assert_eq!(o.line_status(u(SALE_LINE)), Some(LineStatus::Shipped));
    assert_eq!(o.part_status(u(V1)), Some(PartStatus::InProgress));
    assert_eq!(o.hold_expires_at(), Some(t(-1)));
    assert!(!o.cancelled_by_expiry());
    let back: Order = serde_json::from_str(&serde_json::to_string(&o).unwrap()).unwrap();
    assert_eq!(back, o);
    let v = serde_json::to_value(placed()).unwrap();
    assert_eq!(v["OrderPlaced"]["priced"]["total"], "160.50");
    assert_eq!(v["OrderPlaced"]["priced"]["lines"][1]["kind"], "sale");
    assert!(v["OrderPlaced"]["priced"]["lines"][1]
        .get("start")
        .is_none());
}

#[test]
fn a_recorded_return_keeps_how_the_deposit_was_settled() {
    use cqrs_es::Aggregate;
    let mut order = domain::Order::default();
    for event in with(paid(), vec![picked_up(), returned(dec!(30.00))]) {
        order.apply(event);
    }
    let recorded = order.line_return(u(RENTAL_LINE)).copied();
    assert_eq!(
        recorded,
        Some(domain::LineReturn {
            late_fee: Default::default(),
            late_fee_owed: Default::default(),
            refund: Default::default(),
            returned_at: t(20),
            deposit_refunded: dec!(70.00),
            damage_withheld: dec!(30.00),
        })
    );
    assert_eq!(order.line_return(u(V1)), None);
}

#[test]
fn a_v1_cancellation_loads_through_the_upcaster() {
    // As an older version stored it: `by_expiry` instead of `cause`.
    let stored = serde_json::json!({"OrderCancelled": {
        "reason": "hold expired", "by_expiry": true, "at": "2030-01-01T00:00:00Z"}});
    let (version, payload) = domain::upcast::upcast("OrderCancelled", "1.0", stored);
    assert_eq!(version, "2.0");
    let cancelled: E = serde_json::from_value(payload).unwrap();
    assert_eq!(cancelled, expired());
    let mut o = Order::default();
    for event in [placed(), cancelled] {
        o.apply(event);
    }
    assert_eq!(o.status(), OrderStatus::Cancelled);
    assert!(o.cancelled_by_expiry());
}
