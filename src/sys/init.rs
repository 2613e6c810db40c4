//! Syscall wrappers PID 1 needs that nix does not offer safely.
//!
//! PID 1 is single-threaded, so a forked child may run any code; dory's children still
//! allocate nothing: argv/envp are prepared as C strings by [`ExecArgs`] before `fork`.

use std::ffi::{c_char, CString};
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::unistd::{ForkResult, Pid};

/// Runs `child` in a new process (`fork(2)`) and returns the child's pid to the parent.
/// `child` should end with an exec or [`exit_now`]; if it returns, the child exits 127.
pub fn spawn(child: impl FnOnce()) -> nix::Result<Pid> {
    // SAFETY: dory's PID 1 runs no other threads, so the child's copy of the address space
    // is consistent (no lock held by another thread); `child` never returns into the
    // caller's stack frames because the child calls _exit after it.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Parent { child: pid } => Ok(pid),
        ForkResult::Child => {
            child();
            exit_now(127)
        }
    }
}

pub use super::exit_now;

/// argv and envp for `execve(2)`, built before `fork` so the child does not allocate.
pub struct ExecArgs {
    path: CString,
    _strings: Vec<CString>,
    argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
}

impl ExecArgs {
    /// `args[0]` is also the path executed. Fails if a word holds a NUL byte.
    pub fn new<'a>(
        args: impl IntoIterator<Item = &'a str>,
        env: impl IntoIterator<Item = &'a str>,
    ) -> Option<ExecArgs> {
        let args: Vec<CString> = args
            .into_iter()
            .map(CString::new)
            .collect::<Result<_, _>>()
            .ok()?;
        let env: Vec<CString> = env
            .into_iter()
            .map(CString::new)
            .collect::<Result<_, _>>()
            .ok()?;
        let path = args.first()?.clone();
        let mut argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(core::ptr::null());
        let mut envp: Vec<*const c_char> = env.iter().map(|a| a.as_ptr()).collect();
        envp.push(core::ptr::null());
        let mut strings = args;
        strings.extend(env);
        Some(ExecArgs {
            path,
            _strings: strings,
            argv,
            envp,
        })
    }

    /// `execve(2)`; returns only on failure.
    pub fn exec(&self) -> Errno {
        // SAFETY: path, argv and envp point into CStrings owned by `self` (moving a
        // CString into `_strings` does not move its heap buffer), and both pointer arrays
        // end with NULL as execve requires.
        unsafe { libc::execve(self.path.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr()) };
        Errno::last()
    }
}

/// `finit_module(2)`: loads the kernel module in the file `module` (no parameters).
pub fn finit_module(module: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: an fd, an empty NUL-terminated parameter string and integer flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            module.as_raw_fd(),
            c"".as_ptr(),
            0 as libc::c_int,
        )
    };
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// `ioctl(WDIOC_SETTIMEOUT)`: asks the watchdog for `secs`; returns the timeout it chose.
pub fn watchdog_set_timeout(fd: BorrowedFd<'_>, secs: i32) -> nix::Result<i32> {
    // _IOWR('W', 6, int)
    const WDIOC_SETTIMEOUT: libc::c_ulong = 0xC004_5706;
    let mut v: libc::c_int = secs;
    // SAFETY: WDIOC_SETTIMEOUT reads and writes one int through the pointer we pass.
    Errno::result(unsafe { libc::ioctl(fd.as_raw_fd(), WDIOC_SETTIMEOUT as _, &mut v) })?;
    Ok(v)
}
