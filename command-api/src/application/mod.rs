//! The command side's use cases, below HTTP: what a request or a
//! background job asks of the aggregates, in the order the design needs.
//! Routes extract, call one of these and answer; policies and the sweeper
//! call them too. Each takes the time from the app's clock and answers a
//! [`CommandError`](crate::bus::CommandError), so that each is tested
//! given/when/then on memory stores and a controlled clock (`tests`).
//!
//! - `adjust_line`: a rental line extended or rescheduled, its payment
//!   and its lapse;
//! - `inventory`: a command on a listing's inventory, set up on first use;
//! - `place_order`: the placement saga (DESIGN.md "Domain");
//! - `holds`: an order's holds follow its outcome (release, expire,
//!   confirm or re-hold);
//! - `cancel_order`: an order cancelled and its holds released;
//! - `record_payment`: a provider's payment recorded and settled;
//! - `settle_payment`: the holds brought in line with a recorded payment;
//! - `earnings`: a fulfilled part's net made available to its vendor;
//! - `invoicing`: a confirmed order's invoices and a refund's credit notes;
//! - `sweep`: lapsed deadlines settled;
//! - `overdue`: rental lines past their end and not returned marked overdue;
//! - `billing`: subscriptions started, billed and dunned on the clock;
//! - `invoice_payments`: a provider's charge of a subscription invoice;
//! - `refunds`: refunds, disputes and unapplied payments, with their vendor
//!   side (earnings taken back or restored).

pub mod adjust_line;
pub mod billing;
pub mod cancel_order;
pub mod earnings;
pub mod holds;
pub mod inventory;
pub mod invoice_payments;
pub mod invoicing;
pub mod leases;
pub mod overdue;
pub mod pickup;
pub mod place_order;
pub mod record_payment;
pub mod refunds;
pub mod settle_payment;
pub mod sweep;
pub mod terms;

#[cfg(test)]
mod tests;
