//! The Vendor aggregate: registration and the balance payouts are checked
//! against.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::{handle_by_deciding, Decide};
use crate::error::DomainError;
use crate::money::{is_valid_amount, is_valid_order_amount};
use crate::payouts::{self, PayoutBook, PayoutEntry, PayoutOutcome, PayoutStatus};
use crate::personal::PersonalText;

mod late_fees;
mod receivables;

pub const MAX_VENDOR_NAME: usize = 200;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum VendorCommand {
    Register {
        vendor_id: Uuid,
        /// Personal: sealed by the edge after [`check_name`].
        name: PersonalText,
        at: DateTime<Utc>,
    },
    /// The vendor net of a fulfilled order part becomes available.
    /// Idempotent per `order_id`.
    MakeEarningsAvailable { order_id: Uuid, amount: Decimal },
    /// Deposit withheld for damage, credited to the vendor. Idempotent per
    /// `line_id`.
    CreditDamage {
        order_id: Uuid,
        line_id: Uuid,
        amount: Decimal,
    },
    /// The part of a late fee taken from the deposit, credited to the
    /// vendor. Idempotent per `line_id`.
    CreditLateFee {
        order_id: Uuid,
        line_id: Uuid,
        amount: Decimal,
    },
    /// A late fee owed by the customer was paid: the vendor's pending
    /// late fee is made available. Idempotent per (`payment_id`, `line_id`).
    CollectLateFee {
        order_id: Uuid,
        line_id: Uuid,
        payment_id: String,
        amount: Decimal,
    },
    /// Idempotent per `payout_id`.
    RequestPayout {
        payout_id: Uuid,
        amount: Decimal,
        at: DateTime<Utc>,
    },
    /// A refund or dispute takes back net that was made available: from
    /// the available balance, the rest a receivable. Idempotent per
    /// `reversal_id` (the refund id, or the dispute's reference).
    ReverseEarnings {
        reversal_id: Uuid,
        order_id: Uuid,
        amount: Decimal,
    },
    /// A won dispute gives back what it froze of the available balance
    /// (settling a receivable first). Idempotent per `reversal_id`.
    RestoreEarnings {
        reversal_id: Uuid,
        order_id: Uuid,
        amount: Decimal,
    },
    /// The platform fee rate of the vendor's new orders (`payouts`).
    SetFeeRate { rate: Decimal, at: DateTime<Utc> },
    /// The provider's outcome of a requested payout; idempotent per
    /// outcome (`payouts`).
    SettlePayout {
        payout_id: Uuid,
        outcome: PayoutOutcome,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum VendorEvent {
    VendorRegistered {
        vendor_id: Uuid,
        name: PersonalText,
        registered_at: DateTime<Utc>,
    },
    EarningsMadeAvailable {
        order_id: Uuid,
        amount: Decimal,
    },
    DamageCredited {
        order_id: Uuid,
        line_id: Uuid,
        amount: Decimal,
    },
    LateFeeCredited {
        order_id: Uuid,
        line_id: Uuid,
        amount: Decimal,
    },
    /// A late fee the customer owed, paid: pending → available.
    LateFeeCollected {
        order_id: Uuid,
        line_id: Uuid,
        payment_id: String,
        amount: Decimal,
    },
    PayoutRecorded {
        payout_id: Uuid,
        amount: Decimal,
        recorded_at: DateTime<Utc>,
    },
    /// `amount` = `from_available` + `receivable`.
    EarningsReversed {
        reversal_id: Uuid,
        order_id: Uuid,
        amount: Decimal,
        from_available: Decimal,
        receivable: Decimal,
    },
    /// `amount`, of which `receivable_settled` settles the receivable and
    /// the rest returns to the available balance.
    EarningsRestored {
        reversal_id: Uuid,
        order_id: Uuid,
        amount: Decimal,
        receivable_settled: Decimal,
    },
    /// A credit to the vendor first settles what it owes: the credit of
    /// an order (earnings, damage, late fee), or the amount of a failed
    /// payout coming back.
    ReceivableSettled {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        order_id: Option<Uuid>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payout_id: Option<Uuid>,
        amount: Decimal,
    },
    FeeRateSet {
        rate: Decimal,
        set_at: DateTime<Utc>,
    },
    PayoutPaid {
        payout_id: Uuid,
        amount: Decimal,
        paid_at: DateTime<Utc>,
    },
    /// The amount returns to the available balance.
    PayoutFailed {
        payout_id: Uuid,
        amount: Decimal,
        reason: String,
        failed_at: DateTime<Utc>,
    },
}

impl DomainEvent for VendorEvent {
    fn event_type(&self) -> String {
        match self {
            VendorEvent::VendorRegistered { .. } => "VendorRegistered",
            VendorEvent::EarningsMadeAvailable { .. } => "EarningsMadeAvailable",
            VendorEvent::DamageCredited { .. } => "DamageCredited",
            VendorEvent::LateFeeCredited { .. } => "LateFeeCredited",
            VendorEvent::LateFeeCollected { .. } => "LateFeeCollected",
            VendorEvent::PayoutRecorded { .. } => "PayoutRecorded",
            VendorEvent::EarningsReversed { .. } => "EarningsReversed",
            VendorEvent::EarningsRestored { .. } => "EarningsRestored",
            VendorEvent::ReceivableSettled { .. } => "ReceivableSettled",
            VendorEvent::FeeRateSet { .. } => "FeeRateSet",
            VendorEvent::PayoutPaid { .. } => "PayoutPaid",
            VendorEvent::PayoutFailed { .. } => "PayoutFailed",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        crate::EVENT_VERSION.to_string()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Vendor {
    vendor_id: Option<Uuid>,
    name: PersonalText,
    registered_at: Option<DateTime<Utc>>,
    earnings: Decimal,
    damage_credits: Decimal,
    paid_out: Decimal,
    earning_orders: BTreeSet<Uuid>,
    damage_lines: BTreeSet<Uuid>,
    /// Late fees credited (from deposits), and the lines they came from.
    #[serde(default)]
    late_fees: Decimal,
    #[serde(default)]
    late_fee_lines: BTreeSet<Uuid>,
    /// Late fees collected from customers, by "payment id:line id".
    #[serde(default)]
    late_fee_collections: BTreeSet<String>,
    payouts: BTreeSet<Uuid>,
    /// Net taken back from the available balance (refunds, disputes,
    /// receivables settled), net given back (disputes won), and what the
    /// vendor owes the platform.
    #[serde(default)]
    taken_back: Decimal,
    #[serde(default)]
    restored: Decimal,
    #[serde(default)]
    receivable: Decimal,
    #[serde(default)]
    reversals: BTreeSet<Uuid>,
    #[serde(default)]
    restorations: BTreeSet<Uuid>,
    /// The fee rate of new orders, when the vendor has its own.
    #[serde(default)]
    fee_rate: Option<Decimal>,
    /// Each payout's amount and status (those recorded since the payout
    /// lifecycle exists).
    #[serde(default)]
    payout_book: PayoutBook,
}

impl Vendor {
    pub fn is_registered(&self) -> bool {
        self.vendor_id.is_some()
    }
    pub fn vendor_id(&self) -> Option<Uuid> {
        self.vendor_id
    }
    /// The name as stored (sealed: the domain never reads it).
    pub fn name(&self) -> &PersonalText {
        &self.name
    }
    pub fn registered_at(&self) -> Option<DateTime<Utc>> {
        self.registered_at
    }
    /// Σ earnings made available + Σ damage and late fee credits + Σ
    /// restored − Σ payouts − Σ taken back. Never negative: what a refund
    /// cannot take from it is a receivable.
    pub fn available_balance(&self) -> Decimal {
        self.earnings + self.damage_credits + self.late_fees + self.restored
            - self.paid_out
            - self.taken_back
    }
    /// What the vendor owes the platform (refunds beyond its balance).
    pub fn receivable(&self) -> Decimal {
        self.receivable
    }
    pub fn earnings(&self) -> Decimal {
        self.earnings
    }
    pub fn damage_credits(&self) -> Decimal {
        self.damage_credits
    }
    pub fn paid_out(&self) -> Decimal {
        self.paid_out
    }
    /// The vendor's own platform fee rate, if set.
    pub fn fee_rate(&self) -> Option<Decimal> {
        self.fee_rate
    }
    pub fn payout_status(&self, payout_id: Uuid) -> Option<PayoutStatus> {
        self.payout_book.get(&payout_id).map(|p| p.status)
    }
}

impl Decide for Vendor {
    fn decide(&self, command: VendorCommand) -> Result<Vec<VendorEvent>, DomainError> {
        use VendorCommand as C;
        let decided = match command {
            C::Register {
                vendor_id,
                name,
                at,
            } => self.register(vendor_id, name, at),
            _ if !self.is_registered() => Err(DomainError::not_found("vendor")),
            C::MakeEarningsAvailable { order_id, amount } => {
                self.make_earnings_available(order_id, amount)
            }
            C::CreditDamage {
                order_id,
                line_id,
                amount,
            } => self.credit_damage(order_id, line_id, amount),
            C::CreditLateFee {
                order_id,
                line_id,
                amount,
            } => self.credit_late_fee(order_id, line_id, amount),
            C::CollectLateFee {
                order_id,
                line_id,
                payment_id,
                amount,
            } => self.collect_late_fee(order_id, line_id, payment_id, amount),
            C::RequestPayout {
                payout_id,
                amount,
                at,
            } => self.request_payout(payout_id, amount, at),
            C::ReverseEarnings {
                reversal_id,
                order_id,
                amount,
            } => self.reverse_earnings(reversal_id, order_id, amount),
            C::RestoreEarnings {
                reversal_id,
                order_id,
                amount,
            } => self.restore_earnings(reversal_id, order_id, amount),
            C::SetFeeRate { rate, at } => payouts::set_fee_rate(self.fee_rate, rate, at),
            C::SettlePayout {
                payout_id,
                outcome,
                at,
            } => payouts::settle(&self.payout_book, payout_id, outcome, at),
        };
        decided.map(|events| self.settling_receivable(events))
    }
}

type Decision = Result<Vec<VendorEvent>, DomainError>;

/// A vendor's name as registered: trimmed, not empty, at most
/// [`MAX_VENDOR_NAME`] characters. The edge checks it before it seals it.
pub fn check_name(name: &str) -> Result<String, DomainError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(DomainError::invalid("name", "must not be empty"));
    }
    if name.chars().count() > MAX_VENDOR_NAME {
        return Err(DomainError::invalid(
            "name",
            format!("must be at most {MAX_VENDOR_NAME} characters"),
        ));
    }
    Ok(name.to_owned())
}

impl Vendor {
    fn register(&self, vendor_id: Uuid, name: PersonalText, at: DateTime<Utc>) -> Decision {
        if self.is_registered() {
            return Err(DomainError::AlreadyExists { what: "vendor" });
        }
        // A sealed name was checked by the edge before it was sealed.
        let name = match name.clear_text() {
            Some(clear) => PersonalText::from(check_name(clear)?),
            None => name,
        };
        Ok(vec![VendorEvent::VendorRegistered {
            vendor_id,
            name,
            registered_at: at,
        }])
    }

    fn make_earnings_available(&self, order_id: Uuid, amount: Decimal) -> Decision {
        if self.earning_orders.contains(&order_id) {
            return Ok(vec![]);
        }
        // A vendor's net is at most its order's total, which may be larger
        // than an amount a person may state.
        if !is_valid_order_amount(amount) {
            return Err(DomainError::invalid(
                "amount",
                "must be a non-negative amount with at most 2 decimal places",
            ));
        }
        Ok(vec![VendorEvent::EarningsMadeAvailable {
            order_id,
            amount,
        }])
    }

    fn credit_damage(&self, order_id: Uuid, line_id: Uuid, amount: Decimal) -> Decision {
        if self.damage_lines.contains(&line_id) {
            return Ok(vec![]);
        }
        if !is_valid_amount(amount) {
            return Err(DomainError::invalid(
                "amount",
                "must be a non-negative amount with at most 2 decimal places",
            ));
        }
        Ok(vec![VendorEvent::DamageCredited {
            order_id,
            line_id,
            amount,
        }])
    }

    /// A payout never exceeds the available balance.
    fn request_payout(&self, payout_id: Uuid, amount: Decimal, at: DateTime<Utc>) -> Decision {
        if self.payouts.contains(&payout_id) {
            return Ok(vec![]);
        }
        if !is_valid_amount(amount) || amount <= Decimal::ZERO {
            return Err(DomainError::invalid(
                "amount",
                "must be a positive amount with at most 2 decimal places",
            ));
        }
        let available = self.available_balance();
        if amount > available {
            return Err(DomainError::InsufficientBalance {
                available,
                requested: amount,
            });
        }
        Ok(vec![VendorEvent::PayoutRecorded {
            payout_id,
            amount,
            recorded_at: at,
        }])
    }
}

impl Aggregate for Vendor {
    const TYPE: &'static str = "Vendor";
    type Command = VendorCommand;
    type Event = VendorEvent;
    type Error = DomainError;
    type Services = ();

    handle_by_deciding!();

    fn apply(&mut self, event: Self::Event) {
        match event {
            VendorEvent::VendorRegistered {
                vendor_id,
                name,
                registered_at,
            } => {
                self.vendor_id = Some(vendor_id);
                self.name = name;
                self.registered_at = Some(registered_at);
            }
            VendorEvent::EarningsMadeAvailable { order_id, amount } => {
                self.earning_orders.insert(order_id);
                self.earnings += amount;
            }
            VendorEvent::DamageCredited {
                line_id, amount, ..
            } => {
                self.damage_lines.insert(line_id);
                self.damage_credits += amount;
            }
            VendorEvent::LateFeeCredited {
                line_id, amount, ..
            } => {
                self.late_fee_lines.insert(line_id);
                self.late_fees += amount;
            }
            VendorEvent::LateFeeCollected {
                line_id,
                payment_id,
                amount,
                ..
            } => {
                self.late_fee_collections
                    .insert(late_fees::collection_key(&payment_id, line_id));
                self.late_fees += amount;
            }
            VendorEvent::PayoutRecorded {
                payout_id, amount, ..
            } => {
                self.payouts.insert(payout_id);
                self.paid_out += amount;
                self.payout_book.insert(
                    payout_id,
                    PayoutEntry {
                        amount,
                        status: PayoutStatus::Requested,
                    },
                );
            }
            VendorEvent::FeeRateSet { rate, .. } => self.fee_rate = Some(rate),
            VendorEvent::PayoutPaid { payout_id, .. } => {
                if let Some(entry) = self.payout_book.get_mut(&payout_id) {
                    entry.status = PayoutStatus::Paid;
                }
            }
            VendorEvent::PayoutFailed {
                payout_id, amount, ..
            } => {
                self.paid_out -= amount;
                if let Some(entry) = self.payout_book.get_mut(&payout_id) {
                    entry.status = PayoutStatus::Failed;
                }
            }
            VendorEvent::EarningsReversed {
                reversal_id,
                from_available,
                receivable,
                ..
            } => {
                self.reversals.insert(reversal_id);
                self.taken_back += from_available;
                self.receivable += receivable;
            }
            VendorEvent::EarningsRestored {
                reversal_id,
                amount,
                receivable_settled,
                ..
            } => {
                self.restorations.insert(reversal_id);
                self.receivable -= receivable_settled;
                self.restored += amount - receivable_settled;
            }
            VendorEvent::ReceivableSettled { amount, .. } => {
                self.receivable -= amount;
                self.taken_back += amount;
            }
        }
    }
}
