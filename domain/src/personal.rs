//! Personal data in events (DESIGN.md invariant 11, docs/PRIVACY.md).
//!
//! A field that holds a person's data (a vendor's name, a free-text
//! reason) has the type [`PersonalText`]. The domain never looks inside
//! one: the edge that takes the text from a request seals it with a key
//! of its data subject (`privacy::Keyring::seal`) before the command is
//! made, so that the event, its snapshot, the NATS message and every read
//! model carry only the sealed form. Whoever shows an event to a person
//! opens the sealed values (`privacy::Keyring::reveal`); once the
//! subject's key is destroyed they read [`ERASED`]. The hash chain covers
//! the sealed text, which never changes, so erasure never breaks it.
//!
//! Stored form: a JSON string, either
//!
//! - a sealed value, `pii:v1:<key id, 32 hex digits>:<base64url (no
//!   padding) of nonce ‖ ciphertext ‖ tag>` (docs/AUDIT.md §6), or
//! - clear text: written by the system itself (`"hold expired"`), or by a
//!   version that did not seal yet (events stored before are read as they
//!   are; their text and hash never change).
//!
//! So a field that becomes personal keeps its JSON type (a string) and
//! needs no upcaster.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a sealed value reads as once its subject's key is destroyed.
pub const ERASED: &str = "[erased]";

/// How every sealed value starts (the format's version included).
pub const SEALED_PREFIX: &str = "pii:v1:";

/// A piece of personal data in an event or a command: sealed, or clear
/// text that is not personal (see the module's documentation).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PersonalText(String);

impl PersonalText {
    /// The value as it is stored: a sealed value, or clear text.
    pub fn from_stored(stored: impl Into<String>) -> Self {
        Self(stored.into())
    }

    /// The stored text (the sealed form for a sealed value).
    pub fn as_stored(&self) -> &str {
        &self.0
    }

    /// Whether this is a sealed value.
    pub fn is_sealed(&self) -> bool {
        sealed_parts(&self.0).is_some()
    }

    /// The text, when it is clear text; `None` for a sealed value.
    pub fn clear_text(&self) -> Option<&str> {
        (!self.is_sealed()).then_some(self.0.as_str())
    }

    /// The id of the key (32 hex digits) a sealed value is opened with.
    pub fn key_id(&self) -> Option<&str> {
        sealed_parts(&self.0).map(|(key, _)| key)
    }
}

/// The key id and the sealed bytes (base64url) of a sealed value; `None`
/// for anything else.
pub fn sealed_parts(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix(SEALED_PREFIX)?;
    let (key, body) = rest.split_once(':')?;
    let hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
    let base64url = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    (key.len() == 32 && key.chars().all(hex) && !body.is_empty() && body.chars().all(base64url))
        .then_some((key, body))
}

/// Clear text (system-written, or in tests). Personal input from a request
/// is sealed instead: `privacy::Keyring::seal`.
impl From<String> for PersonalText {
    fn from(text: String) -> Self {
        Self(text)
    }
}

impl From<&str> for PersonalText {
    fn from(text: &str) -> Self {
        Self(text.to_owned())
    }
}

impl From<PersonalText> for String {
    fn from(text: PersonalText) -> Self {
        text.0
    }
}

impl fmt::Debug for PersonalText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_sealed() {
            write!(
                f,
                "PersonalText(sealed, key {})",
                self.key_id().unwrap_or("")
            )
        } else {
            write!(f, "PersonalText({:?})", self.0)
        }
    }
}

impl Serialize for PersonalText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PersonalText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEALED: &str = "pii:v1:0123456789abcdef0123456789abcdef:AAECAwQF-_8";

    #[test]
    fn a_sealed_value_is_told_from_clear_text_by_its_whole_form() {
        let sealed = PersonalText::from_stored(SEALED);
        assert!(sealed.is_sealed());
        assert_eq!(sealed.key_id(), Some("0123456789abcdef0123456789abcdef"));
        assert_eq!(sealed.clear_text(), None);
        for clear in [
            "changed my mind",
            "pii:v1:",
            "pii:v1:0123:AAAA",
            "pii:v1:0123456789ABCDEF0123456789ABCDEF:AAAA",
            "pii:v1:0123456789abcdef0123456789abcdef:",
            "pii:v1:0123456789abcdef0123456789abcdef:a b",
            "pii:v2:0123456789abcdef0123456789abcdef:AAAA",
        ] {
            let text = PersonalText::from(clear);
            assert!(!text.is_sealed(), "{clear}");
            assert_eq!(text.clear_text(), Some(clear));
            assert_eq!(text.key_id(), None);
        }
    }

    #[test]
    fn it_is_stored_as_a_plain_json_string_either_way() {
        for stored in [SEALED, "hold expired"] {
            let text = PersonalText::from_stored(stored);
            let json = serde_json::to_value(&text).unwrap();
            assert_eq!(json, serde_json::Value::String(stored.to_owned()));
            let back: PersonalText = serde_json::from_value(json).unwrap();
            assert_eq!(back, text);
        }
        // An event stored before its field became personal reads as clear
        // text, unchanged.
        let old: Option<PersonalText> = serde_json::from_str("\"too late\"").unwrap();
        assert_eq!(old.unwrap().clear_text(), Some("too late"));
        assert!(serde_json::from_str::<PersonalText>("42").is_err());
    }

    #[test]
    fn debug_never_prints_more_than_the_key_of_a_sealed_value() {
        let shown = format!("{:?}", PersonalText::from_stored(SEALED));
        assert!(!shown.contains("AAECAwQF"), "{shown}");
        assert!(shown.contains("sealed"));
    }
}
