//! Fixed name tables of config.json: namespace types, rlimit types, rootfs propagation.

/// `CLONE_NEWTIME` (Linux 5.6); not in every libc version.
pub const CLONE_NEWTIME: libc::c_int = 0x80;

/// A namespace type of `linux.namespaces[].type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceKind {
    Pid,
    Network,
    Mount,
    Ipc,
    Uts,
    User,
    Cgroup,
    Time,
}

impl NamespaceKind {
    /// All kinds, in the order of the table.
    pub const ALL: [NamespaceKind; 8] = [
        NamespaceKind::Pid,
        NamespaceKind::Network,
        NamespaceKind::Mount,
        NamespaceKind::Ipc,
        NamespaceKind::Uts,
        NamespaceKind::User,
        NamespaceKind::Cgroup,
        NamespaceKind::Time,
    ];

    /// The kind named as in config.json (`"network"`, not `"net"`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The config.json name.
    pub fn name(&self) -> &'static str {
        match self {
            NamespaceKind::Pid => "pid",
            NamespaceKind::Network => "network",
            NamespaceKind::Mount => "mount",
            NamespaceKind::Ipc => "ipc",
            NamespaceKind::Uts => "uts",
            NamespaceKind::User => "user",
            NamespaceKind::Cgroup => "cgroup",
            NamespaceKind::Time => "time",
        }
    }

    /// The clone(2)/unshare(2)/setns(2) flag.
    pub fn clone_flag(&self) -> libc::c_int {
        match self {
            NamespaceKind::Pid => libc::CLONE_NEWPID,
            NamespaceKind::Network => libc::CLONE_NEWNET,
            NamespaceKind::Mount => libc::CLONE_NEWNS,
            NamespaceKind::Ipc => libc::CLONE_NEWIPC,
            NamespaceKind::Uts => libc::CLONE_NEWUTS,
            NamespaceKind::User => libc::CLONE_NEWUSER,
            NamespaceKind::Cgroup => libc::CLONE_NEWCGROUP,
            NamespaceKind::Time => CLONE_NEWTIME,
        }
    }
}

/// The resource number of an rlimit named as in config.json (`"RLIMIT_NOFILE"`).
// glibc types the RLIMIT_* constants as `__rlimit_resource_t` (u32), musl as c_int: the
// cast is needed on one and a no-op on the other.
#[allow(clippy::unnecessary_cast)]
pub fn rlimit_resource(name: &str) -> Option<libc::c_int> {
    let r = match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    };
    Some(r as libc::c_int)
}

/// Values of `linux.rootfsPropagation`.
pub const ROOTFS_PROPAGATION: [&str; 8] = [
    "shared",
    "slave",
    "private",
    "unbindable",
    "rshared",
    "rslave",
    "rprivate",
    "runbindable",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names_and_flags() {
        let expect = [
            ("pid", libc::CLONE_NEWPID, 0x2000_0000),
            ("network", libc::CLONE_NEWNET, 0x4000_0000),
            ("mount", libc::CLONE_NEWNS, 0x0002_0000),
            ("ipc", libc::CLONE_NEWIPC, 0x0800_0000),
            ("uts", libc::CLONE_NEWUTS, 0x0400_0000),
            ("user", libc::CLONE_NEWUSER, 0x1000_0000),
            ("cgroup", libc::CLONE_NEWCGROUP, 0x0200_0000),
            ("time", CLONE_NEWTIME, 0x80),
        ];
        for (name, flag, value) in expect {
            let k = NamespaceKind::from_name(name).unwrap();
            assert_eq!(k.name(), name);
            assert_eq!(k.clone_flag(), flag, "{name}");
            assert_eq!(k.clone_flag(), value, "{name}");
        }
        let all: libc::c_int = NamespaceKind::ALL.iter().fold(0, |m, k| m | k.clone_flag());
        assert_eq!(all.count_ones(), 8, "flags are distinct bits");
        assert_eq!(NamespaceKind::from_name("net"), None);
        assert_eq!(NamespaceKind::from_name("PID"), None);
        assert_eq!(NamespaceKind::from_name("foo"), None);
    }

    #[test]
    #[allow(clippy::unnecessary_cast)] // see rlimit_resource
    fn rlimit_names() {
        let names = [
            ("RLIMIT_CPU", 0),
            ("RLIMIT_FSIZE", 1),
            ("RLIMIT_DATA", 2),
            ("RLIMIT_STACK", 3),
            ("RLIMIT_CORE", 4),
            ("RLIMIT_RSS", 5),
            ("RLIMIT_NPROC", 6),
            ("RLIMIT_NOFILE", 7),
            ("RLIMIT_MEMLOCK", 8),
            ("RLIMIT_AS", 9),
            ("RLIMIT_LOCKS", 10),
            ("RLIMIT_SIGPENDING", 11),
            ("RLIMIT_MSGQUEUE", 12),
            ("RLIMIT_NICE", 13),
            ("RLIMIT_RTPRIO", 14),
            ("RLIMIT_RTTIME", 15),
        ];
        // Generic Linux numbering (x86, arm, aarch64; mips/sparc differ).
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "arm"))]
        for (name, n) in names {
            assert_eq!(rlimit_resource(name), Some(n), "{name}");
        }
        assert_eq!(
            rlimit_resource("RLIMIT_NOFILE"),
            Some(libc::RLIMIT_NOFILE as libc::c_int)
        );
        let mut seen = std::collections::HashSet::new();
        for (name, _) in names {
            assert!(seen.insert(rlimit_resource(name).unwrap()), "{name}");
        }
        assert_eq!(rlimit_resource("RLIMIT_FOO"), None);
        assert_eq!(rlimit_resource("nofile"), None);
    }
}
