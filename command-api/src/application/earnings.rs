//! A vendor's net for a fulfilled order part, made available for payout
//! (DESIGN.md "Domain": vendor payable pending until the part is
//! fulfilled, then available). Idempotent in the Vendor aggregate.

use rust_decimal::Decimal;
use uuid::Uuid;

use crate::bus::CommandError;
use crate::context::CommandContext;
use crate::CommandApp;

/// Makes a vendor's net for a fulfilled order part available for payout.
pub async fn credit_fulfilled_part(
    app: &CommandApp,
    context: &CommandContext,
    order_id: Uuid,
    vendor_id: Uuid,
    net: Decimal,
) -> Result<i64, CommandError> {
    let command = domain::VendorCommand::MakeEarningsAvailable {
        order_id,
        amount: net,
    };
    let committed = app
        .vendors
        .execute(
            &vendor_id.to_string(),
            command,
            context,
            "MakeEarningsAvailable",
        )
        .await?;
    Ok(committed.position)
}
