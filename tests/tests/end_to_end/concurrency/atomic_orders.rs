//! An order and its holds are one transaction (issue 18): however orders
//! of one and of several lines race, every hold the log records belongs to
//! an order the log records, written by the same transaction, and a refused
//! order leaves no hold behind (nothing to release).

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_orders_of_one_and_several_lines_record_each_order_with_its_holds_in_one_transaction(
) {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Atomic Rentals").await;
    let mut listings = Vec::new();
    for _ in 0..3 {
        listings.push(app.rental_listing(vendor, "day", "20.00", "5.00", 2).await);
    }

    // 48 orders over days that all contain day 5: one, two or three lines.
    let mut rng = Rng::new(0x5EED_0018);
    let requests = (0..48)
        .map(|i| {
            let lines = 1 + (i % 3);
            let first = rng.range(0, 3) as usize;
            let items = (0..lines)
                .map(|k| {
                    let listing = listings[(first + k) % listings.len()];
                    let (start, end) = (at(rng.range(0, 5), 0), at(rng.range(6, 10), 0));
                    rental_item(listing, 1, &start, &end)
                })
                .collect();
            (
                app.customer(&format!("atomic-{i}")),
                "/v1/orders".to_owned(),
                order_body(items),
            )
        })
        .collect();
    let answers = race(&app, requests).await;
    assert_no_server_errors(&answers);
    let accepted = order_ids_of(&answers);
    assert!(!accepted.is_empty(), "some orders get units");
    assert!(
        answers.iter().any(|a| a.status == StatusCode::CONFLICT),
        "the race refuses some orders"
    );

    // Every hold in the log names an accepted order, and no hold was
    // placed and then released by a refused placement.
    for listing in &listings {
        let holds = app.holds_of(*listing).await;
        for hold in &holds {
            assert!(
                accepted.contains(&hold.order_id),
                "a hold of an order that was not accepted: {hold:?}"
            );
            assert_ne!(hold.last, "HoldReleased", "{hold:?}");
        }
        assert!(peak_use(&live(&holds)) <= 2, "holds overbook: {holds:?}");
    }

    // Each accepted order's events and its holds share one transaction id.
    for order_id in &accepted {
        let transactions: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT xmin::text FROM events
              WHERE (aggregate_type = 'Order' AND aggregate_id = $1)
                 OR (aggregate_type = 'Inventory' AND event_type = 'HoldPlaced'
                     AND payload #>> '{HoldPlaced,order_id}' = $1)",
        )
        .bind(order_id.to_string())
        .fetch_all(&app.pool)
        .await
        .expect("read the transactions");
        let holds: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events
              WHERE aggregate_type = 'Inventory' AND event_type = 'HoldPlaced'
                AND payload #>> '{HoldPlaced,order_id}' = $1",
        )
        .bind(order_id.to_string())
        .fetch_one(&app.pool)
        .await
        .expect("count the holds");
        assert!(holds >= 1, "order {order_id} has its holds");
        assert_eq!(
            transactions.len(),
            1,
            "order {order_id} and its {holds} holds are one transaction: {transactions:?}"
        );
    }
}
