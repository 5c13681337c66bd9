//! Fifty customers extend their bookings into the same free units at once
//! (issue 13 item 8): exactly the units that are free are won, the others
//! are refused `unavailable`, and once the winners pay, the recorded holds
//! (moved by the Inventory's `ChangeApplied`) and the blackout never use
//! more units than exist.

use super::*;

const RACERS: usize = 50;
/// Units free in the extension's hours (the rest are blacked out).
const FREE: u32 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_racing_extensions_into_three_free_units_win_exactly_three() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Racing Extensions").await;
    let units = RACERS as u32;
    let listing = app
        .rental_listing(vendor, "hour", "5.00", "0.00", units)
        .await;
    // Every racer has one unit for hours 10-12 of day 1, paid.
    let mut orders = Vec::new();
    for i in 0..RACERS {
        let customer = format!("racer-{i}");
        let order = app
            .place_order(
                &customer,
                vec![rental_item(listing, 1, &at(1, 10), &at(1, 12))],
            )
            .await;
        assert_eq!(order.status, StatusCode::CREATED, "{:?}", order.body);
        app.pay(&order).await;
        let line = order.body["lines"][0]["line_id"]
            .as_str()
            .and_then(|l| Uuid::parse_str(l).ok())
            .expect("a line id");
        orders.push((customer, order.uuid("order_id"), line));
    }
    // Hours 12-14 keep only three units free.
    let blackout = app
        .add_blackout(
            &app.vendor(vendor),
            listing,
            json!({"start": at(1, 12), "end": at(1, 14), "units": units - FREE, "reason": "service"}),
        )
        .await;
    assert_eq!(blackout.status, StatusCode::CREATED, "{:?}", blackout.body);

    let requests = orders
        .iter()
        .map(|(customer, order_id, line)| {
            (
                app.customer(customer),
                format!("/v1/orders/{order_id}/lines/{line}/extend"),
                json!({ "end": at(1, 14) }),
            )
        })
        .collect();
    let answers = race(&app, requests).await;

    assert_no_server_errors(&answers);
    let winners: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .collect();
    assert_eq!(
        winners.len(),
        FREE as usize,
        "exactly the free units are won"
    );
    for answer in answers.iter().filter(|a| a.status == StatusCode::CONFLICT) {
        let conflict = &unavailable_conflicts(answer)[0];
        assert_eq!(conflict["free"], json!(0), "{:?}", answer.body);
        assert_eq!(conflict["requested"], json!(1), "{:?}", answer.body);
    }
    for winner in &winners {
        assert_eq!(decimal(&winner.body["amount_due"]), Decimal::new(1000, 2));
        app.pay_adjustment(winner.uuid("adjustment_id"), 1000).await;
    }

    // Independently of the answers: what the Inventory recorded.
    let holds = app.holds_of(listing).await;
    let live = live(&holds);
    let extended = live
        .iter()
        .filter(|h| {
            h.period.is_some_and(|(_, end)| {
                end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true) == at(1, 14)
            })
        })
        .count();
    assert_eq!(extended, FREE as usize, "three holds moved: {live:?}");
    let busiest = live
        .iter()
        .filter(|h| {
            h.period.is_some_and(|(start, end)| {
                let probe = chrono::DateTime::parse_from_rfc3339(&at(1, 13))
                    .expect("an instant")
                    .with_timezone(&chrono::Utc);
                start <= probe && probe < end
            })
        })
        .count() as u32;
    assert!(
        busiest + (units - FREE) <= units,
        "the extensions and the blackout overbook hour 13: {busiest}"
    );
    app.stop().await;
}
