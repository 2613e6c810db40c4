//! Filesystem steps of the child: mounts resolved inside the rootfs, device nodes,
//! pivot_root, masked and read-only paths, the console. No allocation.

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{open, openat, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{fchmodat, mkdirat, FchmodatFlags, Mode};
use nix::unistd::{chdir, chroot, fchownat, pivot_root, symlinkat, Gid, Uid};

use super::{fail, Failure, Step};
use crate::plan::{MountKind, MountStep, Plan};
use crate::sys;

/// [`Failure::index`] of a `PivotRoot` failure where pivot_root(2) refused (EINVAL, the
/// host's root is the initramfs) and the MS_MOVE + chroot fallback was not opted in.
pub const PIVOT_REFUSED: u16 = 6;

/// Longest path built on the stack.
pub const STACK_PATH_MAX: usize = 4096;

/// A NUL-terminated path assembled in a stack buffer.
pub struct StackPath {
    buf: [u8; STACK_PATH_MAX],
    len: usize,
}

impl Default for StackPath {
    fn default() -> Self {
        Self::new()
    }
}

impl StackPath {
    pub const fn new() -> Self {
        StackPath {
            buf: [0; STACK_PATH_MAX],
            len: 0,
        }
    }

    /// Appends bytes; `ENAMETOOLONG` if they do not fit with the NUL.
    pub fn push(&mut self, bytes: &[u8]) -> Result<&mut Self, Errno> {
        let end = self.len + bytes.len();
        if end >= STACK_PATH_MAX || bytes.contains(&0) {
            return Err(Errno::ENAMETOOLONG);
        }
        let slot = self.buf.get_mut(self.len..end).ok_or(Errno::ENAMETOOLONG)?;
        slot.copy_from_slice(bytes);
        self.len = end;
        if let Some(nul) = self.buf.get_mut(end) {
            *nul = 0;
        }
        Ok(self)
    }

    /// Appends a number in decimal.
    pub fn push_num(&mut self, mut n: u64) -> Result<&mut Self, Errno> {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            if let Some(d) = digits.get_mut(i) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || i == 0 {
                break;
            }
        }
        self.push(digits.get(i..).unwrap_or_default())
    }

    pub fn as_cstr(&self) -> Option<&CStr> {
        CStr::from_bytes_with_nul(self.buf.get(..=self.len)?).ok()
    }
}

/// `/proc/self/fd/N` for an fd: mount(2) follows it to the object the fd refers to.
fn fd_path(fd: BorrowedFd<'_>) -> Result<StackPath, Errno> {
    let mut p = StackPath::new();
    p.push(b"/proc/self/fd/")?.push_num(fd.as_raw_fd() as u64)?;
    Ok(p)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Create {
    Dir,
    File,
}

/// Opens `path` inside `root` (O_PATH), creating missing components. Symlinks and `..`
/// resolve inside the rootfs (openat2 RESOLVE_IN_ROOT), so a link in the image cannot
/// send a mount onto the host.
fn resolve_create(root: BorrowedFd<'_>, path: &CStr, last: Create) -> Result<OwnedFd, Errno> {
    match sys::open_in_root(root, path, 0) {
        Err(Errno::ENOENT) => {}
        other => return other,
    }
    // Usually only the last component is missing (/dev/pts in a fresh /dev): try the
    // parent first, then walk component by component.
    let bytes = path.to_bytes();
    if let Some(pos) = bytes.iter().rposition(|b| *b == b'/') {
        let name = bytes.get(pos + 1..).unwrap_or_default();
        if !name.is_empty() && name != b"." && name != b".." {
            let mut parent = StackPath::new();
            parent.push(bytes.get(..pos).filter(|p| !p.is_empty()).unwrap_or(b"/"))?;
            match sys::open_in_root(root, parent.as_cstr().ok_or(Errno::EINVAL)?, 0) {
                Ok(dir) => {
                    create_entry(dir.as_fd(), name, last)?;
                    return sys::open_in_root(root, path, 0);
                }
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
    }
    let mut prefix = StackPath::new();
    let mut parent = sys::open_in_root(root, c"/", libc::O_DIRECTORY)?;
    let mut comps = path
        .to_bytes()
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty())
        .peekable();
    while let Some(comp) = comps.next() {
        prefix.push(b"/")?.push(comp)?;
        let target = prefix.as_cstr().ok_or(Errno::EINVAL)?;
        match sys::open_in_root(root, target, 0) {
            Ok(fd) => {
                parent = fd;
                continue;
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let kind = if comps.peek().is_none() {
            last
        } else {
            Create::Dir
        };
        create_entry(parent.as_fd(), comp, kind)?;
        parent = sys::open_in_root(root, target, 0)?;
    }
    Ok(parent)
}

/// Creates `name` in the directory `parent` (already resolved inside the rootfs); an
/// existing entry is fine (it is resolved again by the caller).
fn create_entry(parent: BorrowedFd<'_>, name: &[u8], kind: Create) -> Result<(), Errno> {
    let mut n = StackPath::new();
    n.push(name)?;
    let name = n.as_cstr().ok_or(Errno::EINVAL)?;
    let made = match kind {
        // O_EXCL|O_NOFOLLOW: never follows a dangling link out of the rootfs.
        Create::File => openat(
            parent,
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::from_bits_truncate(0o644),
        )
        .map(drop),
        Create::Dir => mkdirat(parent, name, Mode::from_bits_truncate(0o755)),
    };
    match made {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Carries out every config mount in order.
pub fn mount_all(plan: &Plan, root: BorrowedFd<'_>) -> Result<(), Failure> {
    for (i, m) in plan.mounts.iter().enumerate() {
        match m.kind {
            MountKind::Cgroup => {
                mount_cgroup(plan, m, root).map_err(|e| fail(Step::MountCgroup, i, e))?
            }
            _ => mount_one(plan, m, root, i)?,
        }
    }
    Ok(())
}

fn mount_one(plan: &Plan, m: &MountStep, root: BorrowedFd<'_>, i: usize) -> Result<(), Failure> {
    let s = &plan.strings;
    let dest = s.get(m.dest);
    let create = if m.dest_is_file {
        Create::File
    } else {
        Create::Dir
    };
    let on_err = |e| fail(Step::Mount, i, e);
    let target =
        resolve_create(root, dest, create).map_err(|e| fail(Step::MountDestination, i, e))?;
    let target_path = fd_path(target.as_fd()).map_err(|e| fail(Step::MountDestination, i, e))?;
    let target_c = target_path
        .as_cstr()
        .ok_or_else(|| fail(Step::MountDestination, i, Errno::EINVAL))?;
    // After mounting, the new mount is reached by resolving the destination again (the
    // fd above still names the directory underneath). The fd must outlive its path.
    let mounted = || -> Result<(OwnedFd, StackPath), Errno> {
        let fd = resolve_create(root, dest, create)?;
        let path = fd_path(fd.as_fd())?;
        Ok((fd, path))
    };
    let flags = MsFlags::from_bits_retain(m.flags.flags);
    let data = Some(s.get(m.data)).filter(|d| !d.is_empty());
    let source = Some(s.get(m.source))
        .filter(|x| !x.is_empty())
        .unwrap_or(s.get(m.fstype));
    if m.kind == MountKind::Bind {
        let bind = flags & (MsFlags::MS_BIND | MsFlags::MS_REC);
        mount(
            Some(s.get(m.source)),
            target_c,
            None::<&CStr>,
            bind,
            None::<&CStr>,
        )
        .map_err(on_err)?;
        // A bind mount takes flags such as ro/nosuid only through a remount.
        let rest = flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !rest.is_empty() {
            let (_fd, p) = mounted().map_err(on_err)?;
            remount(&p, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | rest).map_err(on_err)?;
        }
    } else if m.flags.copy_up {
        // tmpcopyup: keep a handle on the directory being covered, mount, copy it in.
        let dir = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let lower = nix::fcntl::open(target_c, dir, Mode::empty()).map_err(on_err)?;
        mount(Some(source), target_c, Some(s.get(m.fstype)), flags, data).map_err(on_err)?;
        let (_fd, p) = mounted().map_err(on_err)?;
        let upper = nix::fcntl::open(
            p.as_cstr().ok_or(Errno::EINVAL).map_err(on_err)?,
            dir,
            Mode::empty(),
        )
        .map_err(on_err)?;
        super::copyup::copy_tree(lower.as_fd(), upper.as_fd()).map_err(on_err)?;
    } else {
        mount(Some(source), target_c, Some(s.get(m.fstype)), flags, data).map_err(on_err)?;
    }
    if m.flags.propagation != 0 {
        let (_fd, p) = mounted().map_err(on_err)?;
        remount(&p, MsFlags::from_bits_retain(m.flags.propagation)).map_err(on_err)?;
    }
    Ok(())
}

/// mount(2) with only a target and flags: a remount or a propagation change.
fn remount(target: &StackPath, flags: MsFlags) -> Result<(), Errno> {
    let t = target.as_cstr().ok_or(Errno::EINVAL)?;
    mount(None::<&CStr>, t, None::<&CStr>, flags, None::<&CStr>)
}

/// Binds a host directory of the container's cgroup onto `path` in the rootfs, read-only
/// when `flags` say so: in a new user namespace, which may not mount cgroupfs. The host
/// paths are still visible: this runs before pivot_root.
fn bind_host_cgroup(
    host: &CStr,
    root: BorrowedFd<'_>,
    path: &CStr,
    flags: MsFlags,
) -> Result<(), Errno> {
    let src = open(
        host,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let sp = fd_path(src.as_fd())?;
    let onto = resolve_create(root, path, Create::Dir)?;
    let op = fd_path(onto.as_fd())?;
    mount(
        sp.as_cstr(),
        op.as_cstr().ok_or(Errno::EINVAL)?,
        None::<&CStr>,
        MsFlags::MS_BIND,
        None::<&CStr>,
    )?;
    if flags.contains(MsFlags::MS_RDONLY) {
        // The bind keeps the host mount's flags: remount it, found afresh (the fd above
        // names the directory under it).
        let top = resolve_create(root, path, Create::Dir)?;
        remount(
            &fd_path(top.as_fd())?,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | flags,
        )?;
    }
    Ok(())
}

/// A `cgroup` mount: cgroup2 on a v2 host; on a v1 host a tmpfs holding one cgroup mount
/// per hierarchy, as runc shows it.
fn mount_cgroup(plan: &Plan, m: &MountStep, root: BorrowedFd<'_>) -> Result<(), Errno> {
    let s = &plan.strings;
    let dest = s.get(m.dest);
    let flags = MsFlags::from_bits_retain(m.flags.flags);
    let target = resolve_create(root, dest, Create::Dir)?;
    let tp = fd_path(target.as_fd())?;
    let tc = tp.as_cstr().ok_or(Errno::EINVAL)?;
    if plan.cgroup_v1.is_empty() {
        if let Some(host) = plan.cgroup_host_dirs.first() {
            return bind_host_cgroup(s.get(*host), root, dest, flags);
        }
        return mount(Some(c"cgroup2"), tc, Some(c"cgroup2"), flags, None::<&CStr>);
    }
    let rw = flags & !MsFlags::MS_RDONLY;
    mount(Some(c"tmpfs"), tc, Some(c"tmpfs"), rw, Some(c"mode=755"))?;
    let tmpfs = resolve_create(root, dest, Create::Dir)?;
    for (i, (dir, options)) in plan.cgroup_v1.iter().enumerate() {
        let mut sub = StackPath::new();
        sub.push(dest.to_bytes())?.push(b"/")?.push(s.bytes(*dir))?;
        let sub_fd = resolve_create(root, sub.as_cstr().ok_or(Errno::EINVAL)?, Create::Dir)?;
        let sp = fd_path(sub_fd.as_fd())?;
        if let Some(host) = plan.cgroup_host_dirs.get(i) {
            let path = sub.as_cstr().ok_or(Errno::EINVAL)?;
            bind_host_cgroup(s.get(*host), root, path, flags)?;
        } else {
            mount(
                Some(c"cgroup"),
                sp.as_cstr().ok_or(Errno::EINVAL)?,
                Some(c"cgroup"),
                flags,
                Some(s.get(*options)),
            )?;
        }
        // No cgroup namespace: the container's own cgroup over the hierarchy's root.
        if let Some(own) = plan.cgroup_v1_own.get(i).copied().flatten() {
            let top = resolve_create(root, sub.as_cstr().ok_or(Errno::EINVAL)?, Create::Dir)?;
            let mine = sys::open_in_root(top.as_fd(), s.get(own), libc::O_DIRECTORY)?;
            let src = fd_path(mine.as_fd())?;
            let dst = fd_path(top.as_fd())?;
            let (src, dst) = (
                src.as_cstr().ok_or(Errno::EINVAL)?,
                dst.as_cstr().ok_or(Errno::EINVAL)?,
            );
            mount(
                Some(src),
                dst,
                None::<&CStr>,
                MsFlags::MS_BIND,
                None::<&CStr>,
            )?;
            if flags.contains(MsFlags::MS_RDONLY) {
                mount(
                    None::<&CStr>,
                    dst,
                    None::<&CStr>,
                    MsFlags::MS_REMOUNT | MsFlags::MS_BIND | flags,
                    None::<&CStr>,
                )?;
            }
        }
        // Co-mounted controllers ("cpu,cpuacct") also answer to each name, as on the host.
        let dir_bytes = s.bytes(*dir);
        if dir_bytes.contains(&b',') {
            for name in dir_bytes.split(|b| *b == b',') {
                let mut n = StackPath::new();
                n.push(name)?;
                match symlinkat(
                    s.get(*dir),
                    tmpfs.as_fd(),
                    n.as_cstr().ok_or(Errno::EINVAL)?,
                ) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        remount(
            &fd_path(tmpfs.as_fd())?,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | flags,
        )?;
    }
    Ok(())
}

/// Creates the device nodes and the standard /dev symlinks in the container's /dev.
pub fn create_devices(plan: &Plan, root: BorrowedFd<'_>) -> Result<(), Failure> {
    for (i, d) in plan.devices.iter().enumerate() {
        make_device(plan, d, root).map_err(|e| fail(Step::Device, i, e))?;
    }
    let dev = sys::open_in_root(root, c"/dev", libc::O_DIRECTORY)
        .map_err(|e| fail(Step::DevSymlink, 0, e))?;
    let links: [(&CStr, &CStr); 6] = [
        (c"/proc/self/fd", c"fd"),
        (c"/proc/self/fd/0", c"stdin"),
        (c"/proc/self/fd/1", c"stdout"),
        (c"/proc/self/fd/2", c"stderr"),
        (c"pts/ptmx", c"ptmx"),
        (c"/proc/kcore", c"core"),
    ];
    for (i, (target, name)) in links.iter().enumerate() {
        match symlinkat(*target, dev.as_fd(), *name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(fail(Step::DevSymlink, i, e)),
        }
    }
    Ok(())
}

fn make_device(
    plan: &Plan,
    d: &crate::plan::DeviceNode,
    root: BorrowedFd<'_>,
) -> Result<(), Errno> {
    let path = plan.strings.bytes(d.path);
    let (parent, name) = match path.iter().rposition(|b| *b == b'/') {
        Some(pos) => (
            path.get(..pos).unwrap_or_default(),
            path.get(pos + 1..).unwrap_or_default(),
        ),
        None => return Err(Errno::EINVAL),
    };
    let mut parent_path = StackPath::new();
    parent_path.push(if parent.is_empty() { b"/" } else { parent })?;
    let dir = resolve_create(
        root,
        parent_path.as_cstr().ok_or(Errno::EINVAL)?,
        Create::Dir,
    )?;
    let mut n = StackPath::new();
    n.push(name)?;
    let name = n.as_cstr().ok_or(Errno::EINVAL)?;
    match sys::mknodat(dir.as_fd(), name, d.mode, d.major, d.minor) {
        Ok(()) => {}
        Err(Errno::EEXIST) => return Ok(()),
        // Without CAP_MKNOD (a user namespace) bind the host's node instead.
        Err(Errno::EPERM) => {
            let file = resolve_create(root, plan.strings.get(d.path), Create::File)?;
            let fp = fd_path(file.as_fd())?;
            return mount(
                Some(plan.strings.get(d.path)),
                fp.as_cstr().ok_or(Errno::EINVAL)?,
                None::<&CStr>,
                MsFlags::MS_BIND,
                None::<&CStr>,
            );
        }
        Err(e) => return Err(e),
    }
    // mknod applied our umask; set the exact mode and owner.
    fchmodat(
        dir.as_fd(),
        name,
        Mode::from_bits_truncate(d.mode & 0o7777),
        FchmodatFlags::FollowSymlink,
    )?;
    fchownat(
        dir.as_fd(),
        name,
        Some(Uid::from_raw(d.uid)),
        Some(Gid::from_raw(d.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
}

/// pivot_root into `rootfs` and detach the old root. Where pivot_root cannot work (the
/// host's root is the initramfs rootfs), MS_MOVE + chroot only with `allow_no_pivot`
/// (board `"unsafeNoPivot": true` or `dory.nopivot`); otherwise a [`PIVOT_REFUSED`] failure.
pub fn pivot(rootfs: &CStr, allow_no_pivot: bool) -> Result<(), Failure> {
    chdir(rootfs).map_err(|e| fail(Step::PivotRoot, 0, e))?;
    match pivot_root(c".", c".") {
        Ok(()) => {
            // Make the old root a slave first, so detaching it propagates nowhere.
            mount(
                None::<&CStr>,
                c".",
                None::<&CStr>,
                MsFlags::MS_SLAVE | MsFlags::MS_REC,
                None::<&CStr>,
            )
            .map_err(|e| fail(Step::PivotRoot, 1, e))?;
            umount2(c".", MntFlags::MNT_DETACH).map_err(|e| fail(Step::PivotRoot, 2, e))?;
        }
        // The host's root is the initramfs (rootfs), which pivot_root cannot leave.
        // MS_MOVE + chroot keeps the host's whole root mounted under the container (runc's
        // `--no-pivot`): only when the board opted in.
        Err(Errno::EINVAL) if allow_no_pivot => {
            mount(
                Some(c"."),
                c"/",
                None::<&CStr>,
                MsFlags::MS_MOVE,
                None::<&CStr>,
            )
            .map_err(|e| fail(Step::PivotRoot, 3, e))?;
            chroot(c".").map_err(|e| fail(Step::PivotRoot, 4, e))?;
        }
        Err(Errno::EINVAL) => {
            return Err(fail(
                Step::PivotRoot,
                usize::from(PIVOT_REFUSED),
                Errno::EINVAL,
            ))
        }
        Err(e) => return Err(fail(Step::PivotRoot, 0, e)),
    }
    chdir(c"/").map_err(|e| fail(Step::PivotRoot, 5, e))
}

/// Opens a pty in the container's devpts; binds its slave onto /dev/console when dory
/// made /dev. Returns (master, slave).
pub fn open_console(creates_dev: bool) -> Result<(OwnedFd, OwnedFd), Errno> {
    let master = open(
        c"/dev/pts/ptmx",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let n = sys::unlock_pty(master.as_fd())?;
    let mut slave_path = StackPath::new();
    slave_path.push(b"/dev/pts/")?.push_num(u64::from(n))?;
    let slave_c = slave_path.as_cstr().ok_or(Errno::EINVAL)?;
    let slave = open(
        slave_c,
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    if creates_dev {
        match open(
            c"/dev/console",
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::empty(),
        ) {
            Ok(_) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
        mount(
            Some(slave_c),
            c"/dev/console",
            None::<&CStr>,
            MsFlags::MS_BIND,
            None::<&CStr>,
        )?;
    }
    Ok((master, slave))
}

/// Creates `process.cwd` inside the rootfs if missing (as runc), resolved like a mount
/// destination so a symlink in the image cannot make it elsewhere.
pub fn create_cwd(root: BorrowedFd<'_>, cwd: &CStr) -> Result<(), Errno> {
    resolve_create(root, cwd, Create::Dir).map(drop)
}

/// Writes `value` to an existing file (sysctls).
pub fn write_file(path: &CStr, value: &[u8]) -> Result<(), Errno> {
    let fd = open(path, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    let mut rest = value;
    while !rest.is_empty() {
        let n = nix::unistd::write(fd.as_fd(), rest)?;
        rest = rest.get(n..).unwrap_or_default();
    }
    Ok(())
}

/// Covers a path (`linux.maskedPaths[index]`): directories with an empty read-only tmpfs,
/// files with /dev/null.
pub fn mask_path(path: &CStr, index: usize) -> Result<(), Failure> {
    let at = |e| fail(Step::MaskPath, index, e);
    let st = match nix::sys::stat::stat(path) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(at(e)),
    };
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        mount(
            Some(c"tmpfs"),
            path,
            Some(c"tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&CStr>,
        )
        .map_err(at)
    } else {
        // The bind source must really be the null device: a /dev/null that is a symlink
        // or another file would expose that file (say a /proc/sys entry) in the masked
        // path's place, writable (CVE-2025-31133). Checked on an fd, mounted through it.
        let not_null = |e| fail(Step::MaskNotNullDevice, index, e);
        let null = open(
            c"/dev/null",
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(not_null)?;
        let st = nix::sys::stat::fstat(null.as_fd()).map_err(not_null)?;
        if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != libc::makedev(1, 3) {
            return Err(not_null(Errno::ENODEV));
        }
        let source = fd_path(null.as_fd()).map_err(at)?;
        let source = source.as_cstr().ok_or_else(|| at(Errno::ENAMETOOLONG))?;
        mount(
            Some(source),
            path,
            None::<&CStr>,
            MsFlags::MS_BIND,
            None::<&CStr>,
        )
        .map_err(at)
    }
}

/// Makes a path read-only by binding it onto itself and remounting.
pub fn readonly_path(path: &CStr) -> Result<(), Errno> {
    match mount(
        Some(path),
        path,
        None::<&CStr>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&CStr>,
    ) {
        Ok(()) => remount_readonly(path),
        Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Remounts a mount read-only, keeping the flags the kernel locks (nosuid, nodev…).
pub fn remount_readonly(path: &CStr) -> Result<(), Errno> {
    use nix::sys::statvfs::FsFlags;
    let current = nix::sys::statvfs::statvfs(path)?.flags();
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    for (st, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        // ST_RELATIME (0x1000) is missing from nix's musl definitions.
        (FsFlags::from_bits_retain(0x1000), MsFlags::MS_RELATIME),
    ] {
        if current.contains(st) {
            flags |= ms;
        }
    }
    mount(None::<&CStr>, path, None::<&CStr>, flags, None::<&CStr>)
}
