//! `linux.seccomp` of config.json, parsed zero-copy and bounded.
//!
//! A profile names syscalls by the hundred (podman's has one rule with 374 names), so a
//! rule does not keep its names: [`SyscallSet`] maps each name to this architecture's
//! number while serde reads the list and keeps one bit per syscall. Names unknown here
//! are skipped, as runc does (profiles list every architecture's names at once).
//!
//! `spec::schema` mirrors these types for the scanner (capacities, required fields);
//! change both together.

use core::fmt;

use heapless::Vec;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use crate::seccomp::names::{lookup_in, slot_of, ABIS, MAX_ABIS};

/// Rules in `linux.seccomp.syscalls`. podman 4.3 sends 19, Docker's default about 30;
/// older Docker and LXC-derived profiles have one rule per syscall (400 and more, one per
/// name of every architecture): runc and crun load them, so room for 1024.
pub const MAX_SECCOMP_RULES: usize = 1024;
/// Conditions in one rule's `args`. A syscall has 6 arguments, but a rule that names one
/// argument more than once is a list of alternatives (runc adds each condition as a rule
/// of its own), so more than 6 is valid: Docker's profile has none over 2.
pub const MAX_ARGS_PER_RULE: usize = 32;
/// Names in one rule's `names` (podman's longest list has 374; every table here has
/// fewer than 450 names, and unknown names are skipped, so this only bounds the scan).
pub const MAX_SYSCALL_NAMES: usize = 1024;
/// Entries in `architectures` (libseccomp knows 23 `SCMP_ARCH_*` names).
pub const MAX_SECCOMP_ARCHES: usize = 24;
/// Entries in `flags` (the OCI spec defines 4).
pub const MAX_SECCOMP_FLAGS: usize = 8;

/// Bits per [`SyscallSet`]. Syscall numbers of x86_64, aarch64 and arm are below 470
/// (Linux 6.12: 462); slots below [`DIRECT_SLOTS`] are the number itself, which leaves
/// room for 160 more syscalls, and the last [`ARM_PRIVATE_SLOTS`] hold ARM's private calls `0x0f0000 + k` (`cacheflush`, `set_tls`:
/// musl and glibc call `set_tls` at start-up, so arm profiles must be able to allow it).
pub const SYSCALL_SLOTS: usize = 640;
/// ARM's private syscalls `__ARM_NR_*` (Linux uses 1..=6 of them).
pub const ARM_PRIVATE_SLOTS: usize = 16;
/// Slots that are syscall numbers themselves.
pub const DIRECT_SLOTS: usize = SYSCALL_SLOTS - ARM_PRIVATE_SLOTS;
/// `__ARM_NR_BASE` of EABI.
pub const ARM_PRIVATE_BASE: u32 = 0x000f_0000;

const WORDS: usize = SYSCALL_SLOTS / 64;

/// `linux.seccomp`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seccomp<'a> {
    pub default_action: &'a str,
    pub default_errno_ret: Option<u32>,
    #[serde(borrow, default)]
    pub architectures: Vec<&'a str, MAX_SECCOMP_ARCHES>,
    #[serde(borrow, default)]
    pub flags: Vec<&'a str, MAX_SECCOMP_FLAGS>,
    pub listener_path: Option<&'a str>,
    /// Sent to the agent as `metadata` (see `notify`).
    pub listener_metadata: Option<&'a str>,
    #[serde(borrow, default)]
    pub syscalls: SeccompRules<'a>,
}

/// `linux.seccomp.syscalls`: at most [`MAX_SECCOMP_RULES`] rules, kept on the heap.
///
/// Inline, the rules (about 24 KB) made serde's derived visitors, which keep several
/// copies of each field in their frames when unoptimised, overflow a 2 MB test thread
/// while parsing a podman config. Here each rule is parsed on its own and pushed; the
/// one allocation happens while parsing, in the parent, never in the child.
#[derive(Debug, Default)]
pub struct SeccompRules<'a>(std::vec::Vec<SeccompRule<'a>>);

impl<'a> core::ops::Deref for SeccompRules<'a> {
    type Target = [SeccompRule<'a>];

    fn deref(&self) -> &[SeccompRule<'a>] {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for SeccompRules<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Rules<'a>(core::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Rules<'a> {
            type Value = SeccompRules<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of seccomp rules")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut rules = std::vec::Vec::new();
                while let Some(rule) = seq.next_element::<SeccompRule<'a>>()? {
                    if rules.len() >= MAX_SECCOMP_RULES {
                        return Err(serde::de::Error::invalid_length(
                            MAX_SECCOMP_RULES + 1,
                            &"at most MAX_SECCOMP_RULES rules",
                        ));
                    }
                    rules.push(rule);
                }
                Ok(SeccompRules(rules))
            }
        }
        d.deserialize_seq(Rules(core::marker::PhantomData))
    }
}

/// One entry of `linux.seccomp.syscalls`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeccompRule<'a> {
    pub names: SyscallSet,
    pub action: &'a str,
    pub errno_ret: Option<u32>,
    /// On the heap (inline, 32 conditions made every rule 1.3 KB bigger; most have none).
    #[serde(borrow, default)]
    pub args: crate::spec::List<SeccompArg<'a>, MAX_ARGS_PER_RULE>,
}

/// One condition of a rule's `args`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeccompArg<'a> {
    pub index: u32,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: &'a str,
}

/// The syscalls of a rule as numbers of each ABI in [`ABIS`] (the native one first):
/// one bit per slot (see [`SYSCALL_SLOTS`]), plus how many names were listed and how
/// many were known natively.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SyscallSet {
    bits: [[u64; WORDS]; MAX_ABIS],
    listed: u16,
    known: u16,
}

impl SyscallSet {
    pub const EMPTY: SyscallSet = SyscallSet {
        bits: [[0; WORDS]; MAX_ABIS],
        listed: 0,
        known: 0,
    };

    /// Adds the syscall called `name` in every ABI that has it; unknown names are
    /// counted and skipped.
    pub fn insert_name(&mut self, name: &str) {
        self.listed = self.listed.saturating_add(1);
        for (abi, a) in ABIS.iter().enumerate() {
            let nr = lookup_in(a.table, name).map(|nr| nr.wrapping_sub(a.base));
            if let Some(slot) = nr.and_then(slot_of) {
                self.insert_slot(abi, slot);
                if abi == 0 {
                    self.known = self.known.saturating_add(1);
                }
            }
        }
    }

    fn insert_slot(&mut self, abi: usize, slot: usize) {
        if let Some(w) = self.bits.get_mut(abi).and_then(|b| b.get_mut(slot / 64)) {
            *w |= 1u64 << (slot % 64);
        }
    }

    /// Whether the native syscall in `slot` is in the set.
    pub fn contains_slot(&self, slot: usize) -> bool {
        self.contains(0, slot)
    }

    /// Whether syscall `slot` of `ABIS[abi]` is in the set.
    pub fn contains(&self, abi: usize, slot: usize) -> bool {
        self.bits
            .get(abi)
            .and_then(|b| b.get(slot / 64))
            .is_some_and(|w| w & (1u64 << (slot % 64)) != 0)
    }

    /// The highest slot of `ABIS[abi]` in the set.
    pub fn last_slot(&self, abi: usize) -> Option<usize> {
        let words = self.bits.get(abi)?;
        let (i, w) = words.iter().enumerate().rev().find(|(_, w)| **w != 0)?;
        Some(i * 64 + 63 - w.leading_zeros() as usize)
    }

    /// Names listed in config.json.
    pub fn listed(&self) -> usize {
        self.listed.into()
    }

    /// Names known on this architecture (duplicates counted).
    #[cfg(test)]
    pub fn known(&self) -> usize {
        self.known.into()
    }
}

impl fmt::Debug for SyscallSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count: u32 = self
            .bits
            .first()
            .map_or(0, |b| b.iter().map(|w| w.count_ones()).sum());
        write!(
            f,
            "SyscallSet({count} syscalls from {} names, {} known here)",
            self.listed, self.known
        )
    }
}

impl<'de> Deserialize<'de> for SyscallSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Names;
        impl<'de> Visitor<'de> for Names {
            type Value = SyscallSet;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of syscall names")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SyscallSet, A::Error> {
                let mut set = SyscallSet::EMPTY;
                while let Some(name) = seq.next_element::<&'de str>()? {
                    if set.listed() >= MAX_SYSCALL_NAMES {
                        return Err(serde::de::Error::invalid_length(
                            MAX_SYSCALL_NAMES + 1,
                            &"at most MAX_SYSCALL_NAMES names",
                        ));
                    }
                    set.insert_name(name);
                }
                Ok(set)
            }
        }
        d.deserialize_seq(Names)
    }
}
