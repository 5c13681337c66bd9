//! The request id both APIs answer with and log (API.md "Conventions"): the
//! client's own when it is a plain token, else a fresh one. On the command
//! side it becomes the correlation id of every event the request records,
//! and the event log is immutable: what is kept must be safe to show for
//! ever (no markup, no spaces, no control or non-ASCII characters).

use axum::http::request::Parts;
use uuid::Uuid;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest client-sent request id that is kept.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Whether a client-sent request id is kept: 1 to 128 characters, each of
/// `[A-Za-z0-9._:-]`. Others are replaced by a fresh one.
pub fn is_acceptable_request_id(id: &str) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// A generated request id (a UUIDv7: time-ordered, always acceptable).
pub fn fresh_request_id() -> String {
    Uuid::now_v7().to_string()
}

/// The request id set by the request-id layer (or sent by the client).
pub fn request_id(parts: &Parts) -> String {
    parts
        .headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| is_acceptable_request_id(id))
        .map(str::to_owned)
        .unwrap_or_else(fresh_request_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CHARSET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-";

    /// The rule as the API states it, written independently of the code.
    fn by_the_rule(id: &str) -> bool {
        let n = id.chars().count();
        (1..=128).contains(&n) && id.chars().all(|c| CHARSET.contains(c))
    }

    #[test]
    fn the_issue_cases() {
        assert!(!is_acceptable_request_id("<script>alert(1)</script>"));
        assert!(!is_acceptable_request_id(&"a".repeat(129)));
        assert!(is_acceptable_request_id(&"a".repeat(128)));
        assert!(!is_acceptable_request_id("two words"));
        assert!(!is_acceptable_request_id("café"));
        assert!(!is_acceptable_request_id(""));
        assert!(is_acceptable_request_id("trace-01.a_b:c"));
        assert!(is_acceptable_request_id(&fresh_request_id()));
    }

    proptest! {
        /// Every id of 1 to 128 characters of the set is kept.
        #[test]
        fn ids_of_the_charset_are_kept(id in "[A-Za-z0-9._:-]{1,128}") {
            prop_assert!(is_acceptable_request_id(&id));
        }

        /// Too long, even of the set, is replaced.
        #[test]
        fn ids_longer_than_128_are_replaced(id in "[A-Za-z0-9._:-]{129,300}") {
            prop_assert!(!is_acceptable_request_id(&id));
        }

        /// One character outside the set anywhere is enough to replace it.
        #[test]
        fn one_foreign_character_replaces_the_id(
            head in "[A-Za-z0-9._:-]{0,60}",
            bad in any::<char>().prop_filter("outside the set", |c| !CHARSET.contains(*c)),
            tail in "[A-Za-z0-9._:-]{0,60}",
        ) {
            let id = format!("{head}{bad}{tail}");
            prop_assert!(!is_acceptable_request_id(&id));
        }

        /// Over arbitrary strings, kept exactly when the rule says so.
        #[test]
        fn kept_exactly_by_the_rule(id in any::<String>()) {
            prop_assert_eq!(is_acceptable_request_id(&id), by_the_rule(&id));
        }

        /// Over printable ASCII (the old rule), kept exactly by the new one.
        #[test]
        fn printable_ascii_is_kept_exactly_by_the_rule(id in "[ -~]{0,140}") {
            prop_assert_eq!(is_acceptable_request_id(&id), by_the_rule(&id));
        }
    }
}
