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
use crate::personal::PersonalText;

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
    /// Idempotent per `payout_id`.
    RequestPayout {
        payout_id: Uuid,
        amount: Decimal,
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
    PayoutRecorded {
        payout_id: Uuid,
        amount: Decimal,
        recorded_at: DateTime<Utc>,
    },
}

impl DomainEvent for VendorEvent {
    fn event_type(&self) -> String {
        match self {
            VendorEvent::VendorRegistered { .. } => "VendorRegistered",
            VendorEvent::EarningsMadeAvailable { .. } => "EarningsMadeAvailable",
            VendorEvent::DamageCredited { .. } => "DamageCredited",
            VendorEvent::LateFeeCredited { .. } => "LateFeeCredited",
            VendorEvent::PayoutRecorded { .. } => "PayoutRecorded",
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
    payouts: BTreeSet<Uuid>,
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
    /// Σ earnings made available + Σ damage credits − Σ payouts.
    pub fn available_balance(&self) -> Decimal {
        self.earnings + self.damage_credits + self.late_fees - self.paid_out
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
}

impl Decide for Vendor {
    fn decide(&self, command: VendorCommand) -> Result<Vec<VendorEvent>, DomainError> {
        use VendorCommand as C;
        match command {
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
            } => {
                if self.late_fee_lines.contains(&line_id) {
                    return Ok(vec![]);
                }
                if !is_valid_amount(amount) {
                    return Err(DomainError::invalid(
                        "amount",
                        "must be a non-negative amount with at most 2 decimal places",
                    ));
                }
                Ok(vec![VendorEvent::LateFeeCredited {
                    order_id,
                    line_id,
                    amount,
                }])
            }
            C::RequestPayout {
                payout_id,
                amount,
                at,
            } => self.request_payout(payout_id, amount, at),
        }
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
            VendorEvent::PayoutRecorded {
                payout_id, amount, ..
            } => {
                self.payouts.insert(payout_id);
                self.paid_out += amount;
            }
        }
    }
}
