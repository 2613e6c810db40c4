//! Health probes: a board's `health.args` run inside the running container through the
//! same path as `dory exec`: the container's namespaces (pid included), its cgroup, user,
//! capabilities, rlimits, no_new_privs and seccomp filter, stdio on /dev/null, a session
//! of its own.
//!
//! Why not as PID 1's own child with its privileges: the program is looked up in the
//! container's filesystem, so the image (or the running container, if its root is
//! writable) decides what runs. Run with PID 1's capabilities and outside the cgroup, a
//! replaced `/bin/sh` was host root with every capability. Through the exec path it gets
//! exactly what the container's own processes have.
//!
//! The started process is PID 1's child (the exec path clones from here), so the
//! supervisor's loop reaps it and reads its status; on timeout the supervisor kills it.
//! Anything it started meanwhile stays in the container's cgroup and pid namespace and
//! goes with the container.

use std::os::fd::AsRawFd;
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use crate::container::exec::{exec, ExecRequest};
use crate::container::lifecycle::Container;

/// Starts `argv` in the running container `id` (state under `state_root`); returns the
/// pid to wait for.
pub fn start(state_root: &Path, id: &str, argv: &[&str]) -> Result<Pid, String> {
    if argv.is_empty() {
        return Err("health.args is empty".into());
    }
    let c = Container::load(state_root, id).map_err(|e| e.to_string())?;
    let devnull = open(
        c"/dev/null",
        OFlag::O_RDWR | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("/dev/null: {}", e.desc()))?;
    let null = devnull.as_raw_fd();
    let req = ExecRequest {
        args: argv.iter().map(|a| (*a).to_owned()).collect(),
        detach: true,
        hook_stdio: Some([null, null, null]),
        ..Default::default()
    };
    let pid = exec(&c, &req).map_err(|(msg, _)| msg)?;
    Ok(Pid::from_raw(pid))
}
