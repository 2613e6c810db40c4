//! `SCMP_ACT_NOTIFY`: what a profile with a seccomp user-notification listener must
//! satisfy, and the filter flags that go with one.
//!
//! The child loads such a filter with `SECCOMP_FILTER_FLAG_NEW_LISTENER` and sends the
//! listener fd to the parent over the sync socket (`sandbox`); the parent sends it with
//! the container process state to `listenerPath` (`container::seccomp_agent`). The checks
//! are runc 1.2's (`libcontainer/seccomp/seccomp_linux.go` `InitSeccomp`,
//! `process_linux.go`), plus the runtime-spec's rule on `listenerMetadata`.

use crate::seccomp::compile::Program;
use crate::seccomp::error::{SeccompError, SeccompErrorKind};
use crate::seccomp::model::Seccomp;
use crate::seccomp::names::{self, ActionKind};
use crate::spec::unescape_into;

/// Longest `listenerPath`, in bytes once unescaped: `sun_path` holds 108 bytes, the
/// last for the NUL (an abstract `@name` is held to the same limit).
pub const MAX_LISTENER_PATH: usize = 107;

/// `SECCOMP_FILTER_FLAG_*` bits a listener needs or allows.
const TSYNC: u32 = libc::SECCOMP_FILTER_FLAG_TSYNC as u32;
const NEW_LISTENER: u32 = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32;
/// With TSYNC, a listener needs this (else the kernel cannot tell a thread id from the
/// listener fd in the return value, and refuses the pair); libseccomp adds it too.
const TSYNC_ESRCH: u32 = libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH as u32;
/// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` (Linux 5.19): only valid with a listener.
pub(crate) const WAIT_KILLABLE_RECV: u32 = 1 << 5;

/// Syscalls a NOTIFY rule may not name, with why. Between loading the filter and the
/// parent holding the listener, a notified call would wait for an agent that cannot
/// have the fd yet: the child sends it with `sendmsg` (dory's transport), and runc 1.2
/// refuses `write` (its transport) for the same reason, which dory keeps for
/// compatibility (its child also writes `create`'s ready byte and failure records).
const NEVER_NOTIFIED: [(&str, &str); 2] = [
    (
        "write",
        "SCMP_ACT_NOTIFY cannot be used for the write syscall (as in runc: the runtime needs it to hand the listener over)",
    ),
    (
        "sendmsg",
        "SCMP_ACT_NOTIFY cannot be used for the sendmsg syscall (dory sends the listener fd to its parent with it)",
    ),
];

/// Checks what a listener needs; true when some rule uses `SCMP_ACT_NOTIFY` (the
/// filter then gets a listener). `listenerPath` without a NOTIFY rule is ignored, as
/// in runc.
pub fn check(s: &Seccomp<'_>) -> Result<bool, SeccompError> {
    if names::action(s.default_action) == Some(ActionKind::Notify) {
        return Err(SeccompError::at(
            format_args!("linux.seccomp.defaultAction"),
            SeccompErrorKind::Invalid("SCMP_ACT_NOTIFY cannot be used as default action (as in runc: it would notify the calls that hand the listener over)"),
        ));
    }
    let mut uses = false;
    for (i, r) in s.syscalls.iter().enumerate() {
        if names::action(r.action) != Some(ActionKind::Notify) {
            continue;
        }
        uses = true;
        for (name, why) in NEVER_NOTIFIED {
            let slot = names::lookup(name).and_then(names::slot_of);
            if slot.is_some_and(|s| r.names.contains_slot(s)) {
                return Err(SeccompError::at(
                    format_args!("linux.seccomp.syscalls[{i}].names"),
                    SeccompErrorKind::Invalid(why),
                ));
            }
        }
    }
    let path = s.listener_path.filter(|p| !p.is_empty());
    if s.listener_metadata.is_some_and(|m| !m.is_empty()) && path.is_none() {
        return Err(SeccompError::at(
            format_args!("linux.seccomp.listenerMetadata"),
            SeccompErrorKind::Invalid("must not be set without linux.seccomp.listenerPath"),
        ));
    }
    match path {
        Some(p) => {
            listener_path(p, &mut [0u8; MAX_LISTENER_PATH])?;
        }
        None if uses => {
            return Err(SeccompError::at(
                format_args!("linux.seccomp.listenerPath"),
                SeccompErrorKind::Invalid(
                    "must be set when a rule uses SCMP_ACT_NOTIFY (the agent's unix socket)",
                ),
            ))
        }
        None => {}
    }
    Ok(uses)
}

/// `listenerPath` unescaped into `buf`; too long for `sun_path` is an error.
pub fn listener_path<'b>(
    raw: &str,
    buf: &'b mut [u8; MAX_LISTENER_PATH],
) -> Result<&'b [u8], SeccompError> {
    let path = format_args!("linux.seccomp.listenerPath");
    match unescape_into(raw, buf) {
        Ok(n) => Ok(buf.get(..n).unwrap_or_default()),
        // Unescaping never lengthens: a raw text this long is what did not fit.
        Err(_) if raw.len() > MAX_LISTENER_PATH => Err(SeccompError::at(
            path,
            SeccompErrorKind::Invalid(
                "longer than 107 bytes (limit MAX_LISTENER_PATH = 107: a unix socket path, sun_path, holds 108 with its NUL)",
            ),
        )),
        Err(_) => Err(SeccompError::at(
            path,
            SeccompErrorKind::Invalid("not a valid JSON string"),
        )),
    }
}

/// The `SECCOMP_FILTER_FLAG_*` bits to load with: `flags` from config.json, plus
/// NEW_LISTENER (and TSYNC_ESRCH with TSYNC) when `listener`; WAIT_KILLABLE_RECV is
/// dropped without a listener (the kernel refuses it alone; runc accepts it there).
pub fn filter_flags(flags: u32, listener: bool) -> u32 {
    if !listener {
        return flags & !WAIT_KILLABLE_RECV;
    }
    let flags = flags | NEW_LISTENER;
    if flags & TSYNC != 0 {
        flags | TSYNC_ESRCH
    } else {
        flags
    }
}

impl Program {
    /// Whether loading this filter returns a listener fd (a rule uses SCMP_ACT_NOTIFY).
    pub fn has_listener(&self) -> bool {
        self.flags() & NEW_LISTENER != 0
    }
}

/// Where the parent sends the listener: `listenerPath` (unescaped) and
/// `listenerMetadata` (as written in config.json, still JSON-escaped). Owned: the
/// parent keeps it past the config's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub path: std::vec::Vec<u8>,
    pub metadata_json: String,
}

impl Listener {
    /// The listener of a checked profile, when a rule uses SCMP_ACT_NOTIFY.
    pub fn of(s: &Seccomp<'_>) -> Result<Option<Listener>, SeccompError> {
        if !check(s)? {
            return Ok(None);
        }
        let mut buf = [0u8; MAX_LISTENER_PATH];
        let path = listener_path(s.listener_path.unwrap_or_default(), &mut buf)?;
        Ok(Some(Listener {
            path: path.to_vec(),
            metadata_json: s.listener_metadata.unwrap_or_default().to_string(),
        }))
    }
}
