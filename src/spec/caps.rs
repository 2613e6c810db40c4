//! Linux capability names ↔ numbers (`linux/capability.h`, CAP_LAST_CAP = 40).

/// The highest capability number this table knows.
pub const LAST_CAP: u8 = 40;

/// Capability names indexed by number.
const NAMES: [&str; LAST_CAP as usize + 1] = [
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

/// The number of a capability named as in config.json (`"CAP_KILL"` → 5). Names are
/// matched exactly, as written (runc's spelling: upper case with the `CAP_` prefix).
pub fn from_name(name: &str) -> Option<u8> {
    NAMES
        .iter()
        .position(|&n| n == name)
        .and_then(|i| u8::try_from(i).ok())
}

/// The name of capability `n`.
#[cfg(test)]
pub fn name(n: u8) -> Option<&'static str> {
    NAMES.get(usize::from(n)).copied()
}

/// The bit mask (bit n = capability n) of `names`; unknown names are skipped, so call it
/// on validated lists only.
pub fn mask(names: &[&str]) -> u64 {
    names
        .iter()
        .filter_map(|n| from_name(n))
        .fold(0u64, |m, c| m | (1u64 << c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_all_41() {
        for n in 0..=LAST_CAP {
            let name = name(n).unwrap();
            assert!(name.starts_with("CAP_"));
            assert_eq!(from_name(name), Some(n), "{name}");
        }
        assert_eq!(name(LAST_CAP + 1), None);
        assert_eq!(NAMES.len(), 41);
    }

    #[test]
    fn known_numbers_match_the_kernel() {
        assert_eq!(from_name("CAP_CHOWN"), Some(0));
        assert_eq!(from_name("CAP_KILL"), Some(5));
        assert_eq!(from_name("CAP_NET_BIND_SERVICE"), Some(10));
        assert_eq!(from_name("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(from_name("CAP_AUDIT_WRITE"), Some(29));
        assert_eq!(from_name("CAP_CHECKPOINT_RESTORE"), Some(40));
    }

    #[test]
    fn unknown_names() {
        assert_eq!(from_name("CAP_FOO"), None);
        assert_eq!(from_name("cap_kill"), None);
        assert_eq!(from_name("KILL"), None);
        assert_eq!(from_name("CAP_\\u004bILL"), None);
        assert_eq!(from_name(""), None);
    }

    #[test]
    fn mask_sets_bits() {
        assert_eq!(mask(&[]), 0);
        assert_eq!(
            mask(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]),
            (1 << 29) | (1 << 5) | (1 << 10)
        );
        assert_eq!(mask(&["CAP_CHECKPOINT_RESTORE"]), 1 << 40);
    }
}
