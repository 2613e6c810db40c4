//! The file-descriptor mount API (Linux 5.2, `mount_setattr` 5.12): a mount is made
//! detached, given its flags while nothing can see it, and attached onto a target fd.
//! Nothing here resolves a path the container could have changed since it was opened.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU8, Ordering};

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

/// [`has_set_attr`]'s answer once asked: 0 not yet, 1 yes, 2 no.
static SET_ATTR: AtomicU8 = AtomicU8::new(0);

/// Whether the kernel has `mount_setattr(2)` (5.12); asked once, then remembered (ask in
/// the parent: a child after clone then reads the answer without a syscall).
pub fn has_set_attr() -> bool {
    match SET_ATTR.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let yes = available().is_ok();
            SET_ATTR.store(if yes { 1 } else { 2 }, Ordering::Relaxed);
            yes
        }
    }
}

/// statvfs's `ST_RELATIME` (Linux's value; musl's libc crate lacks the name).
const ST_RELATIME: libc::c_ulong = 4096;

/// The `MS_*` flags a mount has now (`fstatvfs(2)` on `fd`), as a remount must repeat
/// them: in a user namespace the kernel refuses a remount that would drop a locked one.
fn current_ms_flags(fd: BorrowedFd<'_>) -> Result<libc::c_ulong, Errno> {
    let st = nix::sys::statvfs::fstatvfs(fd)?;
    let f = st.flags().bits() as libc::c_ulong;
    let mut ms = 0;
    for (st_flag, ms_flag) in [
        (libc::ST_RDONLY, libc::MS_RDONLY),
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (ST_RELATIME, libc::MS_RELATIME),
    ] {
        if f & st_flag as libc::c_ulong != 0 {
            ms |= ms_flag;
        }
    }
    Ok(ms)
}

/// `flags` (the mount's `MS_*` now) with `attr`'s `MOUNT_ATTR_*` set and cleared.
pub fn remount_flags(flags: libc::c_ulong, attr: MountAttr) -> libc::c_ulong {
    let mut ms = flags;
    for (bit, ms_flag) in [
        (raw::MOUNT_ATTR_RDONLY, libc::MS_RDONLY),
        (raw::MOUNT_ATTR_NOSUID, libc::MS_NOSUID),
        (raw::MOUNT_ATTR_NODEV, libc::MS_NODEV),
        (raw::MOUNT_ATTR_NOEXEC, libc::MS_NOEXEC),
        (raw::MOUNT_ATTR_NODIRATIME, libc::MS_NODIRATIME),
    ] {
        if attr.clear & u64::from(bit) != 0 {
            ms &= !ms_flag;
        }
        if attr.set & u64::from(bit) != 0 {
            ms |= ms_flag;
        }
    }
    if attr.clear & u64::from(raw::MOUNT_ATTR__ATIME) != 0 {
        ms &= !(libc::MS_NOATIME | libc::MS_RELATIME | libc::MS_STRICTATIME);
        let atime = attr.set & u64::from(raw::MOUNT_ATTR__ATIME);
        ms |= if atime == u64::from(raw::MOUNT_ATTR_NOATIME) {
            libc::MS_NOATIME
        } else if atime == u64::from(raw::MOUNT_ATTR_STRICTATIME) {
            libc::MS_STRICTATIME
        } else {
            libc::MS_RELATIME
        };
    }
    ms
}

/// `mount(2)` with `MS_REMOUNT | MS_BIND` and then a propagation change (`MS_REC` with
/// `recursive`) on the *attached* mount `fd` refers to: what [`set_attr`] does, for
/// kernels without `mount_setattr` (before 5.12), which cannot change a detached mount.
/// mount(2) takes a path: the fd's entry in `fd_dir` (the caller's `/proc/<pid>/fd`, opened
/// beneath the verified procfs), reached by `fchdir` so that no `/proc` the container could
/// have shaped is walked; the working directory is restored after.
pub fn remount_attached(
    fd_dir: BorrowedFd<'_>,
    fd: BorrowedFd<'_>,
    recursive: bool,
    attr: MountAttr,
) -> Result<(), Errno> {
    let mut name = [0u8; 24];
    let len = super::procfs::decimal(
        u64::try_from(fd.as_raw_fd()).map_err(|_| Errno::EBADF)?,
        &mut name,
    );
    let name = CStr::from_bytes_with_nul(name.get(..=len).ok_or(Errno::EINVAL)?)
        .map_err(|_| Errno::EINVAL)?;
    let saved = nix::fcntl::open(
        c".",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    nix::unistd::fchdir(fd_dir)?;
    let result = remount_here(name, fd, recursive, attr);
    nix::unistd::fchdir(saved)?;
    result
}

fn remount_here(
    name: &CStr,
    fd: BorrowedFd<'_>,
    recursive: bool,
    attr: MountAttr,
) -> Result<(), Errno> {
    let mount = |flags: libc::c_ulong| {
        // SAFETY: NUL-terminated target; null source, type and data, as a remount or a
        // propagation change takes.
        let ret = unsafe {
            libc::mount(
                std::ptr::null(),
                name.as_ptr(),
                std::ptr::null(),
                flags,
                std::ptr::null(),
            )
        };
        check(c_long::from(ret)).map(drop)
    };
    if attr.set != 0 || attr.clear != 0 {
        let flags = remount_flags(current_ms_flags(fd)?, attr);
        mount(libc::MS_REMOUNT | libc::MS_BIND | flags)?;
    }
    if attr.propagation != 0 {
        let rec = if recursive { libc::MS_REC } else { 0 };
        mount(attr.propagation as libc::c_ulong | rec)?;
    }
    Ok(())
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

#[cfg(test)]
mod remount_tests {
    use super::*;

    fn attr(set: u32, clear: u32) -> MountAttr {
        MountAttr {
            set: u64::from(set),
            clear: u64::from(clear),
            propagation: 0,
        }
    }

    #[test]
    fn remount_keeps_the_flags_it_is_not_asked_to_change() {
        let now = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_RELATIME;
        let ro = remount_flags(now, attr(raw::MOUNT_ATTR_RDONLY, 0));
        assert_eq!(ro, now | libc::MS_RDONLY);
        let rw = remount_flags(ro, attr(0, raw::MOUNT_ATTR_RDONLY));
        assert_eq!(rw, now);
    }

    #[test]
    fn remount_replaces_the_access_time_field_as_a_whole() {
        let now = libc::MS_RDONLY | libc::MS_RELATIME;
        let atime = raw::MOUNT_ATTR__ATIME;
        assert_eq!(
            remount_flags(now, attr(raw::MOUNT_ATTR_NOATIME, atime)),
            libc::MS_RDONLY | libc::MS_NOATIME
        );
        assert_eq!(
            remount_flags(now, attr(raw::MOUNT_ATTR_STRICTATIME, atime)),
            libc::MS_RDONLY | libc::MS_STRICTATIME
        );
        assert_eq!(
            remount_flags(libc::MS_NOATIME, attr(raw::MOUNT_ATTR_RELATIME, atime)),
            libc::MS_RELATIME
        );
        // Not asked to change: the current value stays.
        assert_eq!(
            remount_flags(libc::MS_NOATIME, attr(0, 0)),
            libc::MS_NOATIME
        );
    }
}

#[cfg(test)]
mod remount_attached_tests {
    use super::*;
    use std::os::fd::AsFd;

    /// In a forked child with a mount namespace of its own: a tmpfs, then the fallback
    /// for kernels without mount_setattr makes it read-only, nosuid; the child reports
    /// what fstatvfs sees (run on any kernel: the path is mount(2), not mount_setattr).
    #[test]
    fn remount_through_the_verified_procfs_sets_the_flags() {
        if crate::testutil::skip_unless_root("remount_through_the_verified_procfs_sets_the_flags") {
            return;
        }
        let dir = std::env::temp_dir().join(format!("dory-remount-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: the child makes only syscalls (no allocation) and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let code = (|| -> Result<i32, Errno> {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
                nix::mount::mount(
                    None::<&CStr>,
                    c"/",
                    None::<&CStr>,
                    nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
                    None::<&CStr>,
                )?;
                nix::mount::mount(
                    Some(c"tmpfs"),
                    path.as_c_str(),
                    Some(c"tmpfs"),
                    nix::mount::MsFlags::MS_NODEV,
                    None::<&CStr>,
                )?;
                let mnt = nix::fcntl::open(
                    path.as_c_str(),
                    nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY,
                    nix::sys::stat::Mode::empty(),
                )?;
                let proc = super::super::procfs::open_root()?;
                let own = super::super::procfs::own_dir(proc.as_fd())?;
                let fd_dir = super::super::procfs::open_beneath(
                    own.as_fd(),
                    c"fd",
                    libc::O_PATH | libc::O_DIRECTORY,
                )?;
                let a = MountAttr {
                    set: u64::from(raw::MOUNT_ATTR_RDONLY | raw::MOUNT_ATTR_NOSUID),
                    clear: 0,
                    propagation: u64::from(raw::MS_PRIVATE),
                };
                remount_attached(fd_dir.as_fd(), mnt.as_fd(), false, a)?;
                let f = current_ms_flags(mnt.as_fd())?;
                let want = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV;
                Ok(if f & want == want { 0 } else { 3 })
            })()
            .unwrap_or(2);
            crate::sys::exit_now(code);
        }
        let mut status = 0;
        // SAFETY: waits for the child we forked.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let _ = std::fs::remove_dir(&dir);
        assert!(libc::WIFEXITED(status), "child status {status}");
        assert_eq!(
            libc::WEXITSTATUS(status),
            0,
            "2: a call failed, 3: flags not set"
        );
    }
}
