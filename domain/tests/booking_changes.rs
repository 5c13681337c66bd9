//! Extensions, reschedules and cancellation policies (API.md "Rentals",
//! issue 13 items 4 and 6): priced and recorded by the Order, the new
//! period held and moved by the Inventory; one test per rule.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use domain::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use uuid::Uuid;

fn t(h: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 7, 10, 0, 0).unwrap() + Duration::hours(h)
}
fn u(n: u128) -> Uuid {
    Uuid::from_u128(n)
}
const LINE: u128 = 21;
const HOLD: u128 = 31;
const VENDOR: u128 = 11;
const ADJ: u128 = 51;

mod order {
    use super::*;
    type F = TestFramework<Order>;
    use OrderCommand as C;
    use OrderEvent as E;

    fn tier(notice: &str, refund_percent: u8) -> CancellationTier {
        CancellationTier {
            notice: IsoDuration::parse(notice).unwrap(),
            refund_percent,
        }
    }

    /// 2 units by the hour, t(24)..t(48) at 10.00, tax 10 %, fee 10 %,
    /// deposit 30.00 each; paid. Policy: 2 days' notice 100 %, 1 day 50 %.
    fn paid() -> Vec<E> {
        let lines = vec![LineInput {
            line_id: u(LINE),
            hold_id: u(HOLD),
            listing_id: u(41),
            vendor_id: u(VENDOR),
            terms: LineTerms::Rental {
                period: Period::new(t(24), t(48)).unwrap(),
                pricing_unit: PricingUnit::Hour,
                price_per_unit: dec!(10.00),
                deposit_per_unit: dec!(30.00),
                time_zone: Tz::UTC,
                late_fee_per_unit: Decimal::ZERO,
                cancellation_policy: vec![tier("P2D", 100), tier("P1D", 50)],
            },
            quantity: 2,
        }];
        let rates = Rates {
            tax_rate: dec!(0.10),
            platform_fee_rate: dec!(0.10),
        };
        let priced = price_order(&lines, rates);
        let total = priced.total;
        vec![
            E::OrderPlaced {
                order_id: u(1),
                customer_id: "carol".into(),
                currency: "USD".into(),
                priced,
                rates,
                hold_expires_at: t(-1),
                placed_at: t(-2),
            },
            E::PaymentCaptured {
                payment_id: "evt_1".into(),
                intent_id: "pi_1".into(),
                amount: total,
            },
            E::OrderConfirmed {
                confirmed_at: t(-1),
            },
        ]
    }

    fn request(kind: AdjustmentKind, a: i64, b: i64, price: Decimal, now: i64) -> C {
        C::RequestAdjustment {
            request: AdjustmentRequest {
                adjustment_id: u(ADJ),
                line_id: u(LINE),
                kind,
                period: Period::new(t(a), t(b)).unwrap(),
                price_per_unit: price,
                hold_expires_at: t(now) + Duration::minutes(15),
                now: t(now),
            },
        }
    }

    fn decided(given: Vec<E>, command: C) -> Result<Vec<E>, DomainError> {
        F::with(()).given(given).when(command).inspect_result()
    }

    fn adjustment(events: &[E]) -> Adjustment {
        events
            .iter()
            .find_map(|e| match e {
                E::AdjustmentRequested { adjustment, .. } => Some(adjustment.clone()),
                _ => None,
            })
            .expect("AdjustmentRequested")
    }

    fn order_of(events: Vec<E>) -> Order {
        let mut order = Order::default();
        for e in events {
            order.apply(e);
        }
        order
    }

    #[test]
    fn an_extension_costs_the_current_price_of_the_added_units_and_awaits_payment() {
        // 2 hours more at today's 12.00 × 2 units = 48.00, tax 4.80.
        let events = decided(
            paid(),
            request(AdjustmentKind::Extension, 24, 50, dec!(12.00), 0),
        )
        .expect("requested");
        assert_eq!(events.len(), 1, "awaiting payment only: {events:?}");
        let a = adjustment(&events);
        assert_eq!(
            (a.subtotal, a.tax, a.platform_fee, a.net, a.amount_due),
            (
                dec!(48.00),
                dec!(4.80),
                dec!(4.80),
                dec!(43.20),
                dec!(52.80)
            )
        );
        assert_eq!((a.billable_units, a.unit_price), (26, dec!(10.00)));
        assert_eq!(a.hold_expires_at, t(0) + Duration::minutes(15));
    }

    #[test]
    fn a_payment_of_the_amount_due_pays_the_adjustment_and_confirming_moves_the_line() {
        let mut given = paid();
        given.extend(
            decided(
                paid(),
                request(AdjustmentKind::Extension, 24, 50, dec!(12.00), 0),
            )
            .unwrap(),
        );
        let paid_events = decided(
            given.clone(),
            C::PayAdjustment {
                adjustment_id: u(ADJ),
                payment_id: "evt_2".into(),
                intent_id: "pi_2".into(),
                amount_minor: 5280,
                currency: "usd".into(),
                outcome: PaymentOutcome::Succeeded,
            },
        )
        .expect("paid");
        assert!(
            matches!(paid_events[0], E::PaymentCaptured { amount, .. } if amount == dec!(52.80))
        );
        assert!(matches!(paid_events[1], E::AdjustmentPaid { .. }));
        given.extend(paid_events);
        let confirmed = decided(
            given.clone(),
            C::ConfirmAdjustment {
                adjustment_id: u(ADJ),
                at: t(0),
            },
        )
        .expect("confirmed");
        given.extend(confirmed);
        let order = order_of(given);
        let line = order.line(u(LINE)).unwrap();
        assert_eq!(
            (line.end, line.subtotal, line.tax),
            (Some(t(50)), dec!(528.00), dec!(52.80))
        );
        let priced = order.priced().unwrap();
        let v = &priced.vendors[0];
        assert_eq!(
            v.platform_fee + v.net,
            v.subtotal,
            "fees + nets = subtotals"
        );
        assert_eq!(priced.total, priced.subtotal + priced.tax + priced.deposit);
        assert_eq!(
            order.net_paid(),
            priced.total,
            "what was paid is the new total"
        );
    }

    #[test]
    fn a_payment_of_another_amount_does_not_pay_the_adjustment() {
        let mut given = paid();
        given.extend(
            decided(
                paid(),
                request(AdjustmentKind::Extension, 24, 50, dec!(12.00), 0),
            )
            .unwrap(),
        );
        let events = decided(
            given,
            C::PayAdjustment {
                adjustment_id: u(ADJ),
                payment_id: "evt_2".into(),
                intent_id: "pi_2".into(),
                amount_minor: 100,
                currency: "usd".into(),
                outcome: PaymentOutcome::Succeeded,
            },
        )
        .unwrap();
        assert!(matches!(events[..], [E::PaymentAmountMismatch { .. }]));
    }

    #[test]
    fn an_unpaid_adjustment_lapses_only_after_its_expiry() {
        let mut given = paid();
        given.extend(
            decided(
                paid(),
                request(AdjustmentKind::Extension, 24, 50, dec!(12.00), 0),
            )
            .unwrap(),
        );
        let early = decided(
            given.clone(),
            C::LapseAdjustment {
                adjustment_id: u(ADJ),
                at: t(0),
            },
        );
        assert!(matches!(early, Err(DomainError::InvalidState(_))));
        let lapsed = decided(
            given.clone(),
            C::LapseAdjustment {
                adjustment_id: u(ADJ),
                at: t(1),
            },
        )
        .unwrap();
        assert!(matches!(lapsed[..], [E::AdjustmentLapsed { .. }]));
        given.extend(lapsed);
        let order = order_of(given);
        assert_eq!(
            order.line(u(LINE)).unwrap().end,
            Some(t(48)),
            "the old period stays"
        );
    }

    #[test]
    fn a_cheaper_reschedule_is_confirmed_at_once_and_refunded_by_the_policy() {
        // 24 h → 12 h at 10.00: 240.00 cheaper; 30 h before the start the
        // 1-day tier refunds 50 %: 120.00 and its tax 12.00.
        let events = decided(
            paid(),
            request(AdjustmentKind::Reschedule, 30, 42, dec!(10.00), -6),
        )
        .expect("rescheduled");
        let a = adjustment(&events);
        assert_eq!(
            (a.subtotal, a.tax, a.amount_due),
            (dec!(-120.00), dec!(-12.00), dec!(-132.00))
        );
        assert!(matches!(events[1], E::AdjustmentConfirmed { .. }));
        assert!(matches!(events[2], E::RefundIssued { amount, .. } if amount == dec!(132.00)));
    }

    #[test]
    fn a_dearer_reschedule_is_repriced_at_the_current_price() {
        let events = decided(
            paid(),
            request(AdjustmentKind::Reschedule, 30, 54, dec!(11.00), 0),
        )
        .expect("rescheduled");
        let a = adjustment(&events);
        // 24 h × 11.00 × 2 = 528.00 against 480.00.
        assert_eq!((a.subtotal, a.unit_price), (dec!(48.00), dec!(11.00)));
        assert_eq!(events.len(), 1);
    }

    #[test]
    fn an_extension_that_does_not_extend_is_refused_422() {
        let r = decided(
            paid(),
            request(AdjustmentKind::Extension, 24, 48, dec!(10.00), 0),
        );
        match r {
            Err(DomainError::Validation { errors }) => {
                assert_eq!(errors[0].code.as_deref(), Some("not_longer"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_reschedule_into_the_past_is_refused_422() {
        let r = decided(
            paid(),
            request(AdjustmentKind::Reschedule, 2, 10, dec!(10.00), 5),
        );
        match r {
            Err(DomainError::Validation { errors }) => {
                assert_eq!(errors[0].code.as_deref(), Some("in_past"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_picked_up_line_can_be_extended_but_not_rescheduled() {
        let mut given = paid();
        given.push(E::LinePickedUp {
            line_id: u(LINE),
            at: t(24),
        });
        let moved = decided(
            given.clone(),
            request(AdjustmentKind::Reschedule, 30, 54, dec!(10.00), 25),
        );
        assert!(matches!(moved, Err(DomainError::InvalidState(_))));
        assert!(decided(
            given,
            request(AdjustmentKind::Extension, 24, 50, dec!(10.00), 25)
        )
        .is_ok());
    }

    #[test]
    fn a_second_change_while_one_awaits_payment_is_refused() {
        let mut given = paid();
        given.extend(
            decided(
                paid(),
                request(AdjustmentKind::Extension, 24, 50, dec!(12.00), 0),
            )
            .unwrap(),
        );
        let C::RequestAdjustment { mut request } =
            request(AdjustmentKind::Extension, 24, 52, dec!(12.00), 0)
        else {
            unreachable!()
        };
        request.adjustment_id = u(ADJ + 1);
        let r = decided(given, C::RequestAdjustment { request });
        assert!(matches!(r, Err(DomainError::InvalidState(_))));
    }

    #[test]
    fn an_unpaid_order_cannot_be_changed() {
        let given = paid()[..1].to_vec();
        let r = decided(
            given,
            request(AdjustmentKind::Extension, 24, 50, dec!(10.00), 0),
        );
        assert!(matches!(r, Err(DomainError::InvalidState(_))));
    }

    #[test]
    fn a_cancellation_after_payment_refunds_each_line_by_its_policy_tier() {
        // 30 h before the start: 50 % of 480.00 + 48.00 tax back, the
        // deposit in full; the vendor keeps 240.00 less the 10 % fee.
        let events = decided(
            paid(),
            C::Cancel {
                reason: None,
                at: t(-6),
            },
        )
        .expect("cancelled");
        let E::CancellationCharged { lines, vendors } = &events[1] else {
            panic!("{events:?}")
        };
        assert_eq!(lines[0].refund_percent, 50);
        assert_eq!(lines[0].refund, dec!(324.00));
        assert_eq!(
            (lines[0].kept_subtotal, lines[0].kept_tax),
            (dec!(240.00), dec!(24.00))
        );
        assert_eq!(
            (vendors[0].subtotal, vendors[0].platform_fee, vendors[0].net),
            (dec!(240.00), dec!(24.00), dec!(216.00))
        );
        // Paid 588.00 (480 + 48 tax + 60 deposit): 264.00 kept.
        assert!(matches!(events[2], E::RefundIssued { amount, .. } if amount == dec!(324.00)));
    }

    #[test]
    fn a_cancellation_with_enough_notice_refunds_in_full() {
        let events = decided(
            paid(),
            C::Cancel {
                reason: None,
                at: t(-30),
            },
        )
        .unwrap();
        assert!(
            matches!(events[..], [E::OrderCancelled { .. }, E::RefundIssued { amount, .. }] if amount == dec!(588.00))
        );
    }

    fn cancelled_at(given: Vec<E>, at: i64) -> Order {
        let cancel = C::Cancel {
            reason: None,
            at: t(at),
        };
        let events = decided(given.clone(), cancel).expect("cancelled");
        order_of(given.into_iter().chain(events).collect())
    }

    #[test]
    fn a_cancelled_confirmed_order_credits_what_its_policy_gave_back() {
        // 50 % tier: 240.00 + 24.00 tax given back; the fee on it (24.00)
        // and the vendor's net (216.00) reversed; the deposit is not credited.
        let credits = cancelled_at(paid(), -6).cancellation_credits();
        assert_eq!(credits.len(), 1, "{credits:?}");
        let c = &credits[0];
        assert_eq!(c.vendor_id, u(VENDOR));
        assert_eq!(
            (c.amount, c.subtotal, c.tax),
            (dec!(264.00), dec!(240.00), dec!(24.00))
        );
        assert_eq!(
            (c.fee_reversed, c.net_reversed),
            (dec!(24.00), dec!(216.00))
        );
        assert_eq!((c.from_pending, c.from_available), (dec!(216.00), dec!(0)));
        assert_eq!(c.lines.len(), 1);
        assert_eq!(
            (c.lines[0].subtotal, c.lines[0].tax),
            (dec!(240.00), dec!(24.00))
        );
        // With full notice: the whole invoice.
        let full = cancelled_at(paid(), -30).cancellation_credits();
        assert_eq!(
            (full[0].amount, full[0].fee_reversed, full[0].net_reversed),
            (dec!(528.00), dec!(48.00), dec!(432.00))
        );
    }

    /// `paid()` with a refund of `amount` recorded (spread over the line).
    fn partly_refunded(amount: Decimal) -> Vec<E> {
        let given = paid();
        let refund = C::Refund(RefundRequest {
            refund_id: u(900),
            amount: Some(amount),
            lines: None,
            vendor_id: None,
            reason: "goodwill".into(),
            provider_refund_id: None,
            at: t(-8),
        });
        let events = decided(given.clone(), refund).expect("refunded");
        given.into_iter().chain(events).collect()
    }

    fn refund_issued(events: &[E]) -> Decimal {
        events
            .iter()
            .filter_map(|e| match e {
                E::RefundIssued { amount, .. } => Some(*amount),
                _ => None,
            })
            .sum()
    }

    #[test]
    fn a_cancellation_after_a_partial_refund_counts_it_towards_the_policy_refund() {
        // The 50 % tier gives back 324.00 in all (as without the refund):
        // 110.00 already, 214.00 now; the vendor keeps 240.00 + 24.00.
        let given = partly_refunded(dec!(110.00));
        let cancel = C::Cancel {
            reason: None,
            at: t(-6),
        };
        let events = decided(given.clone(), cancel).expect("cancelled");
        assert_eq!(refund_issued(&events), dec!(214.00), "{events:?}");
        let E::CancellationCharged { lines, vendors } = &events[1] else {
            panic!("{events:?}")
        };
        assert_eq!(
            (lines[0].kept_subtotal, lines[0].kept_tax),
            (dec!(240.00), dec!(24.00))
        );
        assert_eq!(
            (vendors[0].platform_fee, vendors[0].net),
            (dec!(24.00), dec!(216.00))
        );
        // Credited now: what the refund left (418.00) less what was kept.
        let credits = order_of(given.into_iter().chain(events).collect()).cancellation_credits();
        assert_eq!(credits[0].amount, dec!(154.00), "{credits:?}");
        assert_eq!(
            credits[0].fee_reversed + credits[0].net_reversed,
            credits[0].subtotal
        );
    }

    #[test]
    fn a_refund_beyond_the_policy_leaves_the_vendor_what_is_left_and_the_deposit_to_refund() {
        // 400.00 refunded already, more than the tier gives back: the
        // vendor keeps the 128.00 left, the cancellation refunds the
        // deposit only, and nothing more is credited.
        let given = partly_refunded(dec!(400.00));
        let cancel = C::Cancel {
            reason: None,
            at: t(-6),
        };
        let events = decided(given.clone(), cancel).expect("cancelled");
        assert_eq!(refund_issued(&events), dec!(60.00), "{events:?}");
        let E::CancellationCharged { lines, vendors } = &events[1] else {
            panic!("{events:?}")
        };
        assert_eq!(lines[0].kept_subtotal + lines[0].kept_tax, dec!(128.00));
        assert_eq!(
            vendors[0].platform_fee + vendors[0].net,
            vendors[0].subtotal
        );
        let order = order_of(given.into_iter().chain(events).collect());
        assert!(order.cancellation_credits().is_empty());
    }

    #[test]
    fn a_paid_order_with_a_dispute_cannot_be_cancelled() {
        let mut given = paid();
        given.push(E::DisputeOpened {
            dispute_id: "dp_1".into(),
            dispute_ref: u(700),
            amount: dec!(50.00),
            parts: vec![],
            at: t(-8),
        });
        let cancel = C::Cancel {
            reason: None,
            at: t(-30),
        };
        assert!(matches!(
            decided(given, cancel),
            Err(DomainError::InvalidState(_))
        ));
    }

    #[test]
    fn nothing_is_credited_for_an_order_never_confirmed_or_kept_whole() {
        // Never confirmed (so never invoiced): cancelled before payment.
        let placed = paid()[..1].to_vec();
        assert!(cancelled_at(placed, -6).cancellation_credits().is_empty());
        // Confirmed, not cancelled.
        assert!(order_of(paid()).cancellation_credits().is_empty());
        // A policy that keeps everything inside a day: nothing given back.
        let mut given = paid();
        if let E::OrderPlaced { priced, .. } = &mut given[0] {
            for line in &mut priced.lines {
                line.cancellation_policy = vec![tier("P2D", 100)];
            }
        }
        assert!(cancelled_at(given, -6).cancellation_credits().is_empty());
    }
}

mod inventory {
    use super::*;
    type F = TestFramework<Inventory>;
    use InventoryCommand as C;
    use InventoryEvent as E;

    fn p(a: i64, b: i64) -> Period {
        Period::new(t(a), t(b)).unwrap()
    }

    /// `units` units; hold n (n = 1..) confirmed for `periods[n-1]`, 1 unit each.
    fn booked(units: u32, periods: &[(i64, i64)]) -> Vec<E> {
        let mut events = vec![E::InventoryInitialized {
            listing_id: u(41),
            capacity: Capacity::Rental { units },
        }];
        for (i, (a, b)) in periods.iter().enumerate() {
            let hold_id = u(HOLD + i as u128);
            events.push(E::HoldPlaced {
                hold_id,
                order_id: u(100 + i as u128),
                request: HoldRequest::Rental {
                    period: p(*a, *b),
                    quantity: 1,
                },
                expires_at: t(-1),
                buffer: None,
            });
            events.push(E::HoldConfirmed { hold_id });
        }
        events
    }

    fn change(n: u128, hold: u128, a: i64, b: i64, extension: bool, now: i64) -> C {
        C::PlaceChange {
            hold_id: u(hold),
            change_id: u(ADJ + n),
            period: p(a, b),
            expires_at: t(now + 1),
            extension,
            now: t(now),
        }
    }

    fn decided(given: Vec<E>, command: C) -> Result<Vec<E>, DomainError> {
        F::with(()).given(given).when(command).inspect_result()
    }

    fn free(events: Vec<E>, a: i64, b: i64, now: i64) -> u32 {
        let mut inv = Inventory::default();
        for e in events {
            inv.apply(e);
        }
        inv.free_units(&p(a, b), t(now))
    }

    #[test]
    fn an_extension_into_free_units_is_held_then_applied() {
        let given = booked(1, &[(10, 20)]);
        let held = decided(given.clone(), change(0, HOLD, 10, 30, true, 0)).unwrap();
        assert!(matches!(held[..], [E::ChangeHeld { .. }]));
        let mut after = given;
        after.extend(held);
        let applied = decided(
            after.clone(),
            C::ApplyChange {
                hold_id: u(HOLD),
                change_id: u(ADJ),
                now: t(0),
            },
        )
        .unwrap();
        assert!(matches!(applied[..], [E::ChangeApplied { period, .. }] if period == p(10, 30)));
        after.extend(applied);
        assert_eq!(free(after, 20, 30, 0), 0, "the extension's hours are taken");
    }

    #[test]
    fn an_extension_into_units_taken_by_another_booking_is_unavailable() {
        let given = booked(1, &[(10, 20), (25, 30)]);
        match decided(given, change(0, HOLD, 10, 26, true, 0)) {
            Err(DomainError::Unavailable { conflicts }) => {
                assert_eq!((conflicts[0].requested, conflicts[0].free), (1, 0));
                assert_eq!(
                    (conflicts[0].start, conflicts[0].end),
                    (Some(t(10)), Some(t(26)))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_pending_extension_holds_its_units_until_it_lapses() {
        let mut given = booked(2, &[(10, 20), (10, 20)]);
        given.extend(decided(given.clone(), change(0, HOLD, 10, 30, true, 0)).unwrap());
        assert_eq!(
            free(given.clone(), 20, 30, 0),
            1,
            "one unit held by the pending change"
        );
        // Only one more extension fits into 20..30.
        let second = decided(given.clone(), change(1, HOLD + 1, 10, 30, true, 0));
        assert!(second.is_ok());
        let mut both = given.clone();
        both.extend(second.unwrap());
        assert_eq!(free(both, 20, 30, 0), 0);
        // Past its expiry (t(1)) the change no longer counts.
        assert_eq!(free(given.clone(), 20, 30, 1), 2);
        given.push(E::ChangeLapsed {
            hold_id: u(HOLD),
            change_id: u(ADJ),
        });
        assert_eq!(free(given, 20, 30, 0), 2);
    }

    #[test]
    fn a_reschedule_overlapping_its_own_period_needs_only_the_new_instants() {
        let given = booked(1, &[(10, 20)]);
        let held = decided(given.clone(), change(0, HOLD, 12, 22, false, 0)).unwrap();
        let mut after = given;
        after.extend(held);
        after.extend(
            decided(
                after.clone(),
                C::ApplyChange {
                    hold_id: u(HOLD),
                    change_id: u(ADJ),
                    now: t(0),
                },
            )
            .unwrap(),
        );
        assert_eq!(
            free(after.clone(), 10, 12, 0),
            1,
            "the old hours are free again"
        );
        assert_eq!(free(after, 12, 22, 0), 0);
    }

    #[test]
    fn a_lapsed_change_is_applied_only_while_its_units_are_still_free() {
        let mut given = booked(1, &[(10, 20)]);
        given.extend(decided(given.clone(), change(0, HOLD, 10, 30, true, 0)).unwrap());
        given.push(E::ChangeLapsed {
            hold_id: u(HOLD),
            change_id: u(ADJ),
        });
        let apply = C::ApplyChange {
            hold_id: u(HOLD),
            change_id: u(ADJ),
            now: t(2),
        };
        assert!(decided(given.clone(), apply.clone()).is_ok(), "still free");
        given.push(E::HoldPlaced {
            hold_id: u(99),
            order_id: u(199),
            request: HoldRequest::Rental {
                period: p(25, 28),
                quantity: 1,
            },
            expires_at: t(10),
            buffer: None,
        });
        assert!(matches!(
            decided(given, apply),
            Err(DomainError::Unavailable { .. })
        ));
    }

    #[test]
    fn an_extension_keeps_its_start_but_the_end_meets_the_schedule() {
        let mut given = booked(1, &[(10, 20)]);
        let schedule = Schedule {
            slot_step: Some(IsoDuration::parse("PT1H").unwrap()),
            ..Schedule::always_open(Tz::UTC)
        };
        given.push(E::ScheduleSet {
            schedule,
            pricing_unit: PricingUnit::Hour,
        });
        // The start lies in the past now; an extension does not ask again.
        assert!(decided(given.clone(), change(0, HOLD, 10, 30, true, 15)).is_ok());
        let off_grid = C::PlaceChange {
            hold_id: u(HOLD),
            change_id: u(ADJ),
            period: Period::new(t(10), t(30) + Duration::minutes(7)).unwrap(),
            expires_at: t(16),
            extension: true,
            now: t(15),
        };
        match decided(given, off_grid) {
            Err(DomainError::Validation { errors }) => {
                assert_eq!(errors[0].code.as_deref(), Some("off_grid"));
                assert_eq!(errors[0].field, "end");
            }
            other => panic!("{other:?}"),
        }
    }
}
