//! The file-descriptor mount API (Linux 5.2, `mount_setattr` 5.12): a mount is made
//! detached, given its flags while nothing can see it, and attached onto a target fd.
//! Nothing here resolves a path the container could have changed since it was opened.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use libc::{c_int, c_long, c_uint};
use linux_raw_sys::general as raw;
use nix::errno::Errno;

fn check(ret: c_long) -> Result<c_long, Errno> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

/// Takes ownership of an fd the kernel just returned.
fn owned(ret: c_long) -> Result<OwnedFd, Errno> {
    let fd = check(ret)? as RawFd;
    // SAFETY: the syscall just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `open_tree(2)` with `OPEN_TREE_CLONE` on the object `fd` refers to: a detached copy of
/// the mount there (with its submounts when `recursive`), like a bind mount not yet
/// attached anywhere.
pub fn clone_mount(fd: BorrowedFd<'_>, recursive: bool) -> Result<OwnedFd, Errno> {
    let mut flags = raw::OPEN_TREE_CLONE | raw::OPEN_TREE_CLOEXEC | raw::AT_EMPTY_PATH;
    if recursive {
        flags |= raw::AT_RECURSIVE;
    }
    // SAFETY: an empty NUL-terminated path with AT_EMPTY_PATH; integer flags.
    let ret = unsafe {
        libc::syscall(
            raw::__NR_open_tree as c_long,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags as c_uint,
        )
    };
    owned(ret)
}

/// `open_tree(2)` with `OPEN_TREE_CLONE` on `path` (relative to the caller's cwd and root;
/// used before the container exists, on host paths the config names).
pub fn clone_mount_at(path: &CStr, recursive: bool) -> Result<OwnedFd, Errno> {
    let mut flags = raw::OPEN_TREE_CLONE | raw::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= raw::AT_RECURSIVE;
    }
    // SAFETY: `path` is NUL-terminated and outlives the call; integer flags.
    let ret = unsafe {
        libc::syscall(
            raw::__NR_open_tree as c_long,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags as c_uint,
        )
    };
    owned(ret)
}

/// `move_mount(2)` of the mount `from` onto the object `onto` refers to, both by fd.
pub fn attach(from: BorrowedFd<'_>, onto: BorrowedFd<'_>) -> Result<(), Errno> {
    let flags = raw::MOVE_MOUNT_F_EMPTY_PATH | raw::MOVE_MOUNT_T_EMPTY_PATH;
    // SAFETY: empty NUL-terminated paths with the EMPTY_PATH flags; integer fds.
    let ret = unsafe {
        libc::syscall(
            raw::__NR_move_mount as c_long,
            from.as_raw_fd(),
            c"".as_ptr(),
            onto.as_raw_fd(),
            c"".as_ptr(),
            flags as c_uint,
        )
    };
    check(ret).map(drop)
}

/// Mount attributes for [`set_attr`]: `MOUNT_ATTR_*` bits to set and to clear, and a
/// propagation type (`MS_SHARED`, `MS_SLAVE`, `MS_PRIVATE`, `MS_UNBINDABLE`) or 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MountAttr {
    pub set: u64,
    pub clear: u64,
    pub propagation: u64,
}

/// `mount_setattr(2)` on the mount `fd` refers to (and its submounts when `recursive`).
pub fn set_attr(fd: BorrowedFd<'_>, recursive: bool, attr: MountAttr) -> Result<(), Errno> {
    let a = raw::mount_attr {
        attr_set: attr.set,
        attr_clr: attr.clear,
        propagation: attr.propagation,
        userns_fd: 0,
    };
    let mut flags = raw::AT_EMPTY_PATH;
    if recursive {
        flags |= raw::AT_RECURSIVE;
    }
    // SAFETY: `a` is a mount_attr of the size passed, alive across the call; the path is
    // empty and NUL-terminated.
    let ret = unsafe {
        libc::syscall(
            raw::__NR_mount_setattr as c_long,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags as c_uint,
            &a as *const raw::mount_attr,
            std::mem::size_of::<raw::mount_attr>(),
        )
    };
    check(ret).map(drop)
}

/// `mount_setattr(2)` with `MOUNT_ATTR_IDMAP`: the detached mount `fd` (never attached
/// yet, as the kernel requires) shows its files' ids through the mapping of the user
/// namespace `userns`; with `recursive`, every submount too.
pub fn set_idmap(fd: BorrowedFd<'_>, recursive: bool, userns: BorrowedFd<'_>) -> Result<(), Errno> {
    let a = raw::mount_attr {
        attr_set: u64::from(raw::MOUNT_ATTR_IDMAP),
        attr_clr: 0,
        propagation: 0,
        userns_fd: u64::try_from(userns.as_raw_fd()).map_err(|_| Errno::EBADF)?,
    };
    let mut flags = raw::AT_EMPTY_PATH;
    if recursive {
        flags |= raw::AT_RECURSIVE;
    }
    // SAFETY: `a` is a mount_attr of the size passed, alive across the call; the path is
    // empty and NUL-terminated.
    let ret = unsafe {
        libc::syscall(
            raw::__NR_mount_setattr as c_long,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags as c_uint,
            &a as *const raw::mount_attr,
            std::mem::size_of::<raw::mount_attr>(),
        )
    };
    check(ret).map(drop)
}

/// Whether the kernel has `mount_setattr(2)` (Linux 5.12, the newest call dory needs; it
/// also implies openat2, the other mount calls and `close_range` with CLOEXEC): an
/// invalid fd gets EBADF from a kernel that has it, ENOSYS from one that does not.
pub fn available() -> Result<(), Errno> {
    // SAFETY: a null attr pointer with size 0 and fd -1: the kernel only validates them.
    let ret = unsafe {
        libc::syscall(
            raw::__NR_mount_setattr as c_long,
            -1 as c_int,
            c"".as_ptr(),
            0 as c_uint,
            std::ptr::null::<raw::mount_attr>(),
            0usize,
        )
    };
    match check(ret) {
        Err(Errno::ENOSYS) => Err(Errno::ENOSYS),
        _ => Ok(()),
    }
}

/// `fsopen(2)`: a filesystem context for `fstype`, to be configured with [`fs_config`].
pub fn fs_open(fstype: &CStr) -> Result<OwnedFd, Errno> {
    // SAFETY: `fstype` is NUL-terminated and outlives the call.
    let ret = unsafe {
        libc::syscall(
            raw::__NR_fsopen as c_long,
            fstype.as_ptr(),
            raw::FSOPEN_CLOEXEC as c_uint,
        )
    };
    owned(ret)
}

/// One `fsconfig(2)` call on a context from [`fs_open`].
pub enum FsParam<'a> {
    /// `key=value`.
    String(&'a CStr, &'a CStr),
    /// A bare `key`.
    Flag(&'a CStr),
    /// Create the superblock (`FSCONFIG_CMD_CREATE`).
    Create,
}

/// `fsconfig(2)`.
pub fn fs_config(ctx: BorrowedFd<'_>, param: FsParam<'_>) -> Result<(), Errno> {
    let (cmd, key, value) = match param {
        FsParam::String(k, v) => (
            raw::fsconfig_command::FSCONFIG_SET_STRING,
            k.as_ptr(),
            v.as_ptr(),
        ),
        FsParam::Flag(k) => (
            raw::fsconfig_command::FSCONFIG_SET_FLAG,
            k.as_ptr(),
            std::ptr::null(),
        ),
        FsParam::Create => (
            raw::fsconfig_command::FSCONFIG_CMD_CREATE,
            std::ptr::null(),
            std::ptr::null(),
        ),
    };
    // SAFETY: key and value are NUL-terminated strings outliving the call, or null where
    // the command takes none; aux is 0.
    let ret = unsafe {
        libc::syscall(
            raw::__NR_fsconfig as c_long,
            ctx.as_raw_fd(),
            cmd as c_uint,
            key,
            value,
            0 as c_int,
        )
    };
    check(ret).map(drop)
}

/// `fsmount(2)`: a detached mount of the created superblock with `MOUNT_ATTR_*` flags.
pub fn fs_mount(ctx: BorrowedFd<'_>, attrs: u64) -> Result<OwnedFd, Errno> {
    // SAFETY: integer arguments only.
    let ret = unsafe {
        libc::syscall(
            raw::__NR_fsmount as c_long,
            ctx.as_raw_fd(),
            raw::FSMOUNT_CLOEXEC as c_uint,
            attrs as c_uint,
        )
    };
    owned(ret)
}

/// `fstatfs(2)`: the filesystem magic of what `fd` refers to.
pub fn fs_magic(fd: BorrowedFd<'_>) -> Result<u64, Errno> {
    // SAFETY: statfs is plain data; zeroed is a valid value for the kernel to overwrite.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid, writable statfs for the duration of the call.
    let ret = unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) };
    check(ret as c_long)?;
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    Ok(st.f_type as u64)
}
