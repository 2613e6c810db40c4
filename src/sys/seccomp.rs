//! `seccomp(2)`: loading a compiled filter.

use libc::c_ulong;
use nix::errno::Errno;

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog)`: installs `prog` on the calling
/// thread. `flags` are `SECCOMP_FILTER_FLAG_*` bits (`Program::flags`). The caller must
/// have set `PR_SET_NO_NEW_PRIVS` or hold `CAP_SYS_ADMIN`. Allocates nothing.
// The sandbox calls this once the lead wires seccomp in; tests call it now.
pub fn install_filter(prog: &[libc::sock_filter], flags: u32) -> Result<(), Errno> {
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
    match ret {
        0 => Ok(()),
        // With SECCOMP_FILTER_FLAG_TSYNC a positive value is a thread that could not sync.
        r if r > 0 => Err(Errno::ESRCH),
        _ => Err(Errno::last()),
    }
}
