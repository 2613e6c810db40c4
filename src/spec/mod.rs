//! config.json: reading (size-capped), zero-copy parsing into bounded structures,
//! validation with errors that name the field, and the default spec of `dory spec`.
//!
//! Flow: [`read_config`] (bytes into a fixed buffer) → [`parse`] = `scan` (syntax,
//! nesting, escapes, types, capacities; see `scan.rs` and `schema.rs`) → serde-json-core
//! into [`Spec`] → [`validate`] (names, paths, combinations).

mod bounded;
pub mod caps;
mod default;
mod error;
pub mod model;
mod names;
mod pseudofs;
mod read;
mod scan;
mod schema;
mod unescape;
mod validate;

// The API the CLI, the planner and the seccomp compiler use.
pub use default::{DEFAULT_CONFIG, SPEC_VERSION};
pub use error::{io_text, ErrorKind, FieldPath, SpecError, Text};
pub use model::*;
pub use names::{rlimit_resource, NamespaceKind, CLONE_NEWTIME};
pub use pseudofs::names_pseudo_fs;
pub use read::{open_regular, parse, read_config, OpenError};
pub use unescape::unescape_into;
// For the tests: the parser's halves and the error's location.
#[cfg(test)]
pub use error::Location;
#[cfg(test)]
pub use names::ROOTFS_PROPAGATION;
#[cfg(any(test, fuzzing))]
pub use read::parse_unvalidated;
#[cfg(test)]
pub use validate::validate;

#[cfg(test)]
mod tests;
