//! Refunds, unapplied payments and disputes of the Order aggregate, in
//! given/when/then (API.md "Money"): one test per rule and per rejection.
//!
//! The order: V1 sells line A (4 × 25.00 = 100.00, tax 10.00) and line B
//! (1 × 33.33, tax 3.33): subtotal 133.33, fee 13.33, net 120.00; V2 sells
//! line C (3 × 5.00 = 15.00, tax 1.50): fee 1.50, net 13.50. Total 163.16.

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
const A: u128 = 21;
const B: u128 = 22;
const LINE_C: u128 = 23;

fn sale(line: u128, vendor: u128, price: Decimal, quantity: u32) -> LineInput {
    LineInput {
        line_id: u(line),
        hold_id: u(line + 100),
        listing_id: u(line + 200),
        vendor_id: u(vendor),
        terms: LineTerms::Sale { unit_price: price },
        quantity,
    }
}
fn rates() -> Rates {
    Rates {
        tax_rate: dec!(0.10),
        platform_fee_rate: dec!(0.10),
    }
}
fn lines() -> Vec<LineInput> {
    vec![
        sale(A, V1, dec!(25.00), 4),
        sale(B, V1, dec!(33.33), 1),
        sale(LINE_C, V2, dec!(5.00), 3),
    ]
}
fn placed() -> E {
    E::OrderPlaced {
        order_id: u(ORDER),
        customer_id: "cust-1".into(),
        currency: "USD".into(),
        priced: price_order(&lines(), rates()),
        rates: rates(),
        hold_expires_at: t(1),
        placed_at: t(0),
    }
}
fn paid() -> Vec<E> {
    vec![
        placed(),
        E::PaymentCaptured {
            payment_id: "evt_1".into(),
            intent_id: "pi_1".into(),
            amount: dec!(163.16),
        },
        E::OrderConfirmed { confirmed_at: t(0) },
    ]
}
fn with(mut base: Vec<E>, more: Vec<E>) -> Vec<E> {
    base.extend(more);
    base
}
fn refund(amount: Option<Decimal>, lines: Option<Vec<u128>>) -> C {
    refund_as(900, amount, lines, None)
}
fn refund_as(
    id: u128,
    amount: Option<Decimal>,
    lines: Option<Vec<u128>>,
    vendor: Option<u128>,
) -> C {
    C::Refund(RefundRequest {
        refund_id: u(id),
        amount,
        lines: lines.map(|l| l.into_iter().map(u).collect()),
        vendor_id: vendor.map(u),
        reason: "goodwill".into(),
        provider_refund_id: None,
        at: t(2),
    })
}
/// The events a command records on `given`.
fn decide(given: Vec<E>, command: C) -> Result<Vec<E>, DomainError> {
    F::with(()).given(given).when(command).inspect_result()
}
fn recorded(given: Vec<E>, command: C) -> (Decimal, Vec<RefundPart>) {
    match decide(given, command).expect("recorded").as_slice() {
        [E::RefundRecorded { amount, parts, .. }] => (*amount, parts.clone()),
        other => panic!("expected one RefundRecorded, got {other:?}"),
    }
}
fn invalid_state(r: Result<Vec<E>, DomainError>) -> String {
    match r {
        Err(DomainError::InvalidState(m)) => m,
        other => panic!("expected a conflict, got {other:?}"),
    }
}
fn fields(r: Result<Vec<E>, DomainError>) -> Vec<String> {
    match r {
        Err(DomainError::Validation { errors }) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}
fn part(parts: &[RefundPart], vendor: u128) -> &RefundPart {
    parts
        .iter()
        .find(|p| p.vendor_id == u(vendor))
        .expect("part")
}
/// The events of a recorded refund, to build on.
fn refunded(given: Vec<E>, command: C) -> Vec<E> {
    with(given.clone(), decide(given, command).expect("recorded"))
}

// ---- Refunds

#[test]
fn a_refund_by_lines_gives_back_their_subtotal_and_tax_and_reverses_fee_and_net_pro_rata() {
    let (amount, parts) = recorded(paid(), refund(None, Some(vec![A])));
    assert_eq!(amount, dec!(110.00));
    let p = part(&parts, V1);
    assert_eq!(p.lines.len(), 1);
    assert_eq!((p.subtotal, p.tax), (dec!(100.00), dec!(10.00)));
    // round(100.00 × 13.33 ÷ 133.33) = round(9.99775) = 10.00.
    assert_eq!((p.fee_reversed, p.net_reversed), (dec!(10.00), dec!(90.00)));
    assert_eq!(
        (p.from_pending, p.from_available),
        (dec!(90.00), dec!(0.00))
    );
    assert_eq!(parts.len(), 1, "V2 untouched");
}

#[test]
fn the_last_refund_of_a_part_reverses_exactly_what_the_part_has_left() {
    let given = refunded(paid(), refund(None, Some(vec![A])));
    let (amount, parts) = recorded(given, refund_as(901, None, Some(vec![B]), None));
    assert_eq!(amount, dec!(36.66));
    let p = part(&parts, V1);
    assert_eq!((p.fee_reversed, p.net_reversed), (dec!(3.33), dec!(30.00)));
}

#[test]
fn a_refund_by_amount_is_spread_over_every_line_to_the_cent() {
    let (amount, parts) = recorded(paid(), refund(Some(dec!(10.00)), None));
    assert_eq!(amount, dec!(10.00));
    let (v1, v2) = (part(&parts, V1), part(&parts, V2));
    // Shares by what each line has left (110.00, 36.66, 16.50), largest
    // remainder: 6.74, 2.25, 1.01.
    assert_eq!(v1.amount + v2.amount, dec!(10.00));
    assert_eq!((v1.amount, v2.amount), (dec!(8.99), dec!(1.01)));
    assert_eq!((v1.subtotal, v1.tax), (dec!(8.18), dec!(0.81)));
    assert_eq!((v1.fee_reversed, v1.net_reversed), (dec!(0.82), dec!(7.36)));
    assert_eq!((v2.subtotal, v2.tax), (dec!(0.92), dec!(0.09)));
    assert_eq!((v2.fee_reversed, v2.net_reversed), (dec!(0.09), dec!(0.83)));
    for p in &parts {
        assert_eq!(p.amount, p.subtotal + p.tax);
        assert_eq!(p.subtotal, p.fee_reversed + p.net_reversed);
        let lines: Decimal = p.lines.iter().map(|l| l.subtotal + l.tax).sum();
        assert_eq!(lines, p.amount);
    }
}

#[test]
fn partial_refunds_until_nothing_is_left_reverse_the_whole_fee_and_net() {
    let mut given = paid();
    for (i, amount) in [dec!(33.33), dec!(0.01), dec!(50.00), dec!(79.82)]
        .into_iter()
        .enumerate()
    {
        given = refunded(given, refund_as(900 + i as u128, Some(amount), None, None));
    }
    let mut order = Order::default();
    for e in given {
        order.apply(e);
    }
    assert_eq!(order.refundable(), dec!(0.00));
    for (vendor, fee, net) in [
        (V1, dec!(13.33), dec!(120.00)),
        (V2, dec!(1.50), dec!(13.50)),
    ] {
        let left = order.part_left(u(vendor));
        assert_eq!(
            (left.subtotal, left.tax, left.fee, left.net),
            (dec!(0), dec!(0), dec!(0), dec!(0)),
            "{fee} {net}"
        );
    }
}

#[test]
fn a_refund_above_captured_less_refunded_is_a_conflict() {
    let given = refunded(paid(), refund(Some(dec!(100.00)), None));
    let message = invalid_state(decide(given, refund_as(901, Some(dec!(63.17)), None, None)));
    assert!(message.contains("63.16"), "{message}");
}

#[test]
fn a_refund_above_what_the_lines_have_left_is_a_conflict() {
    let message = invalid_state(decide(
        paid(),
        refund(Some(dec!(16.51)), Some(vec![LINE_C])),
    ));
    assert!(message.contains("16.50"), "{message}");
}

#[test]
fn refunding_lines_already_refunded_is_a_conflict() {
    let given = refunded(paid(), refund(None, Some(vec![LINE_C])));
    invalid_state(decide(
        given,
        refund_as(901, None, Some(vec![LINE_C]), None),
    ));
}

#[test]
fn an_unpaid_order_cannot_be_refunded() {
    invalid_state(decide(vec![placed()], refund(Some(dec!(1.00)), None)));
}

#[test]
fn a_refund_needs_a_reason_a_positive_amount_and_lines_of_the_order() {
    let bad = C::Refund(RefundRequest {
        refund_id: u(900),
        amount: Some(dec!(0)),
        lines: Some(vec![u(A), u(999), u(A)]),
        vendor_id: None,
        reason: "  ".into(),
        provider_refund_id: None,
        at: t(2),
    });
    assert_eq!(
        fields(decide(paid(), bad)),
        vec!["reason", "amount", "lines[1]", "lines[2]"]
    );
}

#[test]
fn a_vendor_refunds_only_its_own_lines() {
    assert_eq!(
        fields(decide(
            paid(),
            refund_as(900, None, Some(vec![LINE_C]), Some(V1))
        )),
        vec!["lines[0]"]
    );
    // By amount, only over its own lines.
    let (_, parts) = recorded(paid(), refund_as(900, Some(dec!(5.00)), None, Some(V2)));
    assert_eq!(parts.len(), 1);
    assert_eq!(part(&parts, V2).amount, dec!(5.00));
}

#[test]
fn a_refund_is_recorded_once_per_refund_id() {
    let given = refunded(paid(), refund(Some(dec!(5.00)), None));
    F::with(())
        .given(given)
        .when(refund(Some(dec!(5.00)), None))
        .then_expect_events(vec![]);
}

#[test]
fn a_refund_of_a_fulfilled_part_takes_its_net_from_the_available_balance() {
    let given = with(
        paid(),
        vec![
            E::PartShipped {
                vendor_id: u(V2),
                at: t(1),
            },
            E::PartDelivered {
                vendor_id: u(V2),
                at: t(1),
            },
            E::VendorPartFulfilled {
                vendor_id: u(V2),
                net: dec!(13.50),
            },
        ],
    );
    let (_, parts) = recorded(given, refund(None, Some(vec![LINE_C])));
    let p = part(&parts, V2);
    assert_eq!(
        (p.from_pending, p.from_available),
        (dec!(0.00), dec!(13.50))
    );
}

#[test]
fn a_part_fulfilled_after_a_refund_makes_available_only_what_is_left() {
    let given = with(
        refunded(paid(), refund(Some(dec!(5.00)), Some(vec![LINE_C]))),
        vec![E::PartShipped {
            vendor_id: u(V2),
            at: t(1),
        }],
    );
    let events = decide(
        given,
        C::DeliverPart {
            vendor_id: u(V2),
            at: t(3),
        },
    )
    .expect("delivered");
    // 5.00 of line C: tax round(5.00 × 1.50 ÷ 16.50) = 0.45, goods 4.55,
    // fee round(4.55 × 1.50 ÷ 15.00) = 0.46 (0.455), net 4.09.
    assert!(
        events.contains(&E::VendorPartFulfilled {
            vendor_id: u(V2),
            net: dec!(9.41)
        }),
        "{events:?}"
    );
}

#[test]
fn an_order_with_refunds_is_cancelled_for_what_is_left() {
    // No cancellation policy: everything back, 5.00 of it already.
    let given = refunded(paid(), refund(Some(dec!(5.00)), None));
    let events = decide(
        given,
        C::Cancel {
            reason: None,
            at: t(3),
        },
    )
    .expect("cancelled");
    assert!(
        matches!(
            events.as_slice(),
            [E::OrderCancelled { .. }, E::RefundIssued { amount, .. }] if *amount == dec!(158.16)
        ),
        "{events:?}"
    );
}

// ---- Refunds made at the provider

fn provider_refund(id: &str, matches: Option<u128>, amount: Decimal) -> C {
    C::RecordProviderRefund {
        provider_refund_id: id.into(),
        matches: matches.map(u),
        new_refund_id: u(950),
        amount,
        at: t(4),
    }
}

#[test]
fn a_provider_refund_of_ours_is_matched_not_recorded_again() {
    let given = refunded(paid(), refund(Some(dec!(5.00)), None));
    F::with(())
        .given(given)
        .when(provider_refund("re_1", Some(900), dec!(5.00)))
        .then_expect_events(vec![E::ProviderRefundMatched {
            refund_id: u(900),
            provider_refund_id: "re_1".into(),
        }]);
}

#[test]
fn a_provider_refund_unknown_to_us_is_recorded_as_a_new_refund_once() {
    let (amount, _) = recorded(paid(), provider_refund("re_2", None, dec!(7.00)));
    assert_eq!(amount, dec!(7.00));
    let given = refunded(paid(), provider_refund("re_2", None, dec!(7.00)));
    F::with(())
        .given(given)
        .when(provider_refund("re_2", None, dec!(7.00)))
        .then_expect_events(vec![]);
}

// ---- Unapplied payments

fn pay(id: &str, minor: i64) -> C {
    C::RecordPayment {
        payment_id: id.into(),
        intent_id: "pi_1".into(),
        amount_minor: minor,
        currency: "usd".into(),
        outcome: PaymentOutcome::Succeeded,
        received_at: t(0),
    }
}
fn unapplied(id: &str, amount: Decimal) -> E {
    E::PaymentUnapplied {
        payment_id: id.into(),
        intent_id: "pi_1".into(),
        amount,
    }
}

#[test]
fn a_payment_of_another_amount_is_unapplied_cash() {
    F::with(())
        .given(vec![placed()])
        .when(pay("evt_1", 10000))
        .then_expect_events(vec![unapplied("evt_1", dec!(100.00))]);
}

#[test]
fn a_second_payment_completing_the_total_applies_the_first_and_confirms() {
    F::with(())
        .given(vec![placed(), unapplied("evt_1", dec!(100.00))])
        .when(pay("evt_2", 6316))
        .then_expect_events(vec![
            E::PaymentCaptured {
                payment_id: "evt_2".into(),
                intent_id: "pi_1".into(),
                amount: dec!(63.16),
            },
            E::UnappliedPaymentApplied {
                payment_id: "evt_1".into(),
                amount: dec!(100.00),
            },
            E::OrderConfirmed { confirmed_at: t(0) },
        ]);
}

#[test]
fn an_admin_applies_unapplied_cash_and_the_order_is_confirmed_once_nothing_is_due() {
    F::with(())
        .given(vec![placed(), unapplied("evt_1", dec!(163.16))])
        .when(C::ApplyPayment {
            payment_id: "evt_1".into(),
            at: t(1),
        })
        .then_expect_events(vec![
            E::UnappliedPaymentApplied {
                payment_id: "evt_1".into(),
                amount: dec!(163.16),
            },
            E::OrderConfirmed { confirmed_at: t(1) },
        ]);
    F::with(())
        .given(vec![placed(), unapplied("evt_1", dec!(100.00))])
        .when(C::ApplyPayment {
            payment_id: "evt_1".into(),
            at: t(1),
        })
        .then_expect_events(vec![E::UnappliedPaymentApplied {
            payment_id: "evt_1".into(),
            amount: dec!(100.00),
        }]);
}

#[test]
fn after_a_partial_apply_the_rest_due_confirms() {
    F::with(())
        .given(vec![
            placed(),
            unapplied("evt_1", dec!(100.00)),
            E::UnappliedPaymentApplied {
                payment_id: "evt_1".into(),
                amount: dec!(100.00),
            },
        ])
        .when(pay("evt_2", 6316))
        .then_expect_events(vec![
            E::PaymentCaptured {
                payment_id: "evt_2".into(),
                intent_id: "pi_1".into(),
                amount: dec!(63.16),
            },
            E::OrderConfirmed { confirmed_at: t(0) },
        ]);
}

#[test]
fn applying_more_than_is_due_is_a_conflict() {
    invalid_state(decide(
        vec![placed(), unapplied("evt_1", dec!(200.00))],
        C::ApplyPayment {
            payment_id: "evt_1".into(),
            at: t(1),
        },
    ));
    let paid_then_extra = with(paid(), vec![unapplied("evt_9", dec!(1.00))]);
    invalid_state(decide(
        paid_then_extra,
        C::ApplyPayment {
            payment_id: "evt_9".into(),
            at: t(1),
        },
    ));
}

#[test]
fn unapplied_cash_is_refunded_once() {
    let given = vec![placed(), unapplied("evt_1", dec!(100.00))];
    F::with(())
        .given(given.clone())
        .when(C::RefundPayment {
            payment_id: "evt_1".into(),
            at: t(1),
        })
        .then_expect_events(vec![E::UnappliedPaymentRefunded {
            payment_id: "evt_1".into(),
            amount: dec!(100.00),
        }]);
    let settled = with(
        given,
        vec![E::UnappliedPaymentRefunded {
            payment_id: "evt_1".into(),
            amount: dec!(100.00),
        }],
    );
    invalid_state(decide(
        settled,
        C::RefundPayment {
            payment_id: "evt_1".into(),
            at: t(2),
        },
    ));
}

#[test]
fn an_unknown_unapplied_payment_is_not_found() {
    let r = decide(
        vec![placed()],
        C::ApplyPayment {
            payment_id: "evt_x".into(),
            at: t(1),
        },
    );
    assert!(matches!(r, Err(DomainError::NotFound { .. })), "{r:?}");
}

#[test]
fn a_payment_in_another_currency_is_still_a_mismatch() {
    let r = decide(
        vec![placed()],
        C::RecordPayment {
            payment_id: "evt_1".into(),
            intent_id: "pi_1".into(),
            amount_minor: 16316,
            currency: "eur".into(),
            outcome: PaymentOutcome::Succeeded,
            received_at: t(0),
        },
    )
    .expect("recorded");
    assert!(
        matches!(r.as_slice(), [E::PaymentAmountMismatch { .. }]),
        "{r:?}"
    );
}

// ---- Disputes

fn open(amount: Decimal) -> C {
    C::OpenDispute {
        dispute_id: "dp_1".into(),
        dispute_ref: u(960),
        amount,
        at: t(5),
    }
}
fn close(won: bool) -> C {
    C::CloseDispute {
        dispute_id: "dp_1".into(),
        won,
        at: t(6),
    }
}

#[test]
fn a_dispute_freezes_each_vendors_share_and_holds_its_amount_out_of_refunds() {
    let events = decide(paid(), open(dec!(100.00))).expect("opened");
    let [E::DisputeOpened { amount, parts, .. }] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(*amount, dec!(100.00));
    assert_eq!(
        parts.iter().map(|p| p.amount).sum::<Decimal>(),
        dec!(100.00)
    );
    let given = with(paid(), events);
    invalid_state(decide(given, refund(Some(dec!(63.17)), None)));
}

#[test]
fn a_dispute_is_recorded_once() {
    let given = refunded(paid(), open(dec!(10.00)));
    F::with(())
        .given(given)
        .when(open(dec!(10.00)))
        .then_expect_events(vec![]);
}

#[test]
fn a_dispute_above_what_the_order_has_left_is_a_conflict() {
    invalid_state(decide(paid(), open(dec!(163.17))));
    invalid_state(decide(vec![placed()], open(dec!(1.00))));
}

#[test]
fn a_won_dispute_releases_the_shares_to_pending_or_available() {
    let given = with(
        refunded(paid(), open(dec!(16.50))),
        vec![
            E::PartShipped {
                vendor_id: u(V2),
                at: t(5),
            },
            E::PartDelivered {
                vendor_id: u(V2),
                at: t(5),
            },
            E::VendorPartFulfilled {
                vendor_id: u(V2),
                net: dec!(11.97),
            },
        ],
    );
    let events = decide(given.clone(), close(true)).expect("closed");
    let [E::DisputeClosed {
        won: true,
        releases,
        ..
    }] = events.as_slice()
    else {
        panic!("{events:?}")
    };
    for r in releases {
        if r.vendor_id == u(V2) {
            assert!(
                r.to_available > Decimal::ZERO && r.to_pending.is_zero(),
                "{r:?}"
            );
        } else {
            assert!(
                r.to_pending > Decimal::ZERO && r.to_available.is_zero(),
                "{r:?}"
            );
        }
    }
    // Closed: a second close records nothing.
    F::with(())
        .given(with(given, events))
        .when(close(true))
        .then_expect_events(vec![]);
}

#[test]
fn a_lost_dispute_is_written_off_and_never_refundable_again() {
    let given = refunded(refunded(paid(), open(dec!(100.00))), close(false));
    let mut order = Order::default();
    for e in given.clone() {
        order.apply(e);
    }
    assert_eq!(order.refundable(), dec!(63.16));
    invalid_state(decide(given, refund(Some(dec!(63.17)), None)));
}

#[test]
fn closing_an_unknown_dispute_is_not_found() {
    let r = decide(paid(), close(true));
    assert!(matches!(r, Err(DomainError::NotFound { .. })), "{r:?}");
}

#[test]
fn a_refund_reason_is_trimmed_and_at_most_500_characters_in_clear() {
    let with_reason = |reason: String| {
        C::Refund(RefundRequest {
            reason: reason.into(),
            ..match refund(Some(dec!(1.00)), None) {
                C::Refund(r) => r,
                _ => unreachable!(),
            }
        })
    };
    assert_eq!(
        fields(decide(paid(), with_reason("x".repeat(501)))),
        vec!["reason"]
    );
    match decide(paid(), with_reason(format!("  {}  ", "x".repeat(500))))
        .expect("recorded")
        .as_slice()
    {
        [E::RefundRecorded { reason, .. }] => {
            assert_eq!(reason.clear_text(), Some("x".repeat(500).as_str()))
        }
        other => panic!("expected one RefundRecorded, got {other:?}"),
    }
}

#[test]
fn a_sealed_refund_reason_is_recorded_as_the_edge_sealed_it() {
    // The edge checked the clear text before sealing; a sealed text is
    // longer than the clear one and is never looked into.
    let sealed = format!("pii:v1:{}:{}", "ab".repeat(16), "A".repeat(800));
    let command = C::Refund(RefundRequest {
        reason: domain::PersonalText::from_stored(sealed.clone()),
        ..match refund(Some(dec!(1.00)), None) {
            C::Refund(r) => r,
            _ => unreachable!(),
        }
    });
    match decide(paid(), command).expect("recorded").as_slice() {
        [E::RefundRecorded { reason, .. }] => {
            assert!(reason.is_sealed());
            assert_eq!(reason.as_stored(), sealed);
        }
        other => panic!("expected one RefundRecorded, got {other:?}"),
    }
}
