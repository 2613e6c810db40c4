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
//! 5. Conditional rules are merged into libseccomp's tree of 32-bit checks (`tree.rs`):
//!    checks are tried in libseccomp's order, not config order (higher argument index
//!    first, the high word before the low, EQ/NE/MASKED_EQ before LT/LE before GT/GE,
//!    then by value: larger first, smaller first for LT and LE); the first path whose
//!    checks all hold decides; if none does, the default action applies.
//! 6. Where a rule's checks meet an earlier rule's in the tree: the same checks with
//!    another action are refused (libseccomp returns EEXIST, runc fails); a rule that
//!    extends an earlier rule's checks is ignored (the earlier one already decides); a
//!    rule whose checks are a prefix of earlier rules replaces them if they all have its
//!    action, and is refused otherwise. On a 64-bit ABI this holds per 32-bit word: two
//!    range rules on one argument share their high-word checks when the high words are
//!    equal, so `a0 LT 1000 && a1 NE 501` → ERRNO(30) and `a0 LT 1001` → ERRNO(1)
//!    conflict (runc: "file exists").
//! 7. On a 32-bit ABI (i386, x32, arm) only the low 32 bits of arguments and values
//!    are compared (and rules equal in them conflict).
//!
//! Checked against runc 1.1.5 (libseccomp 2.5.4) by `tests/seccomp_diff.rs` and by
//! 221 random profiles of 2 to 7 rules with every operator, 100 of them with values
//! above 2^32: all decided alike but one, a case of the word reuse below. Not
//! modelled: `gen_bpf.c`'s reuse of a loaded word (see `tree.rs`: with range rules whose
//! values differ in their high words libseccomp's filter can compare the wrong word), and
//! i386's `socketcall` multiplexer, to which libseccomp also applies rules naming
//! `socket`, `connect`, ...

use heapless::Vec;

use crate::seccomp::model::MAX_ARGS_PER_RULE;
use crate::seccomp::names::Op;
use crate::seccomp::tree::Tree;

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
    /// On the heap: inline, 32 conditions made each rule 1 KB (a profile written one rule
    /// per syscall has 400 and more; most rules have no conditions).
    pub conds: crate::spec::List<Cond, MAX_ARGS_PER_RULE>,
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

/// How one syscall is treated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The default action.
    Default,
    /// One action whatever the arguments.
    Ret(u32),
    /// libseccomp's tree of argument checks; calls it does not decide get the default.
    Tree(Tree),
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
/// arguments. `Err(rule)`: libseccomp refuses that rule (rule 6).
pub fn plan<'e>(entries: impl Iterator<Item = &'e Entry>, wide: bool) -> Result<Plan, usize> {
    let mut tree: Option<Tree> = None;
    for e in entries {
        match (Tree::chain(&e.conds, e.ret, wide), tree.as_mut()) {
            // Rule 4: the first unconditional rule decides alone.
            (None, _) => return Ok(Plan::Ret(e.ret)),
            (Some(t), None) => tree = Some(t),
            (Some(t), Some(x)) => x.add(t).map_err(|_| e.rule)?,
        }
    }
    Ok(tree.map_or(Plan::Default, Plan::Tree))
}
