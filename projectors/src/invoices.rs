//! Invoices and credit notes (`invoices`), one row per document the
//! vendors' InvoiceBook aggregates issued: the document whole, plus the
//! columns the routes filter on (order, vendor, customer). Documents never
//! change once issued, so a row is only ever inserted.

use domain::InvoiceBookEvent;
use event_log::{Aggregate, Event};
use futures::future::BoxFuture;
use ledger_nats::EventEnvelope;
use sqlx::PgConnection;

use crate::Consumer;
use crate::Error;

pub const NAME: &str = "invoices";

pub struct Invoices;

impl Consumer for Invoices {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["invoices"]
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [EventEnvelope],
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            for event in events {
                if event.aggregate() != Some(Aggregate::InvoiceBook) {
                    continue;
                }
                let Some(Event::InvoiceBook(parsed)) =
                    crate::decode(event, &[Aggregate::InvoiceBook])?
                else {
                    continue;
                };
                insert(tx, event, &parsed).await?;
            }
            Ok(())
        })
    }
}

async fn insert(
    tx: &mut PgConnection,
    event: &EventEnvelope,
    parsed: &InvoiceBookEvent,
) -> Result<(), Error> {
    let document = parsed.document();
    let json = serde_json::to_value(document).map_err(|e| Error::apply(event, e))?;
    let sequence = i64::try_from(document.sequence).map_err(|e| Error::apply(event, e))?;
    sqlx::query(
        "INSERT INTO invoices
             (invoice_id, number, kind, vendor_id, order_id, customer_id, sequence, document,
              issued_at, position, tenant)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (invoice_id) DO NOTHING",
    )
    .bind(document.document_id)
    .bind(&document.number)
    .bind(document.kind.as_str())
    .bind(document.vendor_id)
    .bind(document.order_id)
    .bind(&document.customer_id)
    .bind(sequence)
    .bind(json)
    .bind(document.issued_at)
    .bind(event.position)
    .bind(&event.tenant)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
