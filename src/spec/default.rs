//! The spec `dory spec` writes: runc's default, as in the seed's config.json.

/// The exact text of the default config.json.
pub const DEFAULT_CONFIG: &str = include_str!("default.json");
