//! Early boot: the mounts and settings every board needs before containers can start,
//! and their undoing at shutdown.

use std::os::fd::AsFd;

use heapless::{String as HString, Vec as HVec};
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;

use super::console::{debug, say};

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
    match mount(None::<&str>, "/", None::<&str>, flags, None::<&str>) {
        Ok(()) => say!("dory: / remounted read-only"),
        // An initramfs root (rootfs/tmpfs) may refuse; nothing is lost there.
        Err(e) => say!("dory: remounting / read-only failed: {e}"),
    }
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
