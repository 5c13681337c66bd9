//! A vendor's earnings entries as CSV (`Accept: text/csv`), for the
//! spreadsheet: a header row, one row a posting, the same figures as the
//! JSON page; JSON stays the default.

use ledger_tests::{at, TestApp};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn earnings_entries_answer_csv_when_asked_with_the_json_figures() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Kayaks").await;
    let rental = app
        .rental_listing(vendor, "day", "45.00", "100.00", 3)
        .await;
    app.publish(vendor, rental).await;
    let order = app
        .place_order(
            "cust-csv",
            json!([{"listing_id": rental, "quantity": 1, "start": at(3, 0), "end": at(5, 0)}]),
        )
        .await;
    assert_eq!(order.status, StatusCode::CREATED, "{:?}", order.body);
    let paid = app.pay(&order).await;
    let position = paid.body["position"].as_i64().unwrap_or(0).to_string();
    let path = format!("/v1/vendors/{vendor}/earnings/entries");
    let wait = ("Ledger-Min-Position", position.as_str());

    let json_page = app
        .send(
            reqwest::Method::GET,
            &path,
            Some(&app.admin()),
            None,
            &[wait],
        )
        .await;
    assert_eq!(json_page.status, StatusCode::OK);
    let items = json_page.body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!items.is_empty(), "{}", json_page.body);

    let csv = app
        .client
        .get(format!("{}{path}", app.base_url))
        .bearer_auth(app.vendor(vendor))
        .header("accept", "text/csv")
        .header(wait.0, wait.1)
        .send()
        .await
        .expect("the ledger answers");
    assert_eq!(csv.status(), StatusCode::OK);
    let content_type = csv
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    assert!(csv.headers().contains_key("ledger-position"));
    let text = csv.text().await.expect("a body");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("a header row")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        [
            "posting_id",
            "position",
            "account",
            "kind",
            "order_id",
            "debit",
            "credit",
            "recorded_at"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a row")).collect();
    assert_eq!(rows.len(), items.len(), "{text}");
    for (row, item) in rows.iter().zip(&items) {
        assert_eq!(&row[0], item["posting_id"].to_string());
        assert_eq!(&row[2], item["account"].as_str().unwrap_or_default());
        assert_eq!(&row[5], item["debit"].as_str().unwrap_or_default());
        assert_eq!(&row[6], item["credit"].as_str().unwrap_or_default());
    }
    app.stop().await;
}
