//! Which cgroup hierarchies exist and where, read from /proc/self/mountinfo.

use std::path::{Path, PathBuf};

use super::error::errno_of;
use super::Error;

/// A v1 controller the code below writes files of; `bit` marks it in a hierarchy's mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ctrl {
    Cpu,
    Cpuset,
    Memory,
    Devices,
    Freezer,
    Pids,
    Hugetlb,
    Blkio,
    NetCls,
    NetPrio,
    Rdma,
}

impl Ctrl {
    pub(super) const fn name(self) -> &'static str {
        match self {
            Ctrl::Cpu => "cpu",
            Ctrl::Cpuset => "cpuset",
            Ctrl::Memory => "memory",
            Ctrl::Devices => "devices",
            Ctrl::Freezer => "freezer",
            Ctrl::Pids => "pids",
            Ctrl::Hugetlb => "hugetlb",
            Ctrl::Blkio => "blkio",
            Ctrl::NetCls => "net_cls",
            Ctrl::NetPrio => "net_prio",
            Ctrl::Rdma => "rdma",
        }
    }

    pub(super) const fn bit(self) -> u32 {
        1 << (self as u32)
    }

    const ALL: [Ctrl; 11] = [
        Ctrl::Cpu,
        Ctrl::Cpuset,
        Ctrl::Memory,
        Ctrl::Devices,
        Ctrl::Freezer,
        Ctrl::Pids,
        Ctrl::Hugetlb,
        Ctrl::Blkio,
        Ctrl::NetCls,
        Ctrl::NetPrio,
        Ctrl::Rdma,
    ];
}

/// Every v1 controller the kernel knows. A superblock option naming one of these (or
/// `name=…`) identifies the hierarchy; the other options (`rw`, `xattr`, `release_agent=…`,
/// `clone_children`, …) do not.
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
    "debug",
];

/// One mounted hierarchy.
#[derive(Debug, Clone)]
pub(super) struct Hierarchy {
    /// v1: the controller options as a mount would take them (`"cpu,cpuacct"`,
    /// `"name=systemd"`); cgroup2: empty.
    pub(super) controllers: String,
    /// Bits of [`Ctrl`] this hierarchy carries (v1 only).
    pub(super) mask: u32,
    /// The mount point as mountinfo shows it.
    pub(super) mount_point: PathBuf,
    /// Where its files are read and written: the mount point under the layout's root.
    pub(super) dir: PathBuf,
}

/// Which hierarchies exist and where.
#[derive(Debug, Clone)]
pub struct Layout {
    /// v1 hierarchies (empty on a pure v2 system).
    pub(super) v1: Vec<Hierarchy>,
    /// The cgroup2 mount: the one tree on pure v2, the controller-less `unified` mount on a
    /// hybrid system.
    pub(super) unified: Option<Hierarchy>,
    /// The root of a fake cgroupfs in a temporary directory (tests): plain directories do
    /// not grow interface files, so writes create them (and append `path value` lines to
    /// `<root>/writes.log`) and `rmdir` first deletes them. Set only by [`Layout::fake`].
    pub(super) fake: Option<PathBuf>,
    /// Text of /proc/self/cgroup for resolving relative cgroupsPaths; read on demand when
    /// `None`.
    pub(super) own_cgroup: Option<String>,
}

impl Layout {
    /// Reads /proc/self/mountinfo.
    pub fn detect() -> Result<Layout, Error> {
        const MOUNTINFO: &str = "/proc/self/mountinfo";
        let text = std::fs::read_to_string(MOUNTINFO).map_err(|e| Error::ReadProc {
            path: MOUNTINFO,
            errno: errno_of(&e),
        })?;
        Layout::from_mountinfo(&text)
    }

    /// Parses mountinfo text; pure.
    pub fn from_mountinfo(text: &str) -> Result<Layout, Error> {
        parse(text, Path::new("/"), None)
    }

    /// A layout over a fake cgroupfs: the mounts of `mountinfo` placed under `root` (a
    /// temporary directory). Used by tests; the `fake` field's doc says what differs.
    #[cfg(test)]
    pub fn fake(mountinfo: &str, root: &Path) -> Result<Layout, Error> {
        parse(mountinfo, root, Some(root.to_path_buf()))
    }

    /// Uses `text` as /proc/self/cgroup when resolving relative cgroupsPaths.
    #[cfg(test)]
    pub fn with_own_cgroup(mut self, text: &str) -> Layout {
        self.own_cgroup = Some(text.to_owned());
        self
    }

    /// The cgroup2 mount point, on pure v2 or hybrid systems.
    #[cfg(test)]
    pub fn unified_mount(&self) -> Option<&Path> {
        self.unified.as_ref().map(|h| h.mount_point.as_path())
    }

    /// Pure cgroup v2 (unified mode): one tree, no v1 hierarchy.
    pub fn is_v2(&self) -> bool {
        self.v1.is_empty()
    }

    /// The v1 hierarchies: controller options (`"cpu,cpuacct"`, `"name=systemd"`) and mount
    /// point, in mountinfo order.
    pub fn v1_hierarchies(&self) -> impl Iterator<Item = (&str, &Path)> {
        self.v1
            .iter()
            .map(|h| (h.controllers.as_str(), h.mount_point.as_path()))
    }
}

fn parse(text: &str, root: &Path, fake: Option<PathBuf>) -> Result<Layout, Error> {
    let mut v1: Vec<Hierarchy> = Vec::new();
    let mut unified: Option<Hierarchy> = None;
    for line in text.lines() {
        let Some(m) = parse_line(line) else { continue };
        let mount_point = PathBuf::from(unescape(m.mount_point));
        let dir = root.join(mount_point.strip_prefix("/").unwrap_or(&mount_point));
        match m.fstype {
            "cgroup2" if unified.is_none() => {
                unified = Some(Hierarchy {
                    controllers: String::new(),
                    mask: 0,
                    mount_point,
                    dir,
                });
            }
            "cgroup" => {
                let controllers = v1_controllers(m.super_options);
                // A hierarchy mounted twice (bind mounts) is used at its first mount.
                if controllers.is_empty()
                    || v1.iter().any(|h| same_set(&h.controllers, &controllers))
                {
                    continue;
                }
                let mask = Ctrl::ALL
                    .iter()
                    .filter(|c| controllers.split(',').any(|o| o == c.name()))
                    .fold(0, |m, c| m | c.bit());
                v1.push(Hierarchy {
                    controllers,
                    mask,
                    mount_point,
                    dir,
                });
            }
            _ => {}
        }
    }
    if v1.is_empty() && unified.is_none() {
        return Err(Error::NoCgroupFs);
    }
    Ok(Layout {
        v1,
        unified,
        fake,
        own_cgroup: None,
    })
}

struct MountLine<'a> {
    mount_point: &'a str,
    fstype: &'a str,
    super_options: &'a str,
}

/// `id parent maj:min root mount_point options [optional…] - fstype source super_options`
fn parse_line(line: &str) -> Option<MountLine<'_>> {
    let mut it = line.split(' ');
    let mount_point = it.nth(4)?;
    it.next()?; // per-mount options
    while it.next()? != "-" {}
    let fstype = it.next()?;
    it.next()?; // source
    let super_options = it.next()?;
    Some(MountLine {
        mount_point,
        fstype,
        super_options,
    })
}

/// The controller options of a v1 superblock option list, comma-joined in order.
fn v1_controllers(super_options: &str) -> String {
    let mut out = String::new();
    for o in super_options.split(',') {
        if V1_CONTROLLERS.contains(&o) || o.starts_with("name=") {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(o);
        }
    }
    out
}

/// Two comma-separated lists hold the same names (in any order).
pub(super) fn same_set(a: &str, b: &str) -> bool {
    a.split(',').count() == b.split(',').count()
        && a.split(',').all(|x| b.split(',').any(|y| x == y))
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\134` for a backslash).
pub fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let oct = bytes
            .get(i + 1..i + 4)
            .filter(|d| b == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match oct {
            Some(d) => {
                let v = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The caller's cgroup in the hierarchy with `controllers` (empty: cgroup2), from
/// /proc/self/cgroup text (`id:controllers:path` lines).
pub(super) fn own_path<'a>(proc_self_cgroup: &'a str, controllers: &str) -> Option<&'a str> {
    proc_self_cgroup.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let _id = f.next()?;
        let c = f.next()?;
        let p = f.next()?;
        let hit = if controllers.is_empty() {
            c.is_empty()
        } else {
            !c.is_empty() && same_set(c, controllers)
        };
        hit.then_some(p)
    })
}
