//! A structural pass over config.json before serde-json-core sees it.
//!
//! It checks JSON syntax (with line and column), caps bracket nesting so that the
//! recursive parser cannot overflow the stack, checks every string escape, and walks the
//! [`schema`](super::schema) to report wrong types, out-of-range integers, lists and maps
//! over their capacity, missing, duplicated and unsupported fields by their path.
//! It uses a fixed stack of [`MAX_DEPTH`] frames; the one allocation is the list of the
//! open map's keys (for the duplicate check: up to `MAX_ANNOTATIONS` of them).

use crate::spec::bounded::List;
use crate::spec::error::{ErrorKind, FieldPath, SpecError};
use crate::spec::schema::{Field, Presence, Ty, MAX_MAP_ENTRIES, SPEC};
use crate::spec::unescape;

/// Deepest bracket nesting accepted (the model needs 4; podman's seccomp profile 6).
pub const MAX_DEPTH: usize = 32;

/// What an open object or array is expected to hold.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Obj(&'static [Field]),
    Arr(&'static Ty, usize),
    Map(&'static Ty, usize),
    /// Not checked beyond syntax.
    Free,
    /// An unsupported field: any entry is an error.
    Unsupported(&'static str),
}

#[derive(Debug, Clone, Copy)]
struct Frame<'a> {
    shape: Shape,
    /// A JSON object (`{`), as opposed to an array.
    is_object: bool,
    /// Entries begun so far; the current array index is `count - 1`.
    count: usize,
    /// The current member's key, as written.
    key: &'a str,
    /// For `Shape::Obj`: bit i set once `fields[i]` was seen.
    seen: u64,
}

/// The expected type of the next value; `ty: None` accepts anything.
#[derive(Debug, Clone, Copy)]
struct Slot {
    ty: Option<&'static Ty>,
    null_ok: bool,
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    stack: heapless::Vec<Frame<'a>, MAX_DEPTH>,
    /// Keys of the innermost open map (maps do not nest in the schema).
    map_keys: List<&'a str, MAX_MAP_ENTRIES>,
}

/// Checks `bytes` as a config.json document; see the module doc.
pub(crate) fn scan(bytes: &[u8]) -> Result<(), SpecError> {
    if let Err(e) = core::str::from_utf8(bytes) {
        return Err(SpecError::at(bytes, e.valid_up_to(), ErrorKind::NotUtf8));
    }
    let mut s = Scanner {
        b: bytes,
        i: 0,
        stack: heapless::Vec::new(),
        map_keys: List::new(),
    };
    s.run()
}

impl<'a> Scanner<'a> {
    fn run(&mut self) -> Result<(), SpecError> {
        self.ws();
        match self.peek() {
            Some(b'{') => {}
            None => {
                let msg = "file is empty (expected a JSON object)";
                return Err(SpecError::at(self.b, self.i, ErrorKind::Syntax(msg)));
            }
            Some(_) => return Err(self.syntax("expected '{' (config.json holds one JSON object)")),
        }
        let mut slot = Slot {
            ty: Some(&SPEC),
            null_ok: false,
        };
        loop {
            // Just after an opening bracket, the container may close at once.
            let mut just_opened = self.value(slot)?;
            slot = loop {
                self.ws();
                let Some(top) = self.stack.last() else {
                    if self.i < self.b.len() {
                        return Err(self.syntax("unexpected text after the end of the object"));
                    }
                    return Ok(());
                };
                let close = if top.is_object { b'}' } else { b']' };
                let c = self.peek();
                if c == Some(close) {
                    self.i += 1;
                    self.close()?;
                    just_opened = false;
                    continue;
                }
                if !just_opened {
                    match c {
                        Some(b',') => self.i += 1,
                        None => return Err(self.syntax("unexpected end of file")),
                        Some(_) if top.is_object => {
                            return Err(self.syntax("expected ',' or '}'"));
                        }
                        Some(_) => return Err(self.syntax("expected ',' or ']'")),
                    }
                }
                break self.begin_entry()?;
            };
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Skips JSON whitespace.
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    fn syntax(&self, msg: &'static str) -> SpecError {
        // At the end of the input, what was expected matters less than that it ended.
        let msg = if self.i >= self.b.len() && !self.b.is_empty() {
            "unexpected end of file"
        } else {
            msg
        };
        SpecError::at(self.b, self.i, ErrorKind::Syntax(msg))
    }

    /// The path of the value the first `n` frames lead to; with `last`, the innermost of
    /// them leads to member `last` instead of its current one.
    fn path(&self, n: usize, last: Option<&str>) -> FieldPath {
        use core::fmt::Write;
        let mut p = FieldPath::new();
        let frames = self.stack.get(..n).unwrap_or(&self.stack);
        for (depth, f) in frames.iter().enumerate() {
            let key = match last {
                Some(k) if depth + 1 == n => k,
                _ => f.key,
            };
            let _ = match f.shape {
                Shape::Map(..) => write!(p, "[\"{key}\"]"),
                _ if !f.is_object => write!(p, "[{}]", f.count.saturating_sub(1)),
                _ if depth == 0 => write!(p, "{key}"),
                _ => write!(p, ".{key}"),
            };
        }
        p
    }

    /// The path of the value being parsed now.
    fn here(&self) -> FieldPath {
        self.path(self.stack.len(), None)
    }

    /// The path of the innermost open container itself.
    fn container(&self) -> FieldPath {
        self.path(self.stack.len().saturating_sub(1), None)
    }

    /// Parses the value at `self.i` against `slot`. Scalars are consumed whole; for an
    /// object or array a frame is pushed and `true` returned.
    fn value(&mut self, slot: Slot) -> Result<bool, SpecError> {
        self.ws();
        let Some(c) = self.peek() else {
            return Err(self.syntax("unexpected end of file"));
        };
        let found = match c {
            b'{' | b'[' => {
                let is_object = c == b'{';
                let shape = match (slot.ty, is_object) {
                    (None | Some(Ty::Any), _) => Shape::Free,
                    (Some(Ty::Unsupported(msg)), _) => Shape::Unsupported(msg),
                    (Some(Ty::Obj(fields)), true) => Shape::Obj(fields),
                    (Some(Ty::Map(t, cap)), true) => Shape::Map(t, *cap),
                    (Some(Ty::Arr(t, cap)), false) => Shape::Arr(t, *cap),
                    (Some(_), _) => {
                        return Err(
                            self.wrong_type(slot, if is_object { "an object" } else { "an array" })
                        );
                    }
                };
                if self.stack.is_full() {
                    return Err(SpecError::at(
                        self.b,
                        self.i,
                        ErrorKind::TooDeep { limit: MAX_DEPTH },
                    ));
                }
                if let Shape::Map(..) = shape {
                    self.map_keys.clear();
                }
                let frame = Frame {
                    shape,
                    is_object,
                    count: 0,
                    key: "",
                    seen: 0,
                };
                if self.stack.push(frame).is_err() {
                    return Err(SpecError::at(
                        self.b,
                        self.i,
                        ErrorKind::TooDeep { limit: MAX_DEPTH },
                    ));
                }
                self.i += 1;
                return Ok(true);
            }
            b'"' => {
                self.string()?;
                "a string"
            }
            b't' => {
                self.literal(b"true")?;
                "true"
            }
            b'f' => {
                self.literal(b"false")?;
                "false"
            }
            b'n' => {
                self.literal(b"null")?;
                "null"
            }
            b'-' | b'0'..=b'9' => return self.number(slot).map(|()| false),
            _ => return Err(self.syntax("expected a value")),
        };
        let ok = match slot.ty {
            None | Some(Ty::Any) => true,
            _ if found == "null" => slot.null_ok,
            Some(Ty::Unsupported(_)) => false,
            Some(Ty::Str) => found == "a string",
            Some(Ty::Bool) => found != "a string",
            Some(_) => false,
        };
        if ok {
            Ok(false)
        } else {
            Err(self.wrong_type(slot, found))
        }
    }

    fn wrong_type(&self, slot: Slot, found: &'static str) -> SpecError {
        let kind = match slot.ty {
            Some(Ty::Unsupported(msg)) => ErrorKind::Unsupported(msg),
            Some(ty) => ErrorKind::WrongType {
                expected: ty.expected(),
                found,
            },
            None => ErrorKind::Syntax("unexpected value"),
        };
        SpecError::field(self.here(), kind)
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), SpecError> {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.syntax(
                "expected a value (true, false, null, a number, a string, an object or an array)",
            ))
        }
    }

    /// Parses a JSON number and checks it against an integer slot.
    fn number(&mut self, slot: Slot) -> Result<(), SpecError> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        let mut value: Option<i128> = Some(0);
        match self.peek() {
            Some(b'0') => {
                self.i += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(self.syntax("numbers must not have leading zeros"));
                }
            }
            Some(b'1'..=b'9') => {
                while let Some(d @ b'0'..=b'9') = self.peek() {
                    value = value
                        .and_then(|v| v.checked_mul(10))
                        .and_then(|v| v.checked_add(i128::from(d - b'0')));
                    self.i += 1;
                }
            }
            _ => return Err(self.syntax("expected a digit")),
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.i += 1;
            integer = false;
            self.digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            integer = false;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.digits()?;
        }
        let found = if integer {
            "an integer"
        } else {
            "a number with a fraction or exponent"
        };
        match slot.ty {
            None | Some(Ty::Any) => Ok(()),
            Some(Ty::Int(t)) if integer => {
                let (min, max) = t.range();
                let v = value.map(|v| if negative { -v } else { v });
                match v {
                    // `-0` is 0, but serde-json-core refuses a sign on an unsigned field.
                    Some(v) if (min..=max).contains(&v) && !(negative && min >= 0) => Ok(()),
                    _ => Err(SpecError::field(
                        self.here(),
                        ErrorKind::OutOfRange { min, max },
                    )),
                }
            }
            Some(Ty::Int(_)) => Err(self.wrong_type(slot, found)),
            Some(_) => Err(self.wrong_type(slot, if integer { "a number" } else { found })),
        }
    }

    /// One or more decimal digits.
    fn digits(&mut self) -> Result<(), SpecError> {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        if self.i == start {
            return Err(self.syntax("expected a digit"));
        }
        Ok(())
    }

    /// Parses a string at `self.i` (which is `"`), checks its escapes and returns it as
    /// written, without the quotes.
    fn string(&mut self) -> Result<&'a str, SpecError> {
        let open = self.i;
        self.i += 1;
        let start = self.i;
        loop {
            match self.peek() {
                None => {
                    return Err(SpecError::at(
                        self.b,
                        open,
                        ErrorKind::Syntax("string is not terminated"),
                    ))
                }
                Some(b'"') => break,
                Some(b'\\') => self.i += 2,
                Some(0..=0x1f) => {
                    return Err(self.syntax("control character in a string (write it as an escape)"))
                }
                Some(_) => self.i += 1,
            }
        }
        let end = self.i;
        self.i += 1;
        let raw = self.b.get(start..end).unwrap_or_default();
        if let Err((at, e)) = unescape::check(raw) {
            return Err(SpecError::at(self.b, start + at, ErrorKind::BadEscape(e)));
        }
        // The whole input is UTF-8 and quotes are ASCII, so this cannot fail.
        core::str::from_utf8(raw).map_err(|_| SpecError::at(self.b, start, ErrorKind::NotUtf8))
    }

    /// Begins the next entry of the innermost container (after its `[`, `{` or `,`);
    /// for objects parses the key and the colon. Returns the slot of the entry's value.
    fn begin_entry(&mut self) -> Result<Slot, SpecError> {
        self.ws();
        let Some(top) = self.stack.last_mut() else {
            return Err(self.syntax("unexpected text after the end of the object"));
        };
        top.count += 1;
        let (shape, count, is_object) = (top.shape, top.count, top.is_object);
        match shape {
            Shape::Unsupported(msg) => {
                return Err(SpecError::field(
                    self.container(),
                    ErrorKind::Unsupported(msg),
                ));
            }
            Shape::Arr(_, cap) | Shape::Map(_, cap) if count > cap => {
                return Err(SpecError::field(
                    self.container(),
                    ErrorKind::TooMany { limit: cap },
                ));
            }
            _ => {}
        }
        let key = if is_object {
            if self.peek() != Some(b'"') {
                return Err(self.syntax("expected a member name in double quotes"));
            }
            let key = self.string()?;
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.syntax("expected ':'"));
            }
            self.i += 1;
            key
        } else {
            ""
        };
        if let Some(top) = self.stack.last_mut() {
            top.key = key;
        }
        match shape {
            Shape::Arr(t, _) => Ok(Slot {
                ty: Some(t),
                null_ok: false,
            }),
            Shape::Map(t, _) => {
                if self.map_keys.contains(&key) {
                    return Err(SpecError::field(self.here(), ErrorKind::DuplicateKey));
                }
                // Cannot fail: `count <= cap <= MAX_MAP_ENTRIES` was checked above.
                let _ = self.map_keys.push(key);
                Ok(Slot {
                    ty: Some(t),
                    null_ok: false,
                })
            }
            Shape::Obj(fields) => {
                let Some((n, field)) = fields.iter().enumerate().find(|(_, f)| f.name == key)
                else {
                    // Not an OCI field: ignored, as the OCI spec asks of runtimes.
                    return Ok(Slot {
                        ty: None,
                        null_ok: true,
                    });
                };
                let bit = 1u64 << n;
                if let Some(top) = self.stack.last_mut() {
                    if top.seen & bit != 0 {
                        return Err(SpecError::field(self.here(), ErrorKind::DuplicateField));
                    }
                    top.seen |= bit;
                }
                Ok(Slot {
                    ty: Some(&field.ty),
                    null_ok: field.presence == Presence::Optional,
                })
            }
            Shape::Free | Shape::Unsupported(_) => Ok(Slot {
                ty: None,
                null_ok: true,
            }),
        }
    }

    /// Closes the innermost container (its closing bracket was consumed).
    fn close(&mut self) -> Result<(), SpecError> {
        if let Some(top) = self.stack.last() {
            if let Shape::Obj(fields) = top.shape {
                for (n, f) in fields.iter().enumerate() {
                    if f.presence == Presence::Required && top.seen & (1u64 << n) == 0 {
                        let path = self.path(self.stack.len(), Some(f.name));
                        return Err(SpecError::field(path, ErrorKind::Missing));
                    }
                }
            }
        }
        self.stack.pop();
        Ok(())
    }
}
