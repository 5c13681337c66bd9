//! [`Keyring`]: the subjects' keys (`personal_data_keys`, migration 0021).
//!
//! - Sealing takes the subject's live key, made on first use. A key is
//!   kept in memory for a few seconds after it was read, for sealing
//!   only: a command sealing right after another process erased the
//!   subject may use the destroyed key, and that text then reads
//!   `[erased]` (erasure can only take more, never less).
//! - Revealing reads the keys an answer names, every time: nothing opens
//!   once the key is gone.
//! - Erasure destroys every key of the subject (its bytes become NULL; the
//!   row stays, so that a repeated erasure is recognised). Data of the
//!   subject written later gets a new key.

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use domain::personal::PersonalText;
use lru::LruCache;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::opener::{key_ids, Opener};
use crate::{Error, KeyEncryptionKey, SubjectKey};

/// How long a key read for sealing is used without reading it again.
const SEALING_TTL: Duration = Duration::from_secs(5);
/// Subjects whose sealing key is kept in memory.
const SEALING_CACHE: usize = 10_000;

/// What an erasure did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Erasure {
    pub subject: String,
    /// Keys destroyed by this call (0 when it repeats an erasure).
    pub keys_destroyed: u64,
    /// When the subject's data was (last) erased.
    pub erased_at: DateTime<Utc>,
}

#[derive(Clone)]
enum Store {
    Postgres(PgPool),
    /// Tests without a database.
    Memory(Arc<Mutex<Vec<MemoryKey>>>),
}

struct MemoryKey {
    subject: String,
    key: Option<SubjectKey>,
    erased_at: Option<DateTime<Utc>>,
}

/// The keys of every data subject; cheap to clone.
#[derive(Clone)]
pub struct Keyring {
    store: Store,
    kek: Option<KeyEncryptionKey>,
    sealing: Arc<Mutex<LruCache<String, (SubjectKey, Instant)>>>,
}

impl Keyring {
    /// The keys in PostgreSQL.
    pub fn new(pool: PgPool) -> Self {
        Self::with_store(Store::Postgres(pool))
    }

    /// Keys in memory only (unit tests).
    pub fn in_memory() -> Self {
        Self::with_store(Store::Memory(Arc::default()))
    }

    fn with_store(store: Store) -> Self {
        let capacity = NonZeroUsize::new(SEALING_CACHE).unwrap_or(NonZeroUsize::MIN);
        Self {
            store,
            kek: None,
            sealing: Arc::new(Mutex::new(LruCache::new(capacity))),
        }
    }

    /// Keys made from now on are stored wrapped by `kek`; wrapped keys need
    /// it to be read (keys stored unwrapped still are).
    pub fn with_kek(mut self, kek: Option<KeyEncryptionKey>) -> Self {
        self.kek = kek;
        self
    }

    /// `text` sealed under `subject`'s key.
    pub async fn seal(&self, subject: &str, text: &str) -> Result<PersonalText, Error> {
        Ok(self.key_of(subject).await?.seal(text))
    }

    /// [`Keyring::seal`] of an optional text.
    pub async fn seal_optional(
        &self,
        subject: &str,
        text: Option<&str>,
    ) -> Result<Option<PersonalText>, Error> {
        match text {
            Some(text) => self.seal(subject, text).await.map(Some),
            None => Ok(None),
        }
    }

    /// The subject's live key, made if it has none.
    pub async fn key_of(&self, subject: &str) -> Result<SubjectKey, Error> {
        if let Some((key, read)) = self.cache().get(subject) {
            if read.elapsed() < SEALING_TTL {
                return Ok(key.clone());
            }
        }
        let key = match &self.store {
            Store::Postgres(pool) => self.live_key_in(pool, subject).await?,
            Store::Memory(keys) => {
                let mut keys = keys.lock().unwrap_or_else(PoisonError::into_inner);
                let live = keys
                    .iter()
                    .find(|k| k.subject == subject)
                    .and_then(|k| k.key.clone());
                live.unwrap_or_else(|| {
                    let key = SubjectKey::generate();
                    keys.push(MemoryKey {
                        subject: subject.to_owned(),
                        key: Some(key.clone()),
                        erased_at: None,
                    });
                    key
                })
            }
        };
        self.cache()
            .put(subject.to_owned(), (key.clone(), Instant::now()));
        Ok(key)
    }

    async fn live_key_in(&self, pool: &PgPool, subject: &str) -> Result<SubjectKey, Error> {
        // Two writers may make a first key at once: one insert wins, the
        // other reads the winner's key.
        for _ in 0..3 {
            let live: Option<(Uuid, Vec<u8>)> = sqlx::query_as(
                "SELECT key_id, key FROM personal_data_keys
                  WHERE subject = $1 AND key IS NOT NULL",
            )
            .bind(subject)
            .fetch_optional(pool)
            .await?;
            if let Some((id, stored)) = live {
                return self.decode(id, &stored);
            }
            let key = SubjectKey::generate();
            let stored = match &self.kek {
                Some(kek) => kek.wrap(&key),
                None => key.bytes().to_vec(),
            };
            let inserted = sqlx::query(
                "INSERT INTO personal_data_keys (key_id, subject, key) VALUES ($1, $2, $3)
                 ON CONFLICT (subject) WHERE key IS NOT NULL DO NOTHING",
            )
            .bind(key.id())
            .bind(subject)
            .bind(stored)
            .execute(pool)
            .await?;
            if inserted.rows_affected() == 1 {
                return Ok(key);
            }
        }
        Err(Error::Database(sqlx::Error::Protocol(format!(
            "no live key for subject after three attempts: {subject}"
        ))))
    }

    fn decode(&self, id: Uuid, stored: &[u8]) -> Result<SubjectKey, Error> {
        match (stored.len(), &self.kek) {
            (32, _) => SubjectKey::from_bytes(id, stored),
            (_, Some(kek)) => kek.unwrap_key(id, stored),
            (_, None) => Err(Error::BadKey {
                key_id: id,
                reason: "wrapped, and no key-encryption key is configured".into(),
            }),
        }
    }

    /// The live keys among `ids` (a destroyed or unknown key is left out).
    pub async fn opener_for_ids(&self, ids: &BTreeSet<Uuid>) -> Result<Opener, Error> {
        if ids.is_empty() {
            return Ok(Opener::default());
        }
        match &self.store {
            Store::Postgres(pool) => {
                let ids: Vec<Uuid> = ids.iter().copied().collect();
                let rows: Vec<(Uuid, Vec<u8>)> = sqlx::query_as(
                    "SELECT key_id, key FROM personal_data_keys
                      WHERE key_id = ANY($1) AND key IS NOT NULL",
                )
                .bind(&ids)
                .fetch_all(pool)
                .await?;
                let keys = rows
                    .into_iter()
                    .map(|(id, stored)| self.decode(id, &stored))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Opener::new(keys))
            }
            Store::Memory(keys) => {
                let keys = keys.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(Opener::new(
                    keys.iter()
                        .filter_map(|k| k.key.clone())
                        .filter(|k| ids.contains(&k.id())),
                ))
            }
        }
    }

    /// The live keys the sealed strings of `values` name.
    pub async fn opener_for<'a>(
        &self,
        values: impl IntoIterator<Item = &'a Value>,
    ) -> Result<Opener, Error> {
        let mut ids = BTreeSet::new();
        for value in values {
            key_ids(value, &mut ids);
        }
        self.opener_for_ids(&ids).await
    }

    /// Every live key (exports: a long read that cannot stop to look keys
    /// up; what is erased while it runs is still shown by it).
    pub async fn opener_for_all(&self) -> Result<Opener, Error> {
        match &self.store {
            Store::Postgres(pool) => {
                let rows: Vec<(Uuid, Vec<u8>)> = sqlx::query_as(
                    "SELECT key_id, key FROM personal_data_keys WHERE key IS NOT NULL",
                )
                .fetch_all(pool)
                .await?;
                let keys = rows
                    .into_iter()
                    .map(|(id, stored)| self.decode(id, &stored))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Opener::new(keys))
            }
            Store::Memory(keys) => {
                let keys = keys.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(Opener::new(keys.iter().filter_map(|k| k.key.clone())))
            }
        }
    }

    /// Replaces every sealed string in `value` by its text, or `[erased]`.
    pub async fn reveal(&self, value: &mut Value) -> Result<(), Error> {
        let opener = self.opener_for([&*value]).await?;
        opener.reveal(value);
        Ok(())
    }

    /// Destroys every key of `subject`, at `at`. `None` when the subject
    /// never had a key (nothing of it was ever sealed). Repeating it
    /// destroys nothing more and answers when the data was erased.
    pub async fn erase(&self, subject: &str, at: DateTime<Utc>) -> Result<Option<Erasure>, Error> {
        self.cache().pop(subject);
        let (destroyed, last) = match &self.store {
            Store::Postgres(pool) => {
                let destroyed = sqlx::query(
                    "UPDATE personal_data_keys SET key = NULL, erased_at = $2
                      WHERE subject = $1 AND key IS NOT NULL",
                )
                .bind(subject)
                .bind(at)
                .execute(pool)
                .await?
                .rows_affected();
                let last: Option<DateTime<Utc>> = sqlx::query_scalar(
                    "SELECT max(erased_at) FROM personal_data_keys WHERE subject = $1",
                )
                .bind(subject)
                .fetch_one(pool)
                .await?;
                (destroyed, last)
            }
            Store::Memory(keys) => {
                let mut keys = keys.lock().unwrap_or_else(PoisonError::into_inner);
                let mut destroyed = 0;
                for key in keys.iter_mut().filter(|k| k.subject == subject) {
                    if key.key.take().is_some() {
                        key.erased_at = Some(at);
                        destroyed += 1;
                    }
                }
                let last = keys
                    .iter()
                    .filter(|k| k.subject == subject)
                    .filter_map(|k| k.erased_at)
                    .max();
                (destroyed, last)
            }
        };
        // Destroyed now, or by an earlier erasure.
        Ok(last.map(|erased_at| Erasure {
            subject: subject.to_owned(),
            keys_destroyed: destroyed,
            erased_at,
        }))
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, LruCache<String, (SubjectKey, Instant)>> {
        self.sealing.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::personal::ERASED;
    use serde_json::json;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_900_000_000 + seconds, 0).expect("valid")
    }

    #[tokio::test]
    async fn a_subject_keeps_one_key_until_it_is_erased() {
        let keyring = Keyring::in_memory();
        let first = keyring.key_of("cus_1").await.unwrap();
        assert_eq!(keyring.key_of("cus_1").await.unwrap().id(), first.id());
        assert_ne!(keyring.key_of("cus_2").await.unwrap().id(), first.id());
        keyring.erase("cus_1", at(0)).await.unwrap();
        assert_ne!(keyring.key_of("cus_1").await.unwrap().id(), first.id());
    }

    #[tokio::test]
    async fn erasing_one_subject_leaves_the_others_readable() {
        let keyring = Keyring::in_memory();
        let mut doc = json!({
            "a": keyring.seal("cus_1", "Ada").await.unwrap(),
            "b": keyring.seal("cus_2", "Bob").await.unwrap(),
        });
        let mut before = doc.clone();
        keyring.reveal(&mut before).await.unwrap();
        assert_eq!(before, json!({"a": "Ada", "b": "Bob"}));

        let erased = keyring.erase("cus_1", at(5)).await.unwrap().unwrap();
        assert_eq!(erased.keys_destroyed, 1);
        assert_eq!(erased.erased_at, at(5));
        keyring.reveal(&mut doc).await.unwrap();
        assert_eq!(doc, json!({"a": ERASED, "b": "Bob"}));
    }

    #[tokio::test]
    async fn a_repeated_erasure_changes_nothing_and_an_unknown_subject_is_none() {
        let keyring = Keyring::in_memory();
        keyring.seal("cus_1", "x").await.unwrap();
        let first = keyring.erase("cus_1", at(1)).await.unwrap().unwrap();
        let again = keyring.erase("cus_1", at(9)).await.unwrap().unwrap();
        assert_eq!(again.keys_destroyed, 0);
        assert_eq!(again.erased_at, first.erased_at);
        assert_eq!(keyring.erase("nobody", at(2)).await.unwrap(), None);
    }

    #[tokio::test]
    async fn data_sealed_after_an_erasure_is_readable_and_the_old_is_not() {
        let keyring = Keyring::in_memory();
        let old = keyring.seal("cus_1", "before").await.unwrap();
        keyring.erase("cus_1", at(1)).await.unwrap();
        let new = keyring.seal("cus_1", "after").await.unwrap();
        let opener = keyring.opener_for_all().await.unwrap();
        assert_eq!(opener.open(&old), ERASED);
        assert_eq!(opener.open(&new), "after");
        assert_eq!(opener.open(&PersonalText::from("clear")), "clear");
    }
}
