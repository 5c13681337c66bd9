//! Verification: walks the log in position order, a page at a time, checks
//! every event's hash against its chain and every seal over the range, and
//! reports the first position at which the log is known to be wrong.
//!
//! What is found where:
//! - a changed field of an event (payload, metadata, type, id, time,
//!   position…): `hash_mismatch` at that event;
//! - two events swapped (positions or contents exchanged): `hash_mismatch`
//!   at the lower of the two, since the position is part of the content;
//! - a removed event inside a sealed range: `missing_event` at its exact
//!   position (the seal lists its positions); beyond the last seal:
//!   `chain_broken` at the next event of its aggregate;
//! - an event added inside a sealed range: `unexpected_event`;
//! - a seal changed or signed by another key: `seal_signature` where its
//!   range starts; seals removed, reordered or not chained: `seal_invalid`;
//! - hashes rewritten consistently (chain recomputed by hand): `seal_digest`
//!   with the seal's range (any event in it may be the changed one; the
//!   seal's Merkle root and an earlier export narrow it), unless an event in
//!   the range already failed on its own, which is then the more precise
//!   answer;
//! - the newest seals removed (with or without their events), or the seals
//!   re-made: only a copy kept outside the database shows it ([`Anchors`]:
//!   the auditor's anchor, the seal stream): `seal_missing`,
//!   `seal_rewritten`; the end of the log cut off: `log_truncated` at a
//!   position the anchor or the event stream vouches for.
//!
//! A range asked for is widened to whole seals so that their digests can be
//! checked; the report says which range it covered, how far seals reach
//! (`sealed_through`) and how many events only their chain vouches for
//! (`unsealed`).

use ed25519_dalek::VerifyingKey;
use sqlx::PgPool;

use crate::chain::{self, check_chain, ChainedEvent};
use crate::merkle;
use crate::report::{missing, Failure, FailureKind, PositionRange, Report};
use crate::seal::{self, DigestBuilder, Seal};

/// Copies kept outside the database that the log must still agree with.
#[derive(Debug, Clone, Default)]
pub struct Anchors {
    /// Seals the auditor kept, or the seal stream holds.
    pub seals: Vec<KeptSeal>,
    /// Events known to have been recorded (the anchor's head, the event
    /// stream's last message).
    pub events: Vec<KeptEvent>,
    /// Event hashes by position from an earlier export: they narrow a
    /// `seal_digest` failure to the event whose hash changed.
    pub hashes: std::collections::BTreeMap<i64, Vec<u8>>,
}

/// A seal known from outside the database.
#[derive(Debug, Clone)]
pub struct KeptSeal {
    pub seal_id: i64,
    pub digest: Vec<u8>,
    /// Its range, when known.
    pub range: Option<PositionRange>,
    /// Where it was kept (`anchor`, `seal stream`), for the reason.
    pub source: &'static str,
}

impl KeptSeal {
    pub fn of(seal: &Seal, source: &'static str) -> Self {
        Self {
            seal_id: seal.seal_id,
            digest: seal.digest.clone(),
            range: Some(PositionRange {
                from: seal.from_position,
                to: seal.to_position,
            }),
            source,
        }
    }
}

/// An event known from outside the database.
#[derive(Debug, Clone)]
pub struct KeptEvent {
    pub position: i64,
    pub event_id: uuid::Uuid,
    pub source: &'static str,
}

/// Events read per query.
const PAGE: i64 = 500;

/// Verifies positions `from..=to` (default: the whole log) against the
/// hash chain and the seals, whose signatures must be `public_key`'s.
pub async fn verify(
    pool: &PgPool,
    public_key: &VerifyingKey,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Report, sqlx::Error> {
    verify_with(pool, Some(public_key), from, to).await
}

/// [`verify`], with seal signatures left unchecked when there is no key.
pub async fn verify_with(
    pool: &PgPool,
    public_key: Option<&VerifyingKey>,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Report, sqlx::Error> {
    verify_anchored(pool, public_key, from, to, &Anchors::default()).await
}

/// [`verify_with`], and the log must agree with `anchors`.
pub async fn verify_anchored(
    pool: &PgPool,
    public_key: Option<&VerifyingKey>,
    from: Option<i64>,
    to: Option<i64>,
    anchors: &Anchors,
) -> Result<Report, sqlx::Error> {
    verify_anchored_in(pool, public_key, from, to, anchors, None).await
}

/// [`verify_anchored`] for one tenant (`None`: the whole log), issue 15.
///
/// A seal's digest and Merkle root cover every tenant's events in its
/// range, so a tenant's log cannot be vouched for without checking them
/// all: the walk is the same, every chain and seal is checked, and a
/// failure anywhere fails the report (it names a position and a kind,
/// never another tenant's content). What is the tenant's own is what the
/// report counts: `checked` and `unsealed` are its events only, and
/// `tenant` names it.
pub async fn verify_anchored_in(
    pool: &PgPool,
    public_key: Option<&VerifyingKey>,
    from: Option<i64>,
    to: Option<i64>,
    anchors: &Anchors,
    tenant: Option<&str>,
) -> Result<Report, sqlx::Error> {
    let mut report = walk(pool, public_key, from, to, tenant).await?;
    if let Some(failure) = report.first_failure.as_mut() {
        narrow(pool, failure, &anchors.hashes).await?;
    }
    if report.first_failure.is_none() {
        let (checked, failure) = check_anchors(pool, anchors).await?;
        report.anchors_checked = checked;
        report.ok = failure.is_none();
        report.first_failure = failure;
    }
    Ok(report)
}

/// Names the event of a `seal_digest` failure whose hash differs from the
/// one an earlier export kept.
async fn narrow(
    pool: &PgPool,
    failure: &mut Failure,
    kept: &std::collections::BTreeMap<i64, Vec<u8>>,
) -> Result<(), sqlx::Error> {
    let (FailureKind::SealDigest, Some(range)) = (failure.kind, failure.range) else {
        return Ok(());
    };
    if kept.range(range.from..=range.to).next().is_none() {
        return Ok(());
    }
    let stored = event_log::statements::audit::hashes_between(
        pool,
        range.from,
        range.to,
        range.to - range.from + 1,
    )
    .await?;
    let changed = stored
        .iter()
        .find(|(position, hash)| kept.get(position).is_some_and(|k| k != hash));
    if let Some((position, _)) = changed {
        failure.position = Some(*position);
        failure.reason.push_str(&format!(
            "; the event at position {position} no longer has the hash an earlier export kept"
        ));
    }
    Ok(())
}

/// Compares the database with the copies kept outside it.
async fn check_anchors(
    pool: &PgPool,
    anchors: &Anchors,
) -> Result<(u64, Option<Failure>), sqlx::Error> {
    let mut checked = 0;
    let mut kept = anchors.seals.clone();
    kept.sort_by_key(|s| s.seal_id);
    for anchor in &kept {
        checked += 1;
        let stored = seal::load(pool, anchor.seal_id).await?;
        let range = anchor.range.or(stored.as_ref().map(|s| PositionRange {
            from: s.from_position,
            to: s.to_position,
        }));
        let (kind, reason) = match &stored {
            None => (
                FailureKind::SealMissing,
                format!(
                    "seal {} (kept in the {}) is not in the database: the newest seals \
                     were removed",
                    anchor.seal_id, anchor.source
                ),
            ),
            Some(stored) if stored.digest != anchor.digest => (
                FailureKind::SealRewritten,
                format!(
                    "seal {} in the database differs from the one kept in the {}: the seal \
                     chain was rewritten",
                    anchor.seal_id, anchor.source
                ),
            ),
            Some(_) => continue,
        };
        return Ok((
            checked,
            Some(Failure {
                position: None,
                range,
                kind,
                reason,
                seal_id: Some(anchor.seal_id),
            }),
        ));
    }
    for event in &anchors.events {
        checked += 1;
        let stored = event_log::statements::audit::event_id_at(pool, event.position).await?;
        let reason = match stored {
            Some(id) if id == event.event_id => continue,
            Some(id) => format!(
                "the event at position {} is {id}, not {} as the {} recorded",
                event.position, event.event_id, event.source
            ),
            None => format!(
                "the event at position {} ({}), recorded in the {}, is not in the log: \
                 its end was cut off",
                event.position, event.event_id, event.source
            ),
        };
        return Ok((
            checked,
            Some(Failure::at(
                event.position,
                FailureKind::LogTruncated,
                reason,
                None,
            )),
        ));
    }
    Ok((checked, None))
}

/// The walk over the log and its seals.
async fn walk(
    pool: &PgPool,
    public_key: Option<&VerifyingKey>,
    from: Option<i64>,
    to: Option<i64>,
    tenant: Option<&str>,
) -> Result<Report, sqlx::Error> {
    let head = event_log::statements::positions::head(pool).await?;
    let mut lo = from.unwrap_or(1).max(1);
    let mut hi = to.unwrap_or(head);
    let mut walk = Walk {
        pool,
        key: public_key,
        tenant,
        hi,
        open: None,
        previous: None,
        next: None,
        seals_checked: 0,
        sealed_through: 0,
        unsealed: 0,
    };
    let mut report = Report {
        ok: true,
        checked: 0,
        sealed_through: 0,
        unsealed: 0,
        from: lo,
        to: hi,
        seals_checked: 0,
        signatures_checked: public_key.is_some(),
        anchors_checked: 0,
        tenant: tenant.map(str::to_owned),
        first_failure: None,
    };
    if lo > hi {
        return Ok(report);
    }
    if let Some(last) = seal::first_reaching(pool, hi).await? {
        if last.from_position <= hi {
            hi = last.to_position;
        }
    }
    if let Some(first) = seal::first_reaching(pool, lo).await? {
        lo = lo.min(first.from_position);
        if first.seal_id > 1 {
            walk.previous = seal::load(pool, first.seal_id - 1).await?;
        }
        walk.next = (first.from_position <= hi).then_some(first);
    }
    walk.hi = hi;
    report.from = lo;
    report.to = hi;

    let failure = walk.run(lo, &mut report.checked).await?;
    report.seals_checked = walk.seals_checked;
    report.sealed_through = walk.sealed_through;
    report.unsealed = walk.unsealed;
    report.ok = failure.is_none();
    report.first_failure = failure;
    Ok(report)
}

struct OpenSeal {
    seal: Seal,
    /// Where the range verifiably starts (right after the previous seal).
    start: i64,
    /// Index in `seal.positions` of the next event expected.
    expected: usize,
    digest: DigestBuilder,
    /// The Merkle leaves of the events seen so far.
    leaves: Vec<[u8; 32]>,
}

struct Walk<'a> {
    pool: &'a PgPool,
    key: Option<&'a VerifyingKey>,
    /// Only this tenant's events are counted (`None`: all).
    tenant: Option<&'a str>,
    hi: i64,
    open: Option<OpenSeal>,
    previous: Option<Seal>,
    next: Option<Seal>,
    seals_checked: u64,
    sealed_through: i64,
    unsealed: u64,
}

/// The tenant of a stored event: its metadata's `tenant`, or the default
/// tenant (as the events table's generated `tenant` column).
fn tenant_of(event: &ChainedEvent) -> String {
    serde_json::from_str::<serde_json::Value>(&event.event.metadata)
        .ok()
        .and_then(|m| m.get("tenant")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| event_log::DEFAULT_TENANT.to_owned())
}

impl Walk<'_> {
    /// Whether the report counts `event`: every event, or the tenant's.
    fn counts(&self, event: &ChainedEvent) -> bool {
        self.tenant.is_none_or(|t| tenant_of(event) == t)
    }

    async fn run(&mut self, lo: i64, checked: &mut u64) -> Result<Option<Failure>, sqlx::Error> {
        let mut cursor = lo - 1;
        loop {
            let page = chain::chained_page(self.pool, cursor, self.hi, PAGE).await?;
            for event in &page {
                if self.counts(event) {
                    *checked += 1;
                }
                let position = event.event.global_position;
                if let Some(failure) = self.reach(position).await? {
                    return Ok(Some(failure));
                }
                if let Some(failure) = self.sealed(event).or_else(|| check_chain(event)) {
                    return Ok(Some(failure));
                }
                cursor = position;
            }
            if (page.len() as i64) < PAGE {
                break;
            }
        }
        self.reach(self.hi.saturating_add(1)).await
    }

    /// Closes the seals that end before `position` and opens those that
    /// start at or before it.
    async fn reach(&mut self, position: i64) -> Result<Option<Failure>, sqlx::Error> {
        loop {
            if let Some(open) = &self.open {
                if open.seal.to_position >= position {
                    return Ok(None);
                }
                let open = self.open.take().expect("an open seal");
                if let Some(failure) = close(&open) {
                    return Ok(Some(failure));
                }
                let next = seal::next_after(self.pool, open.seal.seal_id).await?;
                self.next = next.filter(|s| s.from_position <= self.hi);
                self.previous = Some(open.seal);
                continue;
            }
            match self.next.take() {
                Some(next) if next.from_position <= position => {
                    self.seals_checked += 1;
                    self.sealed_through = self.sealed_through.max(next.to_position);
                    let start = self.start_of(&next);
                    if let Some(failure) = self.entry_failure(&next, start) {
                        return Ok(Some(failure));
                    }
                    self.open = Some(OpenSeal {
                        digest: DigestBuilder::new(&next.previous_digest),
                        seal: next,
                        start,
                        expected: 0,
                        leaves: Vec::new(),
                    });
                }
                next => {
                    self.next = next;
                    return Ok(None);
                }
            }
        }
    }

    fn start_of(&self, seal: &Seal) -> i64 {
        match &self.previous {
            _ if seal.seal_id == 1 => 1,
            Some(previous) => seal.from_position.min(previous.to_position + 1),
            None => seal.from_position,
        }
    }

    /// What is wrong with a seal on its own or with its link to the
    /// previous one.
    fn entry_failure(&self, seal: &Seal, start: i64) -> Option<Failure> {
        let fail = |kind, reason: String| {
            Some(Failure {
                position: Some(start),
                range: Some(PositionRange {
                    from: start,
                    to: seal.to_position,
                }),
                kind,
                reason: format!(
                    "seal {} over [{}, {}]: {reason}",
                    seal.seal_id, seal.from_position, seal.to_position
                ),
                seal_id: Some(seal.seal_id),
            })
        };
        if let Some(key) = self.key {
            if !seal.signature_is_valid(key) {
                return fail(
                    FailureKind::SealSignature,
                    format!(
                        "bad signature: the seal was altered or not signed by the audit key \
                         (it names key `{}`)",
                        seal.key_id
                    ),
                );
            }
        }
        match &self.previous {
            None if seal.seal_id == 1 => {
                if seal.from_position != 1 || !seal.previous_digest.is_empty() {
                    return fail(
                        FailureKind::SealInvalid,
                        "the first seal must start at position 1 with no previous digest"
                            .to_owned(),
                    );
                }
            }
            None => {
                return fail(
                    FailureKind::SealInvalid,
                    format!("seal {} before it is missing", seal.seal_id - 1),
                )
            }
            Some(previous) if previous.seal_id != seal.seal_id - 1 => {
                return fail(
                    FailureKind::SealInvalid,
                    format!(
                        "seals {}..{} between it and seal {} are missing",
                        previous.seal_id + 1,
                        seal.seal_id - 1,
                        previous.seal_id
                    ),
                )
            }
            Some(previous) => {
                if seal.from_position != previous.to_position + 1 {
                    return fail(
                        FailureKind::SealInvalid,
                        format!(
                            "does not start right after seal {}, which ends at {}",
                            previous.seal_id, previous.to_position
                        ),
                    );
                }
                if seal.previous_digest != previous.digest {
                    return fail(
                        FailureKind::SealInvalid,
                        format!(
                            "its previous digest is not seal {}'s digest",
                            previous.seal_id
                        ),
                    );
                }
            }
        }
        let ordered = seal.positions.windows(2).all(|w| w[0] < w[1])
            && seal
                .positions
                .iter()
                .all(|p| (seal.from_position..=seal.to_position).contains(p));
        if !ordered || seal.event_count != seal.positions.len() as i64 {
            return fail(
                FailureKind::SealInvalid,
                "its positions are not the ascending positions of its event count within its range"
                    .to_owned(),
            );
        }
        None
    }

    /// Checks an event against the open seal (if any) and folds it in.
    fn sealed(&mut self, event: &ChainedEvent) -> Option<Failure> {
        if self.open.is_none() {
            if self.counts(event) {
                self.unsealed += 1;
            }
            return None;
        }
        let open = self.open.as_mut()?;
        let position = event.event.global_position;
        let seal_id = open.seal.seal_id;
        match open.seal.positions.get(open.expected) {
            Some(&expected) if expected < position => Some(missing(seal_id, expected)),
            Some(&expected) if expected == position => {
                open.expected += 1;
                open.digest.push(position, &event.event.hash);
                open.leaves
                    .push(merkle::leaf_hash(position, &event.event.hash));
                None
            }
            _ => Some(Failure::at(
                position,
                FailureKind::UnexpectedEvent,
                format!(
                    "an event was added at position {position}, where seal {seal_id} recorded none"
                ),
                Some(seal_id),
            )),
        }
    }
}

/// The failure found when a seal's range has been walked.
fn close(open: &OpenSeal) -> Option<Failure> {
    let seal = &open.seal;
    if let Some(&position) = seal.positions.get(open.expected) {
        return Some(missing(seal.seal_id, position));
    }
    let digest_differs = open.digest.clone().finish() != seal.digest;
    let root_differs = seal
        .merkle_root
        .as_ref()
        .is_some_and(|root| merkle::root_of_leaves(&open.leaves).as_slice() != root.as_slice());
    (digest_differs || root_differs).then(|| {
        Failure::within(
            open.start,
            seal.to_position,
            FailureKind::SealDigest,
            format!(
                "seal {} over [{}, {}]: the events' hashes no longer give the sealed {} \
                 (hashes were rewritten somewhere in the range; an earlier export of the \
                 hashes or GET /v1/audit/proof?position= tells which event)",
                seal.seal_id,
                seal.from_position,
                seal.to_position,
                if digest_differs {
                    "digest"
                } else {
                    "Merkle root"
                }
            ),
            seal.seal_id,
        )
    })
}
