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

/// `ioctl(WDIOC_SETTIMEOUT)`: asks the watchdog for `secs`; returns the timeout it chose.
pub fn watchdog_set_timeout(fd: BorrowedFd<'_>, secs: i32) -> nix::Result<i32> {
    // _IOWR('W', 6, int)
    const WDIOC_SETTIMEOUT: libc::c_ulong = 0xC004_5706;
    let mut v: libc::c_int = secs;
    // SAFETY: WDIOC_SETTIMEOUT reads and writes one int through the pointer we pass.
    Errno::result(unsafe { libc::ioctl(fd.as_raw_fd(), WDIOC_SETTIMEOUT as _, &mut v) })?;
    Ok(v)
}
/// Stack kept below the current stack pointer by [`trim_stack`] (for the trimming call
/// itself and anything it calls).
const TRIM_STACK_KEEP: usize = 16 * 1024;

/// `madvise(MADV_DONTNEED)` on the main thread's stack from the bottom of its mapping up to
/// [`TRIM_STACK_KEEP`] below the current stack pointer: gives back the pages a deep call
/// (a container launch builds its config and plan on the stack) left resident. Returns
/// the bytes released.
#[inline(never)]
pub fn trim_stack() -> usize {
    let marker = 0u8;
    let sp = core::ptr::addr_of!(marker) as usize;
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return 0;
    };
    let Some(low) = maps
        .lines()
        .find(|l| l.ends_with("[stack]"))
        .and_then(|l| l.split('-').next())
        .and_then(|a| usize::from_str_radix(a, 16).ok())
    else {
        return 0;
    };
    let page = 4096;
    let high = sp.saturating_sub(TRIM_STACK_KEEP) & !(page - 1);
    if high <= low {
        return 0;
    }
    let len = high - low;
    // SAFETY: [low, high) lies inside this thread's stack mapping and at least
    // TRIM_STACK_KEEP below the live stack pointer: only frames of calls that have already
    // returned were there (the stack grows down, dory installs no signal handlers, so
    // nothing runs on it asynchronously). MADV_DONTNEED on private anonymous memory drops
    // the pages; a later touch gets fresh zero pages.
    let ret = unsafe { libc::madvise(low as *mut libc::c_void, len, libc::MADV_DONTNEED) };
    if ret == 0 {
        len
    } else {
        0
    }
}
