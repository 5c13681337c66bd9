//! Property tests of the Inventory invariant against a brute-force model that
//! recomputes usage per one-hour time slot (every boundary in these tests is
//! a whole hour, so slots are exact): holds, blackouts, units, schedules'
//! buffers, overdue units, and extensions and reschedules awaiting payment
//! (their extra instants held until they lapse), applied or lapsed.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use domain::*;
use proptest::prelude::*;
use uuid::Uuid;

const SLOTS: i64 = 30;

fn t(h: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap() + Duration::hours(h)
}
fn hid(n: u8) -> Uuid {
    Uuid::from_u128(1000 + u128::from(n))
}
fn bid(n: u8) -> Uuid {
    Uuid::from_u128(2000 + u128::from(n))
}
fn cid(id: u8, k: u8) -> Uuid {
    Uuid::from_u128(3000 + 16 * u128::from(id) + u128::from(k))
}

#[derive(Clone, Debug)]
enum Op {
    Place {
        id: u8,
        start: i64,
        len: i64,
        qty: u32,
        ttl: i64,
    },
    Confirm {
        id: u8,
    },
    Release {
        id: u8,
    },
    Expire {
        id: u8,
    },
    Return {
        id: u8,
        at: i64,
    },
    AddBlackout {
        id: u8,
        start: i64,
        len: i64,
        units: Option<u32>,
    },
    RemoveBlackout {
        id: u8,
    },
    SetUnits {
        units: u32,
    },
    AdjustStock {
        delta: i64,
    },
    /// An extension (`extension`: the start stays) or reschedule of hold
    /// `id` to `[start, start + len)`, awaiting payment for `ttl` hours.
    PlaceChange {
        id: u8,
        k: u8,
        start: i64,
        len: i64,
        ttl: i64,
        extension: bool,
    },
    ApplyChange {
        id: u8,
        k: u8,
    },
    LapseChange {
        id: u8,
        k: u8,
    },
    Tick {
        hours: i64,
    },
    /// A schedule open all the time with this buffer (hours) for new holds.
    SetBuffer {
        hours: i64,
    },
    Overdue {
        id: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..12, 0i64..24, 1i64..6, 1u32..=3, 1i64..8)
            .prop_map(|(id, start, len, qty, ttl)| Op::Place { id, start, len, qty, ttl }),
        2 => (0u8..12).prop_map(|id| Op::Confirm { id }),
        1 => (0u8..12).prop_map(|id| Op::Release { id }),
        1 => (0u8..12).prop_map(|id| Op::Expire { id }),
        1 => (0u8..12, 0i64..SLOTS).prop_map(|(id, at)| Op::Return { id, at }),
        1 => (0u8..4, 0i64..24, 1i64..6, prop::option::of(1u32..=3))
            .prop_map(|(id, start, len, units)| Op::AddBlackout { id, start, len, units }),
        1 => (0u8..4).prop_map(|id| Op::RemoveBlackout { id }),
        1 => (1u32..=5).prop_map(|units| Op::SetUnits { units }),
        1 => (-3i64..=3).prop_map(|delta| Op::AdjustStock { delta }),
        2 => (0i64..3).prop_map(|hours| Op::Tick { hours }),
        1 => (0i64..3).prop_map(|hours| Op::SetBuffer { hours }),
        1 => (0u8..12).prop_map(|id| Op::Overdue { id }),
        2 => (0u8..12, 0u8..3, 0i64..SLOTS, 1i64..8, 1i64..4, any::<bool>()).prop_map(
            |(id, k, start, len, ttl, extension)| Op::PlaceChange { id, k, start, len, ttl, extension }
        ),
        2 => (0u8..12, 0u8..3).prop_map(|(id, k)| Op::ApplyChange { id, k }),
        1 => (0u8..12, 0u8..3).prop_map(|(id, k)| Op::LapseChange { id, k }),
    ]
}

fn to_command(op: &Op, now: i64, rental: bool) -> Option<InventoryCommand> {
    use InventoryCommand as C;
    Some(match *op {
        Op::Place {
            id,
            start,
            len,
            qty,
            ttl,
        } => C::PlaceHold {
            hold_id: hid(id),
            order_id: hid(id),
            request: if rental {
                HoldRequest::Rental {
                    period: Period::new(t(start), t(start + len)).unwrap(),
                    quantity: qty,
                }
            } else {
                HoldRequest::Sale { quantity: qty }
            },
            expires_at: t(now + ttl),
            now: t(now),
        },
        Op::Confirm { id } => C::ConfirmHold {
            hold_id: hid(id),
            now: t(now),
        },
        Op::Release { id } => C::ReleaseHold {
            hold_id: hid(id),
            reason: "test".into(),
        },
        Op::Expire { id } => C::ExpireHold {
            hold_id: hid(id),
            now: t(now),
        },
        Op::Return { id, at } => C::RecordReturn {
            hold_id: hid(id),
            returned_at: t(at),
        },
        Op::AddBlackout {
            id,
            start,
            len,
            units,
        } => C::AddBlackout {
            blackout_id: bid(id),
            period: Period::new(t(start), t(start + len)).unwrap(),
            units,
            reason: "test".into(),
        },
        Op::RemoveBlackout { id } => C::RemoveBlackout {
            blackout_id: bid(id),
        },
        Op::SetUnits { units } => C::SetUnits { units, now: t(now) },
        Op::AdjustStock { delta } => C::AdjustStock { delta },
        Op::Tick { .. } => return None,
        Op::SetBuffer { hours } => C::SetSchedule {
            schedule: Schedule {
                buffer: Some(IsoDuration::from_seconds(hours * 3600)),
                ..Schedule::always_open(Tz::UTC)
            },
            pricing_unit: PricingUnit::Hour,
        },
        Op::Overdue { id } => C::MarkOverdue {
            hold_id: hid(id),
            now: t(now),
        },
        Op::PlaceChange {
            id,
            k,
            start,
            len,
            ttl,
            extension,
        } => C::PlaceChange {
            hold_id: hid(id),
            change_id: cid(id, k),
            period: Period::new(t(start), t(start + len)).unwrap(),
            expires_at: t(now + ttl),
            extension,
            now: t(now),
        },
        Op::ApplyChange { id, k } => C::ApplyChange {
            hold_id: hid(id),
            change_id: cid(id, k),
            now: t(now),
        },
        Op::LapseChange { id, k } => C::LapseChange {
            hold_id: hid(id),
            change_id: cid(id, k),
        },
    })
}

fn exec(
    rt: &tokio::runtime::Runtime,
    inv: &mut Inventory,
    cmd: InventoryCommand,
) -> Result<Vec<InventoryEvent>, DomainError> {
    rt.block_on(async {
        let sink = EventSink::default();
        inv.handle(cmd, &(), &sink).await?;
        Ok(sink.collect().await)
    })
}

fn units_of(inv: &Inventory) -> u32 {
    match inv.capacity() {
        Some(Capacity::Rental { units }) => *units,
        _ => panic!("not a rental"),
    }
}

/// Units used in slot [s, s+1) by holds (lapsed Active ones excluded when
/// `now` is given, and `exclude` left out), each with its buffer, an overdue
/// one to the end of time unless `overdue_to_end` is false, and blackouts.
fn slot_use_with(
    inv: &Inventory,
    s: i64,
    now: Option<i64>,
    exclude: Option<Uuid>,
    cap: u32,
    overdue_to_end: bool,
) -> u32 {
    let slot = Period::new(t(s), t(s + 1)).unwrap();
    let mut used = 0;
    for h in inv.holds() {
        if Some(h.hold_id) == exclude {
            continue;
        }
        let HoldRequest::Rental { period, quantity } = h.request else {
            continue;
        };
        let buffer = Duration::hours(h.buffer.map_or(0, |b| b.seconds() / 3600));
        let end = match h.status {
            HoldStatus::Active => {
                if now.is_some_and(|n| h.expires_at <= t(n)) {
                    continue;
                }
                period.end + buffer
            }
            HoldStatus::Confirmed if h.overdue && overdue_to_end => t(SLOTS + 1000),
            HoldStatus::Confirmed => period.end + buffer,
            HoldStatus::Returned => h.returned_at.unwrap().clamp(period.start, period.end) + buffer,
            HoldStatus::Released | HoldStatus::Expired => continue,
        };
        if end <= period.start {
            continue;
        }
        let counted_period = Period {
            start: period.start,
            end,
        };
        if counted_period.overlaps(&slot) {
            used += quantity;
        }
    }
    // A change awaiting payment holds the instants of its period (and the
    // buffer after it) that its hold does not occupy, until it expires.
    for h in inv.holds() {
        if Some(h.hold_id) == exclude {
            continue;
        }
        let (HoldRequest::Rental { period, quantity }, Some(p)) = (h.request, h.pending) else {
            continue;
        };
        let live = !p.lapsed && now.is_none_or(|n| p.expires_at > t(n));
        if !live || !matches!(h.status, HoldStatus::Active | HoldStatus::Confirmed) {
            continue;
        }
        let buffer = Duration::hours(h.buffer.map_or(0, |b| b.seconds() / 3600));
        let occupied_end = if h.overdue {
            t(SLOTS + 1000)
        } else {
            period.end + buffer
        };
        let in_wanted = p.period.start <= slot.start && slot.end <= p.period.end + buffer;
        let in_occupied = period.start <= slot.start && slot.end <= occupied_end;
        if in_wanted && !in_occupied {
            used += quantity;
        }
    }
    for b in inv.blackouts() {
        if b.period.overlaps(&slot) {
            used += b.units.unwrap_or(cap);
        }
    }
    used
}

fn slot_use(inv: &Inventory, s: i64, now: Option<i64>, exclude: Option<Uuid>, cap: u32) -> u32 {
    slot_use_with(inv, s, now, exclude, cap, true)
}

/// The buffer (hours) of the schedule in force.
fn buffer_now(inv: &Inventory) -> i64 {
    inv.schedule()
        .and_then(|s| s.buffer)
        .map_or(0, |b| b.seconds() / 3600)
}

fn slots_of(p: &Period) -> std::ops::Range<i64> {
    let base = t(0);
    (p.start - base).num_hours()..(p.end - base).num_hours()
}

fn fits(inv: &Inventory, p: &Period, qty: u32, now: Option<i64>, exclude: Option<Uuid>) -> bool {
    let cap = units_of(inv);
    slots_of(p).all(|s| slot_use(inv, s, now, exclude, cap) + qty <= cap)
}

/// Units in use never exceed the units, but for a unit still out past its
/// end (overdue), which no one can prevent; new holds count it as out
/// (`free_units` agrees with the model that extends it to the end of time).
fn check_rental_invariant(inv: &Inventory, now: i64) {
    let cap = units_of(inv);
    for s in now..SLOTS + 10 {
        let used = slot_use_with(inv, s, Some(now), None, cap, false);
        assert!(used <= cap, "slot {s}: {used} used of {cap} at now={now}");
        let p = Period::new(t(s), t(s + 1)).unwrap();
        let out = slot_use(inv, s, Some(now), None, cap);
        assert_eq!(
            inv.free_units(&p, t(now)),
            cap.saturating_sub(out),
            "free_units slot {s}"
        );
    }
}

/// Σ sale quantity counted at `now`.
fn sale_used(inv: &Inventory, now: i64) -> i64 {
    inv.holds()
        .filter(|h| match h.status {
            HoldStatus::Active => h.expires_at > t(now),
            HoldStatus::Confirmed => true,
            _ => false,
        })
        .map(|h| i64::from(h.request.quantity()))
        .sum()
}

fn stock_of(inv: &Inventory) -> i64 {
    match inv.capacity() {
        Some(Capacity::Sale { stock }) => i64::from(*stock),
        _ => panic!("not a sale"),
    }
}

fn run(rental: bool, initial: u32, ops: Vec<Op>, snapshot_at: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut inv = Inventory::default();
    let capacity = if rental {
        Capacity::Rental { units: initial }
    } else {
        Capacity::Sale { stock: initial }
    };
    exec(
        &rt,
        &mut inv,
        InventoryCommand::Initialize {
            listing_id: Uuid::from_u128(1),
            capacity,
        },
    )
    .unwrap();
    // A twin that goes through a serde round trip mid-sequence.
    let mut twin = inv.clone();
    let mut now = 0i64;
    for (i, op) in ops.iter().enumerate() {
        if i == snapshot_at {
            twin = serde_json::from_str(&serde_json::to_string(&twin).unwrap()).unwrap();
        }
        if let Op::Tick { hours } = op {
            now += hours;
            continue;
        }
        let Some(cmd) = to_command(op, now, rental) else {
            continue;
        };
        // What the brute-force model expects, computed before the command.
        let expected_fit: Option<bool> = match (&cmd, rental) {
            (
                InventoryCommand::PlaceHold {
                    hold_id, request, ..
                },
                true,
            ) if inv.hold(*hold_id).is_none() => {
                let period = *request.period().unwrap();
                let scheduled = inv.schedule().is_some();
                let occupied = Period {
                    start: period.start,
                    end: period.end + Duration::hours(buffer_now(&inv)),
                };
                Some(
                    !(scheduled && period.start < t(now))
                        && fits(&inv, &occupied, request.quantity(), Some(now), None),
                )
            }
            (
                InventoryCommand::PlaceHold {
                    hold_id, request, ..
                },
                false,
            ) if inv.hold(*hold_id).is_none() => {
                Some(stock_of(&inv) - sale_used(&inv, now) >= i64::from(request.quantity()))
            }
            (InventoryCommand::ConfirmHold { hold_id, .. }, true) => {
                inv.hold(*hold_id).and_then(|h| {
                    let lapsed = h.status == HoldStatus::Expired
                        || (h.status == HoldStatus::Active && h.expires_at <= t(now));
                    lapsed.then(|| {
                        fits(
                            &inv,
                            h.occupying().period().unwrap(),
                            h.request.quantity(),
                            Some(now),
                            Some(*hold_id),
                        )
                    })
                })
            }
            (
                InventoryCommand::AddBlackout {
                    blackout_id,
                    period,
                    units,
                    ..
                },
                true,
            ) if inv.blackout(*blackout_id).is_none() => {
                let cap = units_of(&inv);
                Some(fits(&inv, period, units.unwrap_or(cap), None, None))
            }
            (InventoryCommand::SetUnits { units, .. }, true) => {
                let cap = *units;
                // The same units again is a no-op, even with a unit out
                // past its end; more units never undercut anything (a
                // whole-listing blackout over an overdue unit may already
                // count more in use than there are units).
                Some(
                    cap >= units_of(&inv)
                        || (now..SLOTS + 10)
                            .all(|s| slot_use(&inv, s, Some(now), None, cap) <= cap),
                )
            }
            _ => None,
        };
        let result = exec(&rt, &mut inv, cmd.clone());
        let twin_result = exec(&rt, &mut twin, cmd.clone());
        assert_eq!(result, twin_result, "twin diverged at op {i}: {op:?}");
        if let Some(fit) = expected_fit {
            let accepted = result.is_ok();
            assert_eq!(accepted, fit, "op {i} {op:?} at now={now}: {result:?}");
            if let Err(e) = &result {
                assert!(
                    matches!(
                        e,
                        DomainError::Unavailable { .. }
                            | DomainError::WouldUndercut { .. }
                            | DomainError::Validation { .. }
                    ),
                    "{e:?}"
                );
            }
        }
        assert_eq!(inv, twin);
        if rental {
            check_rental_invariant(&inv, now);
        } else {
            let free = stock_of(&inv) - sale_used(&inv, now);
            assert!(free >= 0, "negative stock {free} after op {i} {op:?}");
        }
    }
    // The sweeper view agrees with the statuses.
    for id in inv.active_holds_due(t(now)) {
        let h = inv.hold(id).unwrap();
        assert!(h.status == HoldStatus::Active && h.expires_at <= t(now));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn rental_units_are_never_overbooked(
        units in 1u32..=4,
        ops in prop::collection::vec(op(), 1..60),
        snapshot_at in 0usize..60,
    ) {
        run(true, units, ops, snapshot_at);
    }

    #[test]
    fn sale_stock_never_goes_negative(
        stock in 0u32..=5,
        ops in prop::collection::vec(op(), 1..60),
        snapshot_at in 0usize..60,
    ) {
        run(false, stock, ops, snapshot_at);
    }
}
