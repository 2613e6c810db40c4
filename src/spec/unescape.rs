//! Undoing JSON string escapes (`\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`, `\uXXXX`
//! including surrogate pairs) without allocation.
//!
//! serde-json-core hands out strings as written; the scanner checks every escape with
//! [`check`] so that [`unescape_into`] can only fail later for a too-small buffer.

use core::fmt;

/// Why a string could not be unescaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnescapeError {
    /// A backslash followed by a character that is not a JSON escape.
    UnknownEscape,
    /// A backslash at the very end of the string.
    TrailingBackslash,
    /// `\u` not followed by four hex digits.
    BadHex,
    /// A `\uD800`–`\uDFFF` not part of a high+low surrogate pair.
    LoneSurrogate,
    /// `\u0000`: it would cut the C string the value becomes.
    Nul,
    /// The output buffer (of `capacity` bytes) is too small.
    OutputTooSmall { capacity: usize },
}

impl fmt::Display for UnescapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnescapeError::UnknownEscape => f.write_str("unknown escape after '\\'"),
            UnescapeError::TrailingBackslash => f.write_str("string ends with a lone '\\'"),
            UnescapeError::BadHex => f.write_str("\\u must be followed by 4 hex digits"),
            UnescapeError::LoneSurrogate => f.write_str("\\u escape is a lone UTF-16 surrogate"),
            UnescapeError::Nul => {
                f.write_str("\\u0000 is not allowed (the value becomes a C string)")
            }
            UnescapeError::OutputTooSmall { capacity } => {
                write!(f, "unescaped text does not fit in {capacity} bytes")
            }
        }
    }
}

/// One decoded unit of a raw string.
enum Unit {
    /// A byte copied as is (part of unescaped text, possibly inside a UTF-8 sequence).
    Byte(u8),
    /// A character produced by an escape.
    Char(char),
}

/// Decodes the unit starting at `raw[i]`; returns it and the index after it.
/// On error, also returns the index of the offending backslash.
fn next_unit(raw: &[u8], i: usize) -> Result<(Unit, usize), (usize, UnescapeError)> {
    let Some(&b) = raw.get(i) else {
        return Err((i, UnescapeError::TrailingBackslash));
    };
    if b != b'\\' {
        return Ok((Unit::Byte(b), i + 1));
    }
    let Some(&e) = raw.get(i + 1) else {
        return Err((i, UnescapeError::TrailingBackslash));
    };
    let simple = match e {
        b'"' => Some('"'),
        b'\\' => Some('\\'),
        b'/' => Some('/'),
        b'b' => Some('\u{8}'),
        b'f' => Some('\u{c}'),
        b'n' => Some('\n'),
        b'r' => Some('\r'),
        b't' => Some('\t'),
        b'u' => None,
        _ => return Err((i, UnescapeError::UnknownEscape)),
    };
    if let Some(c) = simple {
        return Ok((Unit::Char(c), i + 2));
    }
    let first = hex4(raw, i + 2).ok_or((i, UnescapeError::BadHex))?;
    let (code, end) = match first {
        0 => return Err((i, UnescapeError::Nul)),
        0xD800..=0xDBFF => {
            // A high surrogate must be followed by `\u` and a low surrogate.
            if raw.get(i + 6) != Some(&b'\\') || raw.get(i + 7) != Some(&b'u') {
                return Err((i, UnescapeError::LoneSurrogate));
            }
            let second = hex4(raw, i + 8).ok_or((i + 6, UnescapeError::BadHex))?;
            if !(0xDC00..=0xDFFF).contains(&second) {
                return Err((i, UnescapeError::LoneSurrogate));
            }
            (
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00),
                i + 12,
            )
        }
        0xDC00..=0xDFFF => return Err((i, UnescapeError::LoneSurrogate)),
        c => (c, i + 6),
    };
    let c = char::from_u32(code).ok_or((i, UnescapeError::LoneSurrogate))?;
    Ok((Unit::Char(c), end))
}

/// The value of the four hex digits at `raw[at..at + 4]`.
fn hex4(raw: &[u8], at: usize) -> Option<u32> {
    let digits = raw.get(at..at + 4)?;
    let mut v: u32 = 0;
    for &d in digits {
        v = (v << 4) | char::from(d).to_digit(16)?;
    }
    Some(v)
}

/// Checks every escape in `raw`; on error returns the byte index of the bad escape.
pub(crate) fn check(raw: &[u8]) -> Result<(), (usize, UnescapeError)> {
    let mut i = 0;
    while i < raw.len() {
        let (_, next) = next_unit(raw, i)?;
        i = next;
    }
    Ok(())
}

/// Undoes the JSON escapes of `raw` (a string as written in config.json, without its
/// quotes) into `out`; returns the number of bytes written. No NUL is added; `\u0000` is
/// refused so that the result can always become a C string.
pub fn unescape_into(raw: &str, out: &mut [u8]) -> Result<usize, UnescapeError> {
    let raw = raw.as_bytes();
    let capacity = out.len();
    let mut i = 0;
    let mut n = 0;
    while i < raw.len() {
        let (unit, next) = next_unit(raw, i).map_err(|(_, e)| e)?;
        let mut utf8 = [0u8; 4];
        let bytes: &[u8] = match unit {
            Unit::Byte(ref b) => core::slice::from_ref(b),
            Unit::Char(c) => c.encode_utf8(&mut utf8).as_bytes(),
        };
        let dst = out
            .get_mut(n..n + bytes.len())
            .ok_or(UnescapeError::OutputTooSmall { capacity })?;
        dst.copy_from_slice(bytes);
        n += bytes.len();
        i = next;
    }
    Ok(n)
}

/// The length in bytes of `raw` once its escapes are undone (what [`unescape_into`]
/// would write), without a buffer.
pub fn unescaped_len(raw: &str) -> Result<usize, UnescapeError> {
    let raw = raw.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < raw.len() {
        let (unit, next) = next_unit(raw, i).map_err(|(_, e)| e)?;
        n += match unit {
            Unit::Byte(_) => 1,
            Unit::Char(c) => c.len_utf8(),
        };
        i = next;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn un(raw: &str) -> Result<String, UnescapeError> {
        let mut buf = [0u8; 256];
        let n = unescape_into(raw, &mut buf)?;
        Ok(String::from_utf8(buf[..n].to_vec()).unwrap())
    }

    #[test]
    fn simple_escapes() {
        assert_eq!(un(r"a\nb").unwrap(), "a\nb");
        assert_eq!(un(r"a\tb").unwrap(), "a\tb");
        assert_eq!(un(r"a\/b").unwrap(), "a/b");
        assert_eq!(un(r"a\\b").unwrap(), "a\\b");
        assert_eq!(un(r#"say \"hi\""#).unwrap(), "say \"hi\"");
        assert_eq!(un(r"\b\f\r").unwrap(), "\u{8}\u{c}\r");
        assert_eq!(un("plain ünïcode").unwrap(), "plain ünïcode");
        assert_eq!(un("").unwrap(), "");
    }

    #[test]
    fn unicode_escapes() {
        assert_eq!(un(r"caf\u00e9").unwrap(), "café");
        assert_eq!(un(r"\u003cthere\u003e \u0026").unwrap(), "<there> &");
        assert_eq!(un(r"\uD83D\uDE00").unwrap(), "😀");
        assert_eq!(un(r"x\ud83d\ude00y").unwrap(), "x😀y");
        assert_eq!(un(r"\u20AC").unwrap(), "€");
    }

    #[test]
    fn bad_escapes() {
        assert_eq!(un(r"\uD83D"), Err(UnescapeError::LoneSurrogate));
        assert_eq!(un(r"\uD83Dx"), Err(UnescapeError::LoneSurrogate));
        assert_eq!(un(r"\uDE00"), Err(UnescapeError::LoneSurrogate));
        assert_eq!(un(r"\uD83D\u0041"), Err(UnescapeError::LoneSurrogate));
        assert_eq!(un(r"a\u0000b"), Err(UnescapeError::Nul));
        assert_eq!(un(r"\u12"), Err(UnescapeError::BadHex));
        assert_eq!(un(r"\u12G4"), Err(UnescapeError::BadHex));
        assert_eq!(un(r"\x41"), Err(UnescapeError::UnknownEscape));
        assert_eq!(un("abc\\"), Err(UnescapeError::TrailingBackslash));
        assert_eq!(check(br"ok\n\u0041").map_err(|e| e.0), Ok(()));
        assert_eq!(check(br"ab\q").map_err(|e| e.0), Err(2));
    }

    #[test]
    fn output_too_small() {
        let mut buf = [0u8; 4];
        assert_eq!(unescape_into("abcd", &mut buf), Ok(4));
        assert_eq!(&buf, b"abcd");
        assert_eq!(
            unescape_into("abcde", &mut buf),
            Err(UnescapeError::OutputTooSmall { capacity: 4 })
        );
        // A multi-byte character that does not fit whole is refused, not cut.
        let mut buf = [0u8; 5];
        assert_eq!(
            unescape_into(r"abc\u00e9\u00e9", &mut buf),
            Err(UnescapeError::OutputTooSmall { capacity: 5 })
        );
        assert_eq!(unescape_into(r"abc\u00e9", &mut buf), Ok(5));
    }
}
