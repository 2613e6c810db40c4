// TEMPORARY local shim until the spec branch lands. Not committed.
use super::model::*;
use std::path::Path;
pub const DEFAULT_CONFIG: &str = include_str!("default.json");
#[derive(Debug, PartialEq, Eq)]
pub struct SpecError(pub String);
impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for SpecError {}
pub fn read_config<'b>(bundle: &Path, buf: &'b mut [u8]) -> Result<&'b [u8], SpecError> {
    let d = std::fs::read(bundle.join("config.json"))
        .map_err(|e| SpecError(format!("config.json: {e}")))?;
    if d.len() > buf.len() {
        return Err(SpecError("too big".into()));
    }
    buf[..d.len()].copy_from_slice(&d);
    Ok(&buf[..d.len()])
}
pub fn parse(bytes: &[u8]) -> Result<Spec<'_>, SpecError> {
    serde_json_core::from_slice::<Spec>(bytes)
        .map(|x| x.0)
        .map_err(|e| SpecError(format!("config.json: {e:?}")))
}
#[derive(Debug)]
pub struct UnescapeError;
pub fn unescape_into(raw: &str, out: &mut [u8]) -> Result<usize, UnescapeError> {
    let mut n = 0;
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = if b[i] == b'\\' {
            i += 1;
            match b[i] {
                b'n' => b'\n',
                b't' => b'\t',
                b'u' => {
                    let v =
                        u32::from_str_radix(&raw[i + 1..i + 5], 16).map_err(|_| UnescapeError)?;
                    i += 4;
                    if v == 0 {
                        return Err(UnescapeError);
                    }
                    let ch = char::from_u32(v).ok_or(UnescapeError)?;
                    let mut t = [0u8; 4];
                    let s = ch.encode_utf8(&mut t);
                    for x in s.bytes() {
                        *out.get_mut(n).ok_or(UnescapeError)? = x;
                        n += 1;
                    }
                    i += 1;
                    continue;
                }
                x => x,
            }
        } else {
            b[i]
        };
        *out.get_mut(n).ok_or(UnescapeError)? = c;
        n += 1;
        i += 1;
    }
    Ok(n)
}
pub mod caps {
    const N: [&str; 41] = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ];
    pub fn from_name(n: &str) -> Option<u8> {
        N.iter().position(|x| *x == n).map(|p| p as u8)
    }
    pub fn mask(names: &[&str]) -> u64 {
        names
            .iter()
            .filter_map(|n| from_name(n))
            .fold(0, |m, c| m | 1 << c)
    }
}
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
    pub fn from_name(n: &str) -> Option<Self> {
        Some(match n {
            "pid" => Self::Pid,
            "network" => Self::Network,
            "mount" => Self::Mount,
            "ipc" => Self::Ipc,
            "uts" => Self::Uts,
            "user" => Self::User,
            "cgroup" => Self::Cgroup,
            "time" => Self::Time,
            _ => return None,
        })
    }
    pub fn clone_flag(&self) -> libc::c_int {
        match self {
            Self::Pid => libc::CLONE_NEWPID,
            Self::Network => libc::CLONE_NEWNET,
            Self::Mount => libc::CLONE_NEWNS,
            Self::Ipc => libc::CLONE_NEWIPC,
            Self::Uts => libc::CLONE_NEWUTS,
            Self::User => libc::CLONE_NEWUSER,
            Self::Cgroup => libc::CLONE_NEWCGROUP,
            Self::Time => 0x80,
        }
    }
}
pub fn rlimit_resource(n: &str) -> Option<libc::c_int> {
    match n {
        "RLIMIT_NOFILE" => Some(libc::RLIMIT_NOFILE as i32),
        "RLIMIT_NPROC" => Some(libc::RLIMIT_NPROC as i32),
        _ => None,
    }
}
