//! Compiling a `linux.seccomp` profile to a classic BPF program for `seccomp(2)`.
//!
//! Layout of the program:
//!
//! 1. `seccomp_data.arch` must be this architecture's `AUDIT_ARCH`, else go to 5.
//! 2. A binary search over `seccomp_data.nr`: the number line is cut into intervals of
//!    equal treatment (runs of syscalls that share their rules, and the gaps between
//!    them, which get the default action). A leaf returns an action at once or jumps to
//!    the plan of a syscall whose rules have argument conditions. On x86_64 the numbers
//!    from `0x40000000` (x32 syscalls, `__X32_SYSCALL_BIT`) are one more interval: see
//!    "Other architectures" below. `nr == -1` (a tracer's skipped call) gets the default.
//! 3. Plans: the rules naming a syscall, most restrictive action first (see "Rule
//!    order"); each rule's conditions on 64-bit arguments are checked as two 32-bit
//!    halves, high word first; the first rule that matches returns its action, and the
//!    default action follows the last.
//! 4. (end of the native part)
//! 5. Other architectures.
//!
//! **Rule order.** When several rules name one syscall, the result is the most
//! restrictive action among the rules that match the call, in the kernel's order
//! (KILL_PROCESS, KILL_THREAD, TRAP, ERRNO, TRACE, LOG, ALLOW); among rules of equal
//! rank (e.g. two ERRNO rules) the first in config.json wins. This is what stacking every
//! rule as its own filter would give, and for podman's profile (default ERRNO, rules
//! ALLOW, a few ERRNO with arguments) it means "ERRNO-with-arguments before ALLOW for the
//! same syscall". It differs from libseccomp only where libseccomp drops rules: an
//! unconditional rule there replaces earlier conditional rules for the syscall, so
//! `socket` ALLOW plus `socket` ERRNO-if-`AF_VSOCK` allows everything under runc while
//! dory refuses `AF_VSOCK` - the profile's evident intent. As in runc, a rule whose
//! conditions name one argument more than once is an OR of its conditions, otherwise an
//! AND.
//!
//! **Other architectures.** dory has the syscall table of the architecture it was built
//! for only. Calls from another architecture that this kernel can run (i386 and x32 on
//! x86_64, 32-bit arm on aarch64) cannot be matched against the rules; letting them
//! through would bypass the profile. If `architectures` lists that architecture, its
//! calls get the default action when that action refuses (KILL_PROCESS, KILL_THREAD,
//! TRAP, ERRNO) and KILL_PROCESS otherwise; unlisted architectures get KILL_PROCESS, as
//! libseccomp kills on a "bad arch". The native architecture always gets the rules,
//! listed or not (runc adds it too).
//!
//! On 32-bit arm the arguments are 32 bits wide: only the low words are compared, and
//! values are truncated to 32 bits, as libseccomp does.

use heapless::Vec;

use crate::seccomp::bpf::{Asm, AsmError, Target, JEQ_K, JGE_K, JGT_K, MAX_BPF_INSNS};
use crate::seccomp::error::{SeccompError, SeccompErrorKind};
use crate::seccomp::model::{Seccomp, MAX_ARGS_PER_RULE, MAX_SECCOMP_RULES, SYSCALL_SLOTS};
use crate::seccomp::names::{self, ActionKind, Flag, Op, NATIVE, X32_SYSCALL_BIT};
use crate::seccomp::notify;

/// `struct seccomp_data` offsets.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

/// Largest errno an ERRNO action can return (the kernel clamps to `MAX_ERRNO`).
const MAX_ERRNO: u32 = 4095;
const EPERM: u32 = libc::EPERM as u32;

/// Whether syscall arguments are 64 bits wide here (both words compared) or 32 (arm:
/// low words only). A parameter of [`build`] so that tests run both kinds anywhere.
const WIDE_ARGS: bool = cfg!(target_pointer_width = "64");

/// Distinct treatments of syscalls: at most one per slot, the default, and x32's.
const MAX_PLANS: usize = SYSCALL_SLOTS + 2;
/// Intervals of the number line: each slot can start one and end one, plus x32's.
const MAX_INTERVALS: usize = 2 * SYSCALL_SLOTS + 4;

/// A compiled filter, ready for [`crate::sys::seccomp::install_filter`].
pub struct Program {
    insns: Vec<libc::sock_filter, MAX_BPF_INSNS>,
    flags: u32,
}

impl Program {
    pub fn as_slice(&self) -> &[libc::sock_filter] {
        &self.insns
    }

    /// `SECCOMP_FILTER_FLAG_*` bits from `linux.seccomp.flags`.
    pub fn flags(&self) -> u32 {
        self.flags
    }
}

impl core::fmt::Debug for Program {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Program({} instructions, flags {:#x})",
            self.insns.len(),
            self.flags
        )
    }
}

/// One argument condition, checked.
#[derive(Debug, Clone, Copy)]
struct Cond {
    index: u32,
    op: Op,
    value: u64,
    value_two: u64,
}

/// One rule, checked.
#[derive(Debug)]
struct Rule {
    ret: u32,
    conds: Vec<Cond, MAX_ARGS_PER_RULE>,
    /// The conditions are alternatives (one argument is named twice), not all required.
    any: bool,
}

/// How the syscalls of one interval are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// The default action.
    Default,
    /// One action whatever the arguments.
    Ret(u32),
    /// The rules in this mask, in the order of [`order`].
    Rules(u64),
}

/// Precedence of a return value: lower is more restrictive (the kernel's own order).
fn rank(ret: u32) -> i32 {
    (ret & libc::SECCOMP_RET_ACTION_FULL) as i32
}

/// The return value of action `name` with `errno` (`errnoRet` or `defaultErrnoRet`).
/// As in runc, `errno` is used by ERRNO and TRACE only (default EPERM).
fn ret_value(
    name: &str,
    errno: Option<u32>,
    action_path: core::fmt::Arguments<'_>,
    errno_path: core::fmt::Arguments<'_>,
) -> Result<u32, SeccompError> {
    let Some(kind) = names::action(name) else {
        return Err(SeccompError::unknown(action_path, "action", name));
    };
    let errno_value = errno.unwrap_or(EPERM);
    Ok(match kind {
        ActionKind::KillThread => libc::SECCOMP_RET_KILL_THREAD,
        ActionKind::KillProcess => libc::SECCOMP_RET_KILL_PROCESS,
        ActionKind::Trap => libc::SECCOMP_RET_TRAP,
        ActionKind::Allow => libc::SECCOMP_RET_ALLOW,
        ActionKind::Log => libc::SECCOMP_RET_LOG,
        ActionKind::Errno => {
            if errno_value > MAX_ERRNO {
                return Err(SeccompError::at(
                    errno_path,
                    SeccompErrorKind::Invalid("an errno must be at most 4095"),
                ));
            }
            libc::SECCOMP_RET_ERRNO | errno_value
        }
        ActionKind::Trace => {
            if errno_value > libc::SECCOMP_RET_DATA {
                return Err(SeccompError::at(
                    errno_path,
                    SeccompErrorKind::Invalid("SCMP_ACT_TRACE data must be at most 65535"),
                ));
            }
            libc::SECCOMP_RET_TRACE | errno_value
        }
        // Its constraints (listenerPath, never `write`) are `notify::check`'s.
        ActionKind::Notify => libc::SECCOMP_RET_USER_NOTIF,
    })
}

/// Compiles `linux.seccomp` for this architecture; see the module doc for the semantics.
pub fn compile(s: &Seccomp<'_>) -> Result<Program, SeccompError> {
    let listener = notify::check(s)?;
    let (code, flags) = build(s, WIDE_ARGS)?;
    let flags = notify::filter_flags(flags, listener);
    let mut insns = Vec::new();
    // Cannot fail: `build` stops at MAX_BPF_INSNS.
    let _ = insns.extend_from_slice(&code);
    Ok(Program { insns, flags })
}

/// Compiles `linux.seccomp` and returns the program's length: every check of
/// [`compile`] without a [`Program`] on the stack (for validation).
pub fn check(s: &Seccomp<'_>) -> Result<usize, SeccompError> {
    notify::check(s)?;
    build(s, WIDE_ARGS).map(|(code, _)| code.len())
}

/// The program and its `SECCOMP_FILTER_FLAG_*` bits; `wide`: see [`WIDE_ARGS`].
pub(super) fn build(
    s: &Seccomp<'_>,
    wide: bool,
) -> Result<(std::vec::Vec<libc::sock_filter>, u32), SeccompError> {
    if NATIVE.table.is_empty() {
        return Err(SeccompError::at(
            format_args!("linux.seccomp"),
            SeccompErrorKind::Unsupported(
                "seccomp filters are not supported on this architecture (dory has syscall tables for x86_64, aarch64 and arm)",
            ),
        ));
    }
    let default = ret_value(
        s.default_action,
        s.default_errno_ret,
        format_args!("linux.seccomp.defaultAction"),
        format_args!("linux.seccomp.defaultErrnoRet"),
    )?;
    let mut flags = 0u32;
    for (i, name) in s.flags.iter().enumerate() {
        match names::flag(name) {
            Some(Flag::Bits(b)) => flags |= b,
            None => {
                return Err(SeccompError::unknown(
                    format_args!("linux.seccomp.flags[{i}]"),
                    "seccomp flag",
                    name,
                ))
            }
        }
    }
    for (i, name) in s.architectures.iter().enumerate() {
        if !names::ARCHES.contains(name) {
            return Err(SeccompError::unknown(
                format_args!("linux.seccomp.architectures[{i}]"),
                "architecture",
                name,
            ));
        }
    }
    let listed = |arch: &str| s.architectures.contains(&arch);
    // What calls of another architecture get (see the module doc).
    let compat_ret = if rank(default) <= rank(libc::SECCOMP_RET_ERRNO) {
        default
    } else {
        libc::SECCOMP_RET_KILL_PROCESS
    };

    // Scratch space is on the heap (bounded by the named capacities): see `bpf.rs`.
    let mut rules: std::vec::Vec<Rule> = std::vec::Vec::with_capacity(s.syscalls.len());
    for (i, r) in s.syscalls.iter().enumerate() {
        let ret = ret_value(
            r.action,
            r.errno_ret,
            format_args!("linux.seccomp.syscalls[{i}].action"),
            format_args!("linux.seccomp.syscalls[{i}].errnoRet"),
        )?;
        let mut conds: Vec<Cond, MAX_ARGS_PER_RULE> = Vec::new();
        let mut seen = 0u8;
        let mut any = false;
        for (j, a) in r.args.iter().enumerate() {
            if a.index >= 6 {
                return Err(SeccompError::at(
                    format_args!("linux.seccomp.syscalls[{i}].args[{j}].index"),
                    SeccompErrorKind::Invalid("must be from 0 to 5 (a syscall has 6 arguments)"),
                ));
            }
            let Some(op) = names::op(a.op) else {
                return Err(SeccompError::unknown(
                    format_args!("linux.seccomp.syscalls[{i}].args[{j}].op"),
                    "comparison operator",
                    a.op,
                ));
            };
            let bit = 1u8 << a.index;
            any |= seen & bit != 0;
            seen |= bit;
            let cond = Cond {
                index: a.index,
                op,
                value: a.value,
                value_two: a.value_two,
            };
            // Cannot fail: `args` has the same capacity.
            let _ = conds.push(cond);
        }
        rules.push(Rule { ret, conds, any });
    }

    // The plan of every slot, as intervals of the number line.
    let mut plans: std::vec::Vec<Plan> = std::vec::Vec::new();
    let mut intervals: std::vec::Vec<(u32, u16)> = std::vec::Vec::new();
    let too_large = || {
        SeccompError::at(
            format_args!("linux.seccomp"),
            SeccompErrorKind::TooLarge {
                limit: MAX_BPF_INSNS,
            },
        )
    };
    let default_plan = plan_index(&mut plans, Plan::Default).ok_or_else(too_large)?;
    add_interval(&mut intervals, 0, default_plan).ok_or_else(too_large)?;
    let mut next_nr = 0u32;
    for slot in 0..SYSCALL_SLOTS {
        let nr = names::nr_of(slot);
        let mut mask = 0u64;
        for (i, r) in s.syscalls.iter().enumerate() {
            if r.names.contains_slot(slot) {
                mask |= 1u64 << i;
            }
        }
        let plan = plan_of(mask, &rules, default);
        let p = plan_index(&mut plans, plan).ok_or_else(too_large)?;
        if nr != next_nr {
            // Numbers without a slot in between: the default.
            add_interval(&mut intervals, next_nr, default_plan).ok_or_else(too_large)?;
        }
        add_interval(&mut intervals, nr, p).ok_or_else(too_large)?;
        next_nr = nr.saturating_add(1);
    }
    add_interval(&mut intervals, next_nr, default_plan).ok_or_else(too_large)?;
    if NATIVE.x32 {
        let x32_ret = if listed("SCMP_ARCH_X32") {
            compat_ret
        } else {
            libc::SECCOMP_RET_KILL_PROCESS
        };
        let x32 = plan_index(&mut plans, Plan::Ret(x32_ret)).ok_or_else(too_large)?;
        add_interval(&mut intervals, X32_SYSCALL_BIT, x32).ok_or_else(too_large)?;
        add_interval(&mut intervals, u32::MAX, default_plan).ok_or_else(too_large)?;
    }

    let mut asm = Asm::new();
    let bad_arch = asm.label();
    asm.load(OFF_ARCH);
    asm.jump(JEQ_K, NATIVE.audit_arch, Target::Next, bad_arch);
    asm.load(OFF_NR);
    let labels: std::vec::Vec<Target> = plans.iter().map(|_| asm.label()).collect();
    let leaf = |asm: &mut Asm, plan: u16| match plans.get(usize::from(plan)) {
        Some(Plan::Ret(v)) => asm.ret(*v),
        Some(Plan::Rules(_)) => asm.goto(
            labels
                .get(usize::from(plan))
                .copied()
                .unwrap_or(Target::Next),
        ),
        Some(Plan::Default) | None => asm.ret(default),
    };
    tree(&mut asm, &intervals, &leaf);
    for (p, plan) in plans.iter().enumerate() {
        if let Plan::Rules(mask) = plan {
            asm.bind(labels.get(p).copied().unwrap_or(Target::Next));
            emit_rules(&mut asm, *mask, &rules, default, wide);
        }
    }
    asm.bind(bad_arch);
    if let Some((audit, name)) = NATIVE.compat {
        if listed(name) {
            let kill = asm.label();
            asm.jump(JEQ_K, audit, Target::Next, kill);
            asm.ret(compat_ret);
            asm.bind(kill);
        }
    }
    asm.ret(libc::SECCOMP_RET_KILL_PROCESS);

    let mut insns = std::vec::Vec::new();
    match asm.finish(&mut insns) {
        Ok(()) => Ok((insns, flags)),
        Err(AsmError::TooLarge) => Err(too_large()),
        Err(AsmError::BadLabel) => Err(SeccompError::at(
            format_args!("linux.seccomp"),
            SeccompErrorKind::Invalid("internal error: a BPF jump has no valid target"),
        )),
    }
}

/// The index of `plan` in `plans`, added if new; `None` when full.
fn plan_index(plans: &mut std::vec::Vec<Plan>, plan: Plan) -> Option<u16> {
    let i = match plans.iter().position(|p| *p == plan) {
        Some(i) => i,
        None if plans.len() < MAX_PLANS => {
            plans.push(plan);
            plans.len() - 1
        }
        None => return None,
    };
    u16::try_from(i).ok()
}

/// Makes numbers from `start` on use plan `p` (starts are added in increasing order).
fn add_interval(iv: &mut std::vec::Vec<(u32, u16)>, start: u32, p: u16) -> Option<()> {
    if let Some(last) = iv.last_mut() {
        if last.1 == p {
            return Some(());
        }
        if last.0 == start {
            last.1 = p;
            let n = iv.len();
            if n >= 2 && iv.get(n - 2).map(|x| x.1) == Some(p) {
                iv.pop();
            }
            return Some(());
        }
    }
    if iv.len() >= MAX_INTERVALS {
        return None;
    }
    iv.push((start, p));
    Some(())
}

/// The rules in `mask`, most restrictive action first, then in config order.
fn order(mask: u64, rules: &[Rule]) -> Vec<usize, MAX_SECCOMP_RULES> {
    let mut v: Vec<usize, MAX_SECCOMP_RULES> = Vec::new();
    for (i, _) in rules.iter().enumerate() {
        if mask & (1u64 << i) != 0 {
            let _ = v.push(i);
        }
    }
    v.sort_unstable_by_key(|&i| (rules.get(i).map_or(0, |r| rank(r.ret)), i));
    v
}

/// The plan of a syscall named by the rules in `mask`.
fn plan_of(mask: u64, rules: &[Rule], default: u32) -> Plan {
    let first = order(mask, rules).first().and_then(|&i| rules.get(i));
    match first {
        None => Plan::Default,
        Some(r) if r.conds.is_empty() && r.ret == default => Plan::Default,
        Some(r) if r.conds.is_empty() => Plan::Ret(r.ret),
        Some(_) => Plan::Rules(mask),
    }
}

/// A binary search over `iv` (sorted starts; A holds `nr`) ending in `leaf`s.
fn tree(asm: &mut Asm, iv: &[(u32, u16)], leaf: &dyn Fn(&mut Asm, u16)) {
    let mid = iv.len() / 2;
    match (iv.get(mid), iv.get(..mid), iv.get(mid..)) {
        (Some(&(start, _)), Some(left), Some(right)) if !left.is_empty() => {
            let r = asm.label();
            asm.jump(JGE_K, start, r, Target::Next);
            tree(asm, left, leaf);
            asm.bind(r);
            tree(asm, right, leaf);
        }
        (Some(&(_, p)), _, _) => leaf(asm, p),
        (None, _, _) => {}
    }
}

/// The rules of one syscall, each falling through to the next when it does not match.
fn emit_rules(asm: &mut Asm, mask: u64, rules: &[Rule], default: u32, wide: bool) {
    for i in order(mask, rules) {
        let Some(rule) = rules.get(i) else { continue };
        if rule.conds.is_empty() {
            // Matches every call: later rules are unreachable.
            asm.ret(rule.ret);
            return;
        }
        if rule.any {
            for c in &rule.conds {
                let skip = asm.label();
                cond(asm, c, Target::Next, skip, wide);
                asm.ret(rule.ret);
                asm.bind(skip);
            }
        } else {
            let skip = asm.label();
            for c in &rule.conds {
                cond(asm, c, Target::Next, skip, wide);
            }
            asm.ret(rule.ret);
            asm.bind(skip);
        }
    }
    asm.ret(default);
}

/// Offsets of the low and high 32-bit words of argument `index`.
fn arg_words(index: u32) -> (u32, u32) {
    let base = OFF_ARGS + 8 * index;
    if cfg!(target_endian = "little") {
        (base, base + 4)
    } else {
        (base + 4, base)
    }
}

/// Goes to `t` if condition `c` holds for the call, else to `f`; `wide`: compare the
/// high words too.
fn cond(asm: &mut Asm, c: &Cond, t: Target, f: Target, wide: bool) {
    let end = asm.label();
    let t = if t == Target::Next { end } else { t };
    let f = if f == Target::Next { end } else { f };
    let (lo_off, hi_off) = arg_words(c.index);
    let (hi, lo) = ((c.value >> 32) as u32, c.value as u32);
    match c.op {
        Op::Eq | Op::Ne => {
            let (yes, no) = if c.op == Op::Eq { (t, f) } else { (f, t) };
            if wide {
                asm.load(hi_off);
                asm.jump(JEQ_K, hi, Target::Next, no);
            }
            asm.load(lo_off);
            asm.jump(JEQ_K, lo, yes, no);
        }
        Op::Gt | Op::Ge | Op::Lt | Op::Le => {
            // a > v or a >= v: high words decide unless equal; then the low words do.
            // a < v is not (a >= v); a <= v is not (a > v).
            let (low_code, yes, no) = match c.op {
                Op::Gt => (JGT_K, t, f),
                Op::Ge => (JGE_K, t, f),
                Op::Lt => (JGE_K, f, t),
                _ => (JGT_K, f, t),
            };
            if wide {
                asm.load(hi_off);
                asm.jump(JGT_K, hi, yes, Target::Next);
                asm.jump(JEQ_K, hi, Target::Next, no);
            }
            asm.load(lo_off);
            asm.jump(low_code, lo, yes, no);
        }
        Op::MaskedEq => {
            let (d_hi, d_lo) = ((c.value_two >> 32) as u32, c.value_two as u32);
            if wide {
                asm.load(hi_off);
                asm.and(hi);
                asm.jump(JEQ_K, d_hi, Target::Next, f);
            }
            asm.load(lo_off);
            asm.and(lo);
            asm.jump(JEQ_K, d_lo, t, f);
        }
    }
    asm.bind(end);
}
