use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use domain::*;
use uuid::Uuid;

type F = TestFramework<Inventory>;
use InventoryCommand as C;
use InventoryEvent as E;

fn t(h: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap() + Duration::hours(h)
}
fn p(a: i64, b: i64) -> Period {
    Period::new(t(a), t(b)).unwrap()
}
fn lid() -> Uuid {
    Uuid::from_u128(10)
}
fn hid(n: u128) -> Uuid {
    Uuid::from_u128(1000 + n)
}
fn oid(n: u128) -> Uuid {
    Uuid::from_u128(2000 + n)
}
fn bid(n: u128) -> Uuid {
    Uuid::from_u128(3000 + n)
}
fn rental(units: u32) -> E {
    E::InventoryInitialized {
        listing_id: lid(),
        capacity: Capacity::Rental { units },
    }
}
fn sale(stock: u32) -> E {
    E::InventoryInitialized {
        listing_id: lid(),
        capacity: Capacity::Sale { stock },
    }
}
fn rreq(a: i64, b: i64, quantity: u32) -> HoldRequest {
    HoldRequest::Rental {
        period: p(a, b),
        quantity,
    }
}
/// A hold expiring at t(expires).
fn placed(n: u128, request: HoldRequest, expires: i64) -> E {
    E::HoldPlaced {
        buffer: None,
        hold_id: hid(n),
        order_id: oid(n),
        request,
        expires_at: t(expires),
    }
}
fn place(n: u128, request: HoldRequest, expires: i64, now: i64) -> C {
    C::PlaceHold {
        hold_id: hid(n),
        order_id: oid(n),
        request,
        expires_at: t(expires),
        now: t(now),
    }
}
fn confirmed(n: u128) -> E {
    E::HoldConfirmed { hold_id: hid(n) }
}
fn fields(r: Result<Vec<E>, DomainError>) -> Vec<String> {
    match r {
        Err(DomainError::Validation { errors }) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected validation error, got {other:?}"),
    }
}
fn is_invalid_state(r: Result<Vec<E>, DomainError>) -> bool {
    matches!(r, Err(DomainError::InvalidState(_)))
}

// ---- Initialize

#[test]
fn initialize_records_capacity() {
    F::with(())
        .given_no_previous_events()
        .when(C::Initialize {
            listing_id: lid(),
            capacity: Capacity::Rental { units: 2 },
        })
        .then_expect_events(vec![rental(2)]);
}

#[test]
fn initialize_twice_is_rejected() {
    F::with(())
        .given(vec![rental(2)])
        .when(C::Initialize {
            listing_id: lid(),
            capacity: Capacity::Rental { units: 2 },
        })
        .then_expect_error(DomainError::AlreadyExists { what: "inventory" });
}

#[test]
fn initialize_with_zero_rental_units_is_rejected() {
    let r = F::with(())
        .given_no_previous_events()
        .when(C::Initialize {
            listing_id: lid(),
            capacity: Capacity::Rental { units: 0 },
        })
        .inspect_result();
    assert_eq!(fields(r), vec!["units"]);
}

#[test]
fn commands_before_initialize_are_not_found() {
    F::with(())
        .given_no_previous_events()
        .when(place(1, rreq(0, 2, 1), 1, 0))
        .then_expect_error(DomainError::NotFound { what: "inventory" });
    F::with(())
        .given_no_previous_events()
        .when(C::AdjustStock { delta: 1 })
        .then_expect_error(DomainError::NotFound { what: "inventory" });
}

// ---- PlaceHold

#[test]
fn place_rental_hold_within_capacity() {
    F::with(())
        .given(vec![rental(2), placed(1, rreq(0, 10, 1), 100)])
        .when(place(2, rreq(5, 15, 1), 100, 0))
        .then_expect_events(vec![placed(2, rreq(5, 15, 1), 100)]);
}

#[test]
fn place_rental_hold_beyond_capacity_is_unavailable() {
    F::with(())
        .given(vec![
            rental(2),
            placed(1, rreq(0, 10, 1), 100),
            placed(2, rreq(8, 20, 1), 100),
        ])
        .when(place(3, rreq(5, 12, 1), 100, 0))
        .then_expect_error(DomainError::Unavailable {
            conflicts: vec![Conflict {
                listing_id: lid(),
                start: Some(t(5)),
                end: Some(t(12)),
                requested: 1,
                free: 0,
            }],
        });
}

#[test]
fn adjacent_periods_do_not_overlap() {
    F::with(())
        .given(vec![rental(1), placed(1, rreq(0, 10, 1), 100)])
        .when(place(2, rreq(10, 20, 1), 100, 0))
        .then_expect_events(vec![placed(2, rreq(10, 20, 1), 100)]);
}

#[test]
fn lapsed_active_hold_does_not_block_a_new_hold() {
    F::with(())
        .given(vec![rental(1), placed(1, rreq(0, 10, 1), 1)])
        .when(place(2, rreq(0, 10, 1), 100, 1))
        .then_expect_events(vec![placed(2, rreq(0, 10, 1), 100)]);
}

#[test]
fn released_expired_and_returned_holds_free_their_units() {
    F::with(())
        .given(vec![
            rental(3),
            placed(1, rreq(0, 10, 1), 100),
            E::HoldReleased {
                hold_id: hid(1),
                reason: "x".into(),
            },
            placed(2, rreq(0, 10, 1), 1),
            E::HoldExpired { hold_id: hid(2) },
            placed(3, rreq(0, 10, 1), 100),
            confirmed(3),
            E::ReturnRecorded {
                hold_id: hid(3),
                returned_at: t(4),
            },
            placed(4, rreq(0, 10, 2), 100),
        ])
        .when(place(5, rreq(4, 10, 1), 100, 0))
        .then_expect_events(vec![placed(5, rreq(4, 10, 1), 100)]);
    // ... but the returned one still counts before its return.
    let r = F::with(())
        .given(vec![
            rental(3),
            placed(3, rreq(0, 10, 1), 100),
            confirmed(3),
            E::ReturnRecorded {
                hold_id: hid(3),
                returned_at: t(4),
            },
            placed(4, rreq(0, 10, 2), 100),
        ])
        .when(place(5, rreq(3, 10, 1), 100, 0))
        .inspect_result();
    assert!(matches!(r, Err(DomainError::Unavailable { .. })));
}

#[test]
fn blackouts_count_as_use() {
    let r = F::with(())
        .given(vec![
            rental(2),
            E::BlackoutAdded {
                blackout_id: bid(1),
                period: p(5, 6),
                units: None,
                reason: "maintenance".into(),
            },
        ])
        .when(place(1, rreq(0, 10, 1), 100, 0))
        .inspect_result();
    assert!(matches!(r, Err(DomainError::Unavailable { conflicts }) if conflicts[0].free == 0));
}

#[test]
fn place_sale_hold_decrements_free_stock() {
    let inv = run(
        vec![sale(5)],
        place(1, HoldRequest::Sale { quantity: 3 }, 100, 0),
    );
    assert_eq!(inv.free_stock(), Some(2));
}

#[test]
fn sale_hold_beyond_stock_is_unavailable() {
    F::with(())
        .given(vec![
            sale(5),
            placed(1, HoldRequest::Sale { quantity: 3 }, 100),
        ])
        .when(place(2, HoldRequest::Sale { quantity: 3 }, 100, 0))
        .then_expect_error(DomainError::Unavailable {
            conflicts: vec![Conflict {
                listing_id: lid(),
                start: None,
                end: None,
                requested: 3,
                free: 2,
            }],
        });
}

#[test]
fn zero_quantity_is_rejected() {
    let r = F::with(())
        .given(vec![rental(2)])
        .when(place(1, rreq(0, 2, 0), 100, 0))
        .inspect_result();
    assert_eq!(fields(r), vec!["quantity"]);
}

#[test]
fn hold_kind_must_match_listing_kind() {
    let r = F::with(())
        .given(vec![sale(5)])
        .when(place(1, rreq(0, 2, 1), 100, 0))
        .inspect_result();
    assert_eq!(fields(r), vec!["kind"]);
    let r = F::with(())
        .given(vec![rental(5)])
        .when(place(1, HoldRequest::Sale { quantity: 1 }, 100, 0))
        .inspect_result();
    assert_eq!(fields(r), vec!["kind"]);
}

#[test]
fn hold_expiring_before_now_is_rejected() {
    let r = F::with(())
        .given(vec![rental(5)])
        .when(place(1, rreq(0, 2, 1), 3, 3))
        .inspect_result();
    assert_eq!(fields(r), vec!["expires_at"]);
}

#[test]
fn inverted_hold_period_is_rejected() {
    let r = F::with(())
        .given(vec![rental(5)])
        .when(place(
            1,
            HoldRequest::Rental {
                period: Period {
                    start: t(2),
                    end: t(1),
                },
                quantity: 1,
            },
            100,
            0,
        ))
        .inspect_result();
    assert_eq!(fields(r), vec!["end"]);
}

#[test]
fn duplicate_identical_hold_is_idempotent() {
    F::with(())
        .given(vec![rental(1), placed(1, rreq(0, 10, 1), 100)])
        .when(place(1, rreq(0, 10, 1), 100, 0))
        .then_expect_events(vec![]);
    // a retry computing another expiry is still the same hold
    F::with(())
        .given(vec![rental(1), placed(1, rreq(0, 10, 1), 100)])
        .when(place(1, rreq(0, 10, 1), 101, 1))
        .then_expect_events(vec![]);
}

#[test]
fn duplicate_hold_id_with_other_request_is_rejected() {
    F::with(())
        .given(vec![rental(3), placed(1, rreq(0, 10, 1), 100)])
        .when(place(1, rreq(0, 10, 2), 100, 0))
        .then_expect_error(DomainError::AlreadyExists { what: "hold" });
}

// ---- ConfirmHold

#[test]
fn confirm_active_hold() {
    F::with(())
        .given(vec![rental(1), placed(1, rreq(0, 10, 1), 100)])
        .when(C::ConfirmHold {
            hold_id: hid(1),
            now: t(50),
        })
        .then_expect_events(vec![confirmed(1)]);
}

#[test]
fn confirm_is_idempotent() {
    F::with(())
        .given(vec![
            rental(1),
            placed(1, rreq(0, 10, 1), 100),
            confirmed(1),
        ])
        .when(C::ConfirmHold {
            hold_id: hid(1),
            now: t(500),
        })
        .then_expect_events(vec![]);
}

#[test]
fn confirm_unknown_hold_is_not_found() {
    F::with(())
        .given(vec![rental(1)])
        .when(C::ConfirmHold {
            hold_id: hid(1),
            now: t(0),
        })
        .then_expect_error(DomainError::NotFound { what: "hold" });
}

#[test]
fn confirm_released_hold_is_rejected() {
    let r = F::with(())
        .given(vec![
            rental(1),
            placed(1, rreq(0, 10, 1), 100),
            E::HoldReleased {
                hold_id: hid(1),
                reason: "cancelled".into(),
            },
        ])
        .when(C::ConfirmHold {
            hold_id: hid(1),
            now: t(0),
        })
        .inspect_result();
    assert!(is_invalid_state(r));
}

#[test]
fn confirm_lapsed_hold_reinstates_when_units_are_still_free() {
    F::with(())
        .given(vec![
            rental(1),
            placed(1, rreq(0, 10, 1), 2),
            E::HoldExpired { hold_id: hid(1) },
        ])
        .when(C::ConfirmHold {
            hold_id: hid(1),
            now: t(3),
        })
        .then_expect_events(vec![E::HoldReinstated { hold_id: hid(1) }, confirmed(1)]);
    F::with(())
        .given(vec![rental(1), placed(1, rreq(0, 10, 1), 2)])
        .when(C::ConfirmHold {
            hold_id: hid(1),
            now: t(3),
        })
        .then_expect_events(vec![E::HoldReinstated { hold_id: hid(1) }, confirmed(1)]);
}

#[test]
fn confirm_lapsed_hold_is_unavailable_when_units_were_taken() {
    let r = F::with(())
        .given(vec![
            rental(1),
            placed(1, rreq(0, 10, 1), 2),
            placed(2, rreq(5, 15, 1), 100),
        ])
        .when(C::ConfirmHold {
            hold_id: hid(1),
            now: t(3),
        })
        .inspect_result();
    assert!(matches!(r, Err(DomainError::Unavailable { .. })));
}

#[test]
fn confirm_lapsed_sale_hold_rechecks_stock() {
    let given = vec![
        sale(2),
        placed(1, HoldRequest::Sale { quantity: 2 }, 2),
        E::HoldExpired { hold_id: hid(1) },
    ];
    F::with(())
        .given(given.clone())
        .when(C::ConfirmHold {
            hold_id: hid(1),
            now: t(3),
        })
        .then_expect_events(vec![E::HoldReinstated { hold_id: hid(1) }, confirmed(1)]);
    let mut taken = given;
    taken.push(placed(2, HoldRequest::Sale { quantity: 1 }, 100));
    let r = F::with(())
        .given(taken)
        .when(C::ConfirmHold {
            hold_id: hid(1),
            now: t(3),
        })
        .inspect_result();
    assert!(matches!(r, Err(DomainError::Unavailable { .. })));
}

// ---- ReleaseHold

#[test]
fn release_active_or_confirmed_hold() {
    for extra in [vec![], vec![confirmed(1)]] {
        let mut given = vec![rental(1), placed(1, rreq(0, 10, 1), 100)];
        given.extend(extra);
        F::with(())
            .given(given)
            .when(C::ReleaseHold {
                hold_id: hid(1),
                reason: "order cancelled".into(),
            })
            .then_expect_events(vec![E::HoldReleased {
                hold_id: hid(1),
                reason: "order cancelled".into(),
            }]);
    }
}

#[test]
fn release_is_idempotent() {
    F::with(())
        .given(vec![
            rental(1),
            placed(1, rreq(0, 10, 1), 100),
            E::HoldExpired { hold_id: hid(1) },
        ])
        .when(C::ReleaseHold {
            hold_id: hid(1),
            reason: "x".into(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn release_unknown_hold_is_not_found() {
    F::with(())
        .given(vec![rental(1)])
        .when(C::ReleaseHold {
            hold_id: hid(1),
            reason: "x".into(),
        })
        .then_expect_error(DomainError::NotFound { what: "hold" });
}

#[test]
fn release_restores_sale_stock() {
    let inv = run(
        vec![
            sale(5),
            placed(1, HoldRequest::Sale { quantity: 3 }, 100),
            confirmed(1),
        ],
        C::ReleaseHold {
            hold_id: hid(1),
            reason: "refund".into(),
        },
    );
    assert_eq!(inv.free_stock(), Some(5));
}

// ---- ExpireHold

#[test]
fn expire_due_active_hold() {
    F::with(())
        .given(vec![rental(1), placed(1, rreq(0, 10, 1), 2)])
        .when(C::ExpireHold {
            hold_id: hid(1),
            now: t(2),
        })
        .then_expect_events(vec![E::HoldExpired { hold_id: hid(1) }]);
}

#[test]
fn expire_before_due_is_rejected() {
    let r = F::with(())
        .given(vec![rental(1), placed(1, rreq(0, 10, 1), 2)])
        .when(C::ExpireHold {
            hold_id: hid(1),
            now: t(1),
        })
        .inspect_result();
    assert!(is_invalid_state(r));
}

#[test]
fn expire_confirmed_hold_does_nothing() {
    F::with(())
        .given(vec![rental(1), placed(1, rreq(0, 10, 1), 2), confirmed(1)])
        .when(C::ExpireHold {
            hold_id: hid(1),
            now: t(5),
        })
        .then_expect_events(vec![]);
}

#[test]
fn expire_unknown_hold_is_not_found() {
    F::with(())
        .given(vec![rental(1)])
        .when(C::ExpireHold {
            hold_id: hid(1),
            now: t(5),
        })
        .then_expect_error(DomainError::NotFound { what: "hold" });
}

// ---- RecordReturn

#[test]
fn return_confirmed_rental() {
    F::with(())
        .given(vec![
            rental(1),
            placed(1, rreq(0, 10, 1), 100),
            confirmed(1),
        ])
        .when(C::RecordReturn {
            hold_id: hid(1),
            returned_at: t(7),
        })
        .then_expect_events(vec![E::ReturnRecorded {
            hold_id: hid(1),
            returned_at: t(7),
        }]);
}

#[test]
fn return_is_idempotent() {
    F::with(())
        .given(vec![
            rental(1),
            placed(1, rreq(0, 10, 1), 100),
            confirmed(1),
            E::ReturnRecorded {
                hold_id: hid(1),
                returned_at: t(7),
            },
        ])
        .when(C::RecordReturn {
            hold_id: hid(1),
            returned_at: t(8),
        })
        .then_expect_events(vec![]);
}

#[test]
fn return_of_unconfirmed_hold_is_rejected() {
    let r = F::with(())
        .given(vec![rental(1), placed(1, rreq(0, 10, 1), 100)])
        .when(C::RecordReturn {
            hold_id: hid(1),
            returned_at: t(7),
        })
        .inspect_result();
    assert!(is_invalid_state(r));
}

#[test]
fn return_of_sale_hold_is_rejected() {
    let r = F::with(())
        .given(vec![
            sale(1),
            placed(1, HoldRequest::Sale { quantity: 1 }, 100),
            confirmed(1),
        ])
        .when(C::RecordReturn {
            hold_id: hid(1),
            returned_at: t(7),
        })
        .inspect_result();
    assert!(is_invalid_state(r));
}

// ---- Blackouts

fn blackout(n: u128, a: i64, b: i64, units: Option<u32>) -> C {
    C::AddBlackout {
        blackout_id: bid(n),
        period: p(a, b),
        units,
        reason: "maintenance".into(),
    }
}
fn blackout_added(n: u128, a: i64, b: i64, units: Option<u32>) -> E {
    E::BlackoutAdded {
        blackout_id: bid(n),
        period: p(a, b),
        units,
        reason: "maintenance".into(),
    }
}

#[test]
fn add_blackout_when_units_are_free() {
    F::with(())
        .given(vec![rental(2), placed(1, rreq(0, 10, 1), 100)])
        .when(blackout(1, 5, 8, Some(1)))
        .then_expect_events(vec![blackout_added(1, 5, 8, Some(1))]);
}

#[test]
fn blackout_over_booked_units_would_undercut() {
    F::with(())
        .given(vec![
            rental(2),
            placed(1, rreq(0, 10, 1), 100),
            confirmed(1),
        ])
        .when(blackout(1, 5, 8, None))
        .then_expect_error(DomainError::WouldUndercut {
            in_use: 1,
            requested_capacity: 0,
        });
}

#[test]
fn blackout_on_sale_listing_is_rejected() {
    let r = F::with(())
        .given(vec![sale(2)])
        .when(blackout(1, 5, 8, None))
        .inspect_result();
    assert!(is_invalid_state(r));
}

#[test]
fn blackout_of_zero_units_is_rejected() {
    let r = F::with(())
        .given(vec![rental(2)])
        .when(blackout(1, 5, 8, Some(0)))
        .inspect_result();
    assert_eq!(fields(r), vec!["units"]);
}

#[test]
fn blackout_id_reused_for_another_period_is_rejected() {
    F::with(())
        .given(vec![rental(2), blackout_added(1, 5, 8, None)])
        .when(blackout(1, 9, 10, None))
        .then_expect_error(DomainError::AlreadyExists { what: "blackout" });
}

#[test]
fn remove_blackout_frees_units() {
    F::with(())
        .given(vec![rental(2), blackout_added(1, 5, 8, None)])
        .when(C::RemoveBlackout {
            blackout_id: bid(1),
        })
        .then_expect_events(vec![E::BlackoutRemoved {
            blackout_id: bid(1),
        }]);
    let inv = run(
        vec![rental(2), blackout_added(1, 5, 8, None)],
        C::RemoveBlackout {
            blackout_id: bid(1),
        },
    );
    assert_eq!(inv.free_units(&p(0, 10), t(0)), 2);
}

#[test]
fn remove_unknown_blackout_is_not_found() {
    F::with(())
        .given(vec![rental(2)])
        .when(C::RemoveBlackout {
            blackout_id: bid(1),
        })
        .then_expect_error(DomainError::NotFound { what: "blackout" });
}

// ---- SetUnits

#[test]
fn set_units_changes_capacity() {
    F::with(())
        .given(vec![rental(2)])
        .when(C::SetUnits {
            units: 5,
            now: t(0),
        })
        .then_expect_events(vec![E::UnitsChanged { units: 5 }]);
}

#[test]
fn lowering_units_below_future_use_would_undercut() {
    F::with(())
        .given(vec![
            rental(3),
            placed(1, rreq(0, 10, 2), 100),
            placed(2, rreq(20, 30, 1), 100),
        ])
        .when(C::SetUnits {
            units: 1,
            now: t(5),
        })
        .then_expect_error(DomainError::WouldUndercut {
            in_use: 2,
            requested_capacity: 1,
        });
}

#[test]
fn lowering_units_ignores_past_use() {
    F::with(())
        .given(vec![
            rental(3),
            placed(1, rreq(0, 10, 3), 100),
            confirmed(1),
        ])
        .when(C::SetUnits {
            units: 1,
            now: t(10),
        })
        .then_expect_events(vec![E::UnitsChanged { units: 1 }]);
}

#[test]
fn zero_units_is_rejected() {
    let r = F::with(())
        .given(vec![rental(3)])
        .when(C::SetUnits {
            units: 0,
            now: t(0),
        })
        .inspect_result();
    assert_eq!(fields(r), vec!["units"]);
}

#[test]
fn set_units_on_sale_listing_is_rejected() {
    let r = F::with(())
        .given(vec![sale(3)])
        .when(C::SetUnits {
            units: 2,
            now: t(0),
        })
        .inspect_result();
    assert!(is_invalid_state(r));
}

// ---- AdjustStock

#[test]
fn adjust_stock_reports_free_stock() {
    F::with(())
        .given(vec![
            sale(3),
            placed(1, HoldRequest::Sale { quantity: 2 }, 100),
        ])
        .when(C::AdjustStock { delta: 4 })
        .then_expect_events(vec![E::StockAdjusted { delta: 4, stock: 5 }]);
}

#[test]
fn stock_below_held_would_undercut() {
    F::with(())
        .given(vec![
            sale(3),
            placed(1, HoldRequest::Sale { quantity: 2 }, 100),
        ])
        .when(C::AdjustStock { delta: -2 })
        .then_expect_error(DomainError::WouldUndercut {
            in_use: 2,
            requested_capacity: 1,
        });
}

#[test]
fn zero_stock_delta_is_rejected() {
    let r = F::with(())
        .given(vec![sale(3)])
        .when(C::AdjustStock { delta: 0 })
        .inspect_result();
    assert_eq!(fields(r), vec!["delta"]);
}

#[test]
fn adjust_stock_on_rental_listing_is_rejected() {
    let r = F::with(())
        .given(vec![rental(3)])
        .when(C::AdjustStock { delta: 1 })
        .inspect_result();
    assert!(is_invalid_state(r));
}

// ---- accessors, serde, performance

fn run(given: Vec<E>, cmd: C) -> Inventory {
    let mut inv = Inventory::default();
    for e in given {
        inv.apply(e);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let sink = cqrs_es::event_sink::EventSink::default();
        inv.handle(cmd, &(), &sink).await.unwrap();
    });
    inv
}

#[test]
fn accessors_report_holds_and_due_expiries() {
    let mut inv = Inventory::default();
    for e in [
        rental(3),
        placed(1, rreq(0, 10, 1), 5),
        placed(2, rreq(0, 10, 1), 2),
        placed(3, rreq(0, 10, 1), 50),
        confirmed(3),
    ] {
        inv.apply(e);
    }
    assert_eq!(inv.active_holds_due(t(5)), vec![hid(2), hid(1)]);
    assert_eq!(inv.hold(hid(3)).unwrap().status, HoldStatus::Confirmed);
    assert_eq!(inv.capacity(), Some(&Capacity::Rental { units: 3 }));
    assert_eq!(inv.free_units(&p(0, 10), t(0)), 0);
    assert_eq!(inv.free_units(&p(0, 10), t(2)), 1);
    assert_eq!(inv.free_units(&p(0, 10), t(5)), 2);
    assert_eq!(inv.free_units(&p(10, 20), t(0)), 3);
    assert_eq!(inv.free_stock(), None);
}

#[test]
fn serde_round_trip_rebuilds_the_index() {
    let mut inv = Inventory::default();
    for e in [
        rental(2),
        placed(1, rreq(0, 100, 1), 500),
        placed(2, rreq(50, 60, 1), 500),
        blackout_added(1, 70, 80, Some(1)),
    ] {
        inv.apply(e);
    }
    let json = serde_json::to_string(&inv).unwrap();
    let back: Inventory = serde_json::from_str(&json).unwrap();
    assert_eq!(back, inv);
    for (a, b) in [(0, 10), (55, 56), (60, 75), (75, 200), (100, 200)] {
        assert_eq!(
            back.free_units(&p(a, b), t(0)),
            inv.free_units(&p(a, b), t(0))
        );
    }
    assert_eq!(back.free_units(&p(55, 56), t(0)), 0);
    assert_eq!(back.free_units(&p(60, 75), t(0)), 0);
    assert_eq!(back.free_units(&p(100, 200), t(0)), 2);
}

#[test]
fn many_past_bookings_stay_fast() {
    let mut inv = Inventory::default();
    inv.apply(rental(5));
    // 50 000 confirmed one-hour bookings, 5 per slot.
    for i in 0..50_000u128 {
        let start = (i / 5) as i64;
        inv.apply(placed(i, rreq(start, start + 1, 1), 1_000_000));
        inv.apply(confirmed(i));
    }
    let snapshot: Inventory = serde_json::from_str(&serde_json::to_string(&inv).unwrap()).unwrap();
    let started = std::time::Instant::now();
    for k in 0..2_000 {
        let s = 1_000 + k;
        assert_eq!(inv.free_units(&p(s, s + 2), t(0)), 0);
        assert_eq!(snapshot.free_units(&p(s, s + 2), t(0)), 0);
    }
    assert_eq!(inv.free_units(&p(20_000, 20_010), t(0)), 5);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}
