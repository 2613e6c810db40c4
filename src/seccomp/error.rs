//! `SeccompError`: every way a `linux.seccomp` profile can fail to compile.
//!
//! Display is `config.json: <field path>: <message>`, like `SpecError`, into which
//! validation converts it.

use core::fmt;

use crate::spec::{ErrorKind, FieldPath, SpecError, Text};

/// A name or value quoted in a message (as `spec::Quoted`).
type Quoted = Text<96>;

/// What is wrong; one variant per failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeccompErrorKind {
    /// A name not in its table (`what`: "action", "comparison operator", ...).
    UnknownName { what: &'static str, name: Quoted },
    /// A feature dory does not implement.
    Unsupported(&'static str),
    /// Any other constraint, stated in the message.
    Invalid(&'static str),
    /// The compiled program has more than `limit` instructions.
    TooLarge { limit: usize },
}

impl fmt::Display for SeccompErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeccompErrorKind::UnknownName { what, name } => write!(f, "unknown {what} \"{name}\""),
            SeccompErrorKind::Unsupported(msg) | SeccompErrorKind::Invalid(msg) => f.write_str(msg),
            SeccompErrorKind::TooLarge { limit } => write!(
                f,
                "the profile compiles to more than {limit} BPF instructions (limit {limit})"
            ),
        }
    }
}

/// A `linux.seccomp` error naming its field (boxed: the path text is inline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompError(Box<Detail>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Detail {
    path: FieldPath,
    kind: SeccompErrorKind,
}

impl SeccompError {
    pub fn at(path: fmt::Arguments<'_>, kind: SeccompErrorKind) -> Self {
        Self(Box::new(Detail {
            path: FieldPath::from_fmt(path),
            kind,
        }))
    }

    /// The field path, e.g. `linux.seccomp.syscalls[3].action`.
    #[cfg(test)]
    pub fn path(&self) -> &str {
        self.0.path.as_str()
    }

    #[cfg(test)]
    pub fn kind(&self) -> &SeccompErrorKind {
        &self.0.kind
    }

    pub fn unknown(path: fmt::Arguments<'_>, what: &'static str, name: &str) -> Self {
        Self::at(
            path,
            SeccompErrorKind::UnknownName {
                what,
                name: Quoted::of(name),
            },
        )
    }

    /// The same error as a `SpecError`, for `spec::validate`.
    pub fn into_spec_error(self) -> SpecError {
        let Detail { path, kind } = *self.0;
        let kind = match kind {
            SeccompErrorKind::UnknownName { what, name } => ErrorKind::UnknownName { what, name },
            SeccompErrorKind::Unsupported(msg) => ErrorKind::Unsupported(msg),
            SeccompErrorKind::Invalid(msg) => ErrorKind::Invalid(msg),
            SeccompErrorKind::TooLarge { .. } => ErrorKind::Invalid(TOO_LARGE),
        };
        SpecError::field(path, kind)
    }
}

/// [`SeccompErrorKind::TooLarge`] as a static text (`ErrorKind::Invalid` takes no number).
pub(crate) const TOO_LARGE: &str =
    "the profile compiles to more than 4096 BPF instructions (limit MAX_BPF_INSNS = 4096)";

impl fmt::Display for SeccompError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config.json: {}: {}", self.0.path, self.0.kind)
    }
}

impl std::error::Error for SeccompError {}
