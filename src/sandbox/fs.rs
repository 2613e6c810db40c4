//! Filesystem steps of the child: mounts resolved inside the rootfs, device nodes,
//! pivot_root, masked and read-only paths, the console. No allocation.

use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{mkdirat, Mode};
use nix::unistd::{
    chdir, chroot, fchownat, pivot_root, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags,
};

use linux_raw_sys::general as raw;

use super::{fail, Failure, Step};
use crate::plan::{MountKind, MountStep, Plan};
use crate::sys;
use crate::sys::mount_api::{self, FsParam, MountAttr};

/// [`Failure::index`] of a `PivotRoot` failure where pivot_root(2) refused (EINVAL, the
/// host's root is the initramfs) and the MS_MOVE + chroot fallback was not opted in.
pub const PIVOT_REFUSED: u16 = 6;

/// [`Failure::index`] of a `PivotRoot` failure detaching `plan.no_pivot_detach[i]`:
/// this plus `i`.
pub const NO_PIVOT_DETACH: u16 = 10;

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
pub fn mount_all(plan: &Plan, root: BorrowedFd<'_>, proc: BorrowedFd<'_>) -> Result<(), Failure> {
    for (i, m) in plan.mounts.iter().enumerate() {
        match m.kind {
            MountKind::Cgroup => {
                mount_cgroup(plan, m, root, proc).map_err(|e| fail(Step::MountCgroup, i, e))?
            }
            _ => mount_one(plan, m, root, i, proc)?,
        }
    }
    Ok(())
}

/// `MS_*` per-mount flags as `MOUNT_ATTR_*` bits to set and clear.
fn mount_attr(flags: libc::c_ulong) -> MountAttr {
    let mut set = 0u64;
    let mut clear = 0u64;
    for (ms, attr) in [
        (libc::MS_RDONLY, raw::MOUNT_ATTR_RDONLY),
        (libc::MS_NOSUID, raw::MOUNT_ATTR_NOSUID),
        (libc::MS_NODEV, raw::MOUNT_ATTR_NODEV),
        (libc::MS_NOEXEC, raw::MOUNT_ATTR_NOEXEC),
        (libc::MS_NODIRATIME, raw::MOUNT_ATTR_NODIRATIME),
    ] {
        if flags & ms != 0 {
            set |= u64::from(attr);
        }
    }
    // Access-time handling is one three-valued field: clear it to set another value.
    let atime = if flags & libc::MS_NOATIME != 0 {
        Some(raw::MOUNT_ATTR_NOATIME)
    } else if flags & libc::MS_STRICTATIME != 0 {
        Some(raw::MOUNT_ATTR_STRICTATIME)
    } else if flags & libc::MS_RELATIME != 0 {
        Some(raw::MOUNT_ATTR_RELATIME)
    } else {
        None
    };
    if let Some(a) = atime {
        set |= u64::from(a);
        clear |= u64::from(raw::MOUNT_ATTR__ATIME);
    }
    MountAttr {
        set,
        clear,
        propagation: 0,
    }
}

/// The caller's `/proc/<pid>/fd` beneath the verified procfs `proc`: where a kernel
/// without `mount_setattr` reaches a mount fd by path (see [`mount_api::remount_attached`]).
fn own_fd_dir(proc: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    let own = sys::procfs::own_dir(proc)?;
    sys::procfs::open_beneath(own.as_fd(), c"fd", libc::O_PATH | libc::O_DIRECTORY)
}

/// `attr` on the mount `mnt`, attached or not, where the kernel has `mount_setattr`
/// (5.12); before that, `mnt` must be attached and is remounted (`recursive` then applies
/// to propagation only: mount(2) cannot remount a tree's flags in one call).
fn set_attr_any(
    proc: BorrowedFd<'_>,
    mnt: BorrowedFd<'_>,
    recursive: bool,
    attr: MountAttr,
) -> Result<(), Errno> {
    if attr == MountAttr::default() {
        return Ok(());
    }
    if mount_api::has_set_attr() {
        return mount_api::set_attr(mnt, recursive, attr);
    }
    mount_api::remount_attached(own_fd_dir(proc)?.as_fd(), mnt, recursive, attr)
}

/// `attr` on a mount that is still detached, where the kernel can (`mount_setattr`);
/// a kernel before 5.12 cannot change a detached mount: [`after_attach`] does it then.
fn set_attr_detached(mnt: BorrowedFd<'_>, recursive: bool, attr: MountAttr) -> Result<(), Errno> {
    if attr == MountAttr::default() || !mount_api::has_set_attr() {
        return Ok(());
    }
    mount_api::set_attr(mnt, recursive, attr)
}

/// On a kernel without `mount_setattr`, the attributes [`set_attr_detached`] could not
/// set, now that `mnt` is attached (before anything of the container runs or sees it).
fn after_attach(proc: BorrowedFd<'_>, mnt: BorrowedFd<'_>, attr: MountAttr) -> Result<(), Errno> {
    if attr == MountAttr::default() || mount_api::has_set_attr() {
        return Ok(());
    }
    mount_api::remount_attached(own_fd_dir(proc)?.as_fd(), mnt, false, attr)
}

/// The `r*` options (`rro`, `rnoexec`, ...): `mount_setattr(AT_RECURSIVE)` on the detached
/// mount, so every submount a recursive bind brought along gets them too, before anything
/// in the container can see or use it.
fn set_recursive(
    mnt: BorrowedFd<'_>,
    flags: &crate::plan::mounts::MountFlags,
) -> Result<(), Errno> {
    if flags.rec_set == 0 && flags.rec_clear == 0 {
        return Ok(());
    }
    let attr = MountAttr {
        set: flags.rec_set,
        clear: flags.rec_clear,
        propagation: 0,
    };
    // Refused up front on such a kernel (launch names the mount); never silently dropped.
    if !mount_api::has_set_attr() {
        return Err(Errno::ENOSYS);
    }
    mount_api::set_attr(mnt, true, attr)
}

/// `MS_SHARED`/`MS_SLAVE`/`MS_PRIVATE`/`MS_UNBINDABLE` (| `MS_REC`) applied to the mount
/// `mnt` refers to: by its fd, never by path.
// c_ulong is 32 bits on armv7: the conversion is not useless there.
#[allow(clippy::useless_conversion)]
fn set_propagation(
    proc: BorrowedFd<'_>,
    mnt: BorrowedFd<'_>,
    propagation: libc::c_ulong,
) -> Result<(), Errno> {
    if propagation == 0 {
        return Ok(());
    }
    let attr = MountAttr {
        propagation: u64::from(propagation & !libc::MS_REC),
        ..MountAttr::default()
    };
    set_attr_any(proc, mnt, propagation & libc::MS_REC != 0, attr)
}

/// A new, detached mount of filesystem `fstype` (`fsopen`, `fsconfig`, `fsmount`): `data`
/// is the comma-separated option string mount(2) would take; `flags` the `MS_*` flags.
fn new_fs(
    fstype: &CStr,
    source: Option<&CStr>,
    data: &CStr,
    flags: libc::c_ulong,
) -> Result<OwnedFd, Errno> {
    let ctx = mount_api::fs_open(fstype)?;
    if let Some(src) = source.filter(|s| !s.is_empty()) {
        mount_api::fs_config(ctx.as_fd(), FsParam::String(c"source", src))?;
    }
    // Superblock flags are options of the filesystem context, not of the mount.
    for (ms, name) in [
        (libc::MS_SYNCHRONOUS, c"sync"),
        (libc::MS_DIRSYNC, c"dirsync"),
        (libc::MS_LAZYTIME, c"lazytime"),
    ] {
        if flags & ms != 0 {
            mount_api::fs_config(ctx.as_fd(), FsParam::Flag(name))?;
        }
    }
    for option in data
        .to_bytes()
        .split(|b| *b == b',')
        .filter(|o| !o.is_empty())
    {
        let mut key = StackPath::new();
        match option.iter().position(|b| *b == b'=') {
            Some(eq) => {
                key.push(option.get(..eq).unwrap_or_default())?;
                let mut value = StackPath::new();
                value.push(option.get(eq + 1..).unwrap_or_default())?;
                let (k, v) = (
                    key.as_cstr().ok_or(Errno::EINVAL)?,
                    value.as_cstr().ok_or(Errno::EINVAL)?,
                );
                mount_api::fs_config(ctx.as_fd(), FsParam::String(k, v))?;
            }
            None => {
                key.push(option)?;
                let k = key.as_cstr().ok_or(Errno::EINVAL)?;
                mount_api::fs_config(ctx.as_fd(), FsParam::Flag(k))?;
            }
        }
    }
    mount_api::fs_config(ctx.as_fd(), FsParam::Create)?;
    mount_api::fs_mount(ctx.as_fd(), mount_attr(flags).set)
}

/// Refuses a destination that resolved into procfs or sysfs although its path does not
/// name /proc or /sys: a symlink in the image led it there, past the validation of
/// `mounts[i].destination` (which allows only a short list inside those).
fn outside_pseudo_fs(m: &MountStep, target: OwnedFd) -> Result<OwnedFd, Errno> {
    let magic = mount_api::fs_magic(target.as_fd())?;
    let pseudo = magic == u64::from(raw::PROC_SUPER_MAGIC) || magic == u64::from(raw::SYSFS_MAGIC);
    if pseudo && !m.names_pseudo_fs {
        return Err(Errno::EPERM);
    }
    Ok(target)
}

/// A config mount. Every step works on file descriptors: the destination is resolved once
/// (inside the rootfs), the mount is made detached, gets its flags and content there, is
/// attached onto the resolved destination, and gets its propagation through its own fd.
/// Nothing resolves the destination again, so a sibling container swapping a path in a
/// shared volume cannot send a remount or a propagation change elsewhere
/// (CVE-2021-30465 class).
fn mount_one(
    plan: &Plan,
    m: &MountStep,
    root: BorrowedFd<'_>,
    i: usize,
    proc: BorrowedFd<'_>,
) -> Result<(), Failure> {
    let s = &plan.strings;
    let create = if m.dest_is_file {
        Create::File
    } else {
        Create::Dir
    };
    let on_err = |e| fail(Step::Mount, i, e);
    let target = resolve_create(root, s.get(m.dest), create)
        .and_then(|t| outside_pseudo_fs(m, t))
        .map_err(|e| fail(Step::MountDestination, i, e))?;
    let made;
    let mnt = if let Some(fd) = m.prepared {
        // Made by the parent (an idmapped bind): still detached, only to be attached.
        sys::borrow_fd(fd)
    } else if m.kind == MountKind::Bind {
        made = detached_bind(plan, m, None).map_err(on_err)?;
        made.as_fd()
    } else {
        let source = Some(s.get(m.source)).filter(|x| !x.is_empty());
        let fstype = s.get(m.fstype);
        let mnt = new_fs(
            fstype,
            source.or(Some(fstype)),
            s.get(m.data),
            m.flags.flags,
        )
        .map_err(on_err)?;
        if m.flags.copy_up {
            // tmpcopyup: the directory about to be covered, copied into the new tmpfs
            // while it is still detached.
            let dir = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
            let lower = openat(target.as_fd(), c".", dir, Mode::empty()).map_err(on_err)?;
            let upper = openat(mnt.as_fd(), c".", dir, Mode::empty()).map_err(on_err)?;
            super::copyup::copy_tree(lower.as_fd(), upper.as_fd(), proc).map_err(on_err)?;
        }
        set_recursive(mnt.as_fd(), &m.flags).map_err(on_err)?;
        made = mnt;
        made.as_fd()
    };
    mount_api::attach(mnt, target.as_fd()).map_err(on_err)?;
    if m.kind == MountKind::Bind && m.prepared.is_none() {
        after_attach(proc, mnt, mount_attr(m.flags.flags)).map_err(on_err)?;
    }
    set_propagation(proc, mnt, m.flags.propagation).map_err(on_err)
}

/// Directories of a board that its containers write, where a bind source is opened
/// beneath the directory without following any link: `/data` (containers' volumes) and
/// `/run/net` (the DHCP client's resolv.conf, which other containers bind).
const CONFINED_SOURCE_ROOTS: [&CStr; 2] = [c"/data", c"/run/net"];

/// `source` as (confined root, the rest below it): `/data/app/vol` → (`/data`,
/// `app/vol`), `/run/net` → (`/run/net`, ``).
fn confined_source(source: &CStr) -> Option<(&'static CStr, &CStr)> {
    let bytes = source.to_bytes_with_nul();
    CONFINED_SOURCE_ROOTS.into_iter().find_map(|root| {
        let rest = bytes.strip_prefix(root.to_bytes())?;
        let rest = match rest.strip_prefix(b"/") {
            Some(below) => below,
            None if rest == b"\0" => rest,
            None => return None,
        };
        Some((root, CStr::from_bytes_with_nul(rest).ok()?))
    })
}

/// Opens a bind source below a confined root: beneath it, no symlink or magic link
/// followed, and only a directory or a regular file (a socket such as dory's control
/// socket, a fifo or a device left there by a container is refused); `/data` itself and
/// `/data/log` are refused (EACCES).
fn open_confined(root: &CStr, rest: &CStr) -> Result<OwnedFd, Errno> {
    // /data/log holds every container's logs and belongs to dory's log writer: a
    // container bound to it (or to all of /data) could rewrite its siblings' logs.
    let r = rest.to_bytes();
    if root == c"/data" && (r.is_empty() || r == b"log" || r.starts_with(b"log/")) {
        return Err(Errno::EACCES);
    }
    let dir = nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let src = if rest.is_empty() {
        dir
    } else {
        sys::openat2(
            dir.as_fd(),
            rest,
            libc::O_PATH | libc::O_NOFOLLOW,
            libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS,
        )?
    };
    let kind = nix::sys::stat::fstat(src.as_fd())?.st_mode & libc::S_IFMT;
    if kind != libc::S_IFDIR && kind != libc::S_IFREG {
        return Err(Errno::EPERM);
    }
    Ok(src)
}

/// A detached copy of a bind mount's source (with its submounts for `rbind`) with every
/// attribute the entry asks for; `userns` makes it idmapped (the parent does that: it
/// takes privilege over the source's filesystem that a container's user namespace lacks).
pub fn detached_bind(
    plan: &Plan,
    m: &MountStep,
    userns: Option<BorrowedFd<'_>>,
) -> Result<OwnedFd, Errno> {
    let recursive = m.flags.flags & libc::MS_REC != 0;
    let source = plan.strings.get(m.source);
    let tree = match confined_source(source) {
        Some((root, rest)) if plan.confine_data_binds => {
            // A board's /data and /run/net hold what its containers wrote: a link a
            // container left there (a volume replaced by a link to /, resolv.conf by a
            // link to dory's control socket) must not be followed to the host.
            let src = open_confined(root, rest)?;
            mount_api::clone_mount(src.as_fd(), recursive)?
        }
        _ => mount_api::clone_mount_at(source, recursive)?,
    };
    // Only what was asked for is set: a bind keeps the restrictions of its source.
    set_attr_detached(tree.as_fd(), false, mount_attr(m.flags.flags))?;
    set_recursive(tree.as_fd(), &m.flags)?;
    if let (Some(ns), Some(idmap)) = (userns, m.idmap) {
        mount_api::set_idmap(tree.as_fd(), idmap.recursive, ns)?;
    }
    Ok(tree)
}

/// Binds a host directory of the container's cgroup onto `onto`, read-only when `flags`
/// say so: in a new user namespace, which may not mount cgroupfs. The host paths are
/// still visible: this runs before pivot_root.
fn bind_host_cgroup(
    proc: BorrowedFd<'_>,
    host: &CStr,
    onto: BorrowedFd<'_>,
    flags: libc::c_ulong,
) -> Result<(), Errno> {
    let tree = mount_api::clone_mount_at(host, false)?;
    let attr = mount_attr(flags & libc::MS_RDONLY);
    set_attr_detached(tree.as_fd(), false, attr)?;
    mount_api::attach(tree.as_fd(), onto)?;
    after_attach(proc, tree.as_fd(), attr)
}

/// A `cgroup` mount: cgroup2 on a v2 host; on a v1 host a tmpfs holding one cgroup mount
/// per hierarchy, as runc shows it. Built through fds like [`mount_one`].
fn mount_cgroup(
    plan: &Plan,
    m: &MountStep,
    root: BorrowedFd<'_>,
    proc: BorrowedFd<'_>,
) -> Result<(), Errno> {
    let s = &plan.strings;
    let flags = m.flags.flags;
    let target = outside_pseudo_fs(m, resolve_create(root, s.get(m.dest), Create::Dir)?)?;
    if plan.cgroup_v1.is_empty() {
        if let Some(host) = plan.cgroup_host_dirs.first() {
            return bind_host_cgroup(proc, s.get(*host), target.as_fd(), flags);
        }
        let mnt = new_fs(c"cgroup2", Some(c"cgroup2"), c"", flags)?;
        return mount_api::attach(mnt.as_fd(), target.as_fd());
    }
    let tmpfs = new_fs(
        c"tmpfs",
        Some(c"tmpfs"),
        c"mode=755",
        flags & !libc::MS_RDONLY,
    )?;
    mount_api::attach(tmpfs.as_fd(), target.as_fd())?;
    for (i, (dir, options)) in plan.cgroup_v1.iter().enumerate() {
        // The tmpfs is new and reached only through its fd: its entries are ours.
        match mkdirat(tmpfs.as_fd(), s.get(*dir), Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
        let sub = openat(
            tmpfs.as_fd(),
            s.get(*dir),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        if let Some(host) = plan.cgroup_host_dirs.get(i) {
            bind_host_cgroup(proc, s.get(*host), sub.as_fd(), flags)?;
        } else {
            let cg = new_fs(c"cgroup", Some(c"cgroup"), s.get(*options), flags)?;
            mount_api::attach(cg.as_fd(), sub.as_fd())?;
            // No cgroup namespace: the container's own cgroup over the hierarchy's root.
            if let Some(own) = plan.cgroup_v1_own.get(i).copied().flatten() {
                let mine = sys::open_in_root(cg.as_fd(), s.get(own), libc::O_DIRECTORY)?;
                let tree = mount_api::clone_mount(mine.as_fd(), false)?;
                let attr = mount_attr(flags & libc::MS_RDONLY);
                set_attr_detached(tree.as_fd(), false, attr)?;
                mount_api::attach(tree.as_fd(), sub.as_fd())?;
                after_attach(proc, tree.as_fd(), attr)?;
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
    if flags & libc::MS_RDONLY != 0 {
        let attr = mount_attr(libc::MS_RDONLY);
        set_attr_any(proc, tmpfs.as_fd(), false, attr)?;
    }
    Ok(())
}

/// The standard /dev symlinks (runc's `setupDevSymlinks` and `setupPtmx`): (target, name).
/// `/dev/core` only where the host has `/proc/kcore` (CONFIG_PROC_KCORE), as runc.
const DEV_SYMLINKS: [(&CStr, &CStr); 6] = [
    (c"/proc/self/fd", c"fd"),
    (c"/proc/self/fd/0", c"stdin"),
    (c"/proc/self/fd/1", c"stdout"),
    (c"/proc/self/fd/2", c"stderr"),
    (c"pts/ptmx", c"ptmx"),
    (c"/proc/kcore", c"core"),
];

/// Creates the device nodes and the standard /dev symlinks in the container's /dev.
/// `proc` is the host's verified procfs (whether `/proc/kcore` exists).
pub fn create_devices(
    plan: &Plan,
    root: BorrowedFd<'_>,
    proc: BorrowedFd<'_>,
) -> Result<(), Failure> {
    for (i, d) in plan.devices.iter().enumerate() {
        make_device(plan, d, root).map_err(|e| fail(Step::Device, i, e))?;
    }
    let dev = sys::open_in_root(root, c"/dev", libc::O_DIRECTORY)
        .map_err(|e| fail(Step::DevSymlink, 0, e))?;
    let kcore = match sys::procfs::open_beneath(proc, c"kcore", libc::O_PATH) {
        Ok(_) => true,
        Err(Errno::ENOENT) => false,
        Err(e) => return Err(fail(Step::DevSymlink, 5, e)),
    };
    for (i, (target, name)) in DEV_SYMLINKS.iter().enumerate() {
        if *name == c"core" && !kcore {
            continue;
        }
        // A privileged config lists the host's /dev/ptmx (char 5:2): runc replaces the
        // node with the link to this /dev/pts's own multiplexer.
        if *name == c"ptmx" {
            match unlinkat(dev.as_fd(), *name, UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(fail(Step::DevSymlink, i, e)),
            }
        }
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
    // The exact mode at creation (umask 0 for the call), and the owner through an fd of
    // the node made: nothing is changed by name afterwards, where a sibling sharing the
    // directory could have swapped in a symlink to a host file.
    let umask = nix::sys::stat::umask(Mode::empty());
    let made = sys::mknodat(dir.as_fd(), name, d.mode, d.major, d.minor);
    nix::sys::stat::umask(umask);
    match made {
        Ok(()) => {}
        Err(Errno::EEXIST) => return Ok(()),
        // Without CAP_MKNOD (a user namespace) bind the host's node instead.
        Err(Errno::EPERM) => {
            let file = resolve_create(root, plan.strings.get(d.path), Create::File)?;
            let node = mount_api::clone_mount_at(plan.strings.get(d.path), false)?;
            return mount_api::attach(node.as_fd(), file.as_fd());
        }
        Err(e) => return Err(e),
    }
    let node = openat(
        dir.as_fd(),
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let st = nix::sys::stat::fstat(node.as_fd())?;
    let kind = d.mode & libc::S_IFMT;
    let is_dev = kind == libc::S_IFCHR || kind == libc::S_IFBLK;
    if st.st_mode & libc::S_IFMT != kind
        || (is_dev && st.st_rdev != libc::makedev(d.major, d.minor))
    {
        // Not the node just made: someone replaced it.
        return Err(Errno::EEXIST);
    }
    fchownat(
        node.as_fd(),
        c"",
        Some(Uid::from_raw(d.uid)),
        Some(Gid::from_raw(d.gid)),
        nix::fcntl::AtFlags::AT_EMPTY_PATH,
    )
}

/// How the container's root is switched to its rootfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootSwitch {
    /// pivot_root(2) and detach the old root; nothing else.
    Pivot,
    /// pivot_root(2), or where it is refused (the host's root is the initramfs) the
    /// [`RootSwitch::Move`] fallback: the board's `unsafeNoPivot` / `dory.nopivot`.
    PivotOrMove,
    /// `--no-pivot` (runc's msMoveRoot): detach the host's mounts, move the rootfs onto
    /// `/` and chroot. The host's root filesystem stays mounted under the container.
    Move,
    /// No mount namespace of its own: chroot only (runc without "mount" in namespaces).
    Chroot,
}

/// Switches the root to `rootfs` as `how` says, then `chdir("/")`. Where pivot_root is
/// refused (EINVAL: the host's root is the initramfs rootfs) and no fallback was opted
/// into, a [`PIVOT_REFUSED`] failure.
pub fn pivot(plan: &Plan, how: RootSwitch) -> Result<(), Failure> {
    let rootfs = plan.strings.get(plan.rootfs);
    chdir(rootfs).map_err(|e| fail(Step::PivotRoot, 0, e))?;
    match how {
        RootSwitch::Chroot => chroot(c".").map_err(|e| fail(Step::PivotRoot, 4, e))?,
        RootSwitch::Move => move_root(plan)?,
        RootSwitch::Pivot | RootSwitch::PivotOrMove => match pivot_root(c".", c".") {
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
            Err(Errno::EINVAL) if how == RootSwitch::PivotOrMove => move_root(plan)?,
            Err(Errno::EINVAL) => {
                return Err(fail(
                    Step::PivotRoot,
                    usize::from(PIVOT_REFUSED),
                    Errno::EINVAL,
                ))
            }
            Err(e) => return Err(fail(Step::PivotRoot, 0, e)),
        },
    }
    chdir(c"/").map_err(|e| fail(Step::PivotRoot, 5, e))
}

/// runc's msMoveRoot, in the container's own mount namespace (propagation already set, so
/// nothing here reaches the host): every host mount that neither holds the rootfs nor is
/// inside it is detached (runc detaches only full procfs and sysfs mounts, which would
/// let a user namespace mount a fresh procfs), then the rootfs (the cwd) moves onto `/`
/// and becomes the root. The host's root filesystem itself stays mounted beneath: a
/// process with CAP_SYS_CHROOT can reach it with the classic chroot escape.
fn move_root(plan: &Plan) -> Result<(), Failure> {
    for (i, p) in plan.no_pivot_detach.iter().enumerate() {
        // Host paths, outside the rootfs; not followed if a symlink took a mount's place.
        let flags = MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW;
        match umount2(plan.strings.get(*p), flags) {
            // Gone with a parent detached before it, or no longer a mount point.
            Ok(()) | Err(Errno::EINVAL | Errno::ENOENT) => {}
            Err(e) => return Err(fail(Step::PivotRoot, usize::from(NO_PIVOT_DETACH) + i, e)),
        }
    }
    mount(
        Some(c"."),
        c"/",
        None::<&CStr>,
        MsFlags::MS_MOVE,
        None::<&CStr>,
    )
    .map_err(|e| fail(Step::PivotRoot, 3, e))?;
    chroot(c".").map_err(|e| fail(Step::PivotRoot, 4, e))
}

/// Opens a pty in the container's devpts; binds its slave onto /dev/console when dory
/// made /dev. Returns (master, slave). Runs after pivot_root: paths are the container's.
pub fn open_console(root: BorrowedFd<'_>, creates_dev: bool) -> Result<(OwnedFd, OwnedFd), Errno> {
    let master = sys::openat2(
        root,
        c"/dev/pts/ptmx",
        libc::O_RDWR | libc::O_NOCTTY,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    )?;
    // A real pty multiplexer of a devpts, not an image's stand-in.
    if mount_api::fs_magic(master.as_fd())? != u64::from(raw::DEVPTS_SUPER_MAGIC) {
        return Err(Errno::ENOTTY);
    }
    sys::unlock_pty(master.as_fd())?;
    // The slave through its master: no /dev/pts/N path to resolve (CVE-2025-52565).
    let slave = sys::open_pty_peer(master.as_fd())?;
    if creates_dev {
        let console = console_target(root)?;
        let tree = mount_api::clone_mount(slave.as_fd(), false)?;
        mount_api::attach(tree.as_fd(), console.as_fd())?;
    }
    Ok((master, slave))
}

/// `/dev/console` to bind the pty onto: created empty by dory, or an existing regular file
/// or character device; a symlink or anything else is refused.
fn console_target(root: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    let dev = sys::open_in_root(root, c"/dev", libc::O_DIRECTORY)?;
    match openat(
        dev.as_fd(),
        c"console",
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    ) {
        Ok(_) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(e),
    }
    let console = openat(
        dev.as_fd(),
        c"console",
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    match nix::sys::stat::fstat(console.as_fd())?.st_mode & libc::S_IFMT {
        libc::S_IFREG | libc::S_IFCHR => Ok(console),
        _ => Err(Errno::ELOOP),
    }
}

/// Creates `process.cwd` inside the rootfs if missing (as runc), resolved like a mount
/// destination so a symlink in the image cannot make it elsewhere.
pub fn create_cwd(root: BorrowedFd<'_>, cwd: &CStr) -> Result<(), Errno> {
    resolve_create(root, cwd, Create::Dir).map(drop)
}

/// Covers a path (`linux.maskedPaths[index]`) of the container, whose root is `root`:
/// directories with an empty read-only tmpfs, anything else with the null device. Both
/// are attached by fd onto the path resolved once inside the root.
pub fn mask_path(root: BorrowedFd<'_>, path: &CStr, index: usize) -> Result<(), Failure> {
    let at = |e| fail(Step::MaskPath, index, e);
    let target = match sys::open_in_root(root, path, 0) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(at(e)),
    };
    let st = nix::sys::stat::fstat(target.as_fd()).map_err(at)?;
    let cover = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        new_fs(c"tmpfs", Some(c"tmpfs"), c"", libc::MS_RDONLY).map_err(at)?
    } else {
        // The source must really be the null device: a /dev/null that is a symlink or
        // another file would expose that file in the masked path's place (CVE-2025-31133).
        let not_null = |e| fail(Step::MaskNotNullDevice, index, e);
        let null = sys::openat2(
            root,
            c"/dev/null",
            libc::O_PATH | libc::O_NOFOLLOW,
            libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS,
        )
        .map_err(not_null)?;
        let st = nix::sys::stat::fstat(null.as_fd()).map_err(not_null)?;
        if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != libc::makedev(1, 3) {
            return Err(not_null(Errno::ENODEV));
        }
        mount_api::clone_mount(null.as_fd(), false).map_err(at)?
    };
    mount_api::attach(cover.as_fd(), target.as_fd()).map_err(at)
}

/// Makes a path of the container read-only (`linux.readonlyPaths`): a recursive copy of
/// the mounts there, made read-only while detached, attached back onto the same fd.
/// Before Linux 5.12 (no `mount_setattr`) only the top mount is made read-only after the
/// attach, as runc did on such kernels.
pub fn readonly_path(root: BorrowedFd<'_>, path: &CStr, proc: BorrowedFd<'_>) -> Result<(), Errno> {
    let target = match sys::open_in_root(root, path, 0) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    let tree = mount_api::clone_mount(target.as_fd(), true)?;
    let attr = mount_attr(libc::MS_RDONLY);
    set_attr_detached(tree.as_fd(), true, attr)?;
    mount_api::attach(tree.as_fd(), target.as_fd())?;
    after_attach(proc, tree.as_fd(), attr)
}

/// Makes the mount `root` refers to read-only (`root.readonly`); the flags the kernel
/// locks stay as they are.
pub fn remount_readonly(root: BorrowedFd<'_>, proc: BorrowedFd<'_>) -> Result<(), Errno> {
    set_attr_any(proc, root, false, mount_attr(libc::MS_RDONLY))
}
