//! A short-lived process in a new user namespace, for the parent to give that namespace
//! id maps and open it (idmapped mounts take a user namespace fd, not a mapping).

use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::wait::waitpid;
use nix::unistd::{pipe2, read, Pid};

/// A child in a new user namespace, blocked until dropped; dropping ends and reaps it.
pub struct Holder {
    pid: Pid,
    /// The write end the child waits on: closing it lets the child exit.
    release: Option<OwnedFd>,
}

impl Holder {
    /// clone(2) with `CLONE_NEWUSER` of a child that only waits for its release. The
    /// caller must be single-threaded.
    pub fn spawn() -> Result<Holder, Errno> {
        let (wait_end, release) = pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let pid = super::clone_fork(libc::CLONE_NEWUSER)?;
        if pid == 0 {
            // The child: no allocation, only close, read and _exit. Its copy of the write
            // end must go, or the read below would never see the end of the pipe.
            drop(release);
            let mut b = [0u8; 1];
            let _ = read(wait_end.as_fd(), &mut b);
            super::exit_now(0);
        }
        drop(wait_end);
        Ok(Holder {
            pid: Pid::from_raw(pid),
            release: Some(release),
        })
    }

    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.release.take());
        let _ = waitpid(self.pid, None);
    }
}
