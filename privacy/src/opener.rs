//! [`Opener`]: the keys one answer needs, in hand, so that revealing its
//! documents is plain (synchronous) work: every string of a JSON document
//! that is a sealed text becomes its text, or `[erased]` when its key was
//! destroyed. Field names are never sealed, so a document keeps its shape.

use std::collections::{BTreeSet, HashMap};

use domain::personal::{sealed_parts, PersonalText, ERASED, SEALED_PREFIX};
use serde_json::Value;
use uuid::Uuid;

use crate::SubjectKey;

/// What a sealed text whose key exists but does not open it reads as (it
/// was changed behind the application's back; the hash chain says where).
pub const UNREADABLE: &str = "[unreadable]";

/// The live keys an answer needs (a key missing here was destroyed).
#[derive(Clone, Debug, Default)]
pub struct Opener {
    keys: HashMap<String, SubjectKey>,
}

impl Opener {
    pub fn new(keys: impl IntoIterator<Item = SubjectKey>) -> Self {
        Self {
            keys: keys
                .into_iter()
                .map(|key| (key.id().simple().to_string(), key))
                .collect(),
        }
    }

    /// The text of one stored value: itself when it is clear text, its
    /// plaintext when sealed under a live key, `[erased]` otherwise.
    pub fn open_str(&self, stored: &str) -> String {
        match sealed_parts(stored) {
            None => stored.to_owned(),
            Some((key_id, _)) => match self.keys.get(key_id) {
                None => ERASED.to_owned(),
                Some(key) => key.open(stored).unwrap_or_else(|err| {
                    tracing::warn!(key_id, error = %err, "a sealed text does not open");
                    UNREADABLE.to_owned()
                }),
            },
        }
    }

    /// [`Opener::open_str`] of a typed field.
    pub fn open(&self, text: &PersonalText) -> String {
        self.open_str(text.as_stored())
    }

    /// Replaces every sealed string in `value` by its text.
    pub fn reveal(&self, value: &mut Value) {
        match value {
            Value::String(s) if s.starts_with(SEALED_PREFIX) => *s = self.open_str(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.reveal(v)),
            Value::Object(fields) => fields.values_mut().for_each(|v| self.reveal(v)),
            _ => {}
        }
    }

    /// A JSON text with its sealed strings revealed (the text itself when
    /// it holds none, or is not JSON).
    pub fn reveal_json_text(&self, text: &str) -> String {
        if !text.contains(SEALED_PREFIX) {
            return text.to_owned();
        }
        match serde_json::from_str::<Value>(text) {
            Ok(mut value) => {
                self.reveal(&mut value);
                value.to_string()
            }
            Err(_) => text.to_owned(),
        }
    }
}

/// Adds the id of every key a sealed string of `value` names to `into`.
pub fn key_ids(value: &Value, into: &mut BTreeSet<Uuid>) {
    match value {
        Value::String(s) => key_ids_in_str(s, into),
        Value::Array(items) => items.iter().for_each(|v| key_ids(v, into)),
        Value::Object(fields) => fields.values().for_each(|v| key_ids(v, into)),
        _ => {}
    }
}

/// The key of `text`, when it is a sealed text.
pub fn key_ids_in_str(text: &str, into: &mut BTreeSet<Uuid>) {
    if let Some(id) = sealed_parts(text).and_then(|(key, _)| Uuid::parse_str(key).ok()) {
        into.insert(id);
    }
}

/// The keys sealed strings anywhere in a JSON text name (a text that is
/// not JSON names none).
pub fn key_ids_in_json_text(text: &str, into: &mut BTreeSet<Uuid>) {
    if !text.contains(SEALED_PREFIX) {
        return;
    }
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        key_ids(&value, into);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sealed_strings_anywhere_are_revealed_or_read_as_erased() {
        let (live, gone) = (SubjectKey::generate(), SubjectKey::generate());
        let mut doc = json!({
            "VendorRegistered": {"name": live.seal("Ada").as_stored(), "vendor_id": "v"},
            "refunds": [{"reason": gone.seal("broken").as_stored(), "amount": "1.00"}],
            "note": "pii:v1:not-a-sealed-text",
            "count": 3,
        });
        let mut wanted = BTreeSet::new();
        key_ids(&doc, &mut wanted);
        assert_eq!(wanted, BTreeSet::from([live.id(), gone.id()]));

        Opener::new([live.clone()]).reveal(&mut doc);
        assert_eq!(
            doc,
            json!({
                "VendorRegistered": {"name": "Ada", "vendor_id": "v"},
                "refunds": [{"reason": ERASED, "amount": "1.00"}],
                "note": "pii:v1:not-a-sealed-text",
                "count": 3,
            })
        );
    }

    #[test]
    fn a_json_text_without_sealed_strings_is_passed_as_is() {
        let opener = Opener::default();
        let text = r#"{"b": 1,  "a": "x"}"#;
        assert_eq!(opener.reveal_json_text(text), text);
        let key = SubjectKey::generate();
        let sealed = format!(r#"{{"reason":"{}"}}"#, key.seal("x").as_stored());
        assert_eq!(opener.reveal_json_text(&sealed), r#"{"reason":"[erased]"}"#);
        assert_eq!(
            Opener::new([key]).reveal_json_text(&sealed),
            r#"{"reason":"x"}"#
        );
    }

    #[test]
    fn a_tampered_sealed_text_reads_as_unreadable_not_as_erased() {
        let key = SubjectKey::generate();
        let sealed = key.seal("abc").as_stored().to_owned();
        let at = sealed.len() - 5;
        let swap = if &sealed[at..=at] == "A" { "B" } else { "A" };
        let tampered = format!("{}{swap}{}", &sealed[..at], &sealed[at + 1..]);
        let opener = Opener::new([key]);
        assert_eq!(opener.open_str(&tampered), UNREADABLE);
        assert_eq!(opener.open_str(&sealed), "abc");
        assert_eq!(opener.open_str("clear text"), "clear text");
    }
}
