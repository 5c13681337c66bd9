//! Each payout's lifecycle (`ledger_payouts`): requested, then paid or
//! failed, as the Vendor aggregate records it. The postings of the same
//! events are in `entries`: a request moves the amount from the vendor's
//! available balance to `payouts_in_transit`; paid, from there to cash;
//! failed, back to the vendor's available balance.

use chrono::{DateTime, Utc};
use domain::PayoutStatus;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Error;

/// Money on its way to a vendor's bank: requested, not yet paid or failed.
pub const PAYOUTS_IN_TRANSIT: &str = "payouts_in_transit";

pub(super) enum Change {
    Requested {
        tenant: String,
        payout_id: Uuid,
        vendor_id: Uuid,
        amount: Decimal,
        at: DateTime<Utc>,
        position: i64,
    },
    Settled {
        payout_id: Uuid,
        status: PayoutStatus,
        reason: Option<String>,
        at: DateTime<Utc>,
        position: i64,
    },
}

/// A batch's payout changes, written in their order at its end.
#[derive(Default)]
pub(super) struct Payouts {
    pub(super) changes: Vec<Change>,
}

impl Payouts {
    pub(super) async fn write(self, tx: &mut PgConnection) -> Result<(), Error> {
        for change in self.changes {
            match change {
                Change::Requested {
                    tenant,
                    payout_id,
                    vendor_id,
                    amount,
                    at,
                    position,
                } => {
                    sqlx::query(
                        "INSERT INTO ledger_payouts
                             (payout_id, vendor_id, amount, status, requested_at, position,
                              tenant)
                         VALUES ($1, $2, $3, 'requested', $4, $5, $6)
                         ON CONFLICT (payout_id) DO NOTHING",
                    )
                    .bind(payout_id)
                    .bind(vendor_id)
                    .bind(amount)
                    .bind(at)
                    .bind(position)
                    .bind(tenant)
                    .execute(&mut *tx)
                    .await?;
                }
                Change::Settled {
                    payout_id,
                    status,
                    reason,
                    at,
                    position,
                } => {
                    sqlx::query(
                        "UPDATE ledger_payouts
                            SET status = $2, failure_reason = $3, settled_at = $4, position = $5
                          WHERE payout_id = $1",
                    )
                    .bind(payout_id)
                    .bind(status.as_str())
                    .bind(reason)
                    .bind(at)
                    .bind(position)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        Ok(())
    }
}
