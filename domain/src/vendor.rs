//! The Vendor aggregate: registration and the balance payouts are checked
//! against.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::DomainError;
use crate::money::{is_valid_amount, is_valid_order_amount};

pub const MAX_VENDOR_NAME: usize = 200;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum VendorCommand {
    Register {
        vendor_id: Uuid,
        name: String,
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
        name: String,
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
    name: String,
    registered_at: Option<DateTime<Utc>>,
    earnings: Decimal,
    damage_credits: Decimal,
    paid_out: Decimal,
    earning_orders: BTreeSet<Uuid>,
    damage_lines: BTreeSet<Uuid>,
    payouts: BTreeSet<Uuid>,
}

impl Vendor {
    pub fn is_registered(&self) -> bool {
        self.vendor_id.is_some()
    }
    pub fn vendor_id(&self) -> Option<Uuid> {
        self.vendor_id
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn registered_at(&self) -> Option<DateTime<Utc>> {
        self.registered_at
    }
    /// Σ earnings made available + Σ damage credits − Σ payouts.
    pub fn available_balance(&self) -> Decimal {
        self.earnings + self.damage_credits - self.paid_out
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

    fn decide(&self, command: VendorCommand) -> Result<Vec<VendorEvent>, DomainError> {
        if let VendorCommand::Register {
            vendor_id,
            name,
            at,
        } = command
        {
            if self.is_registered() {
                return Err(DomainError::AlreadyExists { what: "vendor" });
            }
            let name = name.trim().to_string();
            if name.is_empty() {
                return Err(DomainError::invalid("name", "must not be empty"));
            }
            if name.chars().count() > MAX_VENDOR_NAME {
                return Err(DomainError::invalid(
                    "name",
                    format!("must be at most {MAX_VENDOR_NAME} characters"),
                ));
            }
            return Ok(vec![VendorEvent::VendorRegistered {
                vendor_id,
                name,
                registered_at: at,
            }]);
        }
        if !self.is_registered() {
            return Err(DomainError::not_found("vendor"));
        }
        match command {
            VendorCommand::Register { .. } => unreachable!("handled above"),
            VendorCommand::MakeEarningsAvailable { order_id, amount } => {
                if self.earning_orders.contains(&order_id) {
                    return Ok(vec![]);
                }
                // A vendor's net is at most its order's total, which may be
                // larger than an amount a person may state.
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
            VendorCommand::CreditDamage {
                order_id,
                line_id,
                amount,
            } => {
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
            VendorCommand::RequestPayout {
                payout_id,
                amount,
                at,
            } => {
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
    }
}

impl Aggregate for Vendor {
    const TYPE: &'static str = "Vendor";
    type Command = VendorCommand;
    type Event = VendorEvent;
    type Error = DomainError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _service: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

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
            VendorEvent::PayoutRecorded {
                payout_id, amount, ..
            } => {
                self.payouts.insert(payout_id);
                self.paid_out += amount;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;
    use rust_decimal_macros::dec;

    type F = TestFramework<Vendor>;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap()
    }
    fn vid() -> Uuid {
        Uuid::from_u128(1)
    }
    fn oid(n: u128) -> Uuid {
        Uuid::from_u128(100 + n)
    }
    fn registered() -> VendorEvent {
        VendorEvent::VendorRegistered {
            vendor_id: vid(),
            name: "Acme Rentals".into(),
            registered_at: at(),
        }
    }
    fn earned(n: u128, amount: Decimal) -> VendorEvent {
        VendorEvent::EarningsMadeAvailable {
            order_id: oid(n),
            amount,
        }
    }

    #[test]
    fn register_records_trimmed_name() {
        F::with(())
            .given_no_previous_events()
            .when(VendorCommand::Register {
                vendor_id: vid(),
                name: "  Acme Rentals ".into(),
                at: at(),
            })
            .then_expect_events(vec![registered()]);
    }

    #[test]
    fn register_twice_is_rejected() {
        F::with(())
            .given(vec![registered()])
            .when(VendorCommand::Register {
                vendor_id: vid(),
                name: "Other".into(),
                at: at(),
            })
            .then_expect_error(DomainError::AlreadyExists { what: "vendor" });
    }

    #[test]
    fn register_with_blank_name_is_rejected() {
        F::with(())
            .given_no_previous_events()
            .when(VendorCommand::Register {
                vendor_id: vid(),
                name: "   ".into(),
                at: at(),
            })
            .then_expect_error(DomainError::invalid("name", "must not be empty"));
    }

    #[test]
    fn register_with_too_long_name_is_rejected() {
        let r = F::with(())
            .given_no_previous_events()
            .when(VendorCommand::Register {
                vendor_id: vid(),
                name: "x".repeat(201),
                at: at(),
            })
            .inspect_result();
        assert!(matches!(r, Err(DomainError::Validation { errors }) if errors[0].field == "name"));
    }

    #[test]
    fn commands_before_registration_are_not_found() {
        F::with(())
            .given_no_previous_events()
            .when(VendorCommand::MakeEarningsAvailable {
                order_id: oid(1),
                amount: dec!(10),
            })
            .then_expect_error(DomainError::not_found("vendor"));
        F::with(())
            .given_no_previous_events()
            .when(VendorCommand::CreditDamage {
                order_id: oid(1),
                line_id: oid(2),
                amount: dec!(10),
            })
            .then_expect_error(DomainError::not_found("vendor"));
        F::with(())
            .given_no_previous_events()
            .when(VendorCommand::RequestPayout {
                payout_id: oid(3),
                amount: dec!(10),
                at: at(),
            })
            .then_expect_error(DomainError::not_found("vendor"));
    }

    #[test]
    fn earnings_become_available() {
        F::with(())
            .given(vec![registered()])
            .when(VendorCommand::MakeEarningsAvailable {
                order_id: oid(1),
                amount: dec!(90.00),
            })
            .then_expect_events(vec![earned(1, dec!(90.00))]);
    }

    #[test]
    fn earnings_are_idempotent_per_order() {
        F::with(())
            .given(vec![registered(), earned(1, dec!(90.00))])
            .when(VendorCommand::MakeEarningsAvailable {
                order_id: oid(1),
                amount: dec!(90.00),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn earnings_with_invalid_amount_are_rejected() {
        let r = F::with(())
            .given(vec![registered()])
            .when(VendorCommand::MakeEarningsAvailable {
                order_id: oid(1),
                amount: dec!(-1),
            })
            .inspect_result();
        assert!(matches!(r, Err(DomainError::Validation { .. })));
    }

    #[test]
    fn damage_is_credited() {
        F::with(())
            .given(vec![registered()])
            .when(VendorCommand::CreditDamage {
                order_id: oid(1),
                line_id: oid(2),
                amount: dec!(15.00),
            })
            .then_expect_events(vec![VendorEvent::DamageCredited {
                order_id: oid(1),
                line_id: oid(2),
                amount: dec!(15.00),
            }]);
    }

    #[test]
    fn damage_credit_is_idempotent_per_line() {
        F::with(())
            .given(vec![
                registered(),
                VendorEvent::DamageCredited {
                    order_id: oid(1),
                    line_id: oid(2),
                    amount: dec!(15.00),
                },
            ])
            .when(VendorCommand::CreditDamage {
                order_id: oid(1),
                line_id: oid(2),
                amount: dec!(15.00),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn damage_credit_with_invalid_amount_is_rejected() {
        let r = F::with(())
            .given(vec![registered()])
            .when(VendorCommand::CreditDamage {
                order_id: oid(1),
                line_id: oid(2),
                amount: dec!(1.001),
            })
            .inspect_result();
        assert!(matches!(r, Err(DomainError::Validation { .. })));
    }

    #[test]
    fn payout_within_available_balance_is_recorded() {
        F::with(())
            .given(vec![
                registered(),
                earned(1, dec!(90.00)),
                VendorEvent::DamageCredited {
                    order_id: oid(1),
                    line_id: oid(2),
                    amount: dec!(10.00),
                },
            ])
            .when(VendorCommand::RequestPayout {
                payout_id: oid(9),
                amount: dec!(100.00),
                at: at(),
            })
            .then_expect_events(vec![VendorEvent::PayoutRecorded {
                payout_id: oid(9),
                amount: dec!(100.00),
                recorded_at: at(),
            }]);
    }

    #[test]
    fn payout_above_available_balance_is_rejected() {
        F::with(())
            .given(vec![
                registered(),
                earned(1, dec!(90.00)),
                VendorEvent::PayoutRecorded {
                    payout_id: oid(8),
                    amount: dec!(50.00),
                    recorded_at: at(),
                },
            ])
            .when(VendorCommand::RequestPayout {
                payout_id: oid(9),
                amount: dec!(40.01),
                at: at(),
            })
            .then_expect_error(DomainError::InsufficientBalance {
                available: dec!(40.00),
                requested: dec!(40.01),
            });
    }

    #[test]
    fn payout_is_idempotent_per_payout_id() {
        F::with(())
            .given(vec![
                registered(),
                earned(1, dec!(90.00)),
                VendorEvent::PayoutRecorded {
                    payout_id: oid(9),
                    amount: dec!(90.00),
                    recorded_at: at(),
                },
            ])
            .when(VendorCommand::RequestPayout {
                payout_id: oid(9),
                amount: dec!(90.00),
                at: at(),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn payout_of_zero_or_sub_cent_amount_is_rejected() {
        for amount in [dec!(0), dec!(0.001), dec!(-5)] {
            let r = F::with(())
                .given(vec![registered(), earned(1, dec!(90.00))])
                .when(VendorCommand::RequestPayout {
                    payout_id: oid(9),
                    amount,
                    at: at(),
                })
                .inspect_result();
            assert!(
                matches!(&r, Err(DomainError::Validation { errors }) if errors[0].field == "amount"),
                "{amount}: {r:?}"
            );
        }
    }

    #[test]
    fn balance_and_state_round_trip_through_serde() {
        let mut v = Vendor::default();
        v.apply(registered());
        v.apply(earned(1, dec!(90.00)));
        assert_eq!(v.available_balance(), dec!(90.00));
        let json = serde_json::to_string(&v).unwrap();
        let back: Vendor = serde_json::from_str(&json).unwrap();
        assert_eq!(back, v);
        assert_eq!(back.name(), "Acme Rentals");
    }

    #[test]
    fn events_are_externally_tagged() {
        let v = serde_json::to_value(earned(1, dec!(1.50))).unwrap();
        assert_eq!(v["EarningsMadeAvailable"]["amount"], "1.50");
        assert_eq!(earned(1, dec!(1)).event_type(), "EarningsMadeAvailable");
    }
}
