//! The Tenant aggregate (API.md "Tenants"): one marketplace or operator of
//! a deployment, named by its slug (the aggregate id), with the settings
//! that replace the deployment's defaults for its new orders.

use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::aggregate::{handle_by_deciding, Decide};
use crate::error::{DomainError, FieldError};
use crate::schedule::IsoDuration;

pub const MAX_TENANT_NAME: usize = 200;
/// Holds last at least this long, and at most a day.
pub const MIN_HOLD_TTL_SECS: i64 = 60;
pub const MAX_HOLD_TTL_SECS: i64 = 24 * 3600;

/// What a tenant sets for itself; each field absent keeps the deployment's
/// default (or, in a change, the tenant's current value).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_rate: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_fee_rate: Option<Decimal>,
    /// How long an unpaid order's holds last, ISO 8601 (`PT15M`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_ttl: Option<IsoDuration>,
    /// IANA time zone of rental listings without one of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<chrono_tz::Tz>,
}

impl TenantSettings {
    /// `change` over these settings: what it names replaces, the rest stays.
    pub fn merged(&self, change: &TenantSettings) -> TenantSettings {
        TenantSettings {
            currency: change.currency.clone().or_else(|| self.currency.clone()),
            tax_rate: change.tax_rate.or(self.tax_rate),
            platform_fee_rate: change.platform_fee_rate.or(self.platform_fee_rate),
            hold_ttl: change.hold_ttl.or(self.hold_ttl),
            time_zone: change.time_zone.or(self.time_zone),
        }
    }

    fn check(&self, errors: &mut Vec<FieldError>) {
        if let Some(currency) = &self.currency {
            if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
                errors.push(FieldError::new(
                    "currency",
                    "must be an ISO 4217 code in upper case (USD)",
                ));
            }
        }
        for (field, rate) in [
            ("tax_rate", self.tax_rate),
            ("platform_fee_rate", self.platform_fee_rate),
        ] {
            if let Some(rate) = rate {
                if rate < Decimal::ZERO || rate >= Decimal::ONE || rate.scale() > 4 {
                    errors.push(FieldError::new(
                        field,
                        "must be at least 0 and below 1, with at most 4 decimal places",
                    ));
                }
            }
        }
        if let Some(ttl) = self.hold_ttl {
            if !(MIN_HOLD_TTL_SECS..=MAX_HOLD_TTL_SECS).contains(&ttl.seconds()) {
                errors.push(FieldError::new(
                    "hold_ttl",
                    "must be from PT1M to P1D".to_owned(),
                ));
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TenantCommand {
    Create {
        slug: String,
        name: String,
        settings: TenantSettings,
        at: DateTime<Utc>,
    },
    ChangeSettings {
        name: Option<String>,
        settings: TenantSettings,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TenantEvent {
    TenantCreated {
        slug: String,
        name: String,
        settings: TenantSettings,
        created_at: DateTime<Utc>,
    },
    /// The settings after the change, whole.
    TenantSettingsChanged {
        name: String,
        settings: TenantSettings,
        changed_at: DateTime<Utc>,
    },
}

impl DomainEvent for TenantEvent {
    fn event_type(&self) -> String {
        match self {
            TenantEvent::TenantCreated { .. } => "TenantCreated",
            TenantEvent::TenantSettingsChanged { .. } => "TenantSettingsChanged",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        crate::EVENT_VERSION.to_string()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    slug: Option<String>,
    name: String,
    settings: TenantSettings,
    created_at: Option<DateTime<Utc>>,
}

impl Tenant {
    pub fn exists(&self) -> bool {
        self.slug.is_some()
    }
    pub fn slug(&self) -> Option<&str> {
        self.slug.as_deref()
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn settings(&self) -> &TenantSettings {
        &self.settings
    }
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        self.created_at
    }
}

fn check_name(name: &str, errors: &mut Vec<FieldError>) {
    if name.is_empty() || name.chars().count() > MAX_TENANT_NAME {
        errors.push(FieldError::new(
            "name",
            format!("must be 1 to {MAX_TENANT_NAME} characters"),
        ));
    }
}

impl Decide for Tenant {
    fn decide(&self, command: TenantCommand) -> Result<Vec<TenantEvent>, DomainError> {
        match command {
            TenantCommand::Create {
                slug,
                name,
                settings,
                at,
            } => {
                if self.exists() {
                    return Err(DomainError::AlreadyExists { what: "tenant" });
                }
                let name = name.trim().to_owned();
                let mut errors = Vec::new();
                check_name(&name, &mut errors);
                settings.check(&mut errors);
                DomainError::check(errors)?;
                Ok(vec![TenantEvent::TenantCreated {
                    slug,
                    name,
                    settings,
                    created_at: at,
                }])
            }
            TenantCommand::ChangeSettings { name, settings, at } => {
                if !self.exists() {
                    return Err(DomainError::NotFound { what: "tenant" });
                }
                let name = name.map_or_else(|| self.name.clone(), |n| n.trim().to_owned());
                let mut errors = Vec::new();
                check_name(&name, &mut errors);
                settings.check(&mut errors);
                DomainError::check(errors)?;
                let settings = self.settings.merged(&settings);
                if name == self.name && settings == self.settings {
                    return Ok(Vec::new());
                }
                Ok(vec![TenantEvent::TenantSettingsChanged {
                    name,
                    settings,
                    changed_at: at,
                }])
            }
        }
    }
}

impl Aggregate for Tenant {
    const TYPE: &'static str = "Tenant";
    type Command = TenantCommand;
    type Event = TenantEvent;
    type Error = DomainError;
    type Services = ();

    handle_by_deciding!();

    fn apply(&mut self, event: TenantEvent) {
        match event {
            TenantEvent::TenantCreated {
                slug,
                name,
                settings,
                created_at,
            } => {
                self.slug = Some(slug);
                self.name = name;
                self.settings = settings;
                self.created_at = Some(created_at);
            }
            TenantEvent::TenantSettingsChanged { name, settings, .. } => {
                self.name = name;
                self.settings = settings;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type Given = TestFramework<Tenant>;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    fn created() -> TenantEvent {
        TenantEvent::TenantCreated {
            slug: "garage-north".into(),
            name: "Garage North".into(),
            settings: TenantSettings {
                currency: Some("EUR".into()),
                ..Default::default()
            },
            created_at: at(),
        }
    }

    #[test]
    fn a_tenant_is_created_once() {
        Given::with(())
            .given_no_previous_events()
            .when(TenantCommand::Create {
                slug: "garage-north".into(),
                name: " Garage North ".into(),
                settings: TenantSettings {
                    currency: Some("EUR".into()),
                    ..Default::default()
                },
                at: at(),
            })
            .then_expect_events(vec![created()]);
        Given::with(())
            .given(vec![created()])
            .when(TenantCommand::Create {
                slug: "garage-north".into(),
                name: "Again".into(),
                settings: TenantSettings::default(),
                at: at(),
            })
            .then_expect_error(DomainError::AlreadyExists { what: "tenant" });
    }

    #[test]
    fn bad_settings_are_refused_field_by_field() {
        let result = Given::with(())
            .given_no_previous_events()
            .when(TenantCommand::Create {
                slug: "x".into(),
                name: "".into(),
                settings: TenantSettings {
                    currency: Some("eur".into()),
                    tax_rate: Some(Decimal::ONE),
                    platform_fee_rate: Some(Decimal::new(-1, 2)),
                    hold_ttl: Some(IsoDuration::from_seconds(5)),
                    time_zone: None,
                },
                at: at(),
            })
            .inspect_result();
        let Err(DomainError::Validation { errors }) = result else {
            panic!("expected a validation error, got {result:?}");
        };
        let mut fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "currency",
                "hold_ttl",
                "name",
                "platform_fee_rate",
                "tax_rate"
            ]
        );
    }

    #[test]
    fn a_change_keeps_what_it_does_not_name() {
        Given::with(())
            .given(vec![created()])
            .when(TenantCommand::ChangeSettings {
                name: None,
                settings: TenantSettings {
                    tax_rate: Some(Decimal::new(21, 2)),
                    ..Default::default()
                },
                at: at(),
            })
            .then_expect_events(vec![TenantEvent::TenantSettingsChanged {
                name: "Garage North".into(),
                settings: TenantSettings {
                    currency: Some("EUR".into()),
                    tax_rate: Some(Decimal::new(21, 2)),
                    ..Default::default()
                },
                changed_at: at(),
            }]);
    }

    #[test]
    fn a_change_to_the_same_settings_records_nothing() {
        Given::with(())
            .given(vec![created()])
            .when(TenantCommand::ChangeSettings {
                name: Some("Garage North".into()),
                settings: TenantSettings {
                    currency: Some("EUR".into()),
                    ..Default::default()
                },
                at: at(),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn an_unknown_tenant_cannot_change() {
        Given::with(())
            .given_no_previous_events()
            .when(TenantCommand::ChangeSettings {
                name: None,
                settings: TenantSettings::default(),
                at: at(),
            })
            .then_expect_error(DomainError::NotFound { what: "tenant" });
    }
}
