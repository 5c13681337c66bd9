//! Pickup before the booked start (API.md "Rentals", issue 13 item 2): the
//! Order refuses it unless the line was extended back to the pickup time,
//! and the Inventory holds that earlier time only if it is free. One test
//! per rule, given/when/then.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
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
const ADJ: u128 = 51;

mod order {
    use super::*;
    type F = TestFramework<Order>;
    use OrderCommand as C;
    use OrderEvent as E;

    /// 2 units by the hour, t(24)..t(48) at 10.00, no tax, fee 10 %; paid.
    fn paid() -> Vec<E> {
        let lines = vec![LineInput {
            line_id: u(LINE),
            hold_id: u(HOLD),
            listing_id: u(41),
            vendor_id: u(11),
            terms: LineTerms::Rental {
                period: Period::new(t(24), t(48)).unwrap(),
                pricing_unit: PricingUnit::Hour,
                price_per_unit: dec!(10.00),
                deposit_per_unit: dec!(30.00),
                time_zone: Tz::UTC,
                late_fee_per_unit: Decimal::ZERO,
                cancellation_policy: vec![],
            },
            quantity: 2,
        }];
        let rates = Rates {
            tax_rate: Decimal::ZERO,
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

    /// The extension of the line back to `from` (the pickup), asked at `from`.
    fn extended_back_to(from: i64) -> Vec<E> {
        F::with(())
            .given(paid())
            .when(C::RequestAdjustment {
                request: AdjustmentRequest {
                    adjustment_id: u(ADJ),
                    line_id: u(LINE),
                    kind: AdjustmentKind::Extension,
                    period: Period::new(t(from), t(48)).unwrap(),
                    price_per_unit: dec!(10.00),
                    hold_expires_at: t(from) + Duration::minutes(15),
                    now: t(from),
                },
            })
            .inspect_result()
            .expect("the extension is recorded")
    }

    fn pick_up(at: i64) -> C {
        C::PickUpLine {
            line_id: u(LINE),
            at: t(at),
        }
    }

    #[test]
    fn a_pickup_before_the_booked_start_without_the_earlier_time_held_is_refused_409() {
        F::with(())
            .given(paid())
            .when(pick_up(20))
            .then_expect_error_message(
                "the line is booked from 2030-01-08T10:00:00+00:00; picking it up earlier needs that time held first",
            );
    }

    #[test]
    fn a_pickup_at_or_after_the_booked_start_needs_no_extension() {
        F::with(())
            .given(paid())
            .when(pick_up(24))
            .then_expect_events(vec![E::LinePickedUp {
                line_id: u(LINE),
                at: t(24),
            }]);
    }

    #[test]
    fn an_early_pickup_is_priced_as_an_extension_and_then_taken() {
        let extension = extended_back_to(20);
        // 4 hours earlier × 2 units × 10.00 = 80.00, awaiting payment.
        match &extension[..] {
            [E::AdjustmentRequested { adjustment, .. }] => {
                assert_eq!(adjustment.kind, AdjustmentKind::Extension);
                assert_eq!((adjustment.start, adjustment.end), (t(20), t(48)));
                assert_eq!(
                    (adjustment.subtotal, adjustment.amount_due),
                    (dec!(80.00), dec!(80.00))
                );
            }
            other => panic!("{other:?}"),
        }
        let mut given = paid();
        given.extend(extension);
        F::with(())
            .given(given)
            .when(pick_up(20))
            .then_expect_events(vec![E::LinePickedUp {
                line_id: u(LINE),
                at: t(20),
            }]);
    }

    #[test]
    fn an_extension_starting_after_the_pickup_does_not_cover_it() {
        let mut given = paid();
        given.extend(extended_back_to(22));
        let refused = F::with(()).given(given).when(pick_up(20)).inspect_result();
        assert!(
            matches!(refused, Err(DomainError::InvalidState(_))),
            "{refused:?}"
        );
    }

    #[test]
    fn a_lapsed_extension_no_longer_allows_an_early_pickup() {
        let mut given = paid();
        given.extend(extended_back_to(20));
        given.push(E::AdjustmentLapsed {
            adjustment_id: u(ADJ),
            at: t(21),
        });
        let refused = F::with(()).given(given).when(pick_up(21)).inspect_result();
        assert!(
            matches!(refused, Err(DomainError::InvalidState(_))),
            "{refused:?}"
        );
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

    /// One unit: our hold t(24)..t(48), and another customer's booking
    /// t(10)..t(`other_end`), both confirmed.
    fn booked(other_end: i64) -> Vec<E> {
        let mut events = vec![E::InventoryInitialized {
            listing_id: u(41),
            capacity: Capacity::Rental { units: 1 },
        }];
        for (hold, period) in [(HOLD, p(24, 48)), (HOLD + 1, p(10, other_end))] {
            events.push(E::HoldPlaced {
                hold_id: u(hold),
                order_id: u(100 + hold),
                request: HoldRequest::Rental {
                    period,
                    quantity: 1,
                },
                expires_at: t(-1),
                buffer: None,
            });
            events.push(E::HoldConfirmed { hold_id: u(hold) });
        }
        events
    }

    /// Our hold extended back to `from`, asked at `from`.
    fn back_to(from: i64) -> C {
        C::PlaceChange {
            hold_id: u(HOLD),
            change_id: u(ADJ),
            period: p(from, 48),
            expires_at: t(from) + Duration::minutes(15),
            extension: true,
            now: t(from),
        }
    }

    #[test]
    fn an_earlier_start_into_free_hours_is_held() {
        F::with(())
            .given(booked(18))
            .when(back_to(20))
            .then_expect_events(vec![E::ChangeHeld {
                hold_id: u(HOLD),
                change_id: u(ADJ),
                period: p(20, 48),
                expires_at: t(20) + Duration::minutes(15),
            }]);
    }

    #[test]
    fn an_earlier_start_into_another_booking_is_unavailable_409() {
        let refused = F::with(())
            .given(booked(22))
            .when(back_to(20))
            .inspect_result();
        match refused {
            Err(DomainError::Unavailable { conflicts }) => {
                assert_eq!((conflicts[0].requested, conflicts[0].free), (1, 0));
                assert_eq!(conflicts[0].start, Some(t(20)));
            }
            other => panic!("{other:?}"),
        }
    }
}
