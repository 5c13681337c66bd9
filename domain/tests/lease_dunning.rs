//! Leases (issue 15 item 3) after confirmation: dunning through to
//! termination for non-payment, early termination by the customer, and
//! what a lease refuses, as given/when/then tests of the Order aggregate.

mod lease_support;

use chrono::{Duration, TimeZone, Utc};
use domain::*;
use lease_support::*;
use rust_decimal_macros::dec;

#[test]
fn dunning_marks_overdue_then_suspends_then_terminates_for_non_payment() {
    let mut given = confirmed();
    // Nothing is late until a day after the first due date.
    assert_eq!(
        decide(&given, dun(day(0) + Duration::hours(23))).unwrap(),
        []
    );
    let late = decide(&given, dun(day(1))).unwrap();
    assert_eq!(
        late,
        [
            E::InstalmentOverdue {
                line_id: u(LINE),
                instalment: 1,
                at: day(1),
            },
            E::LeasePastDue {
                line_id: u(LINE),
                at: day(1),
            }
        ]
    );
    given.extend(late);
    let order = state(&given);
    assert_eq!(
        order.lease_next_due(&DunningPolicy::default()),
        Some(day(8))
    );
    // Dunning again at the same time: nothing new.
    assert_eq!(decide(&given, dun(day(1))).unwrap(), []);
    let suspended = decide(&given, dun(day(8))).unwrap();
    assert_eq!(names(&suspended), ["LeaseSuspended"]);
    given.extend(suspended);
    let ended = decide(&given, dun(day(22))).unwrap();
    assert_eq!(
        names(&ended),
        [
            "LeaseTerminated",
            "InstalmentsWrittenOff",
            "LineReturned",
            "VendorPartFulfilled",
            "OrderCompleted"
        ]
    );
    let written_off = ended
        .iter()
        .find_map(|e| match e {
            E::InstalmentsWrittenOff {
                instalments,
                amount,
                parts,
                ..
            } => Some((instalments.clone(), *amount, parts.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(written_off.0, [1, 2, 3]);
    assert_eq!(written_off.1, dec!(900.00));
    // The vendor's part gives up its share of what was never paid.
    let part = &written_off.2[0];
    assert_eq!(part.subtotal + part.tax, dec!(900.00));
    assert_eq!(part.fee_reversed + part.net_reversed, part.subtotal);
    assert_eq!(part.from_pending, part.net_reversed);
    given.extend(ended);
    let order = state(&given);
    assert_eq!(order.lease().unwrap().1.status, LeaseStatus::Terminated);
    assert_eq!(order.lease_next_due(&DunningPolicy::default()), None);
    // The security deposit comes back; the vendor keeps the upfront share.
    assert_eq!(
        order.line_return(u(LINE)).unwrap().deposit_refunded,
        dec!(100.00)
    );
    assert_eq!(order.fulfilled_net(u(VENDOR)), Some(dec!(73.64)));
}

#[test]
fn paying_every_overdue_instalment_reinstates_the_lease() {
    let mut given = confirmed();
    given.extend(decide(&given, dun(day(1))).unwrap());
    given.extend(decide(&given, dun(day(8))).unwrap());
    assert_eq!(
        state(&given).lease().unwrap().1.status,
        LeaseStatus::Suspended
    );
    let paid = decide(&given, pay("evt_1", 30_000, None, day(9))).unwrap();
    assert_eq!(names(&paid), ["InstalmentPaid", "LeaseReinstated"]);
    given.extend(paid);
    let order = state(&given);
    assert_eq!(order.lease().unwrap().1.status, LeaseStatus::Active);
    // The next look: instalment 2, a day after Feb 28.
    assert_eq!(
        order.lease_next_due(&DunningPolicy::default()),
        Some(Utc.with_ymd_and_hms(2031, 3, 1, 10, 0, 0).unwrap())
    );
}

#[test]
fn a_customer_terminating_before_pickup_is_waived_the_rest_by_a_full_policy() {
    let mut given = confirmed();
    given.extend(decide(&given, pay("evt_1", 30_000, Some(1), day(0))).unwrap());
    let ended = decide(
        &given,
        C::TerminateLease {
            line_id: u(LINE),
            at: day(10),
        },
    )
    .unwrap();
    assert_eq!(
        names(&ended),
        [
            "LeaseTerminated",
            "InstalmentsWrittenOff",
            "LineReturned",
            "VendorPartFulfilled",
            "OrderCompleted"
        ]
    );
    assert!(
        matches!(&ended[0], E::LeaseTerminated { cancelled, charge: None, cause: LeaseEnd::Customer, .. } if cancelled == &[2, 3])
    );
    assert!(
        matches!(&ended[1], E::InstalmentsWrittenOff { instalments, amount, .. } if instalments.is_empty() && *amount == dec!(600.00))
    );
    given.extend(ended);
    let lease = state(&given).lease().unwrap().1.clone();
    let statuses: Vec<_> = lease.instalments.iter().map(|i| i.status).collect();
    assert_eq!(
        statuses,
        [
            InstalmentStatus::Paid,
            InstalmentStatus::Cancelled,
            InstalmentStatus::Cancelled
        ]
    );
}

#[test]
fn a_customer_terminating_after_pickup_owes_the_rest_at_once() {
    let mut given = confirmed();
    given.push(E::LinePickedUp {
        line_id: u(LINE),
        at: start(),
    });
    given.extend(decide(&given, pay("evt_1", 30_000, Some(1), day(0))).unwrap());
    let ended = decide(
        &given,
        C::TerminateLease {
            line_id: u(LINE),
            at: day(10),
        },
    )
    .unwrap();
    assert_eq!(
        ended,
        [E::LeaseTerminated {
            line_id: u(LINE),
            cause: LeaseEnd::Customer,
            cancelled: vec![2, 3],
            charge: Some(Instalment {
                number: 4,
                due: day(10),
                amount: dec!(600.00),
            }),
            at: day(10),
        }]
    );
    given.extend(ended);
    let order = state(&given);
    assert_eq!(order.lease().unwrap().1.unpaid(), dec!(600.00));
    // The charge is paid like any instalment.
    let paid = decide(&given, pay("evt_4", 60_000, Some(4), day(11))).unwrap();
    assert_eq!(names(&paid), ["InstalmentPaid"]);
}

#[test]
fn a_policy_tier_waives_its_percentage_of_the_rest() {
    let tiers = vec![CancellationTier {
        notice: IsoDuration::from_seconds(86_400),
        refund_percent: 50,
    }];
    let given = confirmed_with(tiers);
    // Terminated two days before the start: 50 % of 900.00 waived.
    let ended = decide(
        &given,
        C::TerminateLease {
            line_id: u(LINE),
            at: day(-2),
        },
    )
    .unwrap();
    assert!(
        matches!(&ended[0], E::LeaseTerminated { cancelled, charge: Some(charge), .. }
        if cancelled == &[1, 2, 3] && charge.amount == dec!(450.00))
    );
    assert!(
        matches!(&ended[1], E::InstalmentsWrittenOff { amount, .. } if *amount == dec!(450.00))
    );
}

#[test]
fn termination_is_refused_where_there_is_no_lease_to_end() {
    let terminate = |at| C::TerminateLease {
        line_id: u(LINE),
        at,
    };
    // Not paid yet.
    assert!(matches!(
        decide(&placed_with(Vec::new()), terminate(day(0))),
        Err(DomainError::InvalidState { .. })
    ));
    // Not a line paid by instalments.
    let plain = decide(&[], place(vec![lease_line(Vec::new())], vec![])).unwrap();
    assert!(matches!(
        decide(&plain, terminate(day(0))),
        Err(DomainError::InvalidState { .. })
    ));
    // An unknown line.
    assert!(matches!(
        decide(
            &confirmed(),
            C::TerminateLease {
                line_id: u(99),
                at: day(0)
            }
        ),
        Err(DomainError::NotFound { .. })
    ));
    // Already terminated: nothing more.
    let mut ended = confirmed();
    ended.extend(decide(&ended, terminate(day(1))).unwrap());
    assert_eq!(decide(&ended, terminate(day(2))).unwrap(), []);
}

#[test]
fn a_lease_is_not_cancelled_refunded_or_extended() {
    let given = confirmed();
    assert!(matches!(
        decide(
            &given,
            C::Cancel {
                reason: None,
                at: day(-2)
            }
        ),
        Err(DomainError::InvalidState { .. })
    ));
    let refund = C::Refund(RefundRequest {
        refund_id: u(77),
        amount: Some(dec!(10.00)),
        lines: None,
        vendor_id: None,
        reason: "goodwill".into(),
        provider_refund_id: None,
        at: day(0),
    });
    assert!(matches!(
        decide(&given, refund),
        Err(DomainError::InvalidState { .. })
    ));
    // Unpaid, it is cancelled as any order.
    let placed = placed_with(Vec::new());
    assert_eq!(
        names(
            &decide(
                &placed,
                C::Cancel {
                    reason: None,
                    at: day(-2)
                }
            )
            .unwrap()
        ),
        ["OrderCancelled"]
    );
}

#[test]
fn every_event_of_a_lease_round_trips_through_json() {
    let mut given = confirmed();
    given.extend(decide(&given, dun(day(30))).unwrap());
    given.extend(decide(&given, pay("evt_1", 30_000, Some(1), day(31))).unwrap());
    given.extend(decide(&given, dun(day(60))).unwrap());
    for e in &given {
        let json = serde_json::to_value(e).unwrap();
        let back: E = serde_json::from_value(json).unwrap();
        assert_eq!(&back, e);
    }
    let order = state(&given);
    let json = serde_json::to_value(&order).unwrap();
    let back: Order = serde_json::from_value(json).unwrap();
    assert_eq!(back, order);
}
