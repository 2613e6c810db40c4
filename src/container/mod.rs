//! The parent side of a container's life: launch (one clone), state, signals, cleanup.
//!
//! `dory run` and PID 1 (`init`) both start containers through [`launch`].

use std::os::fd::OwnedFd;
use std::path::Path;

/// Where the container's stdio comes from.
pub enum Stdio {
    /// The container inherits dory's fds 0, 1, 2.
    Inherit,
    /// These three fds become the container's 0, 1, 2.
    Fds {
        stdin: OwnedFd,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    /// A new pty; its slave is the container's stdio and its master is returned in
    /// [`Started::pty_master`]. Used when `process.terminal` is true.
    Terminal,
}

/// What `launch` needs to start one container.
pub struct LaunchOptions<'a> {
    /// Container id (validated: no `/`, not empty, at most 1024 bytes).
    pub id: &'a str,
    /// Bundle directory holding config.json.
    pub bundle: &'a Path,
    /// State root, `/run/dory` unless `--root` says otherwise.
    pub state_root: &'a Path,
    /// Stdio for the container's init when `process.terminal` is false.
    pub stdio: Stdio,
}

/// A container whose init process has exec'd the user's program.
pub struct Started {
    /// Host pid of the container's init.
    pub pid: i32,
    /// The pty master when the config asked for a terminal.
    pub pty_master: Option<OwnedFd>,
}

/// Launch errors; `Display` names the config field or the step that failed.
#[derive(Debug)]
pub enum Error {
    NotBuiltYet,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NotBuiltYet => f.write_str("container launch is not built yet"),
        }
    }
}

/// Reads the bundle's config, creates the state entry and cgroup, clones the container's
/// init with the config's namespaces and returns once it has exec'd the user's program.
/// The caller reaps `Started::pid` and then calls [`Started::destroy`].
pub fn launch(_opts: LaunchOptions<'_>) -> Result<Started, Error> {
    Err(Error::NotBuiltYet)
}

impl Started {
    /// Removes the cgroup and the state entry; call after `pid` has been reaped.
    pub fn destroy(self) {}
}
