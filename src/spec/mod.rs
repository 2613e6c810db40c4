//! config.json: reading (size-capped), zero-copy parsing into bounded structures,
//! validation with errors that name the field, and the default spec of `dory spec`.

pub mod model;

pub use model::*;
mod shim;
pub use shim::*;
