//! An anchor: what an auditor keeps outside the database after a good
//! verification (`ledger audit verify --save-anchor FILE`) and checks the
//! log against next time (`--anchor FILE`): the newest seal and the last
//! event then recorded. If either is gone or different later, the newest
//! seals were removed, the seal chain re-made or the log cut short.
//!
//! A bare seal (one element of `GET /v1/audit/seals`) is an anchor too.

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use crate::seal::{self, RecordError, Seal, SealRecord};
use crate::verify::{Anchors, KeptEvent, KeptSeal};

/// The last event recorded when the anchor was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadEvent {
    pub position: i64,
    pub event_id: Uuid,
}

/// What `--save-anchor` writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnchorFile {
    pub seal: Option<SealRecord>,
    pub head: Option<HeadEvent>,
}

impl AnchorFile {
    /// The newest seal and the last event of the log now.
    pub async fn take(pool: &PgPool) -> Result<Self, sqlx::Error> {
        let seal = seal::newest(pool).await?.as_ref().map(SealRecord::from);
        let position = event_log::statements::positions::head(pool).await?;
        let head = event_log::statements::audit::event_id_at(pool, position)
            .await?
            .map(|event_id| HeadEvent { position, event_id });
        Ok(Self { seal, head })
    }

    /// Reads an anchor file, or a bare seal.
    pub fn parse(json: &[u8]) -> Result<Self, RecordError> {
        let file: Result<AnchorFile, _> = serde_json::from_slice(json);
        match file {
            Ok(file) if file.seal.is_some() || file.head.is_some() => Ok(file),
            _ => {
                let seal: SealRecord = serde_json::from_slice(json).map_err(|e| {
                    RecordError::new(format!("neither an anchor file nor a seal: {e}"))
                })?;
                Ok(Self {
                    seal: Some(seal),
                    head: None,
                })
            }
        }
    }

    /// What the log must agree with.
    pub fn anchors(&self) -> Result<Anchors, RecordError> {
        let mut anchors = Anchors::default();
        if let Some(record) = &self.seal {
            let seal = Seal::try_from(record)?;
            anchors.seals.push(KeptSeal::of(&seal, "auditor's anchor"));
        }
        if let Some(head) = &self.head {
            anchors.events.push(KeptEvent {
                position: head.position,
                event_id: head.event_id,
                source: "auditor's anchor",
            });
        }
        Ok(anchors)
    }
}
