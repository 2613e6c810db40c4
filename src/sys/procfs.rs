//! Verified handles into procfs. Every write dory makes to /proc (sysctls, oom_score_adj,
//! id maps, time offsets) and every reopen through `/proc/self/fd` goes through a root
//! opened before the container exists and checked to be a real procfs root; files are
//! opened beneath it with no symlink and no mount crossed, and checked again. A symlink
//! in an image or a mount in a config cannot redirect them (CVE-2025-52881 class).

use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};

use linux_raw_sys::general::PROC_SUPER_MAGIC;
use nix::errno::Errno;

use super::mount_api::fs_magic;

/// Inode number of a procfs root directory (`PROC_ROOT_INO`).
const PROC_ROOT_INO: u64 = 1;

/// No symlink of any kind, no mount crossed, never above the directory.
const STRICT: u64 = libc::RESOLVE_NO_SYMLINKS
    | libc::RESOLVE_NO_MAGICLINKS
    | libc::RESOLVE_NO_XDEV
    | libc::RESOLVE_BENEATH;

fn is_procfs(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    if fs_magic(fd)? == u64::from(PROC_SUPER_MAGIC) {
        Ok(())
    } else {
        Err(Errno::EXDEV)
    }
}

/// Opens `/proc` and checks that it is the root directory of a procfs mount (not a
/// directory of another filesystem, not a subdirectory of procfs).
pub fn open_root() -> Result<OwnedFd, Errno> {
    let fd = nix::fcntl::open(
        c"/proc",
        nix::fcntl::OFlag::O_PATH
            | nix::fcntl::OFlag::O_DIRECTORY
            | nix::fcntl::OFlag::O_NOFOLLOW
            | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    is_procfs(fd.as_fd())?;
    if nix::sys::stat::fstat(fd.as_fd())?.st_ino != PROC_ROOT_INO {
        return Err(Errno::EXDEV);
    }
    Ok(fd)
}

/// Opens `rel` beneath the procfs directory `dir` with `flags`: no symlink, no mount
/// crossed; the result must still be on procfs.
pub fn open_beneath(dir: BorrowedFd<'_>, rel: &CStr, flags: libc::c_int) -> Result<OwnedFd, Errno> {
    let fd = super::openat2(dir, rel, flags | libc::O_NOFOLLOW, STRICT)?;
    is_procfs(fd.as_fd())?;
    Ok(fd)
}

/// The caller's own `/proc/<pid>` directory under `root`. `self` is procfs's own symlink
/// to the caller's pid; it is followed only within the procfs mount.
pub fn own_dir(root: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    let fd = super::openat2(
        root,
        c"self",
        libc::O_PATH | libc::O_DIRECTORY,
        libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_NO_XDEV | libc::RESOLVE_BENEATH,
    )?;
    is_procfs(fd.as_fd())?;
    Ok(fd)
}

/// Opens the namespace file `ns` (`c"net"`) of process `pid` (the caller when None):
/// `<root>/<pid>/ns` strictly beneath the verified root, then the kernel's magic link.
pub fn open_ns(root: BorrowedFd<'_>, pid: Option<i32>, ns: &CStr) -> Result<OwnedFd, Errno> {
    let dir = match pid {
        None => own_dir(root)?,
        Some(pid) => {
            let mut name = [0u8; 24];
            let len = decimal(u64::try_from(pid).map_err(|_| Errno::ESRCH)?, &mut name);
            let name = CStr::from_bytes_with_nul(name.get(..=len).ok_or(Errno::EINVAL)?)
                .map_err(|_| Errno::EINVAL)?;
            open_beneath(root, name, libc::O_PATH | libc::O_DIRECTORY)?
        }
    };
    let nsdir = open_beneath(dir.as_fd(), c"ns", libc::O_PATH | libc::O_DIRECTORY)?;
    // A plain openat: the last component is the magic link to the namespace.
    nix::fcntl::openat(
        nsdir.as_fd(),
        ns,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
}

/// Writes all of `value` to `rel` beneath the procfs directory `dir` (see [`open_beneath`]).
pub fn write(dir: BorrowedFd<'_>, rel: &CStr, value: &[u8]) -> Result<(), Errno> {
    let fd = open_beneath(dir, rel, libc::O_WRONLY)?;
    write_all(fd.as_fd(), value)
}

fn write_all(fd: BorrowedFd<'_>, value: &[u8]) -> Result<(), Errno> {
    let mut rest = value;
    while !rest.is_empty() {
        let n = nix::unistd::write(fd, rest)?;
        if n == 0 {
            return Err(Errno::EIO);
        }
        rest = rest.get(n..).unwrap_or_default();
    }
    Ok(())
}

/// Writes `value` to the first of `files` (paths under the caller's own `/proc/self`
/// below the verified `root`) that exists: an LSM attribute such as AppArmor's
/// `attr/apparmor/exec`, with `attr/exec` as the older kernels' name. ENOENT when none
/// does.
pub fn write_own_attr(root: BorrowedFd<'_>, files: &[&CStr], value: &[u8]) -> Result<(), Errno> {
    let own = own_dir(root)?;
    for file in files {
        let fd = match open_beneath(own.as_fd(), file, libc::O_WRONLY) {
            Err(Errno::ENOENT) => continue,
            other => other?,
        };
        // The write's own ENOENT (AppArmor: no such profile loaded) is the answer.
        return write_all(fd.as_fd(), value);
    }
    Err(Errno::ENOENT)
}

/// Reopens the caller's fd `fd` with `flags` through `<root>/self/fd/<fd>`: the magic
/// link is the kernel's own, in a procfs the container cannot reach or cover.
pub fn reopen(root: BorrowedFd<'_>, fd: RawFd, flags: libc::c_int) -> Result<OwnedFd, Errno> {
    reopen_in(fd_dir(root)?.as_fd(), fd, flags)
}

/// `<root>/self/fd`, checked like every path under `root`: the first half of [`reopen`],
/// for a caller that wants its failures before it blocks in the second.
pub fn fd_dir(root: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    let own = own_dir(root)?;
    open_beneath(own.as_fd(), c"fd", libc::O_PATH | libc::O_DIRECTORY)
}

/// Reopens fd `fd` through `fds` (from [`fd_dir`]).
pub fn reopen_in(fds: BorrowedFd<'_>, fd: RawFd, flags: libc::c_int) -> Result<OwnedFd, Errno> {
    let mut name = [0u8; 24];
    let len = decimal(u64::try_from(fd).map_err(|_| Errno::EBADF)?, &mut name);
    let name = CStr::from_bytes_with_nul(name.get(..=len).ok_or(Errno::EINVAL)?)
        .map_err(|_| Errno::EINVAL)?;
    // A plain openat: the last component is the magic link to the object.
    nix::fcntl::openat(
        fds,
        name,
        nix::fcntl::OFlag::from_bits_retain(flags | libc::O_CLOEXEC),
        nix::sys::stat::Mode::empty(),
    )
}

/// `/proc/thread-self/fd` of the caller's current `/proc`, checked to be procfs: the
/// kernel's own list of the caller's open fds.
pub fn open_fd_dir() -> Result<OwnedFd, Errno> {
    let root = open_root()?;
    let fd = super::openat2(
        root.as_fd(),
        c"thread-self/fd",
        libc::O_RDONLY | libc::O_DIRECTORY,
        libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_NO_XDEV | libc::RESOLVE_BENEATH,
    )?;
    is_procfs(fd.as_fd())?;
    Ok(fd)
}

/// Writes `n` in decimal into `out` followed by a NUL; returns the digits' length.
pub(super) fn decimal(mut n: u64, out: &mut [u8; 24]) -> usize {
    let mut digits = [0u8; 20];
    let mut len = 0;
    loop {
        if let Some(d) = digits.get_mut(len) {
            *d = b'0' + (n % 10) as u8;
        }
        len += 1;
        n /= 10;
        if n == 0 || len == digits.len() {
            break;
        }
    }
    for (slot, d) in out.iter_mut().zip(digits.iter().take(len).rev()) {
        *slot = *d;
    }
    if let Some(nul) = out.get_mut(len) {
        *nul = 0;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_writes_digits_and_nul() {
        let mut b = [0xffu8; 24];
        assert_eq!(decimal(0, &mut b), 1);
        assert_eq!(&b[..2], b"0\0");
        assert_eq!(decimal(1234, &mut b), 4);
        assert_eq!(&b[..5], b"1234\0");
        assert_eq!(decimal(u64::MAX, &mut b), 20);
        assert_eq!(&b[..21], b"18446744073709551615\0");
    }

    #[test]
    fn the_host_proc_is_a_verified_root_and_symlinks_are_refused() {
        let root = open_root().unwrap();
        // /proc/self is a symlink: refused by the strict open, followed by own_dir.
        assert_eq!(
            open_beneath(root.as_fd(), c"self/status", libc::O_RDONLY).unwrap_err(),
            Errno::ELOOP
        );
        let own = own_dir(root.as_fd()).unwrap();
        open_beneath(own.as_fd(), c"status", libc::O_RDONLY).unwrap();
        // Escaping the directory is refused.
        assert!(open_beneath(own.as_fd(), c"../../etc", libc::O_PATH).is_err());
    }
}
