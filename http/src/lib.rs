//! The HTTP plumbing both APIs share, so that the read side never links
//! command-side code (DESIGN.md "Shape"; STYLE.md: "shared HTTP plumbing
//! lives in a crate of its own").
//!
//! - `auth`: bearer tokens, the [`Principal`] and its [`Role`];
//! - `error`: [`ApiError`], the one mapping of errors to problem+json;
//! - `extract`: body, path and query extractors whose rejections are
//!   problems, and the check for text PostgreSQL cannot store;
//! - `request_id`: the request id both APIs answer with and log;
//! - `money`: amounts as decimal strings in answers and bodies;
//! - `schema`: the problem document and the domain's types in the OpenAPI
//!   document;
//! - `tenancy`: which tenants exist.

pub mod auth;
pub mod error;
pub mod extract;
pub mod money;
pub mod order_share;
pub mod request_id;
pub mod schema;
pub mod tenancy;

pub use auth::{is_tenant_slug, Authenticator, Principal, Role, DEFAULT_TENANT};
pub use error::{invalid, is_unavailable, ApiError, PROBLEM_BASE};
pub use tenancy::TenantDirectory;
