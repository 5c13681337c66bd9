//! What an `Idempotency-Key` remembers of a request, so that a retry is
//! recognised by its meaning rather than its bytes (API.md "Conventions"):
//! the method, the path (with its query) and the body's canonical JSON —
//! object keys sorted, no insignificant whitespace — so a client retrying
//! with another JSON library, which orders keys or spaces differently, gets
//! the first answer again. A body that is not JSON, or one with a repeated
//! object key (whose meaning depends on the parser), is compared by bytes.
//!
//! Keys stored before this version hold the byte fingerprint
//! ([`legacy_fingerprint`]); a stored key matches a request whose canonical
//! or byte fingerprint it equals, so those keys keep replaying for the very
//! same bytes until they expire (24 h).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use sha2::{Digest, Sha256};

/// A request as a key remembers it, and as keys stored by earlier versions
/// remembered it.
pub struct RequestFingerprint {
    current: Vec<u8>,
    legacy: Vec<u8>,
}

impl RequestFingerprint {
    pub fn of(method: &str, uri: &str, body: &[u8]) -> Self {
        Self {
            current: fingerprint(method, uri, body),
            legacy: legacy_fingerprint(method, uri, body),
        }
    }

    /// What a new key stores.
    pub fn stored(&self) -> &[u8] {
        &self.current
    }

    /// Whether a stored key was taken by this same request.
    pub fn matches(&self, stored: &[u8]) -> bool {
        stored == self.current.as_slice() || stored == self.legacy.as_slice()
    }
}

/// Sha-256 of the request as the API compares it: method, path and query,
/// and the body's canonical JSON (or its bytes when it is not plain JSON).
/// Tagged so it never equals a [`legacy_fingerprint`].
fn fingerprint(method: &str, uri: &str, body: &[u8]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(b"idempotency/v2\n");
    hasher.update(method.as_bytes());
    hasher.update(b" ");
    hasher.update(uri.as_bytes());
    hasher.update(b"\n");
    match canonical_json(body) {
        Some(canonical) => {
            hasher.update(b"json\n");
            hasher.update(canonical);
        }
        None => {
            hasher.update(b"bytes\n");
            hasher.update(body);
        }
    }
    hasher.finalize().to_vec()
}

/// The fingerprint of earlier versions: sha256(method " " uri "\n" body),
/// byte for byte. Only read, to match keys those versions stored.
fn legacy_fingerprint(method: &str, uri: &str, body: &[u8]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(b" ");
    hasher.update(uri.as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    hasher.finalize().to_vec()
}

/// The canonical form of a JSON document: object keys sorted (by their
/// UTF-8 bytes), no whitespace, strings and numbers as serde_json writes
/// them. `None` when `body` is not JSON or repeats a key in an object.
fn canonical_json(body: &[u8]) -> Option<Vec<u8>> {
    let value: Json = serde_json::from_slice(body).ok()?;
    let mut out = Vec::with_capacity(body.len());
    value.write(&mut out);
    Some(out)
}

/// A parsed JSON value whose objects are sorted and have unique keys.
enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(BTreeMap<String, Json>),
}

impl Json {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Json::Null => out.extend_from_slice(b"null"),
            Json::Bool(true) => out.extend_from_slice(b"true"),
            Json::Bool(false) => out.extend_from_slice(b"false"),
            Json::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
            Json::String(s) => write_string(s, out),
            Json::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write(out);
                }
                out.push(b']');
            }
            Json::Object(fields) => {
                out.push(b'{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_string(key, out);
                    out.push(b':');
                    value.write(out);
                }
                out.push(b'}');
            }
        }
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    // Writing a string to a Vec cannot fail.
    serde_json::to_writer(&mut *out, s).unwrap_or_default();
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        serde_json::Number::from_f64(v)
            .map(Json::Number)
            .ok_or_else(|| E::custom("not a finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut fields = BTreeMap::new();
        while let Some((key, value)) = map.next_entry::<String, Json>()? {
            if fields.insert(key, value).is_some() {
                return Err(de::Error::custom("repeated object key"));
            }
        }
        Ok(Json::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(body: &str) -> Option<String> {
        canonical_json(body.as_bytes()).map(|c| String::from_utf8(c).expect("utf-8"))
    }

    #[test]
    fn keys_are_sorted_and_whitespace_dropped_at_every_depth() {
        let body = r#" {
            "items" : [ { "quantity" : 2 , "listing_id" : "a" } , 3, null ],
            "b": {"z": true, "a": false, "m": -1.5e3},
            "a": "x y"
        } "#;
        assert_eq!(
            canonical(body).as_deref(),
            Some(
                r#"{"a":"x y","b":{"a":false,"m":-1500.0,"z":true},"items":[{"listing_id":"a","quantity":2},3,null]}"#
            )
        );
    }

    #[test]
    fn reordered_and_respaced_bodies_have_one_canonical_form() {
        let one = r#"{"name":"Alpine","tags":["a","b"],"n":1}"#;
        let two = "{\n  \"n\": 1,\r\n\t\"tags\": [ \"a\", \"b\" ],  \"name\": \"Alpine\"\n}";
        assert_eq!(canonical(one), canonical(two));
        assert_eq!(
            fingerprint("POST", "/v1/vendors", one.as_bytes()),
            fingerprint("POST", "/v1/vendors", two.as_bytes())
        );
    }

    #[test]
    fn values_order_of_arrays_method_and_path_still_count() {
        let base = fingerprint("POST", "/v1/vendors", br#"{"name":"Alpine"}"#);
        assert_ne!(
            base,
            fingerprint("POST", "/v1/vendors", br#"{"name":"Alpina"}"#)
        );
        assert_ne!(
            base,
            fingerprint("PUT", "/v1/vendors", br#"{"name":"Alpine"}"#)
        );
        assert_ne!(
            base,
            fingerprint("POST", "/v1/vendor", br#"{"name":"Alpine"}"#)
        );
        assert_ne!(canonical("[1,2]"), canonical("[2,1]"));
        assert_ne!(canonical(r#"{"n":1}"#), canonical(r#"{"n":"1"}"#));
    }

    #[test]
    fn strings_are_escaped_as_json() {
        assert_eq!(
            canonical(r#"{"k\u0065y": "a\"b\\c\u00e9\n"}"#).as_deref(),
            Some("{\"key\":\"a\\\"b\\\\cé\\n\"}")
        );
    }

    #[test]
    fn bodies_that_are_not_plain_json_compare_by_bytes() {
        assert_eq!(canonical("not json"), None);
        assert_eq!(canonical(""), None);
        assert_eq!(canonical(r#"{"a":1,"a":2}"#), None, "a repeated key");
        assert_ne!(
            fingerprint("POST", "/p", b"not json"),
            fingerprint("POST", "/p", b"not  json")
        );
        assert_eq!(
            fingerprint("POST", "/p", b"not json"),
            fingerprint("POST", "/p", b"not json")
        );
    }

    #[test]
    fn a_stored_key_matches_by_meaning_or_by_the_legacy_bytes() {
        let request = RequestFingerprint::of("POST", "/v1/vendors", br#"{ "name" : "A" }"#);
        let respaced = RequestFingerprint::of("POST", "/v1/vendors", br#"{"name":"A"}"#);
        assert!(request.matches(respaced.stored()));
        assert!(request.matches(&legacy_fingerprint(
            "POST",
            "/v1/vendors",
            br#"{ "name" : "A" }"#
        )));
        assert!(!request.matches(&legacy_fingerprint(
            "POST",
            "/v1/vendors",
            br#"{"name":"A"}"#
        )));
        let other = RequestFingerprint::of("POST", "/v1/vendors", br#"{"name":"B"}"#);
        assert!(!request.matches(other.stored()));
    }

    #[test]
    fn the_fingerprint_never_equals_the_legacy_one() {
        for body in [&b""[..], b"{}", br#"{"a":1}"#, b"x"] {
            assert_ne!(
                fingerprint("POST", "/p", body),
                legacy_fingerprint("POST", "/p", body)
            );
        }
    }
}
