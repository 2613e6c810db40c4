//! Reading config.json into a caller's fixed buffer, and the parse entry points.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::spec::error::{ErrorKind, SpecError, Text};
use crate::spec::model::{Spec, MAX_CONFIG_BYTES};
use crate::spec::scan::scan;
use crate::spec::validate::validate;

/// Reads `bundle/config.json` into `buf` and returns the bytes read. The file may hold at
/// most `min(buf.len(), MAX_CONFIG_BYTES)` bytes; pass a buffer of `MAX_CONFIG_BYTES`.
pub fn read_config<'b>(bundle: &Path, buf: &'b mut [u8]) -> Result<&'b [u8], SpecError> {
    let path = bundle.join("config.json");
    let fail = |err: std::io::Error| {
        SpecError::file(ErrorKind::Read {
            path: Text::from_fmt(format_args!("{}", path.display())),
            err,
        })
    };
    let mut file = open_regular(&path).map_err(|e| match e {
        OpenError::Io(err) => fail(err),
        OpenError::NotRegular(what) => SpecError::file(ErrorKind::NotRegular {
            path: Text::from_fmt(format_args!("{}", path.display())),
            what,
        }),
    })?;
    let limit = buf.len().min(MAX_CONFIG_BYTES);
    let buf = buf.get_mut(..limit).unwrap_or_default();
    let mut n = 0;
    while let Some(rest) = buf.get_mut(n..) {
        if rest.is_empty() {
            // Full: the file is too large unless it ends exactly here.
            let mut probe = [0u8; 1];
            match file.read(&mut probe) {
                Ok(0) => break,
                Ok(_) => return Err(SpecError::file(ErrorKind::TooLarge { limit })),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(fail(e)),
            }
        }
        match file.read(rest) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(fail(e)),
        }
    }
    Ok(buf.get(..n).unwrap_or_default())
}

/// Why [`open_regular`] refused a file.
#[derive(Debug)]
pub enum OpenError {
    Io(std::io::Error),
    /// Not a regular file: what it is instead ("a FIFO", "a character device", …).
    NotRegular(&'static str),
}

/// Opens `path` for reading only if it is a regular file. O_NONBLOCK: opening a FIFO
/// without a writer would otherwise wait for ever; the type is then checked on the open
/// file (fstat), so a swap between a check and the open cannot slip a FIFO or a device
/// such as /dev/zero past it. O_NONBLOCK changes nothing for reading a regular file.
pub fn open_regular(path: &Path) -> Result<std::fs::File, OpenError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(OpenError::Io)?;
    let kind = file.metadata().map_err(OpenError::Io)?.file_type();
    if kind.is_file() {
        return Ok(file);
    }
    Err(OpenError::NotRegular(if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "of an unusual type"
    }))
}

/// Parses and validates config.json bytes: the structural scan (syntax, nesting,
/// escapes, types, capacities, with positions and field paths), serde-json-core, then
/// [`validate`].
pub fn parse(bytes: &[u8]) -> Result<Spec<'_>, SpecError> {
    let spec = parse_unvalidated(bytes)?;
    validate(&spec)?;
    Ok(spec)
}

/// [`parse`] without the validation pass: the document has the model's shape, but
/// names, paths and combinations are unchecked.
pub fn parse_unvalidated(bytes: &[u8]) -> Result<Spec<'_>, SpecError> {
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(SpecError::file(ErrorKind::TooLarge {
            limit: MAX_CONFIG_BYTES,
        }));
    }
    scan(bytes)?;
    match serde_json_core::from_slice::<Spec<'_>>(bytes) {
        Ok((spec, _)) => Ok(spec),
        Err(e) => Err(SpecError::file(ErrorKind::Parser(e))),
    }
}
