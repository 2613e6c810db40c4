//! `seccomp(2)`: loading a compiled filter.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use libc::c_ulong;
use nix::errno::Errno;

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog)`: installs `prog` on the calling
/// thread. `flags` are `SECCOMP_FILTER_FLAG_*` bits (`Program::flags`). The caller must
/// have set `PR_SET_NO_NEW_PRIVS` or hold `CAP_SYS_ADMIN`. Allocates nothing. With
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER` returns the user-notification listener fd
/// (close-on-exec), see seccomp(2) and seccomp_unotify(2).
pub fn install_filter(prog: &[libc::sock_filter], flags: u32) -> Result<Option<OwnedFd>, Errno> {
    let len = u16::try_from(prog.len()).map_err(|_| Errno::EINVAL)?;
    let fprog = libc::sock_fprog {
        len,
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` points at `len` initialised instructions that outlive the call; the
    // kernel copies the program and does not write through the pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as c_ulong,
            flags as c_ulong,
            &fprog as *const libc::sock_fprog,
        )
    };
    let listener = c_ulong::from(flags) & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER != 0;
    match ret {
        0 if !listener => Ok(None),
        r if r >= 0 && listener => {
            let fd = RawFd::try_from(r).map_err(|_| Errno::EBADF)?;
            // SAFETY: with NEW_LISTENER a non-negative return is a new fd the kernel
            // opened for us and nothing else owns.
            Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
        }
        // With SECCOMP_FILTER_FLAG_TSYNC a positive value is a thread that could not sync.
        r if r > 0 => Err(Errno::ESRCH),
        _ => Err(Errno::last()),
    }
}
