//! Mount destinations inside `/proc` and `/sys`: the kernel's own files live there, and a
//! mount over one of them (a bind over `/proc/sys/kernel/core_pattern`, a tmpfs over
//! `/proc/sys`, over `/sys/kernel`…) hides a mask, or makes a host knob writable.
//!
//! The rule follows runc (`libcontainer/rootfs_linux.go`, `checkProcMount`), checked on the
//! destination as written, made lexically clean (`//`, `.`, `..` undone, JSON escapes
//! undone first), before anything is created:
//! - `/proc` itself takes only a mount of type `proc` (runc also takes a bind of the root
//!   of a procfs, which only a stat of the source can tell: dory refuses it);
//! - inside `/proc`, only the files lxcfs-style tools bind over ([`PROC_FILES`]);
//! - `/sys` itself takes a `sysfs` mount or a bind of the host's `/sys` (podman's rootless
//!   and host-network configs);
//! - inside `/sys`, only `/sys/fs/cgroup` and what is under it (the `cgroup` mount every
//!   runtime's config has, and runc's per-hierarchy binds). runc checks nothing for
//!   `/sys`; dory refuses the rest, as the issue asks.
//!
//! A symlink in the image that points into `/proc` is resolved by the sandbox, inside the
//! rootfs, after this check; it is not seen here.

/// Files inside `/proc` that may be mount destinations (runc's list: what lxcfs binds).
pub const PROC_FILES: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/crypto/fips_enabled",
];

/// The cgroup tree under `/sys` where mounts stay allowed.
const CGROUP_DIR: [&str; 3] = ["sys", "fs", "cgroup"];

/// Whether `path`, lexically cleaned, is /proc, /sys or a path inside them.
pub fn names_pseudo_fs(path: &str) -> bool {
    matches!(clean_components(path).first(), Some(&"proc" | &"sys"))
}

/// The components of `path` after lexical cleaning: empty and `.` components dropped,
/// `..` removes the one before it (and stays at the root, as the kernel does at `/`).
pub fn clean_components(path: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

fn is_under(comps: &[&str], prefix: &[&str]) -> bool {
    comps.len() >= prefix.len() && comps.iter().zip(prefix).all(|(a, b)| a == b)
}

/// Why a mount at `destination` (unescaped) is refused, or None when it is allowed.
/// `kind` is the mount's type, `bind` whether it is a bind mount, `source` its source.
pub fn refusal(
    destination: &str,
    kind: Option<&str>,
    bind: bool,
    source: Option<&str>,
) -> Option<&'static str> {
    let comps = clean_components(destination);
    match comps.first() {
        Some(&"proc") if comps.len() == 1 => {
            if kind == Some("proc") && !bind {
                None
            } else {
                Some("is /proc: only a mount of type \"proc\" may go there (as runc)")
            }
        }
        Some(&"proc") => {
            let allowed = PROC_FILES
                .iter()
                .any(|f| clean_components(f) == comps.as_slice());
            if allowed {
                None
            } else {
                Some(
                    "is inside /proc: only /proc itself (type proc) and the lxcfs files \
                     /proc/{cpuinfo,diskstats,meminfo,stat,swaps,uptime,loadavg,slabinfo,\
                     net/dev,sys/kernel/ns_last_pid,sys/crypto/fips_enabled} may be mount \
                     destinations (as runc)",
                )
            }
        }
        Some(&"sys") if comps.len() == 1 => {
            let host_sys = bind && source.is_some_and(|s| clean_components(s) == ["sys"]);
            if (kind == Some("sysfs") && !bind) || host_sys {
                None
            } else {
                Some("is /sys: only a mount of type \"sysfs\" or a bind of the host's /sys may go there")
            }
        }
        Some(&"sys") if is_under(&comps, &CGROUP_DIR) => None,
        Some(&"sys") => Some(
            "is inside /sys: only /sys itself and /sys/fs/cgroup (with what is under it) may be \
             mount destinations",
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_undoes_dots_and_slashes() {
        assert_eq!(clean_components("/proc/../proc/sys"), ["proc", "sys"]);
        assert_eq!(clean_components("//sys/./kernel/"), ["sys", "kernel"]);
        assert_eq!(clean_components("/../../proc"), ["proc"]);
        assert_eq!(clean_components("/"), Vec::<&str>::new());
        assert_eq!(clean_components("/a/b/../../sys/x"), ["sys", "x"]);
    }

    #[test]
    fn what_runtimes_write_stays_allowed() {
        // podman, containerd and `runc spec`: proc at /proc, sysfs at /sys, cgroup below.
        assert_eq!(refusal("/proc", Some("proc"), false, Some("proc")), None);
        assert_eq!(refusal("/sys", Some("sysfs"), false, Some("sysfs")), None);
        assert_eq!(refusal("/sys/fs/cgroup", Some("cgroup"), false, None), None);
        assert_eq!(
            refusal("/sys/fs/cgroup/", Some("cgroup2"), false, None),
            None
        );
        assert_eq!(
            refusal("/sys/fs/cgroup/memory", Some("bind"), true, Some("/x")),
            None
        );
        // Rootless / host-network podman binds the host's /sys.
        assert_eq!(refusal("/sys", Some("bind"), true, Some("/sys")), None);
        assert_eq!(refusal("/sys", None, true, Some("/sys/")), None);
        // lxcfs binds, also written uncleanly.
        for f in PROC_FILES {
            assert_eq!(refusal(f, Some("bind"), true, Some("/var/lib/lxcfs")), None);
        }
        assert_eq!(
            refusal("/proc//net/./dev", Some("bind"), true, Some("/x")),
            None
        );
        // Elsewhere: untouched.
        assert_eq!(refusal("/dev", Some("tmpfs"), false, None), None);
        assert_eq!(refusal("/procfoo", Some("tmpfs"), false, None), None);
        assert_eq!(refusal("/system", Some("tmpfs"), false, None), None);
    }

    #[test]
    fn inside_proc_and_sys_is_refused() {
        for dest in [
            "/proc/sys",
            "/proc/sys/kernel/core_pattern",
            "/proc/../proc/sys",
            "/proc/./sysrq-trigger",
            "//proc/1/mem",
            "/tmp/../proc/kcore",
            "/proc/net",
            "/proc/sys/kernel",
        ] {
            let why = refusal(dest, Some("bind"), true, Some("/tmp")).unwrap();
            assert!(why.starts_with("is inside /proc"), "{dest}: {why}");
        }
        for dest in [
            "/sys/kernel",
            "/sys/./kernel",
            "/sys/fs",
            "/sys/fs/../kernel/x",
        ] {
            let why = refusal(dest, Some("tmpfs"), false, None).unwrap();
            assert!(why.starts_with("is inside /sys"), "{dest}: {why}");
        }
    }

    #[test]
    fn the_roots_take_only_their_own_filesystem() {
        assert!(refusal("/proc", Some("tmpfs"), false, None).is_some());
        assert!(refusal("/proc", Some("bind"), true, Some("/proc")).is_some());
        assert!(refusal("/proc/", None, false, None).is_some());
        assert!(refusal("/sys", Some("tmpfs"), false, None).is_some());
        assert!(refusal("/sys", Some("bind"), true, Some("/tmp")).is_some());
        assert!(refusal("/sys/.", Some("proc"), false, None).is_some());
    }
}
