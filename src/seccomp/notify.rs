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

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;
    use crate::seccomp::compile;
    use crate::spec::parse_unvalidated;

    const RET_K: u16 = 0x06;

    fn with<R>(seccomp: &str, f: impl FnOnce(&Seccomp<'_>) -> R) -> R {
        let text = format!(
            r#"{{"ociVersion": "1.0.2", "process": {{"user": {{"uid": 0, "gid": 0}}, "args": ["sh"], "cwd": "/"}}, "root": {{"path": "rootfs"}}, "linux": {{"seccomp": {seccomp}}}}}"#
        );
        let spec = parse_unvalidated(text.as_bytes()).unwrap();
        f(spec.linux.as_ref().unwrap().seccomp.as_ref().unwrap())
    }

    fn err(seccomp: &str) -> String {
        with(seccomp, |s| compile(s).unwrap_err().to_string())
    }

    fn notify(path: &str, names: &str) -> String {
        format!(
            r#"{{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "{path}", "syscalls": [{{"names": [{names}], "action": "SCMP_ACT_NOTIFY"}}]}}"#
        )
    }

    #[test]
    fn a_notify_rule_returns_user_notif_and_asks_for_a_listener() {
        let p = with(&notify("/run/agent.sock", r#""mkdirat""#), |s| {
            compile(s).unwrap()
        });
        assert!(p.has_listener());
        assert_eq!(p.flags(), libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32);
        let notif = p
            .as_slice()
            .iter()
            .filter(|i| i.code == RET_K && i.k == libc::SECCOMP_RET_USER_NOTIF)
            .count();
        assert_eq!(notif, 1, "{p:?}");
        // listenerPath alone (runc ignores it): no listener.
        let q = with(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/a.sock", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
            |s| compile(s).unwrap(),
        );
        assert!(!q.has_listener());
        assert_eq!(q.flags(), 0);
    }

    #[test]
    fn listener_flags() {
        let (tsync, killable) = (TSYNC, WAIT_KILLABLE_RECV);
        assert_eq!(filter_flags(tsync | killable, false), tsync);
        assert_eq!(
            filter_flags(tsync | killable, true),
            tsync | killable | NEW_LISTENER | TSYNC_ESRCH
        );
        assert_eq!(filter_flags(4, true), 4 | NEW_LISTENER);
    }

    #[test]
    fn what_runc_refuses_is_refused_with_the_field() {
        let no_path = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}"#;
        assert_eq!(
            err(no_path),
            "config.json: linux.seccomp.listenerPath: must be set when a rule uses SCMP_ACT_NOTIFY (the agent's unix socket)"
        );
        assert!(err(&notify("", r#""mkdir""#)).contains("listenerPath: must be set"));
        assert!(err(&notify("/a", r#""mkdir", "write""#)).starts_with(
            "config.json: linux.seccomp.syscalls[0].names: SCMP_ACT_NOTIFY cannot be used for the write syscall"
        ));
        assert!(err(&notify("/a", r#""sendmsg""#)).starts_with(
            "config.json: linux.seccomp.syscalls[0].names: SCMP_ACT_NOTIFY cannot be used for the sendmsg syscall"
        ));
        assert!(err(r#"{"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/a"}"#).starts_with(
            "config.json: linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be used as default action"
        ));
        assert_eq!(
            err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "m"}"#),
            "config.json: linux.seccomp.listenerMetadata: must not be set without linux.seccomp.listenerPath"
        );
    }

    #[test]
    fn listener_path_fits_sun_path_once_unescaped() {
        let fits = format!("/{}", "p".repeat(MAX_LISTENER_PATH - 1));
        let l = with(&notify(&fits, r#""mkdir""#), |s| Listener::of(s).unwrap()).unwrap();
        assert_eq!(l.path.len(), MAX_LISTENER_PATH);
        let long = format!("/{}", "p".repeat(MAX_LISTENER_PATH));
        assert_eq!(
            err(&notify(&long, r#""mkdir""#)),
            "config.json: linux.seccomp.listenerPath: longer than 107 bytes (limit MAX_LISTENER_PATH = 107: a unix socket path, sun_path, holds 108 with its NUL)"
        );
        // Escapes count once undone: 60 `\/` are 120 bytes written, 60 meant.
        let escaped = r"\/".repeat(60);
        let l = with(&notify(&escaped, r#""mkdir""#), |s| {
            Listener::of(s).unwrap()
        })
        .unwrap();
        assert_eq!(l.path, vec![b'/'; 60]);
    }

    #[test]
    fn listener_keeps_metadata_as_json_text() {
        let cfg = r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/a.sock", "listenerMetadata": "say \"hi\"", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}"#;
        let l = with(cfg, |s| Listener::of(s).unwrap()).unwrap();
        assert_eq!(l.path, b"/run/a.sock");
        assert_eq!(l.metadata_json, r#"say \"hi\""#);
        let none = with(r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#, |s| {
            Listener::of(s).unwrap()
        });
        assert_eq!(none, None);
    }

    /// The kernel hands back a listener for the compiled program (no root needed: a
    /// forked child sets no_new_privs first).
    #[test]
    fn the_kernel_returns_a_listener() {
        use crate::sys;
        if std::env::var_os("DORY_FOREIGN").is_some() {
            // qemu-user does not emulate seccomp(2) for its guest.
            crate::testutil::not_applicable(
                "the_kernel_returns_a_listener",
                "under qemu-user (DORY_FOREIGN)",
            );
            return;
        }
        let p = with(&notify("/a", r#""mkdirat""#), |s| compile(s).unwrap());
        let pid = sys::clone_fork(0).unwrap();
        if pid == 0 {
            let code = match sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0) {
                Err(_) => 101,
                Ok(_) => match sys::seccomp::install_filter(p.as_slice(), p.flags()) {
                    Ok(Some(fd)) if fd.as_raw_fd() > 2 => 0,
                    Ok(_) => 102,
                    Err(_) => 103,
                },
            };
            sys::exit_now(code);
        }
        let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
        assert_eq!(
            status,
            nix::sys::wait::WaitStatus::Exited(nix::unistd::Pid::from_raw(pid), 0)
        );
    }
}
