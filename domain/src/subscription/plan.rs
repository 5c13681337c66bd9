//! The Plan aggregate: a pass or membership a tenant sells by the period
//! (API.md "Subscriptions and instalments": `POST /v1/plans`).

use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::billing::Interval;
use crate::aggregate::{handle_by_deciding, Decide};
use crate::error::{DomainError, FieldError};
use crate::money::is_valid_amount;

pub const MAX_PLAN_NAME: usize = 200;
pub const MAX_TRIAL_DAYS: u32 = 365;
pub const MAX_ENTITLEMENT: usize = 500;

/// What a subscription copies from its plan when it starts or changes plan,
/// so that later edits of the plan never reprice a running period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanTerms {
    pub plan_id: Uuid,
    pub price: Decimal,
    pub interval: Interval,
    pub trial_days: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PlanCommand {
    Create {
        plan_id: Uuid,
        name: String,
        price: Decimal,
        interval: Interval,
        trial_days: u32,
        /// What the pass grants (a garage's "any space, weekdays"); shown,
        /// not enforced.
        entitlement: Option<String>,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PlanEvent {
    PlanCreated {
        plan_id: Uuid,
        name: String,
        price: Decimal,
        interval: Interval,
        trial_days: u32,
        entitlement: Option<String>,
        created_at: DateTime<Utc>,
    },
}

impl DomainEvent for PlanEvent {
    fn event_type(&self) -> String {
        match self {
            PlanEvent::PlanCreated { .. } => "PlanCreated",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        crate::EVENT_VERSION.to_string()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    terms: Option<PlanTerms>,
    name: String,
}

impl Plan {
    /// The plan's terms, once created.
    pub fn terms(&self) -> Option<&PlanTerms> {
        self.terms.as_ref()
    }
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Decide for Plan {
    fn decide(&self, command: PlanCommand) -> Result<Vec<PlanEvent>, DomainError> {
        let PlanCommand::Create {
            plan_id,
            name,
            price,
            interval,
            trial_days,
            entitlement,
            at,
        } = command;
        if self.terms.is_some() {
            return Err(DomainError::AlreadyExists { what: "plan" });
        }
        let name = name.trim().to_owned();
        let mut errors = Vec::new();
        if name.is_empty() || name.chars().count() > MAX_PLAN_NAME {
            errors.push(FieldError::new(
                "name",
                format!("must be 1 to {MAX_PLAN_NAME} characters"),
            ));
        }
        if !is_valid_amount(price) || price == Decimal::ZERO {
            errors.push(FieldError::new(
                "price",
                "must be a positive amount with at most 2 decimal places",
            ));
        }
        if trial_days > MAX_TRIAL_DAYS {
            errors.push(FieldError::new(
                "trial_days",
                format!("must be at most {MAX_TRIAL_DAYS}"),
            ));
        }
        if entitlement
            .as_ref()
            .is_some_and(|e| e.chars().count() > MAX_ENTITLEMENT)
        {
            errors.push(FieldError::new(
                "entitlement",
                format!("must be at most {MAX_ENTITLEMENT} characters"),
            ));
        }
        DomainError::check(errors)?;
        Ok(vec![PlanEvent::PlanCreated {
            plan_id,
            name,
            price,
            interval,
            trial_days,
            entitlement,
            created_at: at,
        }])
    }
}

impl Aggregate for Plan {
    const TYPE: &'static str = "Plan";
    type Command = PlanCommand;
    type Event = PlanEvent;
    type Error = DomainError;
    type Services = ();

    handle_by_deciding!();

    fn apply(&mut self, event: PlanEvent) {
        match event {
            PlanEvent::PlanCreated {
                plan_id,
                name,
                price,
                interval,
                trial_days,
                ..
            } => {
                self.name = name;
                self.terms = Some(PlanTerms {
                    plan_id,
                    price,
                    interval,
                    trial_days,
                });
            }
        }
    }
}
