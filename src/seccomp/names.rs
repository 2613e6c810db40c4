//! Name tables of `linux.seccomp`: this architecture's syscalls, actions, comparison
//! operators, `SCMP_ARCH_*` names and filter flags.

use crate::seccomp::model::{ARM_PRIVATE_BASE, ARM_PRIVATE_SLOTS, DIRECT_SLOTS};
#[allow(unused_imports)]
use crate::seccomp::tables;

/// `AUDIT_ARCH_*` values (`EM_*` | `__AUDIT_ARCH_64BIT` | `__AUDIT_ARCH_LE`).
#[cfg(any(test, target_arch = "x86_64"))]
pub const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
#[cfg(any(test, target_arch = "x86_64"))]
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
#[cfg(any(test, target_arch = "aarch64"))]
pub const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;
// Native on arm; on aarch64 the 32-bit ABI filtered when `architectures` lists it.
#[cfg(any(test, target_arch = "arm", target_arch = "aarch64"))]
pub const AUDIT_ARCH_ARM: u32 = 0x4000_0028;

/// `__X32_SYSCALL_BIT`.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// A syscall ABI the kernel dory runs on accepts: its calls are judged with its own
/// numbers. `ABIS[0]` is the native one.
#[derive(Debug)]
pub struct Abi {
    /// The `SCMP_ARCH_*` name that lists it in `architectures`.
    pub arch: &'static str,
    pub audit_arch: u32,
    /// `(name, number)`, sorted by name; x32's numbers include [`X32_SYSCALL_BIT`].
    pub table: &'static [(&'static str, u32)],
    /// Added to every number of the ABI ([`X32_SYSCALL_BIT`] for x32, else 0).
    pub base: u32,
    /// Whether arguments are 64 bits wide (libseccomp compares only the low words of a
    /// 32-bit ABI's arguments, x32 included).
    pub wide: bool,
}

/// At most this many ABIs per architecture (x86_64: itself, i386 and x32).
pub const MAX_ABIS: usize = 3;

#[cfg(target_arch = "x86_64")]
pub const ABIS: &[Abi] = &[
    Abi {
        arch: "SCMP_ARCH_X86_64",
        audit_arch: AUDIT_ARCH_X86_64,
        table: tables::X86_64,
        base: 0,
        wide: true,
    },
    Abi {
        arch: "SCMP_ARCH_X86",
        audit_arch: AUDIT_ARCH_I386,
        table: tables::I386,
        base: 0,
        wide: false,
    },
    Abi {
        arch: "SCMP_ARCH_X32",
        audit_arch: AUDIT_ARCH_X86_64,
        table: tables::X32,
        base: X32_SYSCALL_BIT,
        wide: false,
    },
];

#[cfg(target_arch = "aarch64")]
pub const ABIS: &[Abi] = &[
    Abi {
        arch: "SCMP_ARCH_AARCH64",
        audit_arch: AUDIT_ARCH_AARCH64,
        table: tables::AARCH64,
        base: 0,
        wide: true,
    },
    Abi {
        arch: "SCMP_ARCH_ARM",
        audit_arch: AUDIT_ARCH_ARM,
        table: tables::ARM,
        base: 0,
        wide: false,
    },
];

#[cfg(target_arch = "arm")]
pub const ABIS: &[Abi] = &[Abi {
    arch: "SCMP_ARCH_ARM",
    audit_arch: AUDIT_ARCH_ARM,
    table: tables::ARM,
    base: 0,
    wide: false,
}];

/// Other architectures: no table, and `compile` refuses every profile.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "arm")))]
pub const ABIS: &[Abi] = &[];

const _: () = assert!(ABIS.len() <= MAX_ABIS);

/// x86_64 only: x32 syscalls arrive with the native `AUDIT_ARCH` and
/// `nr | X32_SYSCALL_BIT`.
pub const HAS_X32: bool = cfg!(target_arch = "x86_64");

/// The syscall number of `name` on this architecture.
pub fn lookup(name: &str) -> Option<u32> {
    lookup_in(ABIS.first()?.table, name)
}

/// The number of `name` in a table sorted by name.
pub fn lookup_in(table: &[(&str, u32)], name: &str) -> Option<u32> {
    table
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .and_then(|i| table.get(i))
        .map(|(_, nr)| *nr)
}

/// The [`SyscallSet`](crate::seccomp::SyscallSet) slot of syscall number `nr`; `None`
/// for numbers no table here has (see `SYSCALL_SLOTS`).
pub fn slot_of(nr: u32) -> Option<usize> {
    let nr = usize::try_from(nr).ok()?;
    let private = usize::try_from(ARM_PRIVATE_BASE).ok()?;
    if nr < DIRECT_SLOTS {
        Some(nr)
    } else if nr >= private && nr - private < ARM_PRIVATE_SLOTS {
        Some(DIRECT_SLOTS + (nr - private))
    } else {
        None
    }
}

/// The syscall number of slot `slot` (inverse of [`slot_of`]); numbers grow with slots.
pub fn nr_of(slot: usize) -> u32 {
    let nr = if slot < DIRECT_SLOTS {
        slot
    } else {
        slot - DIRECT_SLOTS + ARM_PRIVATE_BASE as usize
    };
    u32::try_from(nr).unwrap_or(u32::MAX)
}

/// What a rule or the default does (`SCMP_ACT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    KillThread,
    KillProcess,
    Trap,
    Errno,
    Trace,
    Allow,
    Log,
    Notify,
}

/// The `SCMP_ACT_*` name of an action (`SCMP_ACT_KILL` is `SCMP_ACT_KILL_THREAD`).
pub fn action(name: &str) -> Option<ActionKind> {
    Some(match name {
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => ActionKind::KillThread,
        "SCMP_ACT_KILL_PROCESS" => ActionKind::KillProcess,
        "SCMP_ACT_TRAP" => ActionKind::Trap,
        "SCMP_ACT_ERRNO" => ActionKind::Errno,
        "SCMP_ACT_TRACE" => ActionKind::Trace,
        "SCMP_ACT_ALLOW" => ActionKind::Allow,
        "SCMP_ACT_LOG" => ActionKind::Log,
        "SCMP_ACT_NOTIFY" => ActionKind::Notify,
        _ => return None,
    })
}

/// A comparison of `args[].op` (`SCMP_CMP_*`), on 64-bit unsigned values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `(arg & value) == valueTwo`.
    MaskedEq,
}

pub fn op(name: &str) -> Option<Op> {
    Some(match name {
        "SCMP_CMP_NE" => Op::Ne,
        "SCMP_CMP_LT" => Op::Lt,
        "SCMP_CMP_LE" => Op::Le,
        "SCMP_CMP_EQ" => Op::Eq,
        "SCMP_CMP_GE" => Op::Ge,
        "SCMP_CMP_GT" => Op::Gt,
        "SCMP_CMP_MASKED_EQ" => Op::MaskedEq,
        _ => return None,
    })
}

/// Every `SCMP_ARCH_*` name libseccomp (2.5) knows; others are refused, as runc does.
pub const ARCHES: [&str; 23] = [
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
];

/// What a `flags` entry asks of `seccomp(2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// Passed as this `SECCOMP_FILTER_FLAG_*` bit (`WAIT_KILLABLE_RECV` only with a
    /// notify listener: see `notify::filter_flags`).
    Bits(u32),
}

pub fn flag(name: &str) -> Option<Flag> {
    Some(match name {
        "SECCOMP_FILTER_FLAG_TSYNC" => Flag::Bits(1),
        "SECCOMP_FILTER_FLAG_LOG" => Flag::Bits(2),
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => Flag::Bits(4),
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => Flag::Bits(super::notify::WAIT_KILLABLE_RECV),
        _ => return None,
    })
}
