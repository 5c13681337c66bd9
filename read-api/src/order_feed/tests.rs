//! Tests of `order_feed`.

use super::*;
use serde_json::json;

fn scope_in(tenant: &str, who: Who) -> Scope {
    Scope {
        tenant: tenant.to_owned(),
        who,
    }
}

fn customer(subject: &str) -> Scope {
    scope_in("default", Who::Customer(subject.to_owned()))
}

fn vendor(vendor_id: Uuid) -> Scope {
    scope_in("default", Who::Vendor(vendor_id))
}

fn all() -> Scope {
    scope_in("default", Who::All)
}

fn placed() -> (Value, Uuid, Uuid, Uuid, Uuid) {
    let (a, b, line_a, line_b) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    let payload = json!({"OrderPlaced": {
        "order_id": Uuid::new_v4(), "customer_id": "customer-a", "currency": "EUR",
        "priced": {
            "lines": [{"line_id": line_a, "vendor_id": a}, {"line_id": line_b, "vendor_id": b}],
            "vendors": [{"vendor_id": a, "net": "9.00"}, {"vendor_id": b, "net": "18.00"}],
            "subtotal": "30.00", "total": "36.00"
        }
    }});
    (payload, a, b, line_a, line_b)
}

fn routed(event_type: &str, payload: Value, parties: &Arc<Parties>) -> Routed {
    routed_at(7, event_type, payload, parties)
}

fn routed_at(position: i64, event_type: &str, payload: Value, parties: &Arc<Parties>) -> Routed {
    routed_in("default", position, event_type, payload, parties)
}

fn routed_in(
    tenant: &str,
    position: i64,
    event_type: &str,
    payload: Value,
    parties: &Arc<Parties>,
) -> Routed {
    Routed {
        tenant: tenant.to_owned(),
        view: OrderEventView {
            position,
            event_id: Uuid::new_v4(),
            order_id: "o".to_owned(),
            sequence: 1,
            event_type: event_type.to_owned(),
            event_version: "1.0".to_owned(),
            payload,
            recorded_at: Utc::now(),
        },
        parties: Some(parties.clone()),
    }
}

#[test]
fn each_party_sees_its_own_share_of_an_order() {
    let (payload, a, b, line_a, line_b) = placed();
    let parties = Arc::new(Parties::of_placed(&payload));
    assert_eq!(parties.customer_id, "customer-a");
    assert_eq!(parties.vendors, vec![a, b]);

    let placed = routed("OrderPlaced", payload.clone(), &parties);
    let own = customer("customer-a");
    assert_eq!(own.shown(&placed).map(|v| v.payload), Some(payload));
    assert!(customer("customer-b").shown(&placed).is_none());
    assert!(vendor(Uuid::new_v4()).shown(&placed).is_none());

    // Vendor A: its own line and part, no customer.
    let seen = vendor(a).shown(&placed).expect("A is in the order");
    let fields = &seen.payload["OrderPlaced"];
    assert!(fields.get("customer_id").is_none(), "{seen:?}");
    assert_eq!(fields["priced"]["lines"].as_array().map(Vec::len), Some(1));
    assert_eq!(fields["priced"]["lines"][0]["line_id"], json!(line_a));
    assert_eq!(fields["priced"]["vendors"][0]["vendor_id"], json!(a));
    assert!(fields["priced"].get("total").is_none());

    // Part events go to their vendor only; payments to no vendor.
    let shipped = routed(
        "PartShipped",
        json!({"PartShipped": {"vendor_id": b}}),
        &parties,
    );
    assert!(vendor(a).shown(&shipped).is_none());
    assert!(vendor(b).shown(&shipped).is_some());
    let picked = routed(
        "LinePickedUp",
        json!({"LinePickedUp": {"line_id": line_b}}),
        &parties,
    );
    assert!(vendor(a).shown(&picked).is_none());
    assert!(vendor(b).shown(&picked).is_some());
    let paid = routed("PaymentCaptured", json!({"PaymentCaptured": {}}), &parties);
    assert!(vendor(a).shown(&paid).is_none());
    assert!(own.shown(&paid).is_some());
    let confirmed = routed("OrderConfirmed", json!({}), &parties);
    assert!(vendor(a).shown(&confirmed).is_some());
    assert!(all().shown(&paid).is_some());
}

#[test]
fn a_feed_takes_only_what_is_past_it_and_reads_gaps_from_the_database() {
    let (payload, ..) = placed();
    let parties = Arc::new(Parties::of_placed(&payload));
    let batch = |after: i64, upto: i64, positions: &[i64]| Batch {
        after,
        upto,
        events: positions
            .iter()
            .map(|p| Arc::new(routed_at(*p, "OrderConfirmed", json!({}), &parties)))
            .collect(),
    };
    let mine = customer("customer-a");
    let positions = |t: Taken| match t {
        Taken::Events(upto, views) => (upto, views.iter().map(|v| v.position).collect::<Vec<_>>()),
        other => panic!("expected events, got {other:?}"),
    };
    // Overlapping what the feed read itself: only the newer events.
    assert_eq!(
        positions(taken(12, &batch(10, 20, &[11, 12, 15, 20]), &mine)),
        (20, vec![15, 20])
    );
    // Already seen.
    assert!(matches!(
        taken(20, &batch(10, 20, &[11]), &mine),
        Taken::Nothing
    ));
    // Past the feed (it lagged, or the watcher started later): a gap.
    assert!(matches!(
        taken(5, &batch(10, 20, &[11]), &mine),
        Taken::Gap(20)
    ));
    // The watcher's first, empty batch tells a feed where it starts.
    assert!(matches!(taken(5, &batch(9, 9, &[]), &mine), Taken::Gap(9)));
    assert!(matches!(taken(9, &batch(9, 9, &[]), &mine), Taken::Nothing));
    // Someone else's order: looked at, not shown.
    let theirs = customer("customer-b");
    assert_eq!(
        positions(taken(10, &batch(10, 20, &[11]), &theirs)),
        (20, vec![])
    );
}

#[test]
fn no_scope_sees_another_tenants_order_events() {
    let (payload, a, ..) = placed();
    let parties = Arc::new(Parties::of_placed(&payload));
    let theirs = routed_in("acme", 7, "OrderPlaced", payload, &parties);
    // The same customer subject, vendor id and an admin, in another tenant.
    assert!(customer("customer-a").shown(&theirs).is_none());
    assert!(vendor(a).shown(&theirs).is_none());
    assert!(all().shown(&theirs).is_none());
    // In its own tenant, as before.
    assert!(scope_in("acme", Who::Customer("customer-a".to_owned()))
        .shown(&theirs)
        .is_some());
    assert!(scope_in("acme", Who::Vendor(a)).shown(&theirs).is_some());
    assert!(scope_in("acme", Who::All).shown(&theirs).is_some());
    let batch = Batch {
        after: 0,
        upto: 7,
        events: vec![Arc::new(theirs)],
    };
    assert!(matches!(taken(0, &batch, &all()), Taken::Events(7, views) if views.is_empty()));
}
