//! `dory run`: launch, forward signals, relay the terminal, wait, clean up, and exit with
//! the container's status.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::{hooks, launch, LaunchOptions, Stdio};
use crate::sys;

/// Signals `dory run` forwards to the container's init (all catchable ones but SIGCHLD,
/// and SIGWINCH, which resizes the pty instead).
fn forwarded() -> SigSet {
    let mut set = SigSet::all();
    for s in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGCHLD,
        Signal::SIGWINCH,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
    ] {
        set.remove(s);
    }
    set
}

/// Restores the caller's terminal mode when dropped.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter() -> Option<RawMode> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// Blocks the signals `run`/`exec` handle and returns a signalfd for them. Called before
/// the child exists, so none is lost; the child unblocks everything before exec.
pub fn block_signals() -> Result<SignalFd, String> {
    let mut mask = forwarded();
    mask.add(Signal::SIGCHLD);
    mask.add(Signal::SIGWINCH);
    mask.thread_block()
        .map_err(|e| format!("block signals: {}", e.desc()))?;
    // Non-blocking: the loop drains it until empty (a blocking read of an empty signalfd
    // would stop the terminal relay for good).
    SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| format!("signalfd: {}", e.desc()))
}

/// Relays the terminal (if any), forwards signals and waits for `pid`; returns dory's
/// exit code: the process's status, 128+N if killed by signal N.
pub fn attach(pid: i32, sfd: &SignalFd, master: Option<BorrowedFd<'_>>) -> i32 {
    let _raw = match master {
        Some(m) => {
            resize(m);
            RawMode::enter()
        }
        None => None,
    };
    wait_loop(pid, sfd, master)
}

/// Runs a container to completion; returns the exit code for dory, or the error to
/// report and the exit code to go with it.
pub fn run(
    id: &str,
    bundle: &Path,
    state_root: &Path,
    no_pivot: bool,
) -> Result<i32, (String, i32)> {
    let sfd = block_signals().map_err(|e| (e, 1))?;
    let mut opts = LaunchOptions::new(id, bundle, state_root, Stdio::Inherit);
    opts.no_pivot = no_pivot;
    let mut started = launch(opts).map_err(|e| (e.to_string(), e.exit_code()))?;
    let bundle = started.bundle.to_string_lossy().into_owned();
    // As runc: a failed poststart hook ends the container and fails `run`.
    let poststart = if started.later_hooks {
        let phase = hooks::Phase::Poststart;
        hooks::run_phase(&started.config, &bundle, id, "running", started.pid, phase)
    } else {
        Ok(())
    };
    let code = match &poststart {
        Ok(()) => attach(
            started.pid,
            &sfd,
            started.pty_master.as_ref().map(|m| m.as_fd()),
        ),
        Err(_) => {
            let pid = Pid::from_raw(started.pid);
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            1
        }
    };
    let later_hooks = started.later_hooks;
    let config = std::mem::take(&mut started.config);
    started.destroy();
    if later_hooks {
        let phase = hooks::Phase::Poststop;
        if let Err(e) = hooks::run_phase(&config, &bundle, id, "stopped", 0, phase) {
            crate::cli::log::warning(format_args!("dory run: {e}"));
        }
    }
    poststart.map_err(|e| (e, 1))?;
    Ok(code)
}

fn resize(master: BorrowedFd<'_>) {
    if let Ok(ws) = sys::get_winsize(std::io::stdin().as_fd()) {
        let _ = sys::set_winsize(master, &ws);
    }
}

/// Copies what is readable from `from` to `to`; false at EOF or error.
fn pump(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 4096];
    match nix::unistd::read(from, &mut buf) {
        Ok(0) => false,
        Ok(n) => {
            let mut rest = buf.get(..n).unwrap_or_default();
            while !rest.is_empty() {
                match nix::unistd::write(to, rest) {
                    Ok(w) => rest = rest.get(w..).unwrap_or_default(),
                    Err(Errno::EINTR) => {}
                    Err(_) => return false,
                }
            }
            true
        }
        Err(Errno::EINTR | Errno::EAGAIN) => true,
        Err(_) => false,
    }
}

fn status_code(ws: WaitStatus) -> Option<i32> {
    match ws {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}

fn wait_loop(pid: i32, sfd: &SignalFd, master: Option<BorrowedFd<'_>>) -> i32 {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut stdin_open = master.is_some();
    let mut master_open = master.is_some();
    loop {
        let mut fds: heapless::Vec<PollFd<'_>, 3> = heapless::Vec::new();
        let _ = fds.push(PollFd::new(sfd.as_fd(), PollFlags::POLLIN));
        if let (Some(m), true) = (master, master_open) {
            let _ = fds.push(PollFd::new(m, PollFlags::POLLIN));
        }
        if stdin_open {
            let _ = fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                eprintln!("dory: poll: {}", e.desc());
                return 1;
            }
        }
        let ready = |i: usize| {
            fds.get(i).and_then(|f| f.revents()).is_some_and(|r| {
                r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
            })
        };
        let (sig_ready, m_ready, in_ready) = (
            ready(0),
            master_open && ready(1),
            stdin_open && ready(if master_open { 2 } else { 1 }),
        );
        if let (Some(m), true) = (master, m_ready) {
            master_open = pump(m, stdout.as_fd());
        }
        if let (Some(m), true) = (master, in_ready) {
            stdin_open = pump(stdin.as_fd(), m);
        }
        if !sig_ready {
            continue;
        }
        while let Ok(Some(info)) = sfd.read_signal() {
            let signo = info.ssi_signo as i32;
            if signo == libc::SIGCHLD {
                if let Some(code) = reap(pid) {
                    // Drain what the container wrote before it exited.
                    if let Some(m) = master {
                        while master_open && poll_readable(m) {
                            master_open = pump(m, stdout.as_fd());
                        }
                    }
                    return code;
                }
            } else if signo == libc::SIGWINCH {
                if let Some(m) = master {
                    resize(m);
                }
            } else if let Ok(sig) = Signal::try_from(signo) {
                let _ = kill(Pid::from_raw(pid), sig);
            }
        }
    }
}

fn poll_readable(fd: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
        && fds
            .first()
            .and_then(|f| f.revents())
            .is_some_and(|r| r.contains(PollFlags::POLLIN))
}

/// Reaps exited children; returns the container's code once its init is gone.
fn reap(pid: i32) -> Option<i32> {
    let mut result = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return result,
            Ok(ws) => {
                if ws.pid() == Some(Pid::from_raw(pid)) {
                    result = status_code(ws).or(result);
                }
            }
        }
    }
}
