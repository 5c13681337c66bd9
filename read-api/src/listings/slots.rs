//! Slots of an availability answer: maximal sub-periods of constant free
//! units, cut at a schedule's opening hours.

use chrono::{DateTime, Utc};

use super::Slot;

/// Maximal sub-periods of constant free units over [from, to).
pub(super) fn slots(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    units: i64,
    allocations: &[(DateTime<Utc>, DateTime<Utc>, Option<i32>)],
) -> Vec<Slot> {
    let mut changes: Vec<(DateTime<Utc>, i64)> = Vec::with_capacity(allocations.len() * 2);
    for (start, end, quantity) in allocations {
        let used = quantity.map_or(units, i64::from);
        changes.push((*start, used));
        changes.push((*end, -used));
    }
    changes.sort_by_key(|c| c.0);
    let mut slots: Vec<Slot> = Vec::new();
    let mut used = 0i64;
    let mut cursor = from;
    let mut i = 0;
    while cursor < to {
        while i < changes.len() && changes[i].0 <= cursor {
            used += changes[i].1;
            i += 1;
        }
        let next = changes.get(i).map_or(to, |c| c.0.min(to));
        let free = (units - used).max(0);
        match slots.last_mut() {
            Some(last) if last.free == free => last.end = next,
            _ => slots.push(Slot {
                start: cursor,
                end: next,
                free,
                closed: false,
            }),
        }
        cursor = next;
    }
    slots
}

/// The slots cut at the edges of the `open` intervals (sorted, disjoint):
/// what lies outside them is `free: 0, closed: true`.
pub(super) fn close_outside(slots: Vec<Slot>, open: &[domain::Period]) -> Vec<Slot> {
    let mut out: Vec<Slot> = Vec::new();
    let mut push = |slot: Slot| match out.last_mut() {
        Some(last)
            if last.free == slot.free && last.closed == slot.closed && last.end == slot.start =>
        {
            last.end = slot.end
        }
        _ => out.push(slot),
    };
    for slot in slots {
        let mut cursor = slot.start;
        for p in open
            .iter()
            .filter(|p| p.end > slot.start && p.start < slot.end)
        {
            let (start, end) = (p.start.max(slot.start), p.end.min(slot.end));
            if cursor < start {
                push(Slot {
                    start: cursor,
                    end: start,
                    free: 0,
                    closed: true,
                });
            }
            push(Slot {
                start,
                end,
                free: slot.free,
                closed: false,
            });
            cursor = end;
        }
        if cursor < slot.end {
            push(Slot {
                start: cursor,
                end: slot.end,
                free: 0,
                closed: true,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(h * 3600, 0).expect("valid")
    }

    #[test]
    fn slots_outside_opening_hours_are_closed_with_no_free_units() {
        let open = vec![
            domain::Period {
                start: t(9),
                end: t(12),
            },
            domain::Period {
                start: t(14),
                end: t(18),
            },
        ];
        let slots = close_outside(slots(t(8), t(20), 2, &[(t(10), t(15), Some(1))]), &open);
        let shown: Vec<(i64, i64, i64, bool)> = slots
            .iter()
            .map(|s| {
                (
                    s.start.timestamp() / 3600,
                    s.end.timestamp() / 3600,
                    s.free,
                    s.closed,
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                (8, 9, 0, true),
                (9, 10, 2, false),
                (10, 12, 1, false),
                (12, 14, 0, true),
                (14, 15, 1, false),
                (15, 18, 2, false),
                (18, 20, 0, true),
            ]
        );
    }

    #[test]
    fn slots_are_maximal_periods_of_constant_free_units() {
        let allocations = vec![
            (t(2), t(5), Some(1)),
            (t(4), t(6), Some(2)),
            (t(6), t(8), Some(1)),
        ];
        let s = slots(t(0), t(10), 3, &allocations);
        let got: Vec<(i64, i64, i64)> = s
            .iter()
            .map(|s| (s.start.timestamp() / 3600, s.end.timestamp() / 3600, s.free))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 2, 3),
                (2, 4, 2),
                (4, 5, 0),
                (5, 6, 1),
                (6, 8, 2),
                (8, 10, 3)
            ]
        );
    }

    #[test]
    fn a_blackout_without_quantity_takes_every_unit() {
        let s = slots(t(0), t(4), 3, &[(t(1), t(2), None)]);
        assert_eq!(s.iter().map(|s| s.free).collect::<Vec<_>>(), vec![3, 0, 3]);
    }

    #[test]
    fn a_period_without_allocations_is_one_free_slot() {
        let s = slots(t(0), t(4), 2, &[]);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].free, 2);
    }
}
