//! The only place with `unsafe`: thin wrappers for what nix lacks or implements with
//! allocation (which the child after clone must avoid). Each wrapper names its syscall.

pub mod seccomp;

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use libc::{c_char, c_int, c_ulong};
use nix::errno::Errno;

pub mod bpf;
pub mod exe;
pub mod init;
pub mod mount_api;
pub mod netlink;
pub mod procfs;
pub mod sched;
pub mod userns;

fn check(ret: libc::c_long) -> Result<libc::c_long, Errno> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

/// `clone(2)` without a new stack, like fork(2) but with namespace flags: returns 0 in the
/// child and the child's pid in the parent. The caller must be single-threaded.
pub fn clone_fork(flags: c_int) -> Result<libc::pid_t, Errno> {
    let flags = (flags | libc::SIGCHLD) as c_ulong;
    // SAFETY: with a null stack pointer the child runs on a copy of the parent's stack,
    // exactly as after fork(2); no pointers are passed for tid/tls (flags request none).
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    check(ret).map(|p| p as libc::pid_t)
}

/// `_exit(2)`: ends the process without running atexit handlers or flushing stdio.
pub fn exit_now(code: c_int) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// `openat2(2)` with `RESOLVE_IN_ROOT`: opens `path` as if `root` were `/`, so symlinks
/// and `..` cannot leave it. Returns an `O_PATH` fd.
pub fn open_in_root(root: BorrowedFd<'_>, path: &CStr, flags: c_int) -> Result<OwnedFd, Errno> {
    openat2_in_root(root, path, flags | libc::O_PATH)
}

/// `openat2(2)` with `RESOLVE_IN_ROOT` and the caller's flags (e.g. O_RDONLY to read).
pub fn openat2_in_root(root: BorrowedFd<'_>, path: &CStr, flags: c_int) -> Result<OwnedFd, Errno> {
    openat2(
        root,
        path,
        flags,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    )
}

/// `openat2(2)` with the caller's open flags (close-on-exec added) and `RESOLVE_*` flags.
pub fn openat2(
    dir: BorrowedFd<'_>,
    path: &CStr,
    flags: c_int,
    resolve: u64,
) -> Result<OwnedFd, Errno> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    // SAFETY: `path` is NUL-terminated, `how` lives across the call and its size is given.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    let fd = check(ret)? as RawFd;
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `struct open_how` of openat2(2).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// A NULL-terminated array of pointers to C strings, as execve(2) takes argv and envp.
/// Built in the parent before clone (the child only reads it): a stack array sized for the
/// largest argv and envp (`MAX_ARGS` + `MAX_ENV` pointers) would put ~40 KiB on the
/// child's stack, every page of it touched by the stack probes.
pub struct CStrArray<'s> {
    ptrs: Vec<*const c_char>,
    strings: core::marker::PhantomData<&'s CStr>,
}

impl<'s> CStrArray<'s> {
    pub fn new<I: IntoIterator<Item = &'s CStr>>(items: I) -> Self {
        let mut ptrs: Vec<*const c_char> = items.into_iter().map(CStr::as_ptr).collect();
        ptrs.push(std::ptr::null());
        CStrArray {
            ptrs,
            strings: core::marker::PhantomData,
        }
    }
}

/// `execve(2)`; returns only on failure, with its errno.
pub fn execve(path: &CStr, argv: &CStrArray<'_>, envp: &CStrArray<'_>) -> Errno {
    // SAFETY: `path` is NUL-terminated; every pointer in both arrays refers to a
    // NUL-terminated string borrowed for `'s` (alive here) and each array ends with a null
    // pointer (see `CStrArray::new`).
    unsafe { libc::execve(path.as_ptr(), argv.ptrs.as_ptr(), envp.ptrs.as_ptr()) };
    Errno::last()
}

/// `getcwd(2)`, the raw syscall: whether the working directory can be reached from this
/// process's root. The kernel prefixes a path it cannot reach with "(unreachable)"; a
/// working directory outside the root (entered through an inherited fd) fails here.
pub fn cwd_is_under_root() -> Result<(), Errno> {
    let mut buf = [0u8; libc::PATH_MAX as usize];
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    let ret = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
    check(ret)?;
    match buf.first() {
        Some(b'/') => Ok(()),
        _ => Err(Errno::ENOENT),
    }
}

/// Marks every fd from `first` close-on-exec: `close_range(2)` with
/// `CLOSE_RANGE_CLOEXEC` (Linux 5.11). A 5.9/5.10 kernel knows `close_range` but not the
/// flag (EINVAL): then each open fd is listed from procfs ([`cloexec_listed`]), or, with no
/// procfs to read, every number up to the fd limit gets `FD_CLOEXEC`.
pub fn cloexec_from(first: u32) -> Result<(), Errno> {
    // SAFETY: plain integer arguments; no memory is passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    match check(ret) {
        Err(Errno::EINVAL | Errno::ENOSYS) => {
            cloexec_listed(first).or_else(|_| cloexec_walk(first))
        }
        other => other.map(drop),
    }
}

/// Whether the kernel has `close_range(2)` (5.9): an empty range (first > last) gets
/// EINVAL from a kernel that has it, ENOSYS from one that does not.
pub fn close_range_available() -> Result<(), Errno> {
    // SAFETY: integer arguments; an inverted range closes nothing.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, 1u32, 0u32, 0u32) };
    match check(ret) {
        Err(Errno::ENOSYS) => Err(Errno::ENOSYS),
        _ => Ok(()),
    }
}

/// `fcntl(2)` `F_SETFD` `FD_CLOEXEC` on `fd` (EBADF: nothing open there).
fn set_cloexec(fd: c_int) -> Result<(), Errno> {
    // SAFETY: F_SETFD takes an integer; an fd number that is not open gets EBADF.
    let ret = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    match check(libc::c_long::from(ret)) {
        Ok(_) | Err(Errno::EBADF) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The fds from `first` that `/proc/thread-self/fd` lists (read with `getdents64` into a
/// stack buffer: the child may not allocate), each made close-on-exec. `/proc` must be a
/// procfs: whatever is mounted there, the kernel writes its listing.
fn cloexec_listed(first: u32) -> Result<(), Errno> {
    let dir = procfs::open_fd_dir()?;
    let mut buf = [0u8; 1024];
    loop {
        let n = getdents64(dir.as_fd(), &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        let mut at = 0usize;
        while let Some(rec) = buf.get(at..n) {
            // linux_dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name.
            let (Some(len), Some(name)) = (
                rec.get(16..18).and_then(|l| <[u8; 2]>::try_from(l).ok()),
                rec.get(19..),
            ) else {
                break;
            };
            let reclen = usize::from(u16::from_ne_bytes(len));
            if reclen == 0 {
                break;
            }
            let name = name.get(..reclen.saturating_sub(19)).unwrap_or_default();
            let name = name.split(|b| *b == 0).next().unwrap_or_default();
            if let Some(fd) = parse_fd(name).filter(|fd| *fd >= first) {
                set_cloexec(c_int::try_from(fd).map_err(|_| Errno::EBADF)?)?;
            }
            at = at.saturating_add(reclen);
        }
    }
}

/// A decimal fd number (`.` and `..` are not).
fn parse_fd(name: &[u8]) -> Option<u32> {
    if name.is_empty() || name.len() > 10 {
        return None;
    }
    name.iter().try_fold(0u32, |n, b| {
        let d = b.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(u32::from(d))
    })
}

/// Every fd number from `first` below the open-files limit made close-on-exec: the last
/// resort without procfs (fds are always below the soft limit they were opened under,
/// and the limit can only have been lowered since by the container's own rlimits, so the
/// hard limit bounds them).
fn cloexec_walk(first: u32) -> Result<(), Errno> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit we own.
    check(libc::c_long::from(unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim)
    }))?;
    let end = u32::try_from(lim.rlim_max.min(1 << 20)).unwrap_or(1 << 20);
    for fd in first..end {
        set_cloexec(c_int::try_from(fd).map_err(|_| Errno::EBADF)?)?;
    }
    Ok(())
}

/// Capability sets for `capset(2)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CapSets {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
}

/// `capset(2)` (version 3, 64-bit sets) on the calling thread.
pub fn capset(sets: CapSets) -> Result<(), Errno> {
    let mut header = libc_cap_header {
        version: 0x2008_0522,
        pid: 0,
    };
    let lo = |v: u64| (v & 0xffff_ffff) as u32;
    let hi = |v: u64| (v >> 32) as u32;
    let data = [
        libc_cap_data {
            effective: lo(sets.effective),
            permitted: lo(sets.permitted),
            inheritable: lo(sets.inheritable),
        },
        libc_cap_data {
            effective: hi(sets.effective),
            permitted: hi(sets.permitted),
            inheritable: hi(sets.inheritable),
        },
    ];
    // SAFETY: header and a two-element data array of the v3 layout live across the call.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut _, data.as_ptr()) };
    check(ret).map(drop)
}

#[repr(C)]
struct libc_cap_header {
    version: u32,
    pid: c_int,
}

#[repr(C)]
struct libc_cap_data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `prctl(2)` with integer arguments only.
pub fn prctl(option: c_int, a2: c_ulong, a3: c_ulong) -> Result<c_int, Errno> {
    // SAFETY: every option used here takes plain integers, no pointers.
    let ret = unsafe { libc::prctl(option, a2, a3, 0 as c_ulong, 0 as c_ulong) };
    check(ret as libc::c_long).map(|r| r as c_int)
}

/// `setdomainname(2)`.
pub fn setdomainname(name: &[u8]) -> Result<(), Errno> {
    // SAFETY: pointer and length describe `name`.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    check(ret as libc::c_long).map(drop)
}

/// Resets every catchable signal to its default action (`sigaction(2)`) and unblocks all
/// (`sigprocmask(2)`), so the container's process starts clean.
pub fn reset_signals() {
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: SIG_DFL installs no handler; invalid numbers only return EINVAL.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    // SAFETY: an empty set is fully initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// `ioctl(fd, TIOCSCTTY, 0)`: makes the terminal the session's controlling terminal.
pub fn set_controlling_tty(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: TIOCSCTTY takes an integer argument.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY as _, 0) };
    check(ret as libc::c_long).map(drop)
}

/// `ioctl(fd, TIOCSPTLCK, 0)` then `TIOCGPTN`: unlocks a pty master and returns its number.
pub fn unlock_pty(master: BorrowedFd<'_>) -> Result<u32, Errno> {
    let unlock: c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int from the pointer, which is valid.
    let ret = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK as _, &unlock) };
    check(ret as libc::c_long)?;
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int to the valid pointer.
    let ret = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN as _, &mut n) };
    check(ret as libc::c_long)?;
    Ok(n)
}

/// `ioctl(master, TIOCGPTPEER)` (Linux 4.13): opens the pty's slave through its master,
/// without a path in a devpts the container could have replaced.
pub fn open_pty_peer(master: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    let flags: c_int = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes the open flags as an integer argument.
    let ret = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            linux_raw_sys::ioctl::TIOCGPTPEER as _,
            flags,
        )
    };
    let fd = check(ret as libc::c_long)? as RawFd;
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `pidfd_open(2)` (Linux 5.3): a handle on process `pid` that no later process with the
/// same pid can take over.
pub fn pidfd_open(pid: libc::pid_t) -> Result<OwnedFd, Errno> {
    // SAFETY: integer arguments only.
    let pidfd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as c_int) })? as RawFd;
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(pidfd) })
}

/// `pidfd_send_signal(2)` with signal 0: whether the process is still alive.
pub fn pidfd_alive(pidfd: BorrowedFd<'_>) -> bool {
    pidfd_signal(pidfd, 0).is_ok()
}

/// `pidfd_send_signal(2)`: signal `sig` (0 checks) to the process the pidfd holds.
pub fn pidfd_signal(pidfd: BorrowedFd<'_>, sig: c_int) -> Result<(), Errno> {
    // SAFETY: integer arguments and a null siginfo pointer, which the call allows.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0 as c_int,
        )
    };
    check(ret).map(drop)
}

/// `pidfd_getfd(2)` (Linux 5.6): a duplicate of the process's fd `fd`, sharing its open
/// file description (offset, flags), close-on-exec.
pub fn pidfd_getfd(pidfd: BorrowedFd<'_>, fd: RawFd) -> Result<OwnedFd, Errno> {
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0 as c_int) };
    let dup = check(ret)? as RawFd;
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(dup) })
}

/// `ioctl(TIOCGWINSZ)`.
pub fn get_winsize(fd: BorrowedFd<'_>) -> Result<libc::winsize, Errno> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize to the valid pointer.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ as _, &mut ws) };
    check(ret as libc::c_long).map(|_| ws)
}

/// `ioctl(TIOCSWINSZ)`.
pub fn set_winsize(fd: BorrowedFd<'_>, ws: &libc::winsize) -> Result<(), Errno> {
    // SAFETY: TIOCSWINSZ reads a winsize from the valid pointer.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ as _, ws as *const _) };
    check(ret as libc::c_long).map(drop)
}

/// `sendmsg(2)` of `data` with one fd as `SCM_RIGHTS`, the control buffer on the stack.
/// Returns the bytes sent (a stream socket may take fewer than `data.len()`).
pub fn send_fd(sock: BorrowedFd<'_>, data: &[u8], fd: BorrowedFd<'_>) -> Result<usize, Errno> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr().cast_mut().cast(),
        iov_len: data.len(),
    };
    // Room for one cmsghdr carrying one int, aligned for cmsghdr.
    let mut cbuf = [0u64; 8];
    // SAFETY: msghdr is plain data; zeroed is a valid empty value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is a pure size computation.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<c_int>() as u32) } as _;
    // SAFETY: msg_control points at a zeroed, aligned buffer at least CMSG_SPACE(int) long
    // (64 bytes), so CMSG_FIRSTHDR is non-null and CMSG_DATA has room for one int.
    let ret = unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<c_int>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<c_int>(), fd.as_raw_fd());
        libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL)
    };
    check(ret as libc::c_long).map(|n| usize::try_from(n).unwrap_or(0))
}

/// `recvmsg(2)` of one byte and, if present, one `SCM_RIGHTS` fd. `Ok(None)` at EOF.
pub fn recv_fd(
    sock: BorrowedFd<'_>,
    data: &mut [u8],
) -> Result<Option<(usize, Option<OwnedFd>)>, Errno> {
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    let mut cbuf = [0u64; 8];
    // SAFETY: msghdr is plain data; zeroed is a valid empty value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
    // SAFETY: iov and control buffer are valid for their stated lengths.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    let n = check(n as libc::c_long)? as usize;
    if n == 0 {
        return Ok(None);
    }
    let mut fd = None;
    // SAFETY: the kernel filled msg_control/msg_controllen; CMSG_* walk only within it.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let raw = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<c_int>());
                fd = Some(OwnedFd::from_raw_fd(raw));
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok(Some((n, fd)))
}

/// Borrows a raw fd that the caller knows stays open for the borrow's use.
pub fn borrow_fd(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: callers pass fds opened before clone that stay open until exec or exit;
    // a closed fd only makes the syscall using it fail with EBADF.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// `dup2(2)`: the new fd is not close-on-exec.
pub fn dup2(old: RawFd, new: RawFd) -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    let ret = unsafe { libc::dup2(old, new) };
    check(ret as libc::c_long).map(drop)
}

/// `setrlimit(2)`.
pub fn setrlimit(resource: c_int, soft: u64, hard: u64) -> Result<(), Errno> {
    let lim = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: `lim` is a valid rlimit for the duration of the call.
    let ret = unsafe { libc::setrlimit(resource as _, &lim) };
    check(ret as libc::c_long).map(drop)
}

/// `mknodat(2)`.
pub fn mknodat(
    dir: BorrowedFd<'_>,
    name: &CStr,
    mode: u32,
    major: u32,
    minor: u32,
) -> Result<(), Errno> {
    let dev = libc::makedev(major, minor);
    // SAFETY: `name` is NUL-terminated; the other arguments are integers.
    let ret = unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t, dev) };
    check(ret as libc::c_long).map(drop)
}

/// `struct clone_args` of clone3(2), up to `cgroup` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_INTO_CGROUP` (Linux 5.7).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `clone3(2)` without a new stack (fork-like) that creates the child directly inside the
/// cgroup2 directory `cgroup`, so it never migrates. Returns 0 in the child.
pub fn clone3_into_cgroup(flags: c_int, cgroup: BorrowedFd<'_>) -> Result<libc::pid_t, Errno> {
    let args = CloneArgs {
        flags: flags as u64 | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: `args` is a valid clone_args of the stated size; with stack 0 the child
    // continues on a copy of the caller's stack, as after fork(2).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    check(ret).map(|p| p as libc::pid_t)
}

/// Makes `cmd`'s child `setns(2)` into each namespace fd between fork and exec.
pub fn join_namespaces_on_spawn(cmd: &mut std::process::Command, fds: Vec<OwnedFd>) {
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let keep = fds;
    // SAFETY: the closure runs in the forked child before exec and only calls setns(2),
    // which is async-signal-safe; it neither allocates nor takes locks. `keep` holds the
    // fds open until the Command is dropped.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, move |/* child */| {
            let _ = &keep;
            for fd in &raw {
                if libc::setns(*fd, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Restores SIGPIPE's default action (Rust ignores it), so a command whose stdout reader
/// went away ends quietly, as C and Go tools do, instead of failing every write.
pub fn default_sigpipe() {
    // SAFETY: SIG_DFL installs no handler.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// SIGPIPE ignored while this guard lives (`signal(2)`), its previous action restored on
/// drop: writes to a pipe whose reader is gone then fail with EPIPE. dory is
/// single-threaded where it writes to hooks, so the process-wide change is local in time.
pub struct SigpipeIgnored(libc::sighandler_t);

impl SigpipeIgnored {
    pub fn new() -> SigpipeIgnored {
        // SAFETY: SIG_IGN installs no handler; the previous action is kept for drop.
        SigpipeIgnored(unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) })
    }
}

impl Drop for SigpipeIgnored {
    fn drop(&mut self) {
        if self.0 != libc::SIG_ERR {
            // SAFETY: restores the action signal(2) returned: SIG_DFL or SIG_IGN here (dory
            // installs no SIGPIPE handler).
            unsafe { libc::signal(libc::SIGPIPE, self.0) };
        }
    }
}

/// `ioctl(SIOCGIFFLAGS/SIOCSIFFLAGS)`: sets IFF_UP on the interface `name` (e.g. `lo`)
/// of the caller's network namespace. No allocation (used in the child after clone).
pub fn interface_up(name: &str) -> nix::Result<()> {
    let sock: OwnedFd = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.len() >= req.ifr_name.len() {
        return Err(Errno::ENAMETOOLONG);
    }
    for (dst, &src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads ifr_name and writes ifr_flags within the ifreq we own.
    Errno::result(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut req) })?;
    // SAFETY: after SIOCGIFFLAGS the union holds ifr_flags.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads ifr_name and ifr_flags from the ifreq we own.
    Errno::result(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &req) })?;
    Ok(())
}

/// `getdents64(2)`: fills `buf` with `linux_dirent64` records; 0 at the end.
pub fn getdents64(dir: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_getdents64,
            dir.as_raw_fd(),
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    check(ret).map(|n| n as usize)
}

/// `readlinkat(2)` into `out`; returns the length (the target is not NUL-terminated).
pub fn readlinkat(dir: BorrowedFd<'_>, name: &CStr, out: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: `name` is NUL-terminated; the kernel writes at most `out.len()` bytes.
    let ret = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            out.as_mut_ptr().cast(),
            out.len(),
        )
    };
    let n = check(ret as libc::c_long)? as usize;
    if n >= out.len() {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(n)
}

/// Stack kept below the current stack pointer by [`trim_stack`] (for the trimming call,
/// its 8 KiB maps buffer and the madvise call itself).
const TRIM_STACK_KEEP: usize = 32 * 1024;

/// `madvise(MADV_DONTNEED)` on the main thread's stack from the bottom of its mapping up to
/// [`TRIM_STACK_KEEP`] below the current stack pointer: gives back the pages a deep call
/// left resident (parsing config.json into bounded structures takes ~300 KiB of stack,
/// most of dory's peak RSS). Does nothing unless called on the main thread's stack.
/// Returns the bytes released.
#[inline(never)]
pub fn trim_stack() -> usize {
    let marker = 0u8;
    let sp = core::ptr::addr_of!(marker) as usize;
    // One read into a stack buffer: dory's maps are ~1.5 KiB (std's read_to_string would
    // take a dozen growing reads and allocations here).
    let mut buf = [0u8; 8192];
    let Ok(fd) = nix::fcntl::open(
        c"/proc/self/maps",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) else {
        return 0;
    };
    let mut len = 0;
    while let Some(rest) = buf.get_mut(len..).filter(|r| !r.is_empty()) {
        match nix::unistd::read(&fd, rest) {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
    }
    let maps = core::str::from_utf8(buf.get(..len).unwrap_or_default()).unwrap_or("");
    let Some((low, top)) = maps
        .lines()
        .find(|l| l.ends_with("[stack]"))
        .and_then(|l| l.split(' ').next())
        .and_then(|range| range.split_once('-'))
        .and_then(|(a, b)| {
            Some((
                usize::from_str_radix(a, 16).ok()?,
                usize::from_str_radix(b, 16).ok()?,
            ))
        })
    else {
        return 0;
    };
    // Another thread's stack is elsewhere: the range below sp would not be ours to drop.
    if !(low..top).contains(&sp) {
        return 0;
    }
    let page = 4096;
    let high = sp.saturating_sub(TRIM_STACK_KEEP) & !(page - 1);
    if high <= low {
        return 0;
    }
    let len = high - low;
    // SAFETY: [low, high) lies inside this thread's stack mapping (checked above) and at
    // least TRIM_STACK_KEEP below the live stack pointer: only frames of calls that have
    // already returned were there (the stack grows down, dory installs no signal handlers,
    // so nothing runs on it asynchronously). MADV_DONTNEED on private anonymous memory
    // drops the pages; a later touch gets fresh zero pages.
    let ret = unsafe { libc::madvise(low as *mut libc::c_void, len, libc::MADV_DONTNEED) };
    if ret == 0 {
        len
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_fd_takes_decimal_numbers_only() {
        assert_eq!(parse_fd(b"0"), Some(0));
        assert_eq!(parse_fd(b"1023"), Some(1023));
        assert_eq!(parse_fd(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_fd(b"4294967296"), None);
        assert_eq!(parse_fd(b"."), None);
        assert_eq!(parse_fd(b".."), None);
        assert_eq!(parse_fd(b""), None);
        assert_eq!(parse_fd(b"12a"), None);
    }

    /// In a forked child (the fallbacks change every fd of the process from `first`):
    /// opens fds without close-on-exec, runs `mark`, and reports whether each fd from the
    /// first of them is close-on-exec and the one below it untouched.
    fn fallback_marks_fds(mark: fn(u32) -> Result<(), Errno>) -> bool {
        // SAFETY: the child makes only async-signal-safe syscalls (no allocation) and
        // leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let flags = |fd: c_int| {
                // SAFETY: F_GETFD on an integer fd.
                unsafe { libc::fcntl(fd, libc::F_GETFD) }
            };
            let mut fds = [0 as c_int; 2];
            // SAFETY: pipe writes two fds into the array we own.
            let keep = unsafe { libc::pipe(fds.as_mut_ptr()) } == 0;
            let below = fds[0];
            let mut more = [0 as c_int; 2];
            // SAFETY: as above.
            let ok = keep && unsafe { libc::pipe(more.as_mut_ptr()) } == 0;
            let high = 700;
            // SAFETY: dup2 onto an integer fd number below the default limit.
            let ok = ok && unsafe { libc::dup2(more[0], high) } == high;
            let first = u32::try_from(more[0]).unwrap_or(u32::MAX);
            let ok = ok
                && mark(first).is_ok()
                && [more[0], more[1], high]
                    .iter()
                    .all(|fd| flags(*fd) & libc::FD_CLOEXEC != 0)
                && flags(below) & libc::FD_CLOEXEC == 0;
            exit_now(if ok { 0 } else { 1 });
        }
        let mut status = 0;
        // SAFETY: waits for the child we forked.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
    }

    #[test]
    fn cloexec_from_procfs_listing_marks_every_open_fd_from_first() {
        assert!(fallback_marks_fds(cloexec_listed));
    }

    #[test]
    fn cloexec_walk_marks_every_open_fd_from_first() {
        assert!(fallback_marks_fds(cloexec_walk));
    }

    #[test]
    fn cloexec_from_marks_every_open_fd_from_first() {
        assert!(fallback_marks_fds(cloexec_from));
    }
}
