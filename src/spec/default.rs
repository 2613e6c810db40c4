//! The spec `dory spec` writes: runc's default, as in the seed's config.json.

/// The exact text of the default config.json.
pub const DEFAULT_CONFIG: &str = include_str!("default.json");

/// The runtime-spec version `dory spec` writes and `--version` reports (runc's, too).
pub const SPEC_VERSION: &str = "1.0.2-dev";
