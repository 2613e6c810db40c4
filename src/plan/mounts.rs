//! Mount options → mount(2) flags, propagation, recursive `MOUNT_ATTR_*` attributes and
//! filesystem data. Pure.

use libc::c_ulong;
use linux_raw_sys::general as raw;

use crate::spec::IdMapping;

/// How a config mount entry is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    /// mount(source, dest, type, flags, data).
    Regular,
    /// A bind mount of a host path (`bind`/`rbind` option or type `bind`).
    Bind,
    /// `type: cgroup`/`cgroup2` at the destination: cgroup2 on a v2 host; on a v1 host a
    /// tmpfs with one cgroup mount per hierarchy (what runc shows inside).
    Cgroup,
}

/// The flags one entry's options translate to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MountFlags {
    /// MS_* flags for the mount call (without propagation).
    pub flags: c_ulong,
    /// MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE (| MS_REC) applied after mounting.
    pub propagation: c_ulong,
    /// `bind` or `rbind` was given.
    pub bind: bool,
    /// `tmpcopyup` (runc's extension): a tmpfs starts with a copy of what the directory
    /// it covers held.
    pub copy_up: bool,
    /// `MOUNT_ATTR_*` bits the `r*` options set and clear on the mount and every submount
    /// (`mount_setattr(AT_RECURSIVE)`), after the per-mount flags.
    pub rec_set: u64,
    pub rec_clear: u64,
    /// `idmap`/`ridmap`: how the mount's `uidMappings`/`gidMappings` apply.
    pub idmap: Idmap,
}

/// Whether a bind mount is ID-mapped, and over its submounts too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Idmap {
    #[default]
    No,
    /// `idmap`, or mappings without an option (runc): the top mount only.
    Top,
    /// `ridmap`: the mount and every submount.
    Recursive,
}

#[derive(Debug, PartialEq, Eq)]
pub enum OptionError {
    /// An option dory knows but does not implement.
    Unsupported,
}

/// Flag options: name, whether it clears the flag, the flag.
const FLAG_OPTIONS: &[(&str, bool, c_ulong)] = &[
    ("defaults", false, 0),
    ("ro", false, libc::MS_RDONLY),
    ("rw", true, libc::MS_RDONLY),
    ("suid", true, libc::MS_NOSUID),
    ("nosuid", false, libc::MS_NOSUID),
    ("dev", true, libc::MS_NODEV),
    ("nodev", false, libc::MS_NODEV),
    ("exec", true, libc::MS_NOEXEC),
    ("noexec", false, libc::MS_NOEXEC),
    ("sync", false, libc::MS_SYNCHRONOUS),
    ("async", true, libc::MS_SYNCHRONOUS),
    ("dirsync", false, libc::MS_DIRSYNC),
    ("remount", false, libc::MS_REMOUNT),
    ("mand", false, libc::MS_MANDLOCK),
    ("nomand", true, libc::MS_MANDLOCK),
    ("atime", true, libc::MS_NOATIME),
    ("noatime", false, libc::MS_NOATIME),
    ("diratime", true, libc::MS_NODIRATIME),
    ("nodiratime", false, libc::MS_NODIRATIME),
    ("relatime", false, libc::MS_RELATIME),
    ("norelatime", true, libc::MS_RELATIME),
    ("strictatime", false, libc::MS_STRICTATIME),
    ("nostrictatime", true, libc::MS_STRICTATIME),
    ("lazytime", false, libc::MS_LAZYTIME),
    ("nolazytime", true, libc::MS_LAZYTIME),
    ("silent", false, libc::MS_SILENT),
    ("loud", true, libc::MS_SILENT),
];

/// Propagation options.
const PROPAGATION_OPTIONS: &[(&str, c_ulong)] = &[
    ("private", libc::MS_PRIVATE),
    ("rprivate", libc::MS_PRIVATE | libc::MS_REC),
    ("shared", libc::MS_SHARED),
    ("rshared", libc::MS_SHARED | libc::MS_REC),
    ("slave", libc::MS_SLAVE),
    ("rslave", libc::MS_SLAVE | libc::MS_REC),
    ("unbindable", libc::MS_UNBINDABLE),
    ("runbindable", libc::MS_UNBINDABLE | libc::MS_REC),
];

/// Options runc knows that dory refuses rather than ignores (none left; kept so a future
/// option can be refused by name instead of passed to the filesystem as data).
const UNSUPPORTED_OPTIONS: &[&str] = &[];

/// What a recursive option does to the `MOUNT_ATTR_*` attributes.
#[derive(Clone, Copy)]
enum RecAttr {
    Set(u32),
    Clear(u32),
    /// Access-time handling is one three-valued field (`MOUNT_ATTR__ATIME`): the kernel
    /// takes a value only with the whole field cleared.
    Atime(u32),
    /// No change: `rnorelatime` (as runc; without `rstrictatime` or `rnoatime` the kernel
    /// keeps relatime, as mount(2) does for `norelatime`).
    Nothing,
}

/// The recursive options of runc 1.1+ (runtime-spec "Mounts"), applied with
/// `mount_setattr(AT_RECURSIVE)`. `ratime`/`rnostrictatime` mean the kernel's default
/// access-time handling, relatime (runc passes the kernel a partial clear, which fails).
const RECURSIVE_OPTIONS: &[(&str, RecAttr)] = &[
    ("rro", RecAttr::Set(raw::MOUNT_ATTR_RDONLY)),
    ("rrw", RecAttr::Clear(raw::MOUNT_ATTR_RDONLY)),
    ("rnosuid", RecAttr::Set(raw::MOUNT_ATTR_NOSUID)),
    ("rsuid", RecAttr::Clear(raw::MOUNT_ATTR_NOSUID)),
    ("rnodev", RecAttr::Set(raw::MOUNT_ATTR_NODEV)),
    ("rdev", RecAttr::Clear(raw::MOUNT_ATTR_NODEV)),
    ("rnoexec", RecAttr::Set(raw::MOUNT_ATTR_NOEXEC)),
    ("rexec", RecAttr::Clear(raw::MOUNT_ATTR_NOEXEC)),
    ("rnodiratime", RecAttr::Set(raw::MOUNT_ATTR_NODIRATIME)),
    ("rdiratime", RecAttr::Clear(raw::MOUNT_ATTR_NODIRATIME)),
    ("rnosymfollow", RecAttr::Set(raw::MOUNT_ATTR_NOSYMFOLLOW)),
    ("rsymfollow", RecAttr::Clear(raw::MOUNT_ATTR_NOSYMFOLLOW)),
    ("rrelatime", RecAttr::Atime(raw::MOUNT_ATTR_RELATIME)),
    ("rnoatime", RecAttr::Atime(raw::MOUNT_ATTR_NOATIME)),
    ("rstrictatime", RecAttr::Atime(raw::MOUNT_ATTR_STRICTATIME)),
    ("ratime", RecAttr::Atime(raw::MOUNT_ATTR_RELATIME)),
    ("rnostrictatime", RecAttr::Atime(raw::MOUNT_ATTR_RELATIME)),
    ("rnorelatime", RecAttr::Nothing),
];

/// Folds a recursive option into `acc`; a later option overrides an earlier one.
fn apply_recursive(acc: &mut MountFlags, attr: RecAttr) {
    match attr {
        RecAttr::Set(a) => {
            acc.rec_set |= u64::from(a);
            acc.rec_clear &= !u64::from(a);
        }
        RecAttr::Clear(a) => {
            acc.rec_clear |= u64::from(a);
            acc.rec_set &= !u64::from(a);
        }
        RecAttr::Atime(a) => {
            let field = u64::from(raw::MOUNT_ATTR__ATIME);
            acc.rec_set = (acc.rec_set & !field) | u64::from(a);
            acc.rec_clear |= field;
        }
        RecAttr::Nothing => {}
    }
}

/// What one option means.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'o> {
    /// A flag option (set or clear `flag`), `bind`/`rbind` or a propagation option:
    /// already folded into the flags.
    Flag,
    /// Filesystem-specific data (`mode=755`, `size=65536k`, `newinstance`).
    Data(&'o str),
}

/// Folds one option into `acc`; returns whether it is data for the filesystem.
pub fn apply_option<'o>(acc: &mut MountFlags, option: &'o str) -> Result<Parsed<'o>, OptionError> {
    if let Some(&(_, clear, flag)) = FLAG_OPTIONS.iter().find(|(n, _, _)| *n == option) {
        if clear {
            acc.flags &= !flag;
        } else {
            acc.flags |= flag;
        }
        return Ok(Parsed::Flag);
    }
    if let Some(&(_, prop)) = PROPAGATION_OPTIONS.iter().find(|(n, _)| *n == option) {
        acc.propagation = prop;
        return Ok(Parsed::Flag);
    }
    if let Some(&(_, attr)) = RECURSIVE_OPTIONS.iter().find(|(n, _)| *n == option) {
        apply_recursive(acc, attr);
        return Ok(Parsed::Flag);
    }
    match option {
        "bind" => {
            acc.bind = true;
            acc.flags |= libc::MS_BIND;
            Ok(Parsed::Flag)
        }
        "tmpcopyup" => {
            acc.copy_up = true;
            Ok(Parsed::Flag)
        }
        "rbind" => {
            acc.bind = true;
            acc.flags |= libc::MS_BIND | libc::MS_REC;
            Ok(Parsed::Flag)
        }
        "idmap" => {
            acc.idmap = Idmap::Top;
            Ok(Parsed::Flag)
        }
        "ridmap" => {
            acc.idmap = Idmap::Recursive;
            Ok(Parsed::Flag)
        }
        o if UNSUPPORTED_OPTIONS.contains(&o) => Err(OptionError::Unsupported),
        o => Ok(Parsed::Data(o)),
    }
}

/// The propagation flags of `linux.rootfsPropagation` (validated by `spec`).
pub fn rootfs_propagation(name: Option<&str>) -> c_ulong {
    match name {
        // Private by default, so nothing the container mounts reaches the host and
        // nothing the host mounts later appears in the container.
        None | Some("") => libc::MS_PRIVATE | libc::MS_REC,
        Some(n) => PROPAGATION_OPTIONS
            .iter()
            .find(|(p, _)| *p == n)
            .map(|&(_, f)| f | libc::MS_REC)
            .unwrap_or(libc::MS_PRIVATE | libc::MS_REC),
    }
}

/// Which id mappings an idmapped bind mount takes, or why it cannot be one: the field
/// (relative to the mount entry) and the message.
pub type IdmapError = (&'static str, &'static str);

/// A uid and a gid mapping list.
pub type IdMaps<'m> = (&'m [IdMapping], &'m [IdMapping]);

/// The uid and gid mappings of an idmapped mount (as runc 1.2): its own `uidMappings` and
/// `gidMappings` (both), or with `idmap`/`ridmap` and none of its own the container's
/// (`container`, empty without a user namespace). `None`: not idmapped.
pub fn idmap_maps<'m>(
    own: IdMaps<'m>,
    container: IdMaps<'m>,
    option: Idmap,
    bind: bool,
) -> Result<Option<IdMaps<'m>>, IdmapError> {
    let has_own = !own.0.is_empty() || !own.1.is_empty();
    if !has_own && option == Idmap::No {
        return Ok(None);
    }
    let field = if has_own { "uidMappings" } else { "options" };
    if !bind {
        return Err((
            field,
            "idmapped mounts are only supported for bind mounts (as runc)",
        ));
    }
    let maps = if has_own { own } else { container };
    match maps {
        ([], []) => Err((
            "options",
            "idmap/ridmap needs uidMappings and gidMappings on the mount, or the \
             container's own user namespace mappings",
        )),
        ([], _) | (_, []) => Err((
            field,
            "an idmapped mount needs both uidMappings and gidMappings (as runc)",
        )),
        _ => Ok(Some(maps)),
    }
}

/// The text written to a user namespace's `uid_map`/`gid_map` for `maps`.
pub fn id_map_text(maps: &[IdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
        .collect()
}

/// The host mount points `--no-pivot` detaches in the container's mount namespace before
/// moving the rootfs onto `/` (`mountinfo` is /proc/self/mountinfo, `rootfs` canonical):
/// every one that neither holds the rootfs (an ancestor of it, or itself) nor lies inside
/// it, deepest first. runc's msMoveRoot hides only the full procfs and sysfs mounts; with
/// all of them gone the container's mount table shows no host mount but `/` under its own.
pub fn no_pivot_detach_list(mountinfo: &str, rootfs: &str) -> std::vec::Vec<String> {
    let root = std::path::Path::new(rootfs);
    let mut points: std::vec::Vec<String> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(crate::cgroup::unescape_mountinfo)
        .filter(|p| {
            let p = std::path::Path::new(p);
            !root.starts_with(p) && !p.starts_with(root)
        })
        .collect();
    points.sort_by(|a, b| {
        let depth = |p: &String| p.matches('/').count();
        depth(b).cmp(&depth(a)).then_with(|| a.cmp(b))
    });
    points.dedup();
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(opts: &[&str]) -> (MountFlags, Vec<String>) {
        let mut acc = MountFlags::default();
        let mut data = Vec::new();
        for o in opts {
            if let Parsed::Data(d) = apply_option(&mut acc, o).unwrap() {
                data.push(d.to_string());
            }
        }
        (acc, data)
    }

    #[test]
    fn seed_dev_tmpfs() {
        let (f, data) = fold(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(f.flags, libc::MS_NOSUID | libc::MS_STRICTATIME);
        assert_eq!(data, ["mode=755", "size=65536k"]);
        assert!(!f.bind);
    }

    #[test]
    fn seed_devpts() {
        let (f, data) = fold(&[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ]);
        assert_eq!(f.flags, libc::MS_NOSUID | libc::MS_NOEXEC);
        assert_eq!(data, ["newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]);
    }

    #[test]
    fn seed_cgroup_ro() {
        let (f, _) = fold(&["nosuid", "noexec", "nodev", "relatime", "ro"]);
        assert_eq!(
            f.flags,
            libc::MS_NOSUID
                | libc::MS_NOEXEC
                | libc::MS_NODEV
                | libc::MS_RELATIME
                | libc::MS_RDONLY
        );
    }

    #[test]
    fn clearing_options_undo_earlier_ones() {
        let (f, _) = fold(&["ro", "nosuid", "rw", "suid"]);
        assert_eq!(f.flags, 0);
    }

    #[test]
    fn bind_rbind_and_propagation() {
        let (f, _) = fold(&["rbind", "ro", "rprivate"]);
        assert!(f.bind);
        assert_eq!(f.flags, libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY);
        assert_eq!(f.propagation, libc::MS_PRIVATE | libc::MS_REC);
        let (f, _) = fold(&["bind", "slave"]);
        assert_eq!(f.flags, libc::MS_BIND);
        assert_eq!(f.propagation, libc::MS_SLAVE);
    }

    #[test]
    fn recursive_flags_set_and_clear() {
        let (f, data) = fold(&["rbind", "rro", "rnoexec", "rnosuid", "rnodev"]);
        assert!(data.is_empty());
        let want = raw::MOUNT_ATTR_RDONLY
            | raw::MOUNT_ATTR_NOEXEC
            | raw::MOUNT_ATTR_NOSUID
            | raw::MOUNT_ATTR_NODEV;
        assert_eq!(f.rec_set, u64::from(want));
        assert_eq!(f.rec_clear, 0);
        // The per-mount flags are untouched: rro is not ro.
        assert_eq!(f.flags, libc::MS_BIND | libc::MS_REC);
        let (f, _) = fold(&["rro", "rrw", "rnosymfollow"]);
        assert_eq!(f.rec_set, u64::from(raw::MOUNT_ATTR_NOSYMFOLLOW));
        assert_eq!(f.rec_clear, u64::from(raw::MOUNT_ATTR_RDONLY));
        let (f, _) = fold(&["rsuid", "rdev", "rexec", "rdiratime", "rsymfollow"]);
        assert_eq!(f.rec_set, 0);
        let all = raw::MOUNT_ATTR_NOSUID
            | raw::MOUNT_ATTR_NODEV
            | raw::MOUNT_ATTR_NOEXEC
            | raw::MOUNT_ATTR_NODIRATIME
            | raw::MOUNT_ATTR_NOSYMFOLLOW;
        assert_eq!(f.rec_clear, u64::from(all));
    }

    #[test]
    fn recursive_atime_is_one_value() {
        let field = u64::from(raw::MOUNT_ATTR__ATIME);
        // The last value wins, and the whole field is cleared (what the kernel requires).
        let (f, _) = fold(&["rnoatime", "rstrictatime"]);
        assert_eq!(f.rec_set, u64::from(raw::MOUNT_ATTR_STRICTATIME));
        assert_eq!(f.rec_clear, field);
        for relatime in ["rrelatime", "ratime", "rnostrictatime"] {
            let (f, _) = fold(&["rnoatime", relatime]);
            assert_eq!((f.rec_set, f.rec_clear), (0, field), "{relatime}");
        }
        let (f, _) = fold(&["rnodiratime", "rnoatime", "rnorelatime"]);
        let want = raw::MOUNT_ATTR_NODIRATIME | raw::MOUNT_ATTR_NOATIME;
        assert_eq!((f.rec_set, f.rec_clear), (u64::from(want), field));
    }

    #[test]
    fn every_recursive_option_is_known() {
        let names: Vec<&str> = RECURSIVE_OPTIONS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names.len(), 18);
        for n in names {
            let mut acc = MountFlags::default();
            assert_eq!(apply_option(&mut acc, n), Ok(Parsed::Flag), "{n}");
        }
        // Not a recursive option: passed on as filesystem data, as any unknown option.
        let mut acc = MountFlags::default();
        assert_eq!(apply_option(&mut acc, "rfoo"), Ok(Parsed::Data("rfoo")));
    }

    #[test]
    fn idmap_options() {
        assert_eq!(fold(&["bind"]).0.idmap, Idmap::No);
        assert_eq!(fold(&["bind", "idmap"]).0.idmap, Idmap::Top);
        assert_eq!(fold(&["rbind", "ridmap"]).0.idmap, Idmap::Recursive);
    }

    #[test]
    fn rootfs_propagation_defaults_to_private() {
        assert_eq!(rootfs_propagation(None), libc::MS_PRIVATE | libc::MS_REC);
        assert_eq!(
            rootfs_propagation(Some("slave")),
            libc::MS_SLAVE | libc::MS_REC
        );
        assert_eq!(
            rootfs_propagation(Some("rshared")),
            libc::MS_SHARED | libc::MS_REC
        );
    }

    #[test]
    fn no_pivot_detaches_every_host_mount_but_the_rootfs_and_its_ancestors() {
        let info = "\
22 1 8:1 / / rw - ext4 /dev/vda rw
23 22 0:5 / /proc rw - proc proc rw
24 22 0:6 / /sys rw - sysfs sysfs rw
25 24 0:7 / /sys/fs/cgroup rw - tmpfs tmpfs rw
26 22 0:8 / /var/lib rw - ext4 /dev/vdb rw
27 26 0:9 / /var/lib/c/rootfs rw - ext4 /dev/vdb rw
28 27 0:10 / /var/lib/c/rootfs/proc rw - proc proc rw
29 26 0:11 / /var/lib/c/rootfsx rw - tmpfs tmpfs rw
30 22 0:12 / /mnt/with\\040space rw - tmpfs tmpfs rw
31 22 0:13 / /proc rw - proc proc rw
";
        let list = no_pivot_detach_list(info, "/var/lib/c/rootfs");
        // Deepest first, so a parent never takes a child along before its turn.
        assert_eq!(
            list,
            [
                "/var/lib/c/rootfsx",
                "/sys/fs/cgroup",
                "/mnt/with space",
                "/proc",
                "/sys"
            ]
        );
    }

    fn map(c: u32, h: u32, n: u32) -> IdMapping {
        IdMapping {
            container_id: c,
            host_id: h,
            size: n,
        }
    }

    #[test]
    fn idmap_takes_the_mounts_maps_or_the_containers() {
        let own = [map(1000, 2000, 1)];
        let ctr = [map(0, 100000, 65536)];
        let none: [IdMapping; 0] = [];
        let got = idmap_maps((&own, &own), (&ctr, &ctr), Idmap::No, true).unwrap();
        assert_eq!(got.map(|(u, _)| u[0].host_id), Some(2000));
        // Not idmapped at all.
        assert!(idmap_maps((&none, &none), (&ctr, &ctr), Idmap::No, true)
            .unwrap()
            .is_none());
        // The option alone: the container's mappings.
        let got = idmap_maps((&none, &none), (&ctr, &ctr), Idmap::Recursive, true).unwrap();
        assert_eq!(got.map(|(_, g)| g[0].host_id), Some(100000));
        assert_eq!(
            idmap_maps((&none, &none), (&none, &none), Idmap::Top, true)
                .unwrap_err()
                .0,
            "options"
        );
    }

    #[test]
    fn idmap_refusals_name_the_field() {
        let own = [map(1000, 2000, 1)];
        let none: [IdMapping; 0] = [];
        let (field, msg) = idmap_maps((&own, &own), (&none, &none), Idmap::No, false).unwrap_err();
        assert_eq!(field, "uidMappings");
        assert!(msg.contains("only supported for bind mounts"));
        let (field, msg) = idmap_maps((&own, &none), (&none, &none), Idmap::No, true).unwrap_err();
        assert_eq!(field, "uidMappings");
        assert!(msg.contains("both uidMappings and gidMappings"));
        let (field, _) = idmap_maps((&none, &none), (&own, &own), Idmap::Top, false).unwrap_err();
        assert_eq!(field, "options");
    }

    #[test]
    fn id_map_text_is_one_line_per_mapping() {
        let maps = [map(0, 100000, 1000), map(1000, 2000, 1)];
        assert_eq!(id_map_text(&maps), "0 100000 1000\n1000 2000 1\n");
    }
}
