//! Running a command inside a running container (health probes).
//!
//! [`exec_in`] forks; the child joins the container init's ipc, uts, net, pid and mount
//! namespaces with `setns` (all namespace files are opened in the parent first: after
//! joining the mount namespace, /proc may no longer be the one we opened them from), then
//! forks once more because joining a pid namespace only applies to children. The grandchild
//! (in the container's pid namespace) gets SIGKILL if the middle process dies, unblocks
//! signals, points stdio at /dev/null and execs. On timeout the supervisor kills the
//! grandchild (found in /proc/<middle>/task/<middle>/children) so the middle process reaps
//! it, or the middle process itself when it has no child yet. The middle process waits and exits with the probe's status
//! (128+N when killed by signal N, 127 when exec failed).
//!
//! The probe runs as root with dory's capabilities and outside the container's cgroup:
//! it is a trusted command from board.json, not container code.

use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use crate::sys::init::{exit_now, spawn, ExecArgs};

/// The environment of a probe.
pub const PROBE_ENV: &[&str] =
    &["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"];

/// Namespaces joined, in this order (mount last: it changes root and cwd).
const NAMESPACES: [(&str, CloneFlags); 5] = [
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

#[derive(Debug)]
pub enum Error {
    /// An argument holds a NUL byte, or argv is empty.
    BadArgs,
    /// `/proc/<pid>/ns/<name>` could not be opened.
    OpenNamespace {
        ns: &'static str,
        errno: nix::Error,
    },
    OpenDevNull(nix::Error),
    Fork(nix::Error),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::BadArgs => f.write_str("probe command is empty or holds a NUL byte"),
            Error::OpenNamespace { ns, errno } => write!(f, "cannot open namespace {ns}: {errno}"),
            Error::OpenDevNull(e) => write!(f, "cannot open /dev/null: {e}"),
            Error::Fork(e) => write!(f, "fork: {e}"),
        }
    }
}

/// Starts `argv` inside the namespaces of `pid` (a container's init, host pid); returns
/// the pid of the process to wait for (its exit status is the probe's).
pub fn exec_in(pid: i32, argv: &[&str]) -> Result<Pid, Error> {
    let exec =
        ExecArgs::new(argv.iter().copied(), PROBE_ENV.iter().copied()).ok_or(Error::BadArgs)?;
    let mut fds: heapless::Vec<(OwnedFd, CloneFlags), 5> = heapless::Vec::new();
    for (name, flag) in NAMESPACES {
        let path = format!("/proc/{pid}/ns/{name}");
        let fd = open(
            path.as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| Error::OpenNamespace { ns: name, errno })?;
        let _ = fds.push((fd, flag));
    }
    let devnull = open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(Error::OpenDevNull)?;
    spawn(|| middle(&fds, &devnull, &exec)).map_err(Error::Fork)
}

/// The middle process: join namespaces, fork the probe, pass on its status.
fn middle(fds: &[(OwnedFd, CloneFlags)], devnull: &OwnedFd, exec: &ExecArgs) -> ! {
    for (fd, flag) in fds {
        // Joining a namespace we are already in is harmless; any other failure ends the
        // probe as failed.
        if setns(fd.as_fd(), *flag).is_err() {
            exit_now(126);
        }
    }
    let child = match spawn(|| probe(devnull, exec)) {
        Ok(p) => p,
        Err(_) => exit_now(126),
    };
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => exit_now(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => exit_now(128 + sig as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => exit_now(126),
        }
    }
}

/// The probe itself, inside the container's pid namespace.
fn probe(devnull: &OwnedFd, exec: &ExecArgs) -> ! {
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    let _ = nix::unistd::dup2_stdin(devnull);
    let _ = nix::unistd::dup2_stdout(devnull);
    let _ = nix::unistd::dup2_stderr(devnull);
    let _ = nix::unistd::chdir("/");
    let _ = exec.exec();
    exit_now(127)
}
