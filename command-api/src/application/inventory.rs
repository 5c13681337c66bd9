//! A command on a listing's Inventory. A listing whose inventory was never
//! set up (its creation was cut short) gets it from the listing's terms
//! first, and the command runs on it.

use domain::{Capacity, DomainError, Inventory, InventoryCommand, Listing, ListingTerms};
use uuid::Uuid;

use crate::bus::{CommandError, Committed};
use crate::context::CommandContext;
use crate::CommandApp;

/// Runs `command` (named `name` in the events' metadata) on the listing's
/// inventory, setting the inventory up first when it has none.
pub async fn run(
    app: &CommandApp,
    context: &CommandContext,
    listing: &Listing,
    listing_id: Uuid,
    command: InventoryCommand,
    name: &str,
) -> Result<Committed<Inventory>, CommandError> {
    let id = listing_id.to_string();
    match app
        .inventory
        .execute(&id, command.clone(), context, name)
        .await
    {
        Err(CommandError::Rejected(DomainError::NotFound { what: "inventory" })) => {
            set_up(app, context, listing, listing_id).await?;
            app.inventory.execute(&id, command, context, name).await
        }
        other => other,
    }
}

/// Sets up the listing's inventory from its terms (done already: no-op).
pub async fn set_up(
    app: &CommandApp,
    context: &CommandContext,
    listing: &Listing,
    listing_id: Uuid,
) -> Result<(), CommandError> {
    let terms = listing
        .terms()
        .ok_or(DomainError::NotFound { what: "listing" })?;
    let init = InventoryCommand::Initialize {
        listing_id,
        capacity: capacity_of(terms),
    };
    match app
        .inventory
        .execute(
            &listing_id.to_string(),
            init,
            context,
            "InitializeInventory",
        )
        .await
    {
        // Set up by another command first.
        Ok(_)
        | Err(CommandError::Rejected(DomainError::AlreadyExists { .. }) | CommandError::Conflict) => {
            Ok(())
        }
        Err(err) => Err(err),
    }
}

/// What the inventory guards, from the listing's terms.
pub fn capacity_of(terms: &ListingTerms) -> Capacity {
    match terms {
        ListingTerms::Rental { units, .. } => Capacity::Rental { units: *units },
        ListingTerms::Sale { stock, .. } => Capacity::Sale { stock: *stock },
    }
}
