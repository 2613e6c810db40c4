//! Early boot: leaving the initramfs root, the mounts and settings every board needs
//! before containers can start, and their undoing at shutdown.

use std::fmt;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};

use heapless::{String as HString, Vec as HVec};
use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{open, openat, readlinkat, AtFlags, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{
    fchmod, fchmodat, fstatat, futimens, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use super::console::{debug, now_ms, say};
use crate::sys::init::ExecArgs;

/// Longest mount point path (with a test root prefix).
pub const MAX_MOUNT_PATH: usize = 128;
/// Mounts remembered for unmounting at shutdown (the fixed table plus cgroup v1
/// controllers).
pub const MAX_BOOT_MOUNTS: usize = 32;

type MountPath = HString<MAX_MOUNT_PATH>;

/// What early boot mounted, in order.
#[derive(Default)]
pub struct Mounts {
    list: HVec<MountPath, MAX_BOOT_MOUNTS>,
}

struct Fs {
    source: &'static str,
    target: &'static str,
    fstype: &'static str,
    flags: MsFlags,
    data: Option<&'static str>,
}

const NOSUID_NODEV_NOEXEC: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

/// Order matters: /dev before /dev/pts, /dev/shm, /dev/mqueue; /sys before its cgroup.
const TABLE: &[Fs] = &[
    Fs {
        source: "proc",
        target: "/proc",
        fstype: "proc",
        flags: NOSUID_NODEV_NOEXEC,
        data: None,
    },
    Fs {
        source: "sysfs",
        target: "/sys",
        fstype: "sysfs",
        flags: NOSUID_NODEV_NOEXEC,
        data: None,
    },
    Fs {
        source: "devtmpfs",
        target: "/dev",
        fstype: "devtmpfs",
        flags: MsFlags::MS_NOSUID,
        data: Some("mode=0755"),
    },
    Fs {
        source: "devpts",
        target: "/dev/pts",
        fstype: "devpts",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NOEXEC),
        data: Some("gid=5,mode=0620,ptmxmode=0666"),
    },
    Fs {
        source: "shm",
        target: "/dev/shm",
        fstype: "tmpfs",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        data: Some("mode=1777"),
    },
    Fs {
        source: "mqueue",
        target: "/dev/mqueue",
        fstype: "mqueue",
        flags: NOSUID_NODEV_NOEXEC,
        data: None,
    },
    Fs {
        source: "tmpfs",
        target: "/run",
        fstype: "tmpfs",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        data: Some("mode=0755"),
    },
    Fs {
        source: "tmpfs",
        target: "/tmp",
        fstype: "tmpfs",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        data: Some("mode=1777"),
    },
];

const CGROUP_DIR: &str = "/sys/fs/cgroup";

fn join(root: &str, target: &str) -> MountPath {
    let mut p = MountPath::new();
    let root = root.trim_end_matches('/');
    // Over-long paths are cut; the mount then fails with a clear message.
    let _ = p.push_str(root);
    let _ = p.push_str(target);
    p
}

/// True when `path` is already a mount point (its device differs from its parent's, or it
/// is the root itself).
fn is_mount_point(path: &str) -> bool {
    let Ok(st) = nix::sys::stat::stat(path) else {
        return false;
    };
    let mut parent = MountPath::new();
    let _ = parent.push_str(path);
    let _ = parent.push_str("/..");
    let Ok(pst) = nix::sys::stat::stat(parent.as_str()) else {
        return false;
    };
    st.st_dev != pst.st_dev || st.st_ino == pst.st_ino
}

fn mkdir_p(path: &str) {
    let mut end = 0;
    for (i, c) in path.char_indices().skip(1) {
        if c == '/' {
            end = i;
            if let Some(prefix) = path.get(..end) {
                let _ = nix::unistd::mkdir(prefix, Mode::from_bits_truncate(0o755));
            }
        }
    }
    let _ = end;
    let _ = nix::unistd::mkdir(path, Mode::from_bits_truncate(0o755));
}

impl Mounts {
    /// Mounts one filesystem unless something is mounted there already; a missing
    /// filesystem type (ENODEV) or any other failure is reported and skipped.
    fn mount_one(
        &mut self,
        source: &str,
        target: &str,
        fstype: &str,
        flags: MsFlags,
        data: Option<&str>,
    ) -> bool {
        if is_mount_point(target) {
            debug!("dory: {target}: already mounted");
            return true;
        }
        mkdir_p(target);
        match mount(Some(source), target, Some(fstype), flags, data) {
            Ok(()) => {
                let mut p = MountPath::new();
                let _ = p.push_str(target);
                if self.list.push(p).is_err() {
                    say!("dory: {target}: more than {MAX_BOOT_MOUNTS} mounts (MAX_BOOT_MOUNTS); not unmounted at shutdown");
                }
                true
            }
            Err(Errno::EBUSY) => true,
            Err(Errno::ENODEV) => {
                say!("dory: {target}: filesystem {fstype} not supported by this kernel, skipped");
                false
            }
            Err(e) => {
                say!("dory: {target}: mount {fstype} failed: {e}");
                false
            }
        }
    }

    /// Mounts the early filesystems under `root` ("/" on a board).
    pub fn mount_all(&mut self, root: &str) {
        for fs in TABLE {
            let target = join(root, fs.target);
            self.mount_one(fs.source, &target, fs.fstype, fs.flags, fs.data);
        }
        let cg = join(root, CGROUP_DIR);
        if !self.mount_one("cgroup2", &cg, "cgroup2", NOSUID_NODEV_NOEXEC, None) {
            self.mount_cgroup_v1(&cg, &join(root, "/proc/cgroups"));
        }
    }

    /// Fallback when the kernel has no cgroup2: a tmpfs with one v1 hierarchy per enabled
    /// controller listed in /proc/cgroups.
    fn mount_cgroup_v1(&mut self, dir: &str, proc_cgroups: &str) {
        let Ok(text) = std::fs::read_to_string(proc_cgroups) else {
            say!("dory: no cgroup support in this kernel; containers run without cgroups");
            return;
        };
        if !self.mount_one(
            "tmpfs",
            dir,
            "tmpfs",
            NOSUID_NODEV_NOEXEC,
            Some("mode=0755"),
        ) {
            return;
        }
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let mut f = line.split_whitespace();
            let (Some(name), Some(enabled)) = (f.next(), f.nth(2)) else {
                continue;
            };
            if enabled != "1" {
                continue;
            }
            let mut target = MountPath::new();
            let _ = target.push_str(dir);
            let _ = target.push('/');
            let _ = target.push_str(name);
            self.mount_one("cgroup", &target, "cgroup", NOSUID_NODEV_NOEXEC, Some(name));
        }
        say!("dory: cgroup v1 controllers mounted under {dir} (no cgroup2 in this kernel)");
    }

    /// Unmounts in reverse order; a busy mount is detached instead.
    pub fn unmount_all(&mut self) {
        while let Some(target) = self.list.pop() {
            match umount2(target.as_str(), MntFlags::empty()) {
                Ok(()) => debug!("dory: unmounted {target}"),
                Err(Errno::EBUSY) => match umount2(target.as_str(), MntFlags::MNT_DETACH) {
                    Ok(()) => say!("dory: {target} busy, detached"),
                    Err(e) => say!("dory: {target}: unmount failed: {e}"),
                },
                Err(e) => say!("dory: {target}: unmount failed: {e}"),
            }
        }
    }
}

/// Puts /dev/console on fds 0, 1 and 2. Returns false when there is no console device.
pub fn console_stdio(root: &str) -> bool {
    let path = join(root, "/dev/console");
    let Ok(fd) = open(
        path.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    let ok = nix::unistd::dup2_stdin(fd.as_fd()).is_ok()
        && nix::unistd::dup2_stdout(fd.as_fd()).is_ok()
        && nix::unistd::dup2_stderr(fd.as_fd()).is_ok();
    ok
}

/// Remounts the root filesystem read-only (the last step before reboot(2)).
pub fn remount_root_readonly() {
    let flags = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    // /data (a board with a real root) first: unmounted, its journal is clean and the
    // next boot mounts it without a recovery.
    if is_mount_point("/data") {
        match umount2("/data", MntFlags::empty()) {
            Ok(()) => say!("dory: /data unmounted"),
            Err(e) => match mount(None::<&str>, "/data", None::<&str>, flags, None::<&str>) {
                Ok(()) => say!("dory: /data busy ({e}), remounted read-only"),
                Err(e2) => {
                    say!("dory: /data: unmount failed ({e}), read-only remount failed ({e2})")
                }
            },
        }
    }
    match mount(None::<&str>, "/", None::<&str>, flags, None::<&str>) {
        Ok(()) => say!("dory: / remounted read-only"),
        // An initramfs root (rootfs/tmpfs) may refuse; nothing is lost there.
        Err(e) => say!("dory: remounting / read-only failed: {e}"),
    }
}

// ---------------------------------------------------------------------------------------
// Leaving the initramfs root

/// Where the fresh tmpfs is mounted on the initramfs before it is moved onto `/`.
const NEW_ROOT: &str = "/.dory-root";
/// Deepest directory nesting copied from the initramfs.
pub const MAX_COPY_DEPTH: usize = 64;
/// statfs(2) `f_type` of ramfs and tmpfs, the two filesystems the kernel's rootfs can be.
const RAMFS_MAGIC: i128 = 0x8584_58f6;
const TMPFS_MAGIC: i128 = 0x0102_1994;

/// Why PID 1 is still on the initramfs root; each variant is one step of
/// [`leave_initramfs`] and names the path involved.
#[derive(Debug)]
pub enum LeaveError {
    MountProc(Errno),
    Mountinfo(std::io::Error),
    MountTmpfs(Errno),
    Copy { path: String, errno: Errno },
    TooDeep { path: String },
    MoveRoot(Errno),
    Chroot(Errno),
}

impl fmt::Display for LeaveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeaveError::MountProc(e) => write!(f, "mount proc on /proc to look at /: {e}"),
            LeaveError::Mountinfo(e) => write!(f, "read /proc/self/mountinfo: {e}"),
            LeaveError::MountTmpfs(e) => write!(f, "mount a tmpfs on {NEW_ROOT}: {e}"),
            LeaveError::Copy { path, errno } => write!(f, "copy /{path} to the tmpfs: {errno}"),
            LeaveError::TooDeep { path } => write!(
                f,
                "copy /{path}: nested deeper than {MAX_COPY_DEPTH} directories (MAX_COPY_DEPTH)"
            ),
            LeaveError::MoveRoot(e) => write!(f, "move {NEW_ROOT} onto / (MS_MOVE): {e}"),
            LeaveError::Chroot(e) => write!(f, "chroot into the moved tmpfs: {e}"),
        }
    }
}

/// What [`leave_initramfs`] found or did (it does not return when it re-executed dory).
pub enum Root {
    /// `/` is not the kernel's initramfs rootfs: containers can pivot_root.
    NotInitramfs,
    /// `/` is now a tmpfs, but re-executing dory from it failed; this process carries on
    /// (its old image stays in memory until it exits).
    Switched(Errno),
    /// Still on the initramfs: pivot_root is impossible for every container.
    Initramfs(LeaveError),
}

/// True when the mount seen at `/` in `mountinfo` text is the kernel's initial rootfs
/// (the initramfs), which has no parent mount and so cannot be left by pivot_root(2).
/// The last line mounted on `/` is the one visible there.
pub fn root_is_rootfs(mountinfo: &str) -> bool {
    let mut fstype = None;
    for line in mountinfo.lines() {
        let mut fields = line.split(' ');
        if fields.nth(4) != Some("/") {
            continue;
        }
        fstype = line
            .split_once(" - ")
            .and_then(|(_, rest)| rest.split(' ').next());
    }
    fstype == Some("rootfs")
}

/// The initramfs check, with /proc mounted only for as long as it takes: the root's
/// filesystem type in /proc/self/mountinfo and the path of our executable. Returns the
/// executable's path when `/` is the rootfs.
fn probe_rootfs() -> Result<Option<String>, LeaveError> {
    let mounted = !is_mount_point("/proc");
    if mounted {
        mkdir_p("/proc");
        mount(
            Some("proc"),
            "/proc",
            Some("proc"),
            NOSUID_NODEV_NOEXEC,
            None::<&str>,
        )
        .map_err(LeaveError::MountProc)?;
    }
    let text = std::fs::read_to_string("/proc/self/mountinfo");
    let exe = std::fs::read_link("/proc/self/exe")
        .ok()
        .and_then(|p| p.to_str().map(str::to_string));
    if mounted {
        // Unmounted so the copy and the initramfs's deletion see one filesystem.
        if let Err(e) = umount2("/proc", MntFlags::MNT_DETACH) {
            say!("dory: /proc: unmount after the root check failed: {e}");
        }
    }
    let text = text.map_err(LeaveError::Mountinfo)?;
    if !root_is_rootfs(&text) {
        return Ok(None);
    }
    Ok(Some(exe.unwrap_or_else(|| {
        std::env::args_os()
            .next()
            .map_or_else(|| "/init".into(), |a| a.to_string_lossy().into_owned())
    })))
}

/// Copies a directory tree within one filesystem onto another, keeping types, modes,
/// owners, times and hard links.
struct Copier<'a> {
    dev: u64,
    new_root: BorrowedFd<'a>,
    /// Path below the root of the entry being copied (for messages and hard links).
    path: String,
    /// Inode → path of files with more than one link, to link instead of copy again.
    links: Vec<(u64, String)>,
    entries: u64,
    files: u64,
    bytes: u64,
}

fn times(st: &nix::sys::stat::FileStat) -> (TimeSpec, TimeSpec) {
    (
        TimeSpec::new(st.st_atime, st.st_atime_nsec),
        TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
    )
}

fn perms(st: &nix::sys::stat::FileStat) -> Mode {
    Mode::from_bits_truncate(st.st_mode & 0o7777)
}

impl Copier<'_> {
    fn err(&self, errno: Errno) -> LeaveError {
        LeaveError::Copy {
            path: self.path.clone(),
            errno,
        }
    }

    /// Gives the entry `name` of `dst` the owner in `st`, not following a symlink.
    fn chown_entry(
        &self,
        dst: BorrowedFd<'_>,
        name: &std::ffi::CStr,
        st: &nix::sys::stat::FileStat,
    ) -> Result<(), LeaveError> {
        let (uid, gid) = owner(st);
        fchownat(dst, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| self.err(e))
    }

    /// Copies every entry of `src` into `dst` (both directories).
    fn dir(
        &mut self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        depth: usize,
    ) -> Result<(), LeaveError> {
        if depth > MAX_COPY_DEPTH {
            return Err(LeaveError::TooDeep {
                path: self.path.clone(),
            });
        }
        let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mut entries =
            Dir::openat(src, ".", dir_flags, Mode::empty()).map_err(|e| self.err(e))?;
        for entry in entries.iter() {
            let entry = entry.map_err(|e| self.err(e))?;
            let name = entry.file_name();
            if name == c"." || name == c".." {
                continue;
            }
            let base = self.path.len();
            if base > 0 {
                self.path.push('/');
            }
            self.path.push_str(&name.to_string_lossy());
            self.entry(src, dst, name, depth)?;
            self.path.truncate(base);
        }
        Ok(())
    }

    fn entry(
        &mut self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        name: &std::ffi::CStr,
        depth: usize,
    ) -> Result<(), LeaveError> {
        let st = fstatat(src, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| self.err(e))?;
        // Another filesystem mounted here (the new root itself): not part of the initramfs.
        if st.st_dev != self.dev {
            return Ok(());
        }
        self.entries += 1;
        let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        // Created with their final permissions (the umask is 0 during the copy) and owned
        // by root: most entries need no chown or chmod afterwards.
        match kind {
            SFlag::S_IFDIR => {
                mkdirat(dst, name, perms(&st)).map_err(|e| self.err(e))?;
                let from = openat(src, name, dir_flags, Mode::empty()).map_err(|e| self.err(e))?;
                let to = openat(dst, name, dir_flags, Mode::empty()).map_err(|e| self.err(e))?;
                self.dir(from.as_fd(), to.as_fd(), depth + 1)?;
                // Owner and times after the children: creating them changed the mtime.
                self.finish(to.as_fd(), &st)
            }
            SFlag::S_IFREG => {
                if st.st_nlink > 1 {
                    if let Some((_, first)) = self.links.iter().find(|(ino, _)| *ino == st.st_ino) {
                        return linkat(self.new_root, first.as_str(), dst, name, AtFlags::empty())
                            .map_err(|e| self.err(e));
                    }
                    self.links.push((st.st_ino, self.path.clone()));
                }
                let from = openat(
                    src,
                    name,
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| self.err(e))?;
                let to = openat(
                    dst,
                    name,
                    OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC,
                    perms(&st),
                )
                .map_err(|e| self.err(e))?;
                let mut from = File::from(from);
                let mut to = File::from(to);
                let n = std::io::copy(&mut from, &mut to)
                    .map_err(|e| self.err(Errno::from_raw(e.raw_os_error().unwrap_or(0))))?;
                self.files += 1;
                self.bytes += n;
                self.finish(to.as_fd(), &st)
            }
            SFlag::S_IFLNK => {
                let target = readlinkat(src, name).map_err(|e| self.err(e))?;
                symlinkat(target.as_os_str(), dst, name).map_err(|e| self.err(e))?;
                if !root_owned(&st) {
                    self.chown_entry(dst, name, &st)?;
                }
                Ok(())
            }
            // Device nodes, fifos, sockets (/dev/console of the initramfs).
            _ => {
                mknodat(dst, name, kind, perms(&st), st.st_rdev).map_err(|e| self.err(e))?;
                if !root_owned(&st) {
                    self.chown_entry(dst, name, &st)?;
                    // chown cleared the set-id bits; the entry was just made by us (no link).
                    fchmodat(dst, name, perms(&st), FchmodatFlags::FollowSymlink)
                        .map_err(|e| self.err(e))?;
                }
                let (atime, mtime) = times(&st);
                utimensat(dst, name, &atime, &mtime, UtimensatFlags::NoFollowSymlink)
                    .map_err(|e| self.err(e))
            }
        }
    }

    /// Owner (then the mode again: chown clears set-id bits, and mkdir(2) does not set
    /// them) and times of an open file or directory.
    fn finish(&self, fd: BorrowedFd<'_>, st: &nix::sys::stat::FileStat) -> Result<(), LeaveError> {
        let setid = st.st_mode & 0o6000 != 0;
        if !root_owned(st) {
            fchown(fd, owner(st).0, owner(st).1).map_err(|e| self.err(e))?;
        }
        if setid || !root_owned(st) {
            fchmod(fd, perms(st)).map_err(|e| self.err(e))?;
        }
        let (atime, mtime) = times(st);
        futimens(fd, &atime, &mtime).map_err(|e| self.err(e))
    }
}

fn root_owned(st: &nix::sys::stat::FileStat) -> bool {
    st.st_uid == 0 && st.st_gid == 0
}

fn owner(st: &nix::sys::stat::FileStat) -> (Option<Uid>, Option<Gid>) {
    (
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )
}

/// Deletes everything below `dir` that lives on device `dev` (busybox switch_root's
/// delete_contents), so the initramfs's RAM is freed. Returns how many entries could not
/// be removed.
pub(super) fn delete_tree(dir: BorrowedFd<'_>, dev: u64, depth: usize) -> u32 {
    let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let Ok(mut entries) = Dir::openat(dir, ".", dir_flags, Mode::empty()) else {
        return 1;
    };
    let mut failed = 0;
    for entry in entries.iter() {
        let Ok(entry) = entry else {
            return failed + 1;
        };
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        // Anything but a directory is unlinked without a stat (half the syscalls, which
        // cost ~0.3 ms each under QEMU TCG); a mount point refuses with EBUSY.
        let not_dir = entry
            .file_type()
            .is_some_and(|t| t != nix::dir::Type::Directory);
        if not_dir {
            if unlinkat(dir, name, UnlinkatFlags::NoRemoveDir).is_err() {
                failed += 1;
            }
            continue;
        }
        let Ok(st) = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) else {
            failed += 1;
            continue;
        };
        if st.st_dev != dev {
            continue;
        }
        let is_dir = st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits();
        if is_dir {
            match openat(dir, name, dir_flags, Mode::empty()) {
                Ok(sub) if depth < MAX_COPY_DEPTH => {
                    failed += delete_tree(sub.as_fd(), dev, depth + 1);
                }
                _ => failed += 1,
            }
        }
        let how = if is_dir {
            UnlinkatFlags::RemoveDir
        } else {
            UnlinkatFlags::NoRemoveDir
        };
        if unlinkat(dir, name, how).is_err() {
            failed += 1;
        }
    }
    failed
}

/// Takes PID 1 off the kernel's initramfs root (rootfs), as LinuxKit's init and busybox
/// switch_root do, so that every container gets a real pivot_root(2): rootfs is the one
/// mount without a parent, which pivot_root refuses to leave. Runs first, before anything
/// is mounted on the initramfs. On success it does not return: dory is re-executed from
/// the new root with the same arguments and environment, and boots from the start there.
pub fn leave_initramfs() -> Root {
    let t0 = now_ms();
    // Cheap filter first: a disk root (init=/sbin/dory) needs no /proc to be recognised.
    let magic = nix::sys::statfs::statfs("/").map(|s| i128::from(s.filesystem_type().0));
    if !matches!(magic, Ok(RAMFS_MAGIC | TMPFS_MAGIC)) {
        return Root::NotInitramfs;
    }
    // Only the rootfs itself cannot be pivoted from: a tmpfs root mounted over it (where
    // this function leaves us, before the re-exec) is a real mount.
    let exe = match probe_rootfs() {
        Ok(Some(exe)) => exe,
        Ok(None) => return Root::NotInitramfs,
        Err(e) => return Root::Initramfs(e),
    };
    // The initramfs stays reachable through this fd once the tmpfs covers it, so its
    // files can be deleted after the switch, when nothing can go back to it any more.
    let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let old_root = match nix::fcntl::open("/", dir_flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) => {
            return Root::Initramfs(LeaveError::Copy {
                path: String::new(),
                errno: e,
            })
        }
    };
    let dev = match nix::sys::stat::fstat(old_root.as_fd()) {
        Ok(st) => st.st_dev,
        Err(e) => {
            return Root::Initramfs(LeaveError::Copy {
                path: String::new(),
                errno: e,
            })
        }
    };
    // A fresh tmpfs: a mount with a parent (the rootfs), which pivot_root can leave. Its
    // default size (half the RAM) bounds the copy; ENOSPC stops it cleanly.
    mkdir_p(NEW_ROOT);
    if let Err(e) = mount(
        Some("root"),
        NEW_ROOT,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("mode=0755"),
    ) {
        let _ = std::fs::remove_dir(NEW_ROOT);
        return Root::Initramfs(LeaveError::MountTmpfs(e));
    }
    // Copy the tree while the initramfs is intact: any failure leaves it as it was.
    let t_copy = now_ms();
    let copied = match nix::fcntl::open(NEW_ROOT, dir_flags, Mode::empty())
        .map_err(LeaveError::MountTmpfs)
        .and_then(|new_root| copy_root(old_root.as_fd(), new_root.as_fd(), dev))
    {
        Ok(c) => c,
        Err(e) => {
            let _ = umount2(NEW_ROOT, MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir(NEW_ROOT);
            return Root::Initramfs(e);
        }
    };
    // Switch: the tmpfs covers the initramfs at `/` and becomes our root.
    if let Err(e) = switch_to(NEW_ROOT) {
        let _ = umount2(NEW_ROOT, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(NEW_ROOT);
        return Root::Initramfs(e);
    }
    // Free the initramfs: its files are reachable only through `old_root` now, and
    // nothing will ever use them (a container could otherwise find them under its root).
    let t_delete = now_ms();
    let left = delete_tree(old_root.as_fd(), dev, 0);
    drop(old_root);
    if left > 0 {
        say!("dory: boot: {left} initramfs entries could not be deleted");
    }
    say!(
        "dory: boot: left the initramfs: / is a tmpfs now ({} entries, {} files, {} KiB; {} ms: check {}, copy {}, delete {}); re-executing {exe}",
        copied.entries,
        copied.files,
        copied.bytes / 1024,
        now_ms().saturating_sub(t0),
        t_copy.saturating_sub(t0),
        t_delete.saturating_sub(t_copy),
        now_ms().saturating_sub(t_delete)
    );
    // Re-exec from the new root: PID 1's own image is then a tmpfs file, and the
    // initramfs copy of it is freed too.
    let mut argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match argv.first_mut() {
        Some(a0) => *a0 = exe.clone(),
        None => argv.push(exe.clone()),
    }
    let env: Vec<String> = std::env::vars_os()
        .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
        .collect();
    let Some(args) = ExecArgs::new(
        argv.iter().map(String::as_str),
        env.iter().map(String::as_str),
    ) else {
        return Root::Switched(Errno::EINVAL);
    };
    Root::Switched(args.exec())
}

/// What was copied: entries of every kind, regular files and their bytes.
struct Copied {
    entries: u64,
    files: u64,
    bytes: u64,
}

/// Copies the tree below `old_root` that lives on device `dev` into the empty directory
/// `new_root` (the tmpfs at [`NEW_ROOT`] on a board).
fn copy_root(
    old_root: BorrowedFd<'_>,
    new_root: BorrowedFd<'_>,
    dev: u64,
) -> Result<Copied, LeaveError> {
    let mut c = Copier {
        dev,
        new_root,
        path: String::new(),
        links: Vec::new(),
        entries: 0,
        files: 0,
        bytes: 0,
    };
    // Modes are given exactly at creation, so no chmod is needed after it.
    let umask = nix::sys::stat::umask(Mode::empty());
    let copied = c.dir(old_root, new_root, 0).and_then(|()| {
        let st = nix::sys::stat::fstat(old_root).map_err(|e| c.err(e))?;
        fchmod(new_root, perms(&st)).map_err(|e| c.err(e))?;
        c.finish(new_root, &st)
    });
    nix::sys::stat::umask(umask);
    copied.map(|()| Copied {
        entries: c.entries,
        files: c.files,
        bytes: c.bytes,
    })
}

/// `mount --move NEW_ROOT /`, `chroot .`, `chdir /` (the switch_root sequence).
pub(super) fn switch_to(new_root: &str) -> Result<(), LeaveError> {
    nix::unistd::chdir(new_root).map_err(LeaveError::MoveRoot)?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .map_err(LeaveError::MoveRoot)?;
    nix::unistd::chroot(".").map_err(LeaveError::Chroot)?;
    nix::unistd::chdir("/").map_err(LeaveError::Chroot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_adds_the_root_prefix() {
        assert_eq!(join("/", "/proc").as_str(), "/proc");
        assert_eq!(join("/tmp/x/", "/dev/pts").as_str(), "/tmp/x/dev/pts");
        assert_eq!(join("", "/run").as_str(), "/run");
    }

    #[test]
    fn mount_points_are_recognised() {
        assert!(is_mount_point("/"));
        assert!(is_mount_point("/proc"));
        let dir = std::env::temp_dir().join(format!("dory-mp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(!is_mount_point(dir.to_str().unwrap()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_initramfs_root_is_recognised_in_mountinfo() {
        let initramfs = "1 1 0:2 / / rw - rootfs rootfs rw,size=114312k,nr_inodes=28578\n\
                         14 1 0:5 / /dev rw,nosuid - devtmpfs devtmpfs rw,mode=755\n";
        assert!(root_is_rootfs(initramfs));
        // After the switch: the tmpfs over the rootfs is what `/` shows (rootfs is hidden).
        let switched = "20 1 0:21 / / rw - tmpfs rootfs rw,mode=755\n\
                        21 20 0:22 / /proc rw - proc proc rw\n";
        assert!(!root_is_rootfs(switched));
        // A chroot's view lists the rootfs first, then what covers `/`.
        let covered = "1 1 0:2 / / rw - rootfs rootfs rw\n30 1 0:30 / / rw - tmpfs tmpfs rw\n";
        assert!(!root_is_rootfs(covered));
        assert!(!root_is_rootfs(
            "22 1 8:1 / / rw,relatime - ext4 /dev/vda rw\n"
        ));
        assert!(!root_is_rootfs(""));
    }

    #[test]
    fn the_copy_keeps_types_modes_owners_times_and_links_and_the_delete_frees_it_all() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        if !nix::unistd::Uid::effective().is_root() {
            crate::testutil::skip("init::boot::tests::the_copy_keeps_types_modes_owners_times_and_links_and_the_delete_frees_it_all", "needs root (device nodes and owners)");
            return;
        }
        let base = std::env::temp_dir().join(format!("dory-copy-{}", std::process::id()));
        let (src, dst) = (base.join("src"), base.join("dst"));
        std::fs::create_dir_all(src.join("etc/dory")).unwrap();
        std::fs::create_dir_all(src.join("bin")).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        std::fs::write(src.join("etc/dory/board.json"), b"{}").unwrap();
        std::fs::write(src.join("bin/busybox"), vec![7u8; 300_000]).unwrap();
        std::fs::set_permissions(src.join("bin/busybox"), PermissionsExt::from_mode(0o4755))
            .unwrap();
        std::os::unix::fs::symlink("/bin/busybox", src.join("bin/sh")).unwrap();
        std::fs::hard_link(src.join("bin/busybox"), src.join("bin/bb2")).unwrap();
        std::fs::create_dir(src.join("tmp")).unwrap();
        std::fs::set_permissions(src.join("tmp"), PermissionsExt::from_mode(0o1777)).unwrap();
        std::fs::create_dir(src.join("home")).unwrap();
        std::os::unix::fs::chown(src.join("home"), Some(1000), Some(1000)).unwrap();
        std::fs::set_permissions(src.join("home"), PermissionsExt::from_mode(0o2750)).unwrap();
        nix::sys::stat::mknod(
            &src.join("console"),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o600),
            nix::sys::stat::makedev(5, 1),
        )
        .unwrap();
        let mtime = TimeSpec::new(1_000_000_000, 0);
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &src.join("etc/dory/board.json"),
            &mtime,
            &mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let from = open(&src, flags, Mode::empty()).unwrap();
        let to = open(&dst, flags, Mode::empty()).unwrap();
        let dev = nix::sys::stat::fstat(from.as_fd()).unwrap().st_dev;
        let c = copy_root(from.as_fd(), to.as_fd(), dev)
            .map_err(|e| e.to_string())
            .unwrap();
        // board.json, busybox (bb2 is a link to it, not a second copy)
        assert_eq!((c.files, c.bytes), (2, 300_002));
        let meta = |p: &str| std::fs::symlink_metadata(dst.join(p)).unwrap();
        assert_eq!(
            std::fs::read(dst.join("etc/dory/board.json")).unwrap(),
            b"{}"
        );
        assert_eq!(meta("etc/dory/board.json").mtime(), 1_000_000_000);
        assert_eq!(meta("bin/busybox").mode() & 0o7777, 0o4755);
        assert_eq!(meta("bin/busybox").ino(), meta("bin/bb2").ino());
        assert_eq!(
            std::fs::read_link(dst.join("bin/sh")).unwrap(),
            std::path::Path::new("/bin/busybox")
        );
        assert_eq!(meta("tmp").mode() & 0o7777, 0o1777);
        assert_eq!((meta("home").uid(), meta("home").gid()), (1000, 1000));
        assert_eq!(meta("home").mode() & 0o7777, 0o2750);
        assert_eq!(meta("console").rdev(), nix::sys::stat::makedev(5, 1));
        assert_eq!(meta("console").mode(), 0o20600);
        assert_eq!(delete_tree(from.as_fd(), dev, 0), 0);
        assert_eq!(std::fs::read_dir(&src).unwrap().count(), 0);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn table_order_mounts_parents_first() {
        for (i, fs) in TABLE.iter().enumerate() {
            for later in TABLE.iter().skip(i + 1) {
                assert!(
                    !fs.target.starts_with(&format!("{}/", later.target)),
                    "{} before {}",
                    fs.target,
                    later.target
                );
            }
        }
    }
}
