//! Booting onto a real root: dory as the initramfs's `/init` loads the kernel modules the
//! board names, waits for the root (and data) device, mounts the root read-only and
//! `/data` read-write, moves them onto `/`, frees the initramfs and re-executes the dory
//! of the real root (`/sbin/dory`), which then boots the board from there.
//!
//! Why this order:
//! 1. devtmpfs, sysfs and proc first: module loading needs none, but finding a device by
//!    PARTUUID reads `/sys/class/block` and the disks in `/dev`.
//! 2. Modules before the wait: the disk's driver (virtio_blk, the MMC host) and the
//!    filesystems are modules on distribution kernels.
//! 3. The wait has a deadline ([`Board::root_timeout_secs`]); nothing else runs yet, so
//!    there is no watchdog to starve (it is opened by the real root's dory).
//! 4. Root and data are mounted under [`NEW_ROOT`] before anything is unmounted, so any
//!    failure leaves the initramfs as it was (dory carries on there and says why).
//! 5. The switch is switch_root's: MS_MOVE onto `/`, chroot, delete the initramfs's files
//!    (not crossing into other mounts), exec.

use core::fmt;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use heapless::Vec as HVec;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;

use super::board::{Board, Volume, MAX_MODULES};
use super::boot;
use super::console::{now_ms, say};

/// Filesystems a root or data volume may have.
pub const FSTYPES: &[&str] = &["squashfs", "erofs", "ext4"];
/// Where the real root is mounted before it becomes `/`.
const NEW_ROOT: &str = "/.dory-realroot";
/// The real root's dory, re-executed as PID 1.
const REAL_INIT: &str = "/sbin/dory";
/// Largest modules.dep read (the image ships only the board's modules).
const MAX_MODULES_DEP: u64 = 256 * 1024;
/// Modules loaded in all, dependencies included.
const MAX_LOADED: usize = 4 * MAX_MODULES;
/// How often the block devices are looked at while waiting.
const POLL: Duration = Duration::from_millis(50);

/// A device as board.json names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceName<'a> {
    /// `PARTUUID=d0e1f2a3-02`: the MBR disk signature and the partition number.
    PartUuid { signature: u32, partition: u8 },
    /// `/dev/vda2`.
    Path(&'a str),
}

impl<'a> DeviceName<'a> {
    pub fn parse(s: &'a str) -> Option<DeviceName<'a>> {
        if let Some(rest) = s.strip_prefix("PARTUUID=") {
            let (sig, part) = rest.split_once('-')?;
            if sig.len() != 8 || part.len() != 2 {
                return None;
            }
            let signature = u32::from_str_radix(sig, 16).ok()?;
            let partition: u8 = part.parse().ok()?;
            return (1..=4)
                .contains(&partition)
                .then_some(DeviceName::PartUuid {
                    signature,
                    partition,
                });
        }
        let ok = s.starts_with("/dev/")
            && s.len() > 5
            && s.len() < 64
            && !s.split('/').any(|c| c == "..");
        ok.then_some(DeviceName::Path(s))
    }
}

/// Why the real root could not be reached; each variant is one step.
#[derive(Debug)]
pub enum RootError {
    EarlyMount(&'static str, Errno),
    ModulesDep(String, std::io::Error),
    UnknownModule(String),
    TooManyModules,
    LoadModule(String, Errno),
    NotFound {
        what: &'static str,
        device: String,
        secs: u32,
        seen: String,
    },
    Mount {
        what: &'static str,
        device: String,
        errno: Errno,
    },
    Switch(boot::LeaveError),
    Exec(Errno),
}

impl fmt::Display for RootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootError::EarlyMount(what, e) => write!(f, "mount {what}: {e}"),
            RootError::ModulesDep(path, e) => write!(f, "read {path}: {e}"),
            RootError::UnknownModule(m) => {
                write!(f, "modules: \"{m}\" is not in the image's modules.dep")
            }
            RootError::TooManyModules => write!(
                f,
                "modules: more than {MAX_LOADED} with their dependencies (limit)"
            ),
            RootError::LoadModule(path, e) => write!(f, "load module {path}: {e}"),
            RootError::NotFound {
                what,
                device,
                secs,
                seen,
            } => write!(
                f,
                "{what}.device {device} did not appear within {secs} s (root.timeoutSecs); block devices: {seen}"
            ),
            RootError::Mount {
                what,
                device,
                errno,
            } => write!(f, "mount {what} ({device}): {errno}"),
            RootError::Switch(e) => write!(f, "{e}"),
            RootError::Exec(e) => write!(f, "exec {REAL_INIT} on the real root: {e}"),
        }
    }
}

/// Boots onto the board's real root when it names one and `/` is the initramfs; does
/// not return then. `None`: nothing to do; `Some(error)`: the initramfs is as it was.
pub fn enter(board: &Board<'_>) -> Option<RootError> {
    let root = board.root?;
    let t0 = now_ms();
    let mounted = match early_mounts() {
        Ok(m) => m,
        Err(e) => return Some(e),
    };
    let result = mount_real_root(board, root);
    unmount_early(mounted);
    if let Err(e) = result {
        let _ = umount2(NEW_ROOT, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(NEW_ROOT);
        return Some(e);
    }
    say!(
        "dory: boot: real root {} ({}) mounted read-only{} in {} ms; switching to it",
        root.device,
        root.fstype,
        if board.data.is_some() {
            ", /data read-write"
        } else {
            ""
        },
        now_ms().saturating_sub(t0)
    );
    Some(switch_and_exec())
}

/// devtmpfs, sysfs and proc where the initramfs has none yet; returns which it mounted.
fn early_mounts() -> Result<HVec<&'static str, 3>, RootError> {
    let mut mounted = HVec::new();
    for (target, fstype) in [("/dev", "devtmpfs"), ("/sys", "sysfs"), ("/proc", "proc")] {
        let _ = std::fs::create_dir(target);
        match mount(
            Some(fstype),
            target,
            Some(fstype),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            None::<&str>,
        ) {
            Ok(()) => {
                let _ = mounted.push(target);
            }
            // The kernel mounted devtmpfs already (CONFIG_DEVTMPFS_MOUNT).
            Err(Errno::EBUSY) => {}
            Err(e) => {
                unmount_early(mounted);
                return Err(RootError::EarlyMount(target, e));
            }
        }
    }
    Ok(mounted)
}

fn unmount_early(mounted: HVec<&'static str, 3>) {
    for target in mounted.iter().rev() {
        if let Err(e) = umount2(*target, MntFlags::MNT_DETACH) {
            say!("dory: boot: unmount {target}: {e}");
        }
    }
}

/// Modules, devices, and the root (with /data) mounted at [`NEW_ROOT`].
fn mount_real_root(board: &Board<'_>, root: Volume<'_>) -> Result<(), RootError> {
    load_modules(&board.modules)?;
    let deadline = Instant::now() + Duration::from_secs(u64::from(board.root_timeout_secs));
    let root_dev = wait_for("root", root.device, deadline, board.root_timeout_secs)?;
    let data_dev = match board.data {
        Some(d) => Some((
            d,
            wait_for("data", d.device, deadline, board.root_timeout_secs)?,
        )),
        None => None,
    };
    let _ = std::fs::create_dir(NEW_ROOT);
    mount(
        Some(root_dev.as_str()),
        NEW_ROOT,
        Some(root.fstype),
        MsFlags::MS_RDONLY | MsFlags::MS_NODEV,
        None::<&str>,
    )
    .map_err(|errno| RootError::Mount {
        what: "root",
        device: root_dev.clone(),
        errno,
    })?;
    if let Some((d, dev)) = data_dev {
        // The root is read-only: /data must exist in its image.
        let target = format!("{NEW_ROOT}/data");
        mount(
            Some(dev.as_str()),
            target.as_str(),
            Some(d.fstype),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            None::<&str>,
        )
        .map_err(|errno| RootError::Mount {
            what: "data on /data",
            device: dev,
            errno,
        })?;
    }
    Ok(())
}

/// Moves [`NEW_ROOT`] onto `/`, frees the initramfs, and execs the real root's dory.
fn switch_and_exec() -> RootError {
    let dir = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let old_root = match nix::fcntl::open("/", dir, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) => return RootError::Exec(e),
    };
    let dev = match nix::sys::stat::fstat(old_root.as_fd()) {
        Ok(st) => st.st_dev,
        Err(e) => return RootError::Exec(e),
    };
    if let Err(e) = boot::switch_to(NEW_ROOT) {
        return RootError::Switch(e);
    }
    let left = boot::delete_tree(old_root.as_fd(), dev, 0);
    drop(old_root);
    if left > 0 {
        say!("dory: boot: {left} initramfs entries could not be deleted");
    }
    let env: Vec<String> = std::env::vars_os()
        .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
        .collect();
    let argv: Vec<String> = std::iter::once(REAL_INIT.to_string())
        .chain(
            std::env::args_os()
                .skip(1)
                .map(|a| a.to_string_lossy().into_owned()),
        )
        .collect();
    match crate::sys::init::ExecArgs::new(
        argv.iter().map(String::as_str),
        env.iter().map(String::as_str),
    ) {
        Some(args) => RootError::Exec(args.exec()),
        None => RootError::Exec(Errno::EINVAL),
    }
}

/// A module's name as modules.dep spells its file: `kernel/fs/ext4/ext4.ko` → `ext4`;
/// `-` and `_` are the same (as modprobe has it).
fn same_module(path: &str, name: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or(path);
    let base = file.split_once(".ko").map_or(file, |(b, _)| b);
    base.len() == name.len()
        && base
            .bytes()
            .zip(name.bytes())
            .all(|(a, b)| a == b || (a == b'-' && b == b'_') || (a == b'_' && b == b'-'))
}

/// `modules` and their dependencies, in the order to load them: for each, the
/// dependencies modules.dep lists (last first, as modprobe loads them), then itself;
/// each module once.
pub fn load_order<'d>(
    dep: &'d str,
    modules: &[&str],
) -> Result<HVec<&'d str, MAX_LOADED>, RootError> {
    let mut order: HVec<&str, MAX_LOADED> = HVec::new();
    for name in modules {
        let Some((path, deps)) = dep.lines().find_map(|l| {
            let (p, d) = l.split_once(':')?;
            same_module(p, name).then_some((p.trim(), d))
        }) else {
            return Err(RootError::UnknownModule((*name).to_string()));
        };
        let deps: HVec<&str, MAX_LOADED> = deps.split_whitespace().take(MAX_LOADED).collect();
        for p in deps.iter().rev().copied().chain(core::iter::once(path)) {
            if !order.contains(&p) {
                order.push(p).map_err(|_| RootError::TooManyModules)?;
            }
        }
    }
    Ok(order)
}

/// Loads `modules` with finit_module(2) from `/lib/modules/<release>/`.
pub(super) fn load_modules(modules: &[&str]) -> Result<(), RootError> {
    if modules.is_empty() {
        return Ok(());
    }
    let uname = nix::sys::utsname::uname().map_err(|e| RootError::LoadModule("uname".into(), e))?;
    let release = uname.release().to_string_lossy().into_owned();
    let dir = format!("/lib/modules/{release}");
    let dep_path = format!("{dir}/modules.dep");
    let dep = read_capped(&dep_path).map_err(|e| RootError::ModulesDep(dep_path, e))?;
    let t0 = now_ms();
    let order = load_order(&dep, modules)?;
    for rel in &order {
        let path = format!("{dir}/{rel}");
        let file = nix::fcntl::open(
            path.as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| RootError::LoadModule(path.clone(), e))?;
        match crate::sys::init::finit_module(file.as_fd()) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(RootError::LoadModule(path, e)),
        }
    }
    say!(
        "dory: boot: {} modules loaded in {} ms",
        order.len(),
        now_ms().saturating_sub(t0)
    );
    Ok(())
}

fn read_capped(path: &str) -> std::io::Result<String> {
    use std::io::Read;
    let f = crate::spec::open_regular(std::path::Path::new(path)).map_err(|e| match e {
        crate::spec::OpenError::Io(e) => e,
        crate::spec::OpenError::NotRegular(what) => {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("is {what}"))
        }
    })?;
    let mut text = String::new();
    f.take(MAX_MODULES_DEP).read_to_string(&mut text)?;
    Ok(text)
}

/// Waits until `device` exists (by path, or a partition whose disk has that MBR
/// signature); returns its `/dev` path.
fn wait_for(
    what: &'static str,
    device: &str,
    deadline: Instant,
    secs: u32,
) -> Result<String, RootError> {
    let name = DeviceName::parse(device).ok_or(RootError::NotFound {
        what,
        device: device.into(),
        secs,
        seen: String::new(),
    })?;
    loop {
        let found = match name {
            DeviceName::Path(p) => std::path::Path::new(p).exists().then(|| p.to_string()),
            DeviceName::PartUuid {
                signature,
                partition,
            } => find_partition(signature, partition),
        };
        if let Some(dev) = found {
            return Ok(dev);
        }
        if Instant::now() >= deadline {
            return Err(RootError::NotFound {
                what,
                device: device.into(),
                secs,
                seen: block_devices(),
            });
        }
        std::thread::sleep(POLL);
    }
}

/// The names in /sys/class/block, for the error message.
fn block_devices() -> String {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/block")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(" ")
    }
}

/// The MBR disk signature of `/dev/<disk>` (bytes 440-443, little-endian), if the disk
/// has an MBR (0x55 0xAA at 510).
fn mbr_signature(disk: &str) -> Option<u32> {
    use std::io::Read;
    let mut f = std::fs::File::open(format!("/dev/{disk}")).ok()?;
    let mut sector = [0u8; 512];
    f.read_exact(&mut sector).ok()?;
    if sector.get(510..512)? != [0x55, 0xAA] {
        return None;
    }
    let sig: [u8; 4] = sector.get(440..444)?.try_into().ok()?;
    Some(u32::from_le_bytes(sig))
}

/// `/dev/<name>` of partition `partition` on the disk whose MBR signature is
/// `signature`, from sysfs (`/sys/class/block/<disk>/<part>/partition`).
fn find_partition(signature: u32, partition: u8) -> Option<String> {
    for entry in std::fs::read_dir("/sys/class/block").ok()?.flatten() {
        let disk = entry.file_name().to_string_lossy().into_owned();
        // A whole disk has no `partition` file of its own.
        if entry.path().join("partition").exists() || mbr_signature(&disk) != Some(signature) {
            continue;
        }
        for part in std::fs::read_dir(entry.path()).ok()?.flatten() {
            let n = std::fs::read_to_string(part.path().join("partition")).ok();
            if n.as_deref().map(str::trim) == Some(partition.to_string().as_str()) {
                let name = part.file_name().to_string_lossy().into_owned();
                let dev = format!("/dev/{name}");
                if std::path::Path::new(&dev).exists() {
                    return Some(dev);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names() {
        assert_eq!(
            DeviceName::parse("PARTUUID=d0e1f2a3-02"),
            Some(DeviceName::PartUuid {
                signature: 0xd0e1_f2a3,
                partition: 2
            })
        );
        assert_eq!(
            DeviceName::parse("/dev/vda2"),
            Some(DeviceName::Path("/dev/vda2"))
        );
        for bad in [
            "PARTUUID=d0e1f2a3-05",
            "PARTUUID=d0e1f2a-02",
            "PARTUUID=d0e1f2ag-02",
            "PARTUUID=d0e1f2a3-2",
            "vda2",
            "/dev/",
            "/dev/../etc/passwd",
            "LABEL=root",
        ] {
            assert_eq!(DeviceName::parse(bad), None, "{bad}");
        }
    }

    const DEP: &str =
        "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko\n\
kernel/fs/mbcache.ko:\n\
kernel/fs/jbd2/jbd2.ko:\n\
kernel/lib/crc16.ko:\n\
kernel/drivers/block/virtio_blk.ko:\n\
kernel/crypto/crc32c_generic.ko:\n";

    #[test]
    fn load_order_puts_dependencies_first_and_each_module_once() {
        let order = load_order(DEP, &["virtio-blk", "crc32c_generic", "ext4", "jbd2"]).unwrap();
        assert_eq!(
            order.as_slice(),
            [
                "kernel/drivers/block/virtio_blk.ko",
                "kernel/crypto/crc32c_generic.ko",
                "kernel/fs/jbd2/jbd2.ko",
                "kernel/fs/mbcache.ko",
                "kernel/lib/crc16.ko",
                "kernel/fs/ext4/ext4.ko",
            ]
        );
    }

    #[test]
    fn an_unknown_module_is_named() {
        let e = load_order(DEP, &["ext4", "nosuch"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "modules: \"nosuch\" is not in the image's modules.dep"
        );
    }
}
