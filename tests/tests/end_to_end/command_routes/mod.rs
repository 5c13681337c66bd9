//! The command routes of API.md "Commands", driven over HTTP against the real
//! ledger, one module per resource: every route's happy path with the fields
//! of its answer, and the rejections (400, 404, 409, 413, 415, 422) with their
//! problem documents and the guarantee that a rejected command records
//! nothing. `requests` holds what every route refuses before the domain;
//! `metadata` what every recorded event carries of its request.

use ledger_tests::Answer;
use reqwest::StatusCode;

mod blackouts;
mod cached_terms;
mod changes;
mod fulfilment;
mod leases_on_a_clock;
mod listings;
mod metadata;
mod orders;
mod requests;
mod returns_on_a_clock;
mod schedules;
mod vendors;

#[track_caller]
pub(super) fn assert_created_order(answer: &Answer) {
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    assert_eq!(answer.body["status"], "placed");
}
