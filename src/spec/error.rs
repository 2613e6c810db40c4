//! `SpecError`: every way reading, parsing or validating config.json can fail.
//!
//! Display is `config.json: <where>: <message>`, where `<where>` is the field path
//! (`process.capabilities.bounding[2]`), a `line L, column C` position for syntax errors,
//! or nothing for file-level errors.

use core::fmt::{self, Write};

use crate::spec::unescape::UnescapeError;

/// Longest field path kept for a message (longer ones end in `…`).
pub const MAX_PATH_TEXT: usize = 192;
/// Longest quoted name or value kept for a message (longer ones end in `…`).
pub const MAX_ERROR_TEXT: usize = 96;

/// Bounded text for error messages; overflow truncates with `…` instead of failing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text<const N: usize> {
    buf: heapless::String<N>,
    truncated: bool,
}

impl<const N: usize> Text<N> {
    pub fn new() -> Self {
        Self {
            buf: heapless::String::new(),
            truncated: false,
        }
    }

    pub fn of(s: &str) -> Self {
        let mut t = Self::new();
        let _ = t.write_str(s);
        t
    }

    pub fn from_fmt(args: fmt::Arguments<'_>) -> Self {
        let mut t = Self::new();
        let _ = t.write_fmt(args);
        t
    }

    #[cfg(test)]
    pub fn as_str(&self) -> &str {
        self.buf.as_str()
    }
}

impl<const N: usize> Write for Text<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if self.truncated {
                break;
            }
            // Keep room for the ellipsis (3 bytes in UTF-8).
            if self.buf.len() + c.len_utf8() + 3 > N {
                self.truncated = true;
                break;
            }
            let _ = self.buf.push(c);
        }
        Ok(())
    }
}

impl<const N: usize> fmt::Display for Text<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.buf.as_str())?;
        if self.truncated {
            f.write_str("…")?;
        }
        Ok(())
    }
}

/// A field path such as `mounts[3].options`.
pub type FieldPath = Text<MAX_PATH_TEXT>;
/// A name or value quoted in a message, as written in the file (escapes included).
pub type Quoted = Text<MAX_ERROR_TEXT>;

/// Where in config.json an error is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The file as a whole (reading it, size).
    File,
    /// A byte position, shown as 1-based line and column (columns count characters).
    Position { line: u32, column: u32 },
    /// A field path.
    Field(FieldPath),
}

/// What went wrong; one variant per failed check.
#[derive(Debug)]
pub enum ErrorKind {
    /// Opening or reading the file failed.
    Read {
        path: Text<256>,
        err: std::io::Error,
    },
    /// The path is a FIFO, a device, a directory…: `what` says which.
    NotRegular { path: Text<256>, what: &'static str },
    /// The file is bigger than the read buffer.
    TooLarge { limit: usize },
    /// The bytes are not UTF-8.
    NotUtf8,
    /// JSON syntax error; the message says what was expected.
    Syntax(&'static str),
    /// Brackets nested deeper than the scanner allows.
    TooDeep { limit: usize },
    /// A string holds an escape that cannot be undone.
    BadEscape(UnescapeError),
    /// A list or map has more entries than its capacity.
    TooMany { limit: usize },
    /// A value has the wrong JSON type.
    WrongType {
        expected: &'static str,
        found: &'static str,
    },
    /// An integer does not fit the field's type.
    OutOfRange { min: i128, max: i128 },
    /// A required field is absent (or null).
    Missing,
    /// A field appears twice in one object.
    DuplicateField,
    /// A key appears twice in a map.
    DuplicateKey,
    /// A field dory does not implement, with a non-empty value.
    Unsupported(&'static str),
    /// serde-json-core refused a document the scanner accepted (it carries no position).
    Parser(serde_json_core::de::Error),
    /// A required text is empty.
    Empty,
    /// A path must be absolute.
    NotAbsolute(Quoted),
    /// `ociVersion` is not a 1.x version.
    UnsupportedVersion(Quoted),
    /// A name not found in its table (`what` is "capability", "namespace type", …).
    UnknownName { what: &'static str, name: Quoted },
    /// A name given twice in a list where it must be unique.
    DuplicateName { what: &'static str, name: Quoted },
    /// An rlimit's soft value above its hard value.
    SoftAboveHard { soft: u64, hard: u64 },
    /// A number above dory's limit for the field; `what` prefixes the value (`""` or a
    /// description such as `"containerID + size = "`).
    AboveLimit {
        what: &'static str,
        value: i128,
        limit: i128,
    },
    /// A text longer than the kernel (or dory) takes; `len` is its unescaped length.
    TooLong { len: usize, limit: usize },
    /// A path refused as written, with the rule it breaks.
    PathRefused { path: Quoted, why: &'static str },
    /// Any other constraint, stated in the message.
    Invalid(&'static str),
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Read { path, err } if err.kind() == std::io::ErrorKind::NotFound => write!(
                f,
                "{path} does not exist (write one with `dory spec`, or give the bundle directory with --bundle DIR)"
            ),
            ErrorKind::Read { path, err } => write!(f, "cannot read {path}: {}", io_text(err)),
            ErrorKind::NotRegular { path, what } => {
                write!(f, "{path} is {what}: it must be a regular file")
            }
            ErrorKind::TooLarge { limit } => {
                write!(f, "file is larger than {limit} bytes (limit {limit})")
            }
            ErrorKind::NotUtf8 => f.write_str("invalid UTF-8"),
            ErrorKind::Syntax(msg) => f.write_str(msg),
            ErrorKind::TooDeep { limit } => {
                write!(f, "nested deeper than {limit} levels (limit {limit})")
            }
            ErrorKind::BadEscape(e) => write!(f, "bad string escape: {e}"),
            ErrorKind::TooMany { limit } => {
                write!(f, "more than {limit} entries (limit {limit})")
            }
            ErrorKind::WrongType { expected, found } => {
                write!(f, "expected {expected}, found {found}")
            }
            ErrorKind::OutOfRange { min, max } => {
                write!(f, "expected an integer from {min} to {max}")
            }
            ErrorKind::Missing => f.write_str("missing (required)"),
            ErrorKind::DuplicateField => f.write_str("given twice"),
            ErrorKind::DuplicateKey => f.write_str("duplicate key"),
            ErrorKind::Unsupported(msg) => f.write_str(msg),
            ErrorKind::Parser(e) => write!(
                f,
                "not in the expected format (probably a value of the wrong type): {e}"
            ),
            ErrorKind::Empty => f.write_str("must not be empty"),
            ErrorKind::NotAbsolute(p) => write!(f, "must be an absolute path, not \"{p}\""),
            ErrorKind::UnsupportedVersion(v) => {
                write!(f, "unsupported version \"{v}\" (dory reads 1.x)")
            }
            ErrorKind::UnknownName { what, name } => write!(f, "unknown {what} \"{name}\""),
            ErrorKind::DuplicateName { what, name } => write!(f, "duplicate {what} \"{name}\""),
            ErrorKind::SoftAboveHard { soft, hard } => {
                write!(f, "soft limit {soft} is above hard limit {hard}")
            }
            ErrorKind::AboveLimit { what, value, limit } => {
                write!(f, "{what}{value} is more than {limit} (limit)")
            }
            ErrorKind::TooLong { len, limit } => {
                write!(f, "{len} bytes is longer than {limit} bytes (limit {limit})")
            }
            ErrorKind::PathRefused { path, why } => write!(f, "\"{path}\" {why}"),
            ErrorKind::Invalid(msg) => f.write_str(msg),
        }
    }
}

/// An error about config.json; `Display` gives `config.json: <where>: <message>`.
///
/// Boxed: the path and quoted names are kept inline (about 500 bytes), and a parse
/// result should not carry that much on its success path.
#[derive(Debug)]
pub struct SpecError(Box<Detail>);

#[derive(Debug)]
struct Detail {
    location: Location,
    kind: ErrorKind,
}

impl SpecError {
    fn new(location: Location, kind: ErrorKind) -> Self {
        Self(Box::new(Detail { location, kind }))
    }

    pub fn file(kind: ErrorKind) -> Self {
        Self::new(Location::File, kind)
    }

    pub fn field(path: FieldPath, kind: ErrorKind) -> Self {
        Self::new(Location::Field(path), kind)
    }

    /// An error at byte `offset` of `bytes`, shown as line and column.
    pub fn at(bytes: &[u8], offset: usize, kind: ErrorKind) -> Self {
        let (line, column) = line_column(bytes, offset);
        Self::new(Location::Position { line, column }, kind)
    }

    #[cfg(test)]
    pub fn location(&self) -> &Location {
        &self.0.location
    }

    #[cfg(any(test, fuzzing))]
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    /// The field path, when the error has one.
    #[cfg(test)]
    pub fn path(&self) -> Option<&str> {
        match &self.0.location {
            Location::Field(p) => Some(p.as_str()),
            _ => None,
        }
    }
}

/// 1-based line and column (in characters) of byte `offset`.
fn line_column(bytes: &[u8], offset: usize) -> (u32, u32) {
    let before = bytes.get(..offset).unwrap_or(bytes);
    let mut line: u32 = 1;
    let mut column: u32 = 1;
    for &b in before {
        if b == b'\n' {
            line = line.saturating_add(1);
            column = 1;
        } else if b & 0xC0 != 0x80 {
            // Count characters, not UTF-8 continuation bytes.
            column = column.saturating_add(1);
        }
    }
    (line, column)
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("config.json: ")?;
        match &self.0.location {
            Location::File => {}
            Location::Position { line, column } => write!(f, "line {line}, column {column}: ")?,
            Location::Field(path) => write!(f, "{path}: ")?,
        }
        self.0.kind.fmt(f)
    }
}

impl std::error::Error for SpecError {}

/// An I/O error's text without std's " (os error N)" suffix: the errno's description.
pub fn io_text(e: &std::io::Error) -> std::borrow::Cow<'static, str> {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().into(),
        None => e.to_string().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_truncates_with_ellipsis() {
        let t: Text<8> = Text::of("abcdefghijkl");
        assert_eq!(t.to_string(), "abcde…");
        let t: Text<8> = Text::of("abc");
        assert_eq!(t.to_string(), "abc");
    }

    #[test]
    fn line_column_counts_characters() {
        let b = "{\n  \"é\": x".as_bytes();
        let x = b.iter().position(|&c| c == b'x').unwrap();
        assert_eq!(line_column(b, x), (2, 8));
        assert_eq!(line_column(b, 0), (1, 1));
    }
}
