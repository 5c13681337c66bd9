//! Least privilege (DESIGN.md "Roles in PostgreSQL"): the running parts
//! connect as an application role that may append to the log and the seals
//! but never change or remove them. Migrations run as the owner role, which
//! owns every table; the application role owns none, so it can neither
//! `ALTER TABLE … DISABLE TRIGGER` (owners only) nor set
//! `session_replication_role` (superusers only), and it is granted no
//! UPDATE, DELETE or TRUNCATE on `events` and `audit_seals`.
//!
//! `ledger migrate --app-role ROLE` calls [`grant_application_role`] after
//! the migrations, as the owner, so that tables added later are granted too.

use sqlx::PgPool;

/// The tables the application role may only read and append to.
pub const APPEND_ONLY: &[&str] = &["events", "audit_seals"];

/// A role name that is not a plain identifier.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{0}` is not a role name (lower-case letters, digits and `_`, starting with a letter or `_`)"
)]
pub struct BadRoleName(pub String);

fn checked(role: &str) -> Result<&str, BadRoleName> {
    let mut chars = role.chars();
    let plain = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && role.len() <= 63;
    if plain {
        Ok(role)
    } else {
        Err(BadRoleName(role.to_owned()))
    }
}

/// What [`grant_application_role`] failed on.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error(transparent)]
    BadRoleName(#[from] BadRoleName),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// Grants `role` what the running parts need on every table and sequence
/// of the schema, then takes back UPDATE, DELETE and TRUNCATE on the log
/// and the seals. Run as the owner of the tables.
pub async fn grant_application_role(pool: &PgPool, role: &str) -> Result<(), GrantError> {
    let role = checked(role)?;
    let mut statements = vec![
        format!("GRANT USAGE ON SCHEMA public TO \"{role}\""),
        format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO \"{role}\""
        ),
        format!("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO \"{role}\""),
        format!("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO \"{role}\""),
    ];
    for table in APPEND_ONLY {
        statements.push(format!(
            "REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {table} FROM \"{role}\""
        ));
        statements.push(format!("GRANT SELECT, INSERT ON {table} TO \"{role}\""));
    }
    let mut tx = pool.begin().await?;
    for statement in &statements {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::checked;

    #[test]
    fn only_plain_role_names_are_taken() {
        assert!(checked("ledger_app").is_ok());
        assert!(checked("_a1").is_ok());
        for bad in ["", "Ledger", "1app", "app;drop", "a\"b", "app-role"] {
            assert!(checked(bad).is_err(), "{bad}");
        }
    }
}
