//! The cgroup phase's errors: one variant per failed step; `Display` names the config field
//! or the file involved and the errno text.

use std::fmt;
use std::path::PathBuf;

use nix::errno::Errno;

/// Turns an `io::Error` from std::fs into the errno it carries.
pub(super) fn errno_of(e: &std::io::Error) -> Errno {
    e.raw_os_error()
        .map_or(Errno::UnknownErrno, Errno::from_raw)
}

#[derive(Debug)]
pub enum Error {
    /// /proc/self/mountinfo or /proc/self/cgroup could not be read.
    ReadProc {
        path: &'static str,
        errno: Errno,
    },
    /// mountinfo lists no cgroup or cgroup2 filesystem.
    NoCgroupFs,
    /// `linux.cgroupsPath` is in systemd's `slice:prefix:name` form.
    SystemdPath(String),
    /// `linux.cgroupsPath` is empty, the root, or contains `..`.
    BadPath {
        path: String,
        why: &'static str,
    },
    /// A relative cgroupsPath needs the caller's own cgroup in this hierarchy, and
    /// /proc/self/cgroup does not list it.
    NoOwnCgroup {
        controllers: String,
    },
    Mkdir {
        path: PathBuf,
        errno: Errno,
    },
    Write {
        field: String,
        path: PathBuf,
        errno: Errno,
    },
    Read {
        field: String,
        path: PathBuf,
        errno: Errno,
    },
    Rmdir {
        path: PathBuf,
        errno: Errno,
    },
    /// A resource needs a v1 controller that has no mounted hierarchy.
    NoHierarchy {
        field: String,
        controller: &'static str,
    },
    /// A resource needs a cgroup v2 controller the tree does not offer (its root's
    /// `cgroup.controllers`).
    NoController {
        field: String,
        controller: &'static str,
    },
    /// The field cannot be honoured on this cgroup version.
    Unsupported {
        field: String,
        why: &'static str,
    },
    /// The field's value is invalid.
    Invalid {
        field: String,
        why: &'static str,
    },
    /// The freezer did not reach the wanted state in time.
    FreezeTimeout {
        path: PathBuf,
        want: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ReadProc { path, errno } => write!(f, "read {path}: {}", errno.desc()),
            Error::NoCgroupFs => f.write_str(
                "no cgroup or cgroup2 filesystem is mounted (/proc/self/mountinfo lists none)",
            ),
            Error::SystemdPath(p) => write!(
                f,
                "linux.cgroupsPath {p:?}: systemd cgroup paths (slice:prefix:name) are not supported"
            ),
            Error::BadPath { path, why } => write!(f, "linux.cgroupsPath {path:?}: {why}"),
            Error::NoOwnCgroup { controllers } => write!(
                f,
                "linux.cgroupsPath: relative path, but /proc/self/cgroup lists no cgroup for the \
                 {controllers:?} hierarchy"
            ),
            Error::Mkdir { path, errno } => {
                write!(f, "mkdir {}: {}", path.display(), errno.desc())
            }
            Error::Write { field, path, errno } => {
                write!(f, "{field}: write {}: {}", path.display(), errno.desc())
            }
            Error::Read { field, path, errno } => {
                write!(f, "{field}: read {}: {}", path.display(), errno.desc())
            }
            Error::Rmdir { path, errno } => {
                write!(f, "rmdir {}: {}", path.display(), errno.desc())
            }
            Error::NoHierarchy { field, controller } => write!(
                f,
                "{field}: no cgroup v1 hierarchy with the {controller} controller is mounted"
            ),
            Error::NoController { field, controller } => write!(
                f,
                "{field}: this kernel's cgroup v2 tree has no {controller} controller \
                 (not in cgroup.controllers)"
            ),
            Error::Unsupported { field, why } | Error::Invalid { field, why } => {
                write!(f, "{field}: {why}")
            }
            Error::FreezeTimeout { path, want } => write!(
                f,
                "freeze: {} did not reach {want} in time",
                path.display()
            ),
        }
    }
}
