//! Compiling a `linux.seccomp` profile to a classic BPF program for `seccomp(2)`.
//!
//! Layout of the program:
//!
//! 1. `seccomp_data.arch` picks the section of an ABI: the native one always; i386 and
//!    x32 on x86_64 (32-bit arm on aarch64) if `architectures` lists them. Any other
//!    architecture is killed (KILL_PROCESS), as libseccomp kills on a "bad arch".
//! 2. Each section judges the calls of its ABI with that ABI's numbers (tables made by
//!    `gen.sh`): first runc's ENOSYS stub (below), then a binary search over
//!    `seccomp_data.nr`: the number line is cut into intervals of equal treatment (runs
//!    of syscalls that share their plan, and the gaps between them, which get the
//!    default action). A leaf returns an action at once or jumps to the plan of a
//!    syscall whose rules have argument conditions.
//! 3. Plans: the conditional rules of a syscall in libseccomp's order (see `merge.rs`
//!    for how the rules naming one syscall combine); conditions on 64-bit arguments are
//!    checked as two 32-bit halves, high word first; the first rule that matches returns
//!    its action, and the default action follows the last.
//!
//! **Syscalls newer than the profile** get ENOSYS, as under runc (its
//! `libcontainer/seccomp/patchbpf` prepends this stub), so that libc falls back (clone3 →
//! clone, faccessat2 → faccessat, ...) instead of failing with the default errno.
//! "Newer" means a number above the highest number, in that ABI, of any name listed by
//! any rule of the profile (whatever the rule's action; names unknown to the ABI do not
//! count). As in runc the stub is added only for ABIs that `architectures` lists (none
//! when the list is empty), not when the default action is ALLOW, LOG or TRACE, not when
//! `defaultErrnoRet` is ENOSYS already, and not for an ABI where the highest number is
//! 0. On x86_64, x32 calls (`nr | 0x40000000`) are compared with x32's highest number.
//! runc takes the highest number from libseccomp's tables, dory from its own (Linux
//! 6.12): they differ only for a profile that names syscalls newer than the
//! libseccomp runc was built with.

use crate::seccomp::bpf::{Asm, AsmError, Target, JEQ_K, JGE_K, JGT_K, MAX_BPF_INSNS};
use crate::seccomp::error::{SeccompError, SeccompErrorKind};
use crate::seccomp::merge::{self, Cond, Entry, Plan, Rule};
use crate::seccomp::model::{Seccomp, MAX_ARGS_PER_RULE, SYSCALL_SLOTS};
use crate::seccomp::names::{self, ActionKind, Flag, ABIS, MAX_ABIS, X32_SYSCALL_BIT};
use crate::seccomp::notify;
use crate::seccomp::tree::Tree;

/// `struct seccomp_data` offsets.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

/// Largest errno an ERRNO action can return: libseccomp (and so runc) refuses 4095 and
/// above (`sys_chk_seccomp_action`: `errno < MAX_ERRNO`).
const MAX_ERRNO: u32 = 4094;
const EPERM: u32 = libc::EPERM as u32;

/// Whether syscall arguments are 64 bits wide here (both words compared) or 32 (arm:
/// low words only). A parameter of [`build`] so that tests run both kinds anywhere.
const WIDE_ARGS: bool = cfg!(target_pointer_width = "64");

/// Distinct treatments of syscalls: at most one per slot of each ABI, and the default.
const MAX_PLANS: usize = MAX_ABIS * SYSCALL_SLOTS + 1;
/// Intervals of one ABI's number line: each slot can start one and end one.
const MAX_INTERVALS: usize = 2 * SYSCALL_SLOTS + 2;
const ENOSYS: u32 = libc::ENOSYS as u32;

/// A compiled filter, ready for [`crate::sys::seccomp::install_filter`].
pub struct Program {
    /// At most [`MAX_BPF_INSNS`] (`build` stops there). On the heap: inline, the 32 KiB
    /// array was copied through the stack twice on its way into the plan's box.
    insns: std::vec::Vec<libc::sock_filter>,
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
                    SeccompErrorKind::Invalid("an errno must be at most 4094 (libseccomp's limit)"),
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
    Ok(Program { insns: code, flags })
}

/// Compiles `linux.seccomp` and returns the program's length: every check of
/// [`compile`] without a [`Program`] on the stack (for validation).
pub fn check(s: &Seccomp<'_>) -> Result<usize, SeccompError> {
    notify::check(s)?;
    build(s, WIDE_ARGS).map(|(code, _)| code.len())
}

/// What a profile asks for besides its rules, checked.
struct Profile {
    default: u32,
    flags: u32,
    /// Which of [`ABIS`] `architectures` lists.
    listed: [bool; MAX_ABIS],
    /// Whether runc's ENOSYS stub applies (see the module doc).
    stub: bool,
}

/// The filter of one ABI: its number line and, with the stub, its highest number.
struct Section {
    intervals: std::vec::Vec<(u32, u16)>,
    last: Option<u32>,
}

/// The distinct plans of all ABIs, with the argument width their code is for.
struct Plans(std::vec::Vec<(Plan, bool)>);

impl Plans {
    /// The index of `plan`, added if new.
    fn index(&mut self, plan: Plan, wide: bool) -> Result<u16, SeccompError> {
        // Only chains depend on the width.
        let wide = wide && matches!(plan, Plan::Tree(_));
        let key = (plan, wide);
        let i = match self.0.iter().position(|p| *p == key) {
            Some(i) => i,
            None if self.0.len() < MAX_PLANS => {
                self.0.push(key);
                self.0.len() - 1
            }
            None => return Err(too_large()),
        };
        u16::try_from(i).map_err(|_| too_large())
    }
}

fn too_large() -> SeccompError {
    SeccompError::at(
        format_args!("linux.seccomp"),
        SeccompErrorKind::TooLarge {
            limit: MAX_BPF_INSNS,
        },
    )
}

/// The program and its `SECCOMP_FILTER_FLAG_*` bits; `wide`: see [`WIDE_ARGS`].
pub(super) fn build(
    s: &Seccomp<'_>,
    wide: bool,
) -> Result<(std::vec::Vec<libc::sock_filter>, u32), SeccompError> {
    let p = profile(s)?;
    let rules = rules(s)?;
    let entries = merge::entries(&rules, p.default);
    let mut plans = Plans(std::vec::Vec::new());
    let mut sections: std::vec::Vec<Option<Section>> = std::vec::Vec::new();
    for (k, abi) in ABIS.iter().enumerate() {
        let listed = p.listed.get(k).copied().unwrap_or(false);
        // The native ABI is always filtered (runc adds it too); others only if listed.
        if k != 0 && !listed {
            sections.push(None);
            continue;
        }
        let abi_wide = if k == 0 { wide } else { abi.wide };
        let intervals = intervals(s, &entries, k, abi_wide, &mut plans)?;
        let last = if p.stub && listed {
            last_nr(s, k)
        } else {
            None
        };
        sections.push(Some(Section { intervals, last }));
    }
    let mut insns = std::vec::Vec::new();
    match assemble(&p, &sections, &plans).finish(&mut insns) {
        Ok(()) => Ok((insns, p.flags)),
        Err(AsmError::TooLarge) => Err(too_large()),
        Err(AsmError::BadLabel) => Err(SeccompError::at(
            format_args!("linux.seccomp"),
            SeccompErrorKind::Invalid("internal error: a BPF jump has no valid target"),
        )),
    }
}

/// Checks everything but the rules: default action, listener, flags, architectures.
fn profile(s: &Seccomp<'_>) -> Result<Profile, SeccompError> {
    if ABIS.is_empty() {
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
    let mut listed = [false; MAX_ABIS];
    for (i, name) in s.architectures.iter().enumerate() {
        if !names::ARCHES.contains(name) {
            return Err(SeccompError::unknown(
                format_args!("linux.seccomp.architectures[{i}]"),
                "architecture",
                name,
            ));
        }
        if let Some(k) = ABIS.iter().position(|a| a.arch == *name) {
            if let Some(l) = listed.get_mut(k) {
                *l = true;
            }
        }
    }
    // runc's conditions for the ENOSYS stub: a refusing default other than ENOSYS.
    let permissive = matches!(
        default & libc::SECCOMP_RET_ACTION_FULL,
        libc::SECCOMP_RET_ALLOW | libc::SECCOMP_RET_LOG | libc::SECCOMP_RET_TRACE
    );
    let stub = !permissive && s.default_errno_ret != Some(ENOSYS);
    Ok(Profile {
        default,
        flags,
        listed,
        stub,
    })
}

/// The rules of `linux.seccomp.syscalls`, checked.
fn rules(s: &Seccomp<'_>) -> Result<std::vec::Vec<Rule>, SeccompError> {
    // Scratch space is on the heap (bounded by the named capacities): see `bpf.rs`.
    let mut rules: std::vec::Vec<Rule> = std::vec::Vec::with_capacity(s.syscalls.len());
    for (i, r) in s.syscalls.iter().enumerate() {
        let ret = ret_value(
            r.action,
            r.errno_ret,
            format_args!("linux.seccomp.syscalls[{i}].action"),
            format_args!("linux.seccomp.syscalls[{i}].errnoRet"),
        )?;
        let mut conds: crate::spec::List<Cond, MAX_ARGS_PER_RULE> = crate::spec::List::new();
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
    Ok(rules)
}

/// The number line of `ABIS[k]`: each syscall's plan (see `merge.rs`), as intervals.
fn intervals(
    s: &Seccomp<'_>,
    entries: &[Entry],
    k: usize,
    wide: bool,
    plans: &mut Plans,
) -> Result<std::vec::Vec<(u32, u16)>, SeccompError> {
    let base = ABIS.get(k).map_or(0, |a| a.base);
    let default_plan = plans.index(Plan::Default, false)?;
    let mut iv: std::vec::Vec<(u32, u16)> = std::vec::Vec::new();
    add_interval(&mut iv, base, default_plan).ok_or_else(too_large)?;
    let mut next_nr = base;
    for slot in 0..SYSCALL_SLOTS {
        let nr = base.saturating_add(names::nr_of(slot));
        let named = entries.iter().filter(|e| {
            s.syscalls
                .get(e.rule)
                .is_some_and(|r| r.names.contains(k, slot))
        });
        let plan = merge::plan(named, wide).map_err(|rule| {
            SeccompError::at(
                format_args!("linux.seccomp.syscalls[{rule}]"),
                SeccompErrorKind::Invalid(
                    "an earlier rule for one of its syscalls has the same checks (or a prefix of them) with another action: libseccomp refuses it (EEXIST), and so does runc",
                ),
            )
        })?;
        let p = plans.index(plan, wide)?;
        if nr != next_nr {
            // Numbers without a slot in between: the default.
            add_interval(&mut iv, next_nr, default_plan).ok_or_else(too_large)?;
        }
        add_interval(&mut iv, nr, p).ok_or_else(too_large)?;
        next_nr = nr.saturating_add(1);
    }
    add_interval(&mut iv, next_nr, default_plan).ok_or_else(too_large)?;
    Ok(iv)
}

/// The highest number of `ABIS[k]` any rule names (runc skips the stub when it is 0).
fn last_nr(s: &Seccomp<'_>, k: usize) -> Option<u32> {
    let slot = s
        .syscalls
        .iter()
        .filter_map(|r| r.names.last_slot(k))
        .max()?;
    let nr = ABIS.get(k)?.base.saturating_add(names::nr_of(slot));
    (nr != 0).then_some(nr)
}

/// Jump targets shared by the parts of the program.
struct Labels {
    enosys: Target,
    kill: Target,
    /// x32 calls when x32 is not listed.
    x32_refused: Target,
    /// One per plan (used by those with chains).
    plans: std::vec::Vec<Target>,
    /// One per ABI section.
    sections: std::vec::Vec<Target>,
}

impl Labels {
    fn section(&self, k: usize) -> Target {
        self.sections.get(k).copied().unwrap_or(self.kill)
    }
}

/// Whether `ABIS[k]` has a section (is filtered).
fn filtered(sections: &[Option<Section>], k: usize) -> bool {
    matches!(sections.get(k), Some(Some(_)))
}

/// The whole program: the dispatch on `arch`, each ABI's section, the plans.
fn assemble(p: &Profile, sections: &[Option<Section>], plans: &Plans) -> Asm {
    let mut asm = Asm::new();
    let l = Labels {
        enosys: asm.label(),
        kill: asm.label(),
        x32_refused: asm.label(),
        plans: plans.0.iter().map(|_| asm.label()).collect(),
        sections: sections.iter().map(|_| asm.label()).collect(),
    };
    dispatch(&mut asm, &l, sections);
    for (k, sec) in sections.iter().enumerate() {
        if let Some(sec) = sec {
            section(&mut asm, &l, k, sec, p.default, plans);
        }
    }
    tail(&mut asm, &l, p.default, plans);
    asm
}

/// Picks the section by `arch` (and, on x86_64, the x32 bit); leaves `nr` in A for the
/// native section, which follows.
fn dispatch(asm: &mut Asm, l: &Labels, sections: &[Option<Section>]) {
    let native = ABIS.first().map_or(0, |a| a.audit_arch);
    asm.load(OFF_ARCH);
    // Other 32-bit ABIs with an AUDIT_ARCH of their own (i386, arm), when listed.
    for (k, abi) in ABIS.iter().enumerate().skip(1) {
        if abi.audit_arch != native && filtered(sections, k) {
            asm.jump(JEQ_K, abi.audit_arch, l.section(k), Target::Next);
        }
    }
    asm.jump(JEQ_K, native, Target::Next, l.kill);
    asm.load(OFF_NR);
    if names::HAS_X32 {
        // x32 calls: the x32 section if listed, else refused (see `tail`).
        let to = match ABIS.iter().position(|a| a.base == X32_SYSCALL_BIT) {
            Some(k) if filtered(sections, k) => l.section(k),
            _ => l.x32_refused,
        };
        asm.jump(JGE_K, X32_SYSCALL_BIT, to, Target::Next);
    }
}

/// The section of `ABIS[k]`: runc's ENOSYS stub, then the search over its numbers.
fn section(asm: &mut Asm, l: &Labels, k: usize, sec: &Section, default: u32, plans: &Plans) {
    if k != 0 {
        asm.bind(l.section(k));
        // Entered from the arch dispatch (A = arch), or from the x32 check (A = nr).
        if ABIS.get(k).is_some_and(|a| a.base == 0) {
            asm.load(OFF_NR);
        }
    }
    if let Some(last) = sec.last {
        asm.jump(JGT_K, last, l.enosys, Target::Next);
    }
    let leaf = |asm: &mut Asm, plan: u16| match plans.0.get(usize::from(plan)) {
        Some((Plan::Ret(v), _)) => asm.ret(*v),
        Some((Plan::Tree(_), _)) => {
            asm.goto(l.plans.get(usize::from(plan)).copied().unwrap_or(l.kill))
        }
        Some((Plan::Default, _)) | None => asm.ret(default),
    };
    tree(asm, &sec.intervals, &leaf);
}

/// Refused x32 calls (-1, a tracer's skipped call, gets the default), the plans with
/// argument checks, and the shared returns.
fn tail(asm: &mut Asm, l: &Labels, default: u32, plans: &Plans) {
    if names::HAS_X32 {
        asm.bind(l.x32_refused);
        asm.jump(JEQ_K, u32::MAX, Target::Next, l.kill);
        asm.ret(default);
    }
    for (i, (plan, wide)) in plans.0.iter().enumerate() {
        if let Plan::Tree(tree) = plan {
            asm.bind(l.plans.get(i).copied().unwrap_or(Target::Next));
            emit_tree(asm, tree, default, *wide);
        }
    }
    asm.bind(l.enosys);
    asm.ret(libc::SECCOMP_RET_ERRNO | ENOSYS);
    asm.bind(l.kill);
    asm.ret(libc::SECCOMP_RET_KILL_PROCESS);
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

/// The argument checks of one syscall; calls they do not decide get the default.
fn emit_tree(asm: &mut Asm, tree: &Tree, default: u32, wide: bool) {
    let out = asm.label();
    let words = |index: u32| {
        let (lo, hi) = arg_words(index);
        // A 32-bit ABI's arguments are the low words.
        if wide {
            (lo, hi)
        } else {
            (lo, lo)
        }
    };
    tree.emit(asm, out, &words);
    asm.bind(out);
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
