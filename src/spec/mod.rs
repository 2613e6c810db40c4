//! config.json: reading (size-capped), zero-copy parsing into bounded structures,
//! validation with errors that name the field, and the default spec of `dory spec`.
//!
//! Flow: [`read_config`] (bytes into a fixed buffer) → [`parse`] = `scan` (syntax,
//! nesting, escapes, types, capacities; see `scan.rs` and `schema.rs`) → serde-json-core
//! into [`Spec`] → [`validate`] (names, paths, combinations).
// The CLI and the planner call this API; until they are merged, the binary does not.
#![cfg_attr(not(test), allow(dead_code, unused_imports))]

pub mod caps;
mod default;
mod error;
pub mod model;
mod names;
mod read;
mod scan;
mod schema;
mod unescape;
mod validate;

pub use default::DEFAULT_CONFIG;
pub use error::{ErrorKind, FieldPath, Location, SpecError, Text};
pub use model::*;
pub use names::{rlimit_resource, NamespaceKind, CLONE_NEWTIME, ROOTFS_PROPAGATION};
pub use read::{parse, parse_unvalidated, read_config};
pub use scan::MAX_DEPTH;
pub use unescape::{unescape_into, UnescapeError};
pub use validate::validate;

#[cfg(test)]
mod tests;
