//! Late returns in the analytics (`an_rental_returns`, issue 13 item 7):
//! per rental line, when it became overdue (`LineOverdue`) and when it came
//! back with which late fee (`LineReturned`), less what was paid of the
//! owed part since (`LateFeePaid`). The summary counts the lines that went
//! overdue and sums the late fees in its window.
//!
//! A batch's events are folded per line first, so that a line overdue and
//! returned in one batch is one row of one upsert.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Error;

/// What a batch says of one line.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct ReturnFact {
    pub order_id: Uuid,
    pub overdue_at: Option<DateTime<Utc>>,
    pub returned_at: Option<DateTime<Utc>>,
    pub late_fee: Decimal,
    pub late_fee_owed: Decimal,
    /// Paid of the owed part since (`LateFeePaid`).
    pub late_fee_paid: Decimal,
}

/// The lines a batch touched, by line id.
#[derive(Default)]
pub(super) struct Returns {
    lines: BTreeMap<Uuid, ReturnFact>,
}

impl Returns {
    pub(super) fn overdue(&mut self, order_id: Uuid, line_id: Uuid, at: DateTime<Utc>) {
        let fact = self.line(order_id, line_id);
        // The first time it went overdue stands.
        fact.overdue_at.get_or_insert(at);
    }

    pub(super) fn returned(
        &mut self,
        order_id: Uuid,
        line_id: Uuid,
        at: DateTime<Utc>,
        late_fee: Decimal,
        late_fee_owed: Decimal,
    ) {
        let fact = self.line(order_id, line_id);
        fact.returned_at = Some(at);
        fact.late_fee = late_fee;
        fact.late_fee_owed = late_fee_owed;
    }

    /// A late fee owed, paid: what the line still owes falls.
    pub(super) fn paid(&mut self, order_id: Uuid, line_id: Uuid, amount: Decimal) {
        self.line(order_id, line_id).late_fee_paid += amount;
    }

    fn line(&mut self, order_id: Uuid, line_id: Uuid) -> &mut ReturnFact {
        self.lines.entry(line_id).or_insert_with(|| ReturnFact {
            order_id,
            ..ReturnFact::default()
        })
    }

    /// Upserts the touched lines: an overdue time already stored stays; a
    /// return, once recorded, sets the return's time and fees; late fees
    /// paid lower what is still owed.
    pub(super) async fn store(&self, tx: &mut PgConnection) -> Result<(), Error> {
        if self.lines.is_empty() {
            return Ok(());
        }
        let facts: Vec<(&Uuid, &ReturnFact)> = self.lines.iter().collect();
        sqlx::query(
            "INSERT INTO an_rental_returns
                    (line_id, order_id, overdue_at, returned_at, late_fee, late_fee_owed, tenant)
             SELECT line_id, order_id, overdue_at, returned_at, late_fee, late_fee_owed - paid,
                    -- the order's tenant: its fact is stored before the returns
                    coalesce((SELECT o.tenant FROM an_orders o WHERE o.order_id = u.order_id),
                             'default')
               FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[],
                           $4::timestamptz[], $5::numeric[], $6::numeric[], $7::numeric[])
                    AS u(line_id, order_id, overdue_at, returned_at, late_fee, late_fee_owed, paid)
             ON CONFLICT (line_id) DO UPDATE SET
                 overdue_at = coalesce(an_rental_returns.overdue_at, EXCLUDED.overdue_at),
                 returned_at = coalesce(EXCLUDED.returned_at, an_rental_returns.returned_at),
                 late_fee = CASE WHEN EXCLUDED.returned_at IS NULL
                                 THEN an_rental_returns.late_fee ELSE EXCLUDED.late_fee END,
                 late_fee_owed = CASE WHEN EXCLUDED.returned_at IS NULL
                                 THEN an_rental_returns.late_fee_owed + EXCLUDED.late_fee_owed
                                 ELSE EXCLUDED.late_fee_owed END",
        )
        .bind(facts.iter().map(|(id, _)| **id).collect::<Vec<_>>())
        .bind(facts.iter().map(|(_, f)| f.order_id).collect::<Vec<_>>())
        .bind(facts.iter().map(|(_, f)| f.overdue_at).collect::<Vec<_>>())
        .bind(facts.iter().map(|(_, f)| f.returned_at).collect::<Vec<_>>())
        .bind(facts.iter().map(|(_, f)| f.late_fee).collect::<Vec<_>>())
        .bind(
            facts
                .iter()
                .map(|(_, f)| f.late_fee_owed)
                .collect::<Vec<_>>(),
        )
        .bind(
            facts
                .iter()
                .map(|(_, f)| f.late_fee_paid)
                .collect::<Vec<_>>(),
        )
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_900_000_000 + h * 3600, 0).expect("a time")
    }

    #[test]
    fn a_line_overdue_then_returned_in_one_batch_is_one_fact_with_both() {
        let (order, line) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut returns = Returns::default();
        returns.overdue(order, line, at(1));
        returns.overdue(order, line, at(2));
        returns.returned(
            order,
            line,
            at(3),
            Decimal::new(6000, 2),
            Decimal::new(3000, 2),
        );
        assert_eq!(
            returns.lines.get(&line),
            Some(&ReturnFact {
                order_id: order,
                overdue_at: Some(at(1)),
                returned_at: Some(at(3)),
                late_fee: Decimal::new(6000, 2),
                late_fee_owed: Decimal::new(3000, 2),
                late_fee_paid: Decimal::ZERO,
            })
        );
        assert_eq!(returns.lines.len(), 1);
    }
}
