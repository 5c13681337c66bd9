//! Observing: what the ledger answers, read over HTTP (and the journal
//! table) into the figures the checker compares.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use uuid::Uuid;

use super::*;
use reqwest::{Method, StatusCode};

use crate::TestApp;

pub(super) fn decimal(value: &Value) -> anyhow::Result<Decimal> {
    match value {
        Value::String(s) => Ok(s.parse()?),
        Value::Number(n) => Ok(n.to_string().parse()?),
        other => anyhow::bail!("not a decimal: {other}"),
    }
}

pub(super) fn uuid(value: &Value) -> anyhow::Result<Uuid> {
    value
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| anyhow::anyhow!("not a uuid: {value}"))
}

pub(super) fn instant(value: &Value) -> anyhow::Result<DateTime<Utc>> {
    value
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| anyhow::anyhow!("not an instant: {value}"))
}

pub(super) async fn get(app: &TestApp, token: &str, path: &str) -> anyhow::Result<Value> {
    let answer = app.send(Method::GET, path, Some(token), None, &[]).await;
    anyhow::ensure!(
        answer.status == StatusCode::OK,
        "GET {path}: {} {:?}",
        answer.status,
        answer.body
    );
    Ok(answer.body)
}

pub(super) fn posting_of(value: &Value) -> anyhow::Result<Posting> {
    Ok(Posting {
        posting_id: value["posting_id"].as_i64().unwrap_or_default(),
        position: value["position"]
            .as_i64()
            .ok_or_else(|| anyhow::anyhow!("entry without position: {value}"))?,
        account: value["account"].as_str().unwrap_or_default().to_owned(),
        vendor_id: None,
        order_id: value.get("order_id").and_then(|v| uuid(v).ok()),
        kind: value["kind"].as_str().unwrap_or_default().to_owned(),
        debit: decimal(&value["debit"])?,
        credit: decimal(&value["credit"])?,
    })
}

pub(super) fn buckets_of(body: &Value) -> anyhow::Result<Vec<Bucket>> {
    body["buckets"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("revenue without buckets: {body}"))?
        .iter()
        .map(|b| {
            Ok(Bucket {
                start: instant(&b["start"])?,
                key: b.get("key").and_then(Value::as_str).map(str::to_owned),
                gmv: decimal(&b["gmv"])?,
                platform_fees: decimal(&b["platform_fees"])?,
                orders: b["orders"].as_i64().unwrap_or(-1),
            })
        })
        .collect()
}

/// Reads what the ledger answers: the trial balance, every registered
/// vendor's earnings and entries, the analytics summary and revenue over
/// [`WINDOW_FROM`, `WINDOW_TO`), as admin, plus the journal table.
pub async fn observe(app: &TestApp) -> anyhow::Result<Observed> {
    let admin = app.admin();
    let mut observed = Observed::default();

    let trial = get(app, &admin, "/v1/ledger/trial-balance").await?;
    for a in trial["accounts"].as_array().into_iter().flatten() {
        observed.accounts.insert(
            a["account"].as_str().unwrap_or_default().to_owned(),
            AccountFigures {
                debit: decimal(&a["debit"])?,
                credit: decimal(&a["credit"])?,
                balance: decimal(&a["balance"])?,
            },
        );
    }
    observed.total_debit = decimal(&trial["total_debit"])?;
    observed.total_credit = decimal(&trial["total_credit"])?;

    type Row = (
        i64,
        i64,
        String,
        Option<Uuid>,
        Option<Uuid>,
        String,
        Decimal,
        Decimal,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT posting_id, position, account, vendor_id, order_id, kind, debit, credit
           FROM ledger_postings ORDER BY posting_id",
    )
    .fetch_all(&app.pool)
    .await?;
    observed.postings = rows
        .into_iter()
        .map(
            |(posting_id, position, account, vendor_id, order_id, kind, debit, credit)| Posting {
                posting_id,
                position,
                account,
                vendor_id,
                order_id,
                kind,
                debit,
                credit,
            },
        )
        .collect();

    let vendors: Vec<String> = sqlx::query_scalar(
        "SELECT aggregate_id FROM events WHERE event_type = 'VendorRegistered'
          ORDER BY global_position",
    )
    .fetch_all(&app.pool)
    .await?;
    for vendor in vendors {
        let vendor_id = Uuid::parse_str(&vendor)?;
        let e = get(app, &admin, &format!("/v1/vendors/{vendor_id}/earnings")).await?;
        observed.earnings.insert(
            vendor_id,
            Earnings {
                gross: decimal(&e["gross"])?,
                platform_fees: decimal(&e["platform_fees"])?,
                net: decimal(&e["net"])?,
                pending: decimal(&e["pending"])?,
                available: decimal(&e["available"])?,
                paid_out: decimal(&e["paid_out"])?,
                damage_credits: decimal(&e["damage_credits"])?,
            },
        );
        let mut entries = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v1/vendors/{vendor_id}/earnings/entries?limit=200");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = get(app, &admin, &path).await?;
            for item in page["items"].as_array().into_iter().flatten() {
                let mut posting = posting_of(item)?;
                posting.vendor_id = Some(vendor_id);
                entries.push(posting);
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        observed.vendor_entries.insert(vendor_id, entries);
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v1/vendors/{vendor_id}/payouts?limit=200");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = get(app, &admin, &path).await?;
            for item in page["items"].as_array().into_iter().flatten() {
                observed.payouts.insert(
                    uuid(&item["payout_id"])?,
                    Payout {
                        vendor_id: uuid(&item["vendor_id"])?,
                        amount: decimal(&item["amount"])?,
                        status: item["status"].as_str().unwrap_or_default().to_owned(),
                    },
                );
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
    }

    let window = format!("from={WINDOW_FROM}&to={WINDOW_TO}");
    let s = get(app, &admin, &format!("/v1/analytics/summary?{window}")).await?;
    observed.summary = Summary {
        gmv: decimal(&s["gmv"])?,
        orders: s["orders"].as_i64().unwrap_or(-1),
        paid_orders: s["paid_orders"].as_i64().unwrap_or(-1),
        avg_order_value: decimal(&s["avg_order_value"])?,
        cancellation_rate: decimal(&s["cancellation_rate"])?,
        refunds: decimal(&s["refunds"])?,
        rental_days: decimal(&s["rental_days"])?,
        utilization: decimal(&s["utilization"])?,
        overdue_lines: s["overdue_lines"].as_i64().unwrap_or_default(),
        late_fees: decimal(&s["late_fees"])?,
        late_fees_owed: decimal(&s["late_fees_owed"])?,
        top_listings: s["top_listings"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                Ok((
                    uuid(&t["listing_id"])?,
                    decimal(&t["gmv"])?,
                    t["orders"].as_i64().unwrap_or(-1),
                ))
            })
            .collect::<anyhow::Result<_>>()?,
        payment_failures: s["payment_failures"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                (
                    f["reason"].as_str().unwrap_or_default().to_owned(),
                    f["count"].as_i64().unwrap_or(-1),
                )
            })
            .collect(),
        payouts: s["payouts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                Ok((
                    p["status"].as_str().unwrap_or_default().to_owned(),
                    (p["count"].as_i64().unwrap_or(-1), decimal(&p["amount"])?),
                ))
            })
            .collect::<anyhow::Result<_>>()?,
    };
    let revenue = |query: &str| format!("/v1/analytics/revenue?{window}&{query}");
    observed.revenue = Revenue {
        day: buckets_of(&get(app, &admin, &revenue("granularity=day&group_by=none")).await?)?,
        week: buckets_of(&get(app, &admin, &revenue("granularity=week")).await?)?,
        month: buckets_of(&get(app, &admin, &revenue("granularity=month")).await?)?,
        by_vendor: buckets_of(&get(app, &admin, &revenue("group_by=vendor")).await?)?,
        by_category: buckets_of(&get(app, &admin, &revenue("group_by=category")).await?)?,
    };
    Ok(observed)
}
