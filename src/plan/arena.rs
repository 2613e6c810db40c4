//! NUL-terminated strings for the child, built before clone in one fixed buffer.
//!
//! The child after clone must not allocate: every path, argument and environment string it
//! needs is unescaped once, here, into a bounded byte arena and referred to by [`CStrId`].
//! The arena's bytes are on the heap and grow with the config's strings up to
//! [`ARENA_BYTES`] (a fixed inline buffer of that size would be copied through the stack
//! whole); the child only reads them. `get` never panics: a bad id yields an empty string.

use std::ffi::CStr;

use crate::spec;

/// Bytes available for all of one container's strings (paths, argv, envp, mount data):
/// a config's strings unescaped are never longer than the config, and the ones dory
/// derives (bind sources joined to the bundle, `HOME`, id maps, cgroup names, the mount
/// points `--no-pivot` detaches) fit in as much again.
pub const ARENA_BYTES: usize = 2 * crate::spec::MAX_CONFIG_BYTES;

/// A string stored in an [`Arena`]: byte offset and length including the NUL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CStrId {
    start: u32,
    len: u32,
}

impl CStrId {
    /// The id of no string (reads as empty).
    pub const ZERO: CStrId = CStrId { start: 0, len: 0 };
}

#[derive(Debug, PartialEq, Eq)]
pub enum ArenaError {
    /// The arena is full: the config carries more than `ARENA_BYTES` of strings.
    Full,
    /// The text holds an invalid JSON escape or a NUL character.
    BadString,
}

pub struct Arena {
    /// Never longer than [`ARENA_BYTES`].
    buf: Vec<u8>,
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

impl Arena {
    pub const fn new() -> Self {
        Arena { buf: Vec::new() }
    }

    /// An arena that holds `bytes` without growing: a config's strings take at most its
    /// length. One allocation instead of a series of doublings, each leaving the old
    /// buffer behind in the allocator; pages not written to are never touched.
    pub fn with_capacity(bytes: usize) -> Self {
        Arena {
            buf: Vec::with_capacity(bytes.min(ARENA_BYTES)),
        }
    }

    /// Appends `bytes` whole, or nothing when they would not fit [`ARENA_BYTES`].
    fn extend(&mut self, bytes: &[u8]) -> Result<(), ArenaError> {
        if bytes.len() > ARENA_BYTES - self.buf.len() {
            return Err(ArenaError::Full);
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    fn finish(&mut self, start: usize) -> Result<CStrId, ArenaError> {
        self.extend(&[0])?;
        let start32 = u32::try_from(start).map_err(|_| ArenaError::Full)?;
        let len = u32::try_from(self.buf.len() - start).map_err(|_| ArenaError::Full)?;
        Ok(CStrId {
            start: start32,
            len,
        })
    }

    /// Stores plain bytes (no escapes) from several parts, concatenated.
    pub fn push_parts(&mut self, parts: &[&[u8]]) -> Result<CStrId, ArenaError> {
        let start = self.buf.len();
        for part in parts {
            if part.contains(&0) {
                self.buf.truncate(start);
                return Err(ArenaError::BadString);
            }
            if let Err(e) = self.extend(part) {
                self.buf.truncate(start);
                return Err(e);
            }
        }
        self.finish(start).inspect_err(|_| self.buf.truncate(start))
    }

    /// Stores plain text (no escapes).
    pub fn push(&mut self, s: &str) -> Result<CStrId, ArenaError> {
        self.push_parts(&[s.as_bytes()])
    }

    /// Stores `prefix` followed by the JSON string `raw` with its escapes undone.
    pub fn push_json(&mut self, prefix: &[u8], raw: &str) -> Result<CStrId, ArenaError> {
        let start = self.buf.len();
        if prefix.contains(&0) || self.extend(prefix).is_err() {
            self.buf.truncate(start);
            return Err(ArenaError::Full);
        }
        let used = self.buf.len();
        // Unescaped text is never longer than its escaped form.
        let room = ARENA_BYTES - used;
        if raw.len() > room {
            self.buf.truncate(start);
            return Err(ArenaError::Full);
        }
        self.buf.resize(used + raw.len(), 0);
        let written = match self.buf.get_mut(used..) {
            Some(out) => spec::unescape_into(raw, out).map_err(|_| ArenaError::BadString),
            None => Err(ArenaError::Full),
        };
        match written {
            Ok(n) => {
                self.buf.truncate(used + n);
                self.finish(start).inspect_err(|_| self.buf.truncate(start))
            }
            Err(e) => {
                self.buf.truncate(start);
                Err(e)
            }
        }
    }

    /// The stored string as a C string (empty for an id from another arena).
    pub fn get(&self, id: CStrId) -> &CStr {
        let start = id.start as usize;
        let end = start + id.len as usize;
        self.buf
            .get(start..end)
            .and_then(|b| CStr::from_bytes_with_nul(b).ok())
            .unwrap_or(c"")
    }

    /// The stored string's bytes without the NUL.
    pub fn bytes(&self, id: CStrId) -> &[u8] {
        self.get(id).to_bytes()
    }

    /// The stored string as text (lossy only for invalid UTF-8, which JSON cannot produce).
    pub fn text(&self, id: CStrId) -> &str {
        std::str::from_utf8(self.bytes(id)).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_unescapes() {
        let mut a = Arena::new();
        let x = a.push("hello").unwrap();
        let y = a
            .push_json(b"E=", r#"say \"hi\" \u003cthere\u003e"#)
            .unwrap();
        let z = a.push_parts(&[b"/proc/self/fd/", b"12"]).unwrap();
        assert_eq!(a.get(x), c"hello");
        assert_eq!(a.text(y), r#"E=say "hi" <there>"#);
        assert_eq!(a.get(z), c"/proc/self/fd/12");
    }

    #[test]
    fn overflow_is_an_error_not_truncation() {
        let mut a = Arena::new();
        let big = "x".repeat(ARENA_BYTES - 1);
        a.push(&big).unwrap();
        assert_eq!(a.push("y"), Err(ArenaError::Full));
        assert_eq!(a.push_json(b"", "y"), Err(ArenaError::Full));
    }

    #[test]
    fn nul_is_refused() {
        let mut a = Arena::new();
        assert_eq!(a.push("a\0b"), Err(ArenaError::BadString));
        assert_eq!(a.push_json(b"", r"a\u0000b"), Err(ArenaError::BadString));
    }
}
