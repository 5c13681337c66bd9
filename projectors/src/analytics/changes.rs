//! Orders as changed (issue 13 item 7): a confirmed adjustment (extension,
//! reschedule, early-pickup extension) moves its line's period and changes
//! its subtotal and its vendor's fee; an early return ends the line's
//! rental time at the return. GMV, revenue buckets, top listings, rental
//! days and utilisation read the lines as changed.
//!
//! A batch's changes are folded per line first (deltas add up, the last
//! period stands, an early return caps the end), then written with one
//! statement after the batch's new lines are inserted.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::Adjustment;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Error;

/// What a batch changes of one line.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct LineChange {
    pub order_id: Uuid,
    pub subtotal: Decimal,
    pub platform_fee: Decimal,
    /// The new period of the last adjustment, if any.
    pub period: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// An early return: the line's rental time ends here.
    pub returned_at: Option<DateTime<Utc>>,
}

/// The lines a batch changed, by line id.
#[derive(Default)]
pub(super) struct LineChanges {
    lines: BTreeMap<Uuid, LineChange>,
}

impl LineChanges {
    /// A confirmed adjustment: the line's new period, its subtotal delta,
    /// and its vendor's fee delta (carried by the adjusted line, so the
    /// shares of the vendor's lines still add up to its fee).
    pub(super) fn adjusted(&mut self, order_id: Uuid, a: &Adjustment) {
        let line = self.line(order_id, a.line_id);
        line.subtotal += a.subtotal;
        line.platform_fee += a.platform_fee;
        line.period = Some((a.start, a.end));
        // A later return caps the new period, not the old.
        line.returned_at = None;
    }

    /// A return: ends the line's rental time when it came back before its
    /// end (the store keeps the earlier of the end and the return).
    pub(super) fn returned(&mut self, order_id: Uuid, line_id: Uuid, at: DateTime<Utc>) {
        self.line(order_id, line_id).returned_at = Some(at);
    }

    fn line(&mut self, order_id: Uuid, line_id: Uuid) -> &mut LineChange {
        self.lines.entry(line_id).or_insert_with(|| LineChange {
            order_id,
            ..LineChange::default()
        })
    }

    /// Applies the changes to `an_order_lines` (lines not recorded are
    /// left alone, as every fact of an order the analytics never saw).
    pub(super) async fn store(&self, tx: &mut PgConnection) -> Result<(), Error> {
        if self.lines.is_empty() {
            return Ok(());
        }
        let facts: Vec<(&Uuid, &LineChange)> = self.lines.iter().collect();
        sqlx::query(
            "UPDATE an_order_lines l SET
                 subtotal = l.subtotal + c.subtotal,
                 platform_fee = l.platform_fee + c.platform_fee,
                 start_at = coalesce(c.start_at, l.start_at),
                 end_at = CASE WHEN c.returned_at IS NULL
                               THEN coalesce(c.end_at, l.end_at)
                               ELSE greatest(coalesce(c.start_at, l.start_at),
                                             least(coalesce(c.end_at, l.end_at), c.returned_at))
                          END
               FROM unnest($1::uuid[], $2::uuid[], $3::numeric[], $4::numeric[],
                           $5::timestamptz[], $6::timestamptz[], $7::timestamptz[])
                    AS c(line_id, order_id, subtotal, platform_fee, start_at, end_at, returned_at)
              WHERE l.order_id = c.order_id AND l.line_id = c.line_id",
        )
        .bind(facts.iter().map(|(id, _)| **id).collect::<Vec<_>>())
        .bind(facts.iter().map(|(_, c)| c.order_id).collect::<Vec<_>>())
        .bind(facts.iter().map(|(_, c)| c.subtotal).collect::<Vec<_>>())
        .bind(
            facts
                .iter()
                .map(|(_, c)| c.platform_fee)
                .collect::<Vec<_>>(),
        )
        .bind(
            facts
                .iter()
                .map(|(_, c)| c.period.map(|p| p.0))
                .collect::<Vec<_>>(),
        )
        .bind(
            facts
                .iter()
                .map(|(_, c)| c.period.map(|p| p.1))
                .collect::<Vec<_>>(),
        )
        .bind(facts.iter().map(|(_, c)| c.returned_at).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    #[cfg(test)]
    pub(super) fn get(&self, line_id: Uuid) -> Option<&LineChange> {
        self.lines.get(&line_id)
    }
}
