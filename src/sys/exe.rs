//! Keeping the dory binary out of a container's reach (CVE-2019-5736, re-exec variant).
//!
//! Between clone and exec the container's first process is dory. If the program it is
//! asked to start is `/proc/self/exe`, or a script whose interpreter is, the kernel runs
//! dory again inside the container, where any container process can open that process's
//! `/proc/<pid>/exe` and, once no dory runs, write through it to the binary on the host.
//! So the commands that start processes in a container first make sure the file they
//! run from cannot be written: a sealed memfd copy (what they re-execute into, as runc
//! and crun do), a file on a read-only mount, or the file PID 1 runs (nothing to do).

use std::ffi::{CStr, CString, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use libc::{c_char, c_int, c_long};
use nix::errno::Errno;

/// Seals that make a memfd's contents immutable for good.
const SEALS: c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// How often sealing the copy is tried when the kernel answers EBUSY (2 ms apart).
const SEAL_TRIES: usize = 50;

/// How the running executable is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExeProtection {
    /// A memfd with every write seal.
    Sealed,
    /// On a read-only mount: a write through `/proc/<pid>/exe` gets EROFS.
    ReadOnlyMount,
    /// The file PID 1 runs (dory as a board's init): busy for as long as the system runs,
    /// so a write gets ETXTBSY.
    InitsOwn,
    /// Neither: a container could write to it.
    Writable,
}

/// The running executable, opened for reading.
fn open_exe() -> Result<OwnedFd, Errno> {
    nix::fcntl::open(
        c"/proc/self/exe",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
}

/// `fcntl(F_GET_SEALS)`, `fstatvfs(2)`, and `stat(2)` of PID 1's: how the running
/// executable `exe` is protected.
fn protection(exe: BorrowedFd<'_>) -> Result<ExeProtection, Errno> {
    if seals(exe).is_ok_and(|s| s & SEALS == SEALS) {
        return Ok(ExeProtection::Sealed);
    }
    let vfs = nix::sys::statvfs::fstatvfs(exe)?;
    if vfs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) {
        return Ok(ExeProtection::ReadOnlyMount);
    }
    let own = nix::sys::stat::fstat(exe)?;
    let init = nix::sys::stat::stat(c"/proc/1/exe");
    if init.is_ok_and(|i| (i.st_dev, i.st_ino) == (own.st_dev, own.st_ino)) {
        return Ok(ExeProtection::InitsOwn);
    }
    Ok(ExeProtection::Writable)
}

/// `fcntl(F_GET_SEALS)`.
fn seals(fd: BorrowedFd<'_>) -> Result<c_int, Errno> {
    // SAFETY: F_GET_SEALS takes no argument beyond the fd.
    let ret = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    Errno::result(ret)
}

/// Makes sure this process runs from a binary no container can write: returns at once
/// when it already does, else re-executes itself from a sealed memfd copy with the same
/// arguments and environment (returning only if that fails).
pub fn ensure_protected() -> Result<ExeProtection, Errno> {
    let exe = open_exe()?;
    match protection(exe.as_fd())? {
        ExeProtection::Writable => {}
        safe => return Ok(safe),
    }
    let copy = sealed_copy(exe.as_fd())?;
    drop(exe);
    Err(reexec(copy.as_fd()))
}

/// `memfd_create(2)`, `sendfile(2)` of the executable `exe` into it, `F_ADD_SEALS`.
fn sealed_copy(exe: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    let size = usize::try_from(nix::sys::stat::fstat(exe)?.st_size).map_err(|_| Errno::EFBIG)?;
    // SAFETY: the name is NUL-terminated; flags are integers.
    let ret = unsafe {
        libc::memfd_create(
            c"dory".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    let raw = Errno::result(ret)?;
    // SAFETY: memfd_create just returned this fd and nothing else owns it.
    let memfd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut left = size;
    while left > 0 {
        // SAFETY: both fds are open; a null offset uses and advances the source's offset.
        let n = unsafe {
            libc::sendfile(
                memfd.as_raw_fd(),
                exe.as_raw_fd(),
                std::ptr::null_mut(),
                left,
            )
        };
        match Errno::result(n) {
            Ok(0) => return Err(Errno::EIO),
            Ok(n) => left = left.saturating_sub(n as usize),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    // The kernel refuses F_SEAL_WRITE with EBUSY while a page of the copy still holds an
    // extra reference (seen, rarely, right after sendfile under load): retry briefly.
    for _ in 0..SEAL_TRIES {
        // SAFETY: F_ADD_SEALS takes the seal bits as an integer.
        let ret = unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, SEALS) };
        match Errno::result(ret) {
            Ok(_) => return Ok(memfd),
            Err(Errno::EBUSY) => std::thread::sleep(std::time::Duration::from_millis(2)),
            Err(e) => return Err(e),
        }
    }
    Err(Errno::EBUSY)
}

/// `execveat(2)` of `fd` with this process's arguments and environment. Returns the error.
fn reexec(fd: BorrowedFd<'_>) -> Errno {
    let to_c = |s: OsString| CString::new(s.as_bytes()).ok();
    let args: Option<Vec<CString>> = std::env::args_os().map(to_c).collect();
    let env: Option<Vec<CString>> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            to_c(kv)
        })
        .collect();
    let (Some(args), Some(env)) = (args, env) else {
        return Errno::EINVAL;
    };
    let ptrs = |v: &[CString]| -> Vec<*const c_char> {
        v.iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    };
    let (argv, envp) = (ptrs(&args), ptrs(&env));
    let empty: &CStr = c"";
    // SAFETY: argv and envp are null-terminated arrays of pointers to NUL-terminated
    // strings that outlive the call; the path is empty with AT_EMPTY_PATH.
    unsafe {
        libc::syscall(
            libc::SYS_execveat as c_long,
            fd.as_raw_fd(),
            empty.as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Errno::last()
}
