//! How the rules that name one syscall combine: libseccomp's semantics (2.5, which runc
//! and crun use), so that a profile decides under dory as it does under them.
//!
//! runc hands the rules to libseccomp one by one, in config.json order, and libseccomp
//! keeps per syscall either one unconditional action or a tree of argument checks:
//!
//! 1. A rule whose action equals the default action (errno included) is dropped by runc.
//! 2. A rule that names one argument more than once is split by runc into one rule per
//!    condition (the conditions become alternatives); otherwise its conditions must all
//!    hold (an AND, checked in argument order).
//! 3. `SCMP_CMP_MASKED_EQ` with a zero mask always holds: libseccomp drops the
//!    condition, so a rule left without conditions is unconditional. Its value is
//!    compared masked: `(arg & mask) == (value & mask)`.
//! 4. The first unconditional rule wins: it replaces the conditional rules added
//!    before it, and every later rule for the syscall is ignored.
//! 5. Conditional rules are kept in libseccomp's order, not config order: per
//!    condition, higher argument index first, then the operator (EQ, NE, MASKED_EQ
//!    before LT, LE before GT, GE), then the value (larger first; smaller first for LT
//!    and LE). The first rule in that order whose conditions all hold decides; if none
//!    does, the default action applies.
//! 6. A rule with the same conditions as an earlier one is ignored if the actions are
//!    equal and refused otherwise (libseccomp returns EEXIST, runc fails). A rule that
//!    extends an earlier rule's conditions is ignored (the earlier one already matches
//!    every call it would); a rule whose conditions are a prefix of earlier rules
//!    replaces them if they all have its action, and is refused otherwise.
//! 7. On a 32-bit ABI (i386, x32, arm) only the low 32 bits of arguments and values
//!    are compared.
//!
//! Not modelled (dory keeps the documented semantics): libseccomp splits a 64-bit
//! comparison into checks of the high and low words and merges them across rules; for
//! GT/GE/LT/LE rules on one argument whose values differ in their high words the merged
//! tree decides wrongly. Measured with runc 1.1.5 (libseccomp 2.5.4): with `GE 2^32` →
//! ERRNO(57) and `LE 999` → ERRNO(58) on one syscall, an argument of 1000 gets
//! ERRNO(57); with `LT 2^32+1000` and `LT 1000`, 1000 is allowed. Range checks whose
//! values share their high word also share libseccomp's high-word nodes, so two rules
//! such as `a0 LT 1000 && a1 NE 501` → ERRNO(30) and `a0 LT 1001` → ERRNO(1) are refused
//! (EEXIST) by runc and accepted here (about 1 in 40 random range-rule profiles in a
//! fuzzing run; none with EQ/NE/MASKED_EQ only, 70 profiles). Nor is i386's
//! `socketcall` multiplexer, to which libseccomp also applies rules naming `socket`,
//! `connect`, ...

use core::cmp::{Ordering, Reverse};

use heapless::Vec;

use crate::seccomp::model::MAX_ARGS_PER_RULE;
use crate::seccomp::names::Op;

/// Conditions in one rule after runc's split: at most one per argument.
pub const MAX_CHAIN_CONDS: usize = 6;

/// One argument condition, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cond {
    pub index: u32,
    pub op: Op,
    pub value: u64,
    pub value_two: u64,
}

/// One rule of config.json, checked.
#[derive(Debug)]
pub struct Rule {
    pub ret: u32,
    pub conds: Vec<Cond, MAX_ARGS_PER_RULE>,
    /// The conditions are alternatives (one argument is named twice), not all required.
    pub any: bool,
}

/// A rule as libseccomp receives it from runc: conditions on distinct arguments.
#[derive(Debug)]
pub struct Entry {
    /// Index of the rule in `linux.seccomp.syscalls`.
    pub rule: usize,
    pub ret: u32,
    pub conds: Vec<Cond, MAX_CHAIN_CONDS>,
}

/// A conditional rule of one syscall: its conditions (by argument index) and result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub ret: u32,
    pub conds: Vec<Cond, MAX_CHAIN_CONDS>,
}

/// How one syscall is treated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The default action.
    Default,
    /// One action whatever the arguments.
    Ret(u32),
    /// The first chain whose conditions hold decides; else the default.
    Chains(std::vec::Vec<Chain>),
}

/// The rules as runc adds them to libseccomp (rules 1 and 2 of the module doc).
pub fn entries(rules: &[Rule], default: u32) -> std::vec::Vec<Entry> {
    let mut out = std::vec::Vec::new();
    for (i, r) in rules.iter().enumerate() {
        if r.ret == default {
            continue;
        }
        if r.any {
            for c in &r.conds {
                let mut conds = Vec::new();
                let _ = conds.push(*c);
                out.push(Entry {
                    rule: i,
                    ret: r.ret,
                    conds,
                });
            }
        } else {
            // Distinct argument indexes (< 6): at most MAX_CHAIN_CONDS, cannot overflow.
            let conds = r.conds.iter().copied().take(MAX_CHAIN_CONDS).collect();
            out.push(Entry {
                rule: i,
                ret: r.ret,
                conds,
            });
        }
    }
    out
}

/// The plan of a syscall named by `entries` (in config order); `wide`: 64-bit
/// arguments. `Err(rule)`: that rule conflicts with an earlier one (rule 6).
pub fn plan<'e>(entries: impl Iterator<Item = &'e Entry>, wide: bool) -> Result<Plan, usize> {
    let mut chains: std::vec::Vec<Chain> = std::vec::Vec::new();
    for e in entries {
        let conds = normalize(&e.conds, wide);
        if conds.is_empty() {
            // Rule 4: the first unconditional rule decides alone.
            return Ok(Plan::Ret(e.ret));
        }
        add_chain(&mut chains, Chain { ret: e.ret, conds }).map_err(|()| e.rule)?;
    }
    if chains.is_empty() {
        return Ok(Plan::Default);
    }
    // Stable: chains of equal keys keep the order they were added in.
    chains.sort_by(chain_order);
    Ok(Plan::Chains(chains))
}

/// Conditions as libseccomp compares them: values masked, narrowed on a 32-bit ABI,
/// always-true MASKED_EQ dropped, in argument order. Narrowed values are also what
/// libseccomp compares rules by: `EQ 9` and `EQ 2^32+9` with different actions are a
/// conflict once i386 is listed (runc 1.1.5: "file exists").
fn normalize(conds: &[Cond], wide: bool) -> Vec<Cond, MAX_CHAIN_CONDS> {
    let width = if wide { u64::MAX } else { u64::from(u32::MAX) };
    let mut out: Vec<Cond, MAX_CHAIN_CONDS> = Vec::new();
    for c in conds {
        let mut c = Cond {
            value: c.value & width,
            value_two: c.value_two & width,
            ..*c
        };
        if c.op == Op::MaskedEq {
            if c.value == 0 {
                continue;
            }
            c.value_two &= c.value;
        }
        // Same capacity as `conds`.
        let _ = out.push(c);
    }
    out.sort_by_key(|c| c.index);
    out
}

/// Adds `new` to the chains of a syscall (rule 6).
fn add_chain(chains: &mut std::vec::Vec<Chain>, new: Chain) -> Result<(), ()> {
    for c in chains.iter() {
        if c.conds == new.conds {
            return if c.ret == new.ret { Ok(()) } else { Err(()) };
        }
        if new.conds.starts_with(&c.conds) {
            return Ok(());
        }
    }
    let longer = |c: &Chain| c.conds.starts_with(&new.conds);
    if chains.iter().any(|c| longer(c) && c.ret != new.ret) {
        return Err(());
    }
    chains.retain(|c| !longer(c));
    chains.push(new);
    Ok(())
}

/// libseccomp's order of two chains: condition by condition (rule 5).
fn chain_order(a: &Chain, b: &Chain) -> Ordering {
    for (x, y) in a.conds.iter().zip(b.conds.iter()) {
        match cond_key(x).cmp(&cond_key(y)) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    Ordering::Equal
}

/// Sort key of a condition: smaller is checked first.
fn cond_key(c: &Cond) -> (Reverse<u32>, Reverse<u8>, Reverse<u64>) {
    let datum = if c.op == Op::MaskedEq {
        c.value_two
    } else {
        c.value
    };
    let (prio, datum) = match c.op {
        Op::Eq | Op::Ne | Op::MaskedEq => (3, datum),
        // Smaller values first: reversed twice.
        Op::Lt | Op::Le => (2, u64::MAX - datum),
        Op::Gt | Op::Ge => (1, datum),
    };
    (Reverse(c.index), Reverse(prio), Reverse(datum))
}
