//! placeholder, replaced by the domain helper
