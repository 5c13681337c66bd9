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

/// `ledger earnings export --vendor-id` writes, from the database, what
/// the CSV answer shows: the same header and rows, every page at once.
#[tokio::test]
async fn ledger_earnings_export_writes_what_the_csv_answer_shows() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Kayaks").await;
    let rental = app
        .rental_listing(vendor, "day", "45.00", "100.00", 3)
        .await;
    app.publish(vendor, rental).await;
    let mut position = String::new();
    for (customer, day) in [("cust-a", 3), ("cust-b", 7)] {
        let order = app
            .place_order(
                customer,
                json!([{"listing_id": rental, "quantity": 1, "start": at(day, 0), "end": at(day + 2, 0)}]),
            )
            .await;
        assert_eq!(order.status, StatusCode::CREATED, "{:?}", order.body);
        let paid = app.pay(&order).await;
        position = paid.body["position"].as_i64().unwrap_or(0).to_string();
    }
    let http = app
        .client
        .get(format!(
            "{}/v1/vendors/{vendor}/earnings/entries?limit=500",
            app.base_url
        ))
        .bearer_auth(app.vendor(vendor))
        .header("accept", "text/csv")
        .header("Ledger-Min-Position", position.as_str())
        .send()
        .await
        .expect("the ledger answers");
    assert_eq!(http.status(), StatusCode::OK);
    let http = http.text().await.expect("a body");
    assert!(http.lines().count() > 2, "{http}");

    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("earnings.csv");
    let database_url = ledger_tests::database::database_url(&app.database);
    let run = |args: Vec<String>| {
        let database_url = database_url.clone();
        async move {
            tokio::process::Command::new(ledger_tests::binary::ledger_binary().await)
                .args(["earnings", "export"])
                .args(args)
                .env("DATABASE_URL", database_url)
                .output()
                .await
                .expect("the ledger binary runs")
        }
    };
    let to_file = run(vec![
        "--vendor-id".into(),
        vendor.to_string(),
        "--output".into(),
        file.display().to_string(),
    ])
    .await;
    assert!(to_file.status.success(), "{to_file:?}");
    let written = std::fs::read_to_string(&file).expect("the export file");
    assert_eq!(written, http);

    let to_stdout = run(vec!["--vendor-id".into(), vendor.to_string()]).await;
    assert!(to_stdout.status.success(), "{to_stdout:?}");
    assert_eq!(String::from_utf8_lossy(&to_stdout.stdout), http);

    let unknown = run(vec!["--vendor-id".into(), uuid::Uuid::nil().to_string()]).await;
    assert!(!unknown.status.success(), "{unknown:?}");
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no vendor"),
        "{unknown:?}"
    );
}
