//! config.json: reading (size-capped), zero-copy parsing into bounded structures,
//! validation with errors that name the field, and the default spec of `dory spec`.
//!
//! Flow: [`read_config`] (bytes into a fixed buffer) → [`parse`] = `scan` (syntax,
//! nesting, escapes, types, capacities; see `scan.rs` and `schema.rs`) → serde-json-core
//! into [`Spec`] → [`validate`] (names, paths, combinations).
// The CLI and the planner call this API; until they are merged, the binary does not.
#![cfg_attr(not(test), allow(dead_code))]

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

// Re-exports are the API the CLI and the planner code against (pending on their side).
#[allow(unused_imports)]
pub use default::DEFAULT_CONFIG;
#[allow(unused_imports)]
pub use error::{ErrorKind, FieldPath, Location, SpecError, Text};
#[allow(unused_imports)]
pub use model::*;
#[allow(unused_imports)]
pub use names::{rlimit_resource, NamespaceKind, CLONE_NEWTIME, ROOTFS_PROPAGATION};
#[allow(unused_imports)]
pub use read::{parse, parse_unvalidated, read_config};
#[allow(unused_imports)]
pub use scan::MAX_DEPTH;
#[allow(unused_imports)]
pub use unescape::{unescape_into, UnescapeError};
#[allow(unused_imports)]
pub use validate::validate;

#[cfg(test)]
mod tests;
