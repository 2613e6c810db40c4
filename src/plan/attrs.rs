//! Process attributes the kernel keeps across execve, as runc 1.2/1.3 applies them:
//! `process.scheduler`, `process.ioPriority`, `process.execCPUAffinity`,
//! `linux.personality` and `linux.memoryPolicy`. Names become numbers and CPU/node lists
//! become fixed masks here, so the child only passes them to the syscalls.

use libc::{c_int, c_ulong};

use super::{err, PlanError};
use crate::spec;
use crate::sys::sched::{SchedAttr, MASK_WORDS, SCHED_ATTR_SIZE};

/// Highest CPU number + 1 a list may name: the C library's `CPU_SETSIZE`.
pub const CPU_SETSIZE: usize = MASK_WORDS * 64;
/// Highest NUMA node + 1 a list may name (the kernel's largest `MAX_NUMNODES`).
pub const MAX_NUMA_NODES: usize = MASK_WORDS * 64;
/// Real-time priorities the kernel accepts for `SCHED_FIFO` and `SCHED_RR`.
pub const RT_PRIORITY: core::ops::RangeInclusive<i32> = 1..=99;
/// Nice values (`MIN_NICE`..=`MAX_NICE`).
pub const NICE: core::ops::RangeInclusive<i32> = -20..=19;
/// I/O priority levels within a class (`IOPRIO_NR_LEVELS`).
pub const IO_LEVELS: core::ops::RangeInclusive<i64> = 0..=7;

pub const SCHED_FIFO: u32 = 1;
pub const SCHED_RR: u32 = 2;
pub const SCHED_DEADLINE: u32 = 6;

const POLICIES: &[(&str, u32)] = &[
    ("SCHED_OTHER", 0),
    ("SCHED_FIFO", SCHED_FIFO),
    ("SCHED_RR", SCHED_RR),
    ("SCHED_BATCH", 3),
    ("SCHED_ISO", 4),
    ("SCHED_IDLE", 5),
    ("SCHED_DEADLINE", SCHED_DEADLINE),
];

const SCHED_FLAGS: &[(&str, u64)] = &[
    ("SCHED_FLAG_RESET_ON_FORK", 0x01),
    ("SCHED_FLAG_RECLAIM", 0x02),
    ("SCHED_FLAG_DL_OVERRUN", 0x04),
    ("SCHED_FLAG_KEEP_POLICY", 0x08),
    ("SCHED_FLAG_KEEP_PARAMS", 0x10),
    ("SCHED_FLAG_UTIL_CLAMP_MIN", 0x20),
    ("SCHED_FLAG_UTIL_CLAMP_MAX", 0x40),
];

const IO_CLASSES: &[(&str, c_int)] = &[
    ("IOPRIO_CLASS_RT", 1),
    ("IOPRIO_CLASS_BE", 2),
    ("IOPRIO_CLASS_IDLE", 3),
];
/// `IOPRIO_CLASS_SHIFT`.
const IO_CLASS_SHIFT: c_int = 13;

const PERSONALITIES: &[(&str, c_ulong)] = &[("LINUX", 0x0000), ("LINUX32", 0x0008)];

/// What a mode asks of the node list (as runc's validator).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Nodes {
    None,
    Some,
    Any,
}

const MPOL_MODES: &[(&str, c_int, Nodes)] = &[
    ("MPOL_DEFAULT", 0, Nodes::None),
    ("MPOL_PREFERRED", 1, Nodes::Any),
    ("MPOL_BIND", 2, Nodes::Some),
    ("MPOL_INTERLEAVE", 3, Nodes::Some),
    ("MPOL_LOCAL", 4, Nodes::None),
    ("MPOL_PREFERRED_MANY", 5, Nodes::Some),
    ("MPOL_WEIGHTED_INTERLEAVE", 6, Nodes::Some),
];

const MPOL_STATIC_NODES: c_int = 1 << 15;
const MPOL_RELATIVE_NODES: c_int = 1 << 14;
const MPOL_FLAGS: &[(&str, c_int)] = &[
    ("MPOL_F_STATIC_NODES", MPOL_STATIC_NODES),
    ("MPOL_F_RELATIVE_NODES", MPOL_RELATIVE_NODES),
    ("MPOL_F_NUMA_BALANCING", 1 << 13),
];

/// A 1024-bit CPU or node mask, in the kernel's layout (bit n of word n / 64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitMask(pub [u64; MASK_WORDS]);

impl BitMask {
    pub const EMPTY: BitMask = BitMask([0; MASK_WORDS]);
    /// Every CPU: the kernel keeps only those that exist and the cpuset allows.
    pub const ALL: BitMask = BitMask([u64::MAX; MASK_WORDS]);

    #[cfg(test)]
    pub fn is_set(&self, bit: usize) -> bool {
        self.0
            .get(bit / 64)
            .is_some_and(|w| w & (1u64 << (bit % 64)) != 0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    fn set_range(&mut self, first: usize, last: usize) {
        for bit in first..=last {
            if let Some(w) = self.0.get_mut(bit / 64) {
                *w |= 1u64 << (bit % 64);
            }
        }
    }
}

/// Why a CPU or node list (`"0-3,7"`) was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListError {
    /// Not a number, or a range without both ends.
    Syntax,
    /// `a-b` with a > b.
    Reversed,
    /// A number at or above the capacity.
    TooLarge { value: u64, limit: usize },
    /// Only commas and spaces.
    NoMembers,
}

impl core::fmt::Display for ListError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ListError::Syntax => f.write_str("not a list such as \"0-3,7\""),
            ListError::Reversed => f.write_str("a range ends below its start"),
            ListError::TooLarge { value, limit } => {
                write!(f, "{value} is above {} (limit)", limit - 1)
            }
            ListError::NoMembers => f.write_str("names no member"),
        }
    }
}

/// Parses a list such as `"0-3, 7,"` as runc does (spaces around members and empty members
/// allowed) into a mask of `limit` bits at most (`limit` ≤ 1024).
pub fn parse_list(text: &str, limit: usize) -> Result<BitMask, ListError> {
    let number = |s: &str| -> Result<usize, ListError> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ListError::Syntax);
        }
        let v: u64 = s.parse().map_err(|_| ListError::TooLarge {
            value: u64::MAX,
            limit,
        })?;
        match usize::try_from(v) {
            Ok(n) if n < limit.min(CPU_SETSIZE) => Ok(n),
            _ => Err(ListError::TooLarge { value: v, limit }),
        }
    };
    let mut mask = BitMask::EMPTY;
    for member in text.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        let (first, last) = match member.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => (number(member)?, number(member)?),
        };
        if first > last {
            return Err(ListError::Reversed);
        }
        mask.set_range(first, last);
    }
    if mask.is_empty() {
        return Err(ListError::NoMembers);
    }
    Ok(mask)
}

/// The CPU affinity of the process after it joined the container's cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalCpus {
    /// Keep what it has (only `initial` was given: it stays, as in runc).
    Keep,
    /// Every CPU, so nothing of dory's own affinity is inherited (runc's reset).
    Reset,
    Set(BitMask),
}

/// The NUMA memory policy: `mode` with its `MPOL_F_*` flags, and the node mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemPolicy {
    pub mode: c_int,
    pub nodes: BitMask,
}

/// Everything of this module a process gets, fixed-size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessAttrs {
    pub scheduler: Option<SchedAttr>,
    /// `class << 13 | level` for ioprio_set(2).
    pub io_priority: Option<c_int>,
    /// Set by `dory exec` on itself before the clone: the runtime's side runs there
    /// until the process is in the container's cgroup.
    pub initial_cpus: Option<BitMask>,
    pub final_cpus: FinalCpus,
    pub personality: Option<c_ulong>,
    pub memory_policy: Option<MemPolicy>,
}

impl ProcessAttrs {
    pub const NONE: ProcessAttrs = ProcessAttrs {
        scheduler: None,
        io_priority: None,
        initial_cpus: None,
        final_cpus: FinalCpus::Reset,
        personality: None,
        memory_policy: None,
    };

    /// The attributes of `process` (config or `exec --process`).
    pub fn of_process(p: &spec::Process<'_>) -> Result<ProcessAttrs, PlanError> {
        let mut out = ProcessAttrs::NONE;
        out.scheduler = p.scheduler.as_ref().map(scheduler).transpose()?;
        out.io_priority = p.io_priority.as_ref().map(io_priority).transpose()?;
        if let Some(a) = &p.exec_cpu_affinity {
            (out.initial_cpus, out.final_cpus) = affinity(a)?;
        }
        Ok(out)
    }

    /// The container-wide ones from `linux` (an exec'd process gets them too, as in runc).
    pub fn add_linux(&mut self, linux: Option<&spec::Linux<'_>>) -> Result<(), PlanError> {
        let Some(l) = linux else { return Ok(()) };
        self.personality = l.personality.as_ref().map(personality).transpose()?;
        self.memory_policy = l.memory_policy.as_ref().map(memory_policy).transpose()?;
        Ok(())
    }
}

/// An exec'd process's attributes, as runc builds them: the container's
/// (`config.process`, `config.linux`), each of scheduler, I/O priority and CPU affinity
/// replaced when `exec --process` gives its own.
pub fn exec_attrs(
    config: Option<&spec::Process<'_>>,
    given: Option<&spec::Process<'_>>,
    linux: Option<&spec::Linux<'_>>,
) -> Result<ProcessAttrs, PlanError> {
    let mut out = config
        .map(ProcessAttrs::of_process)
        .transpose()?
        .unwrap_or(ProcessAttrs::NONE);
    if let Some(p) = given.map(ProcessAttrs::of_process).transpose()? {
        out.scheduler = p.scheduler.or(out.scheduler);
        out.io_priority = p.io_priority.or(out.io_priority);
        let no_affinity = p.initial_cpus.is_none() && p.final_cpus == FinalCpus::Reset;
        if !no_affinity {
            (out.initial_cpus, out.final_cpus) = (p.initial_cpus, p.final_cpus);
        }
    }
    out.add_linux(linux)?;
    Ok(out)
}

fn lookup<T: Copy>(table: &[(&str, T)], name: &str) -> Option<T> {
    table.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

fn unknown(field: &str, what: &str, name: &str, table: &[&str]) -> PlanError {
    err(
        field,
        format!("unknown {what} \"{name}\" (one of {})", table.join(", ")),
    )
}

fn names<T>(table: &[(&'static str, T)]) -> Vec<&'static str> {
    table.iter().map(|(n, _)| *n).collect()
}

/// `process.scheduler` → `struct sched_attr`, checked as runc does plus the kernel's
/// ranges (nice, real-time priority), each error naming its field and limit.
pub fn scheduler(s: &spec::Scheduler<'_>) -> Result<SchedAttr, PlanError> {
    const F: &str = "process.scheduler";
    let policy = lookup(POLICIES, s.policy)
        .ok_or_else(|| unknown(&format!("{F}.policy"), "policy", s.policy, &names(POLICIES)))?;
    if !NICE.contains(&s.nice) {
        return Err(err(
            format!("{F}.nice"),
            format!("{} is outside -20..19 (limit)", s.nice),
        ));
    }
    let realtime = policy == SCHED_FIFO || policy == SCHED_RR;
    if realtime && !RT_PRIORITY.contains(&s.priority) {
        return Err(err(
            format!("{F}.priority"),
            format!("{} is outside 1..99 (limit) for {}", s.priority, s.policy),
        ));
    }
    if !realtime && s.priority != 0 {
        return Err(err(
            format!("{F}.priority"),
            "only SCHED_FIFO and SCHED_RR take a priority",
        ));
    }
    if policy != SCHED_DEADLINE && (s.runtime != 0 || s.deadline != 0 || s.period != 0) {
        return Err(err(
            F,
            "runtime, deadline and period are only for SCHED_DEADLINE",
        ));
    }
    let mut flags = 0;
    for (i, f) in s.flags.iter().enumerate() {
        flags |= lookup(SCHED_FLAGS, f)
            .ok_or_else(|| unknown(&format!("{F}.flags[{i}]"), "flag", f, &names(SCHED_FLAGS)))?;
    }
    Ok(SchedAttr {
        size: SCHED_ATTR_SIZE,
        policy,
        flags,
        nice: s.nice,
        priority: s.priority.unsigned_abs(),
        runtime: s.runtime,
        deadline: s.deadline,
        period: s.period,
        util_min: 0,
        util_max: 0,
    })
}

/// `process.ioPriority` → the ioprio_set(2) value.
pub fn io_priority(p: &spec::IoPriority<'_>) -> Result<c_int, PlanError> {
    const F: &str = "process.ioPriority";
    let class = lookup(IO_CLASSES, p.class)
        .ok_or_else(|| unknown(&format!("{F}.class"), "class", p.class, &names(IO_CLASSES)))?;
    let level = c_int::try_from(p.priority)
        .ok()
        .filter(|_| IO_LEVELS.contains(&p.priority))
        .ok_or_else(|| {
            err(
                format!("{F}.priority"),
                format!("{} is outside 0..7 (limit)", p.priority),
            )
        })?;
    Ok(class << IO_CLASS_SHIFT | level)
}

/// `process.execCPUAffinity` → (initial, final); an empty string is "not given" (runc).
fn affinity(a: &spec::CpuAffinity<'_>) -> Result<(Option<BitMask>, FinalCpus), PlanError> {
    let list = |name: &str, v: Option<&str>| -> Result<Option<BitMask>, PlanError> {
        match v.filter(|t| !t.is_empty()) {
            None => Ok(None),
            Some(t) => parse_list(t, CPU_SETSIZE).map(Some).map_err(|e| {
                err(
                    format!("process.execCPUAffinity.{name}"),
                    format!("\"{t}\": {e}"),
                )
            }),
        }
    };
    let initial = list("initial", a.initial)?;
    let last = match (list("final", a.final_)?, initial) {
        (Some(m), _) => FinalCpus::Set(m),
        (None, Some(_)) => FinalCpus::Keep,
        (None, None) => FinalCpus::Reset,
    };
    Ok((initial, last))
}

/// `linux.personality` → the personality(2) value. runc ignores `flags` with a warning;
/// dory refuses them rather than run the container without them.
pub fn personality(p: &spec::Personality<'_>) -> Result<c_ulong, PlanError> {
    if !p.flags.is_empty() {
        return Err(err(
            "linux.personality.flags",
            "personality flags are not supported (none is defined by the runtime-spec)",
        ));
    }
    lookup(PERSONALITIES, p.domain).ok_or_else(|| {
        unknown(
            "linux.personality.domain",
            "domain",
            p.domain,
            &names(PERSONALITIES),
        )
    })
}

/// `linux.memoryPolicy` → mode with flags, and the node mask (checked as runc does).
pub fn memory_policy(m: &spec::MemoryPolicy<'_>) -> Result<MemPolicy, PlanError> {
    const F: &str = "linux.memoryPolicy";
    let (_, mut mode, wants) = MPOL_MODES
        .iter()
        .find(|(n, ..)| *n == m.mode)
        .copied()
        .ok_or_else(|| {
            let all: Vec<&str> = MPOL_MODES.iter().map(|x| x.0).collect();
            unknown(&format!("{F}.mode"), "mode", m.mode, &all)
        })?;
    let nodes = match m.nodes.filter(|t| !t.is_empty()) {
        None => BitMask::EMPTY,
        Some(t) => parse_list(t, MAX_NUMA_NODES)
            .map_err(|e| err(format!("{F}.nodes"), format!("\"{t}\": {e}")))?,
    };
    match (wants, nodes.is_empty()) {
        (Nodes::None, false) => {
            return Err(err(
                format!("{F}.nodes"),
                format!("{} takes no nodes", m.mode),
            ))
        }
        (Nodes::Some, true) => {
            return Err(err(
                format!("{F}.nodes"),
                format!("{} needs at least one node", m.mode),
            ))
        }
        _ => {}
    }
    for (i, f) in m.flags.iter().enumerate() {
        mode |= lookup(MPOL_FLAGS, f)
            .ok_or_else(|| unknown(&format!("{F}.flags[{i}]"), "flag", f, &names(MPOL_FLAGS)))?;
    }
    let both = MPOL_STATIC_NODES | MPOL_RELATIVE_NODES;
    if mode & both == both {
        return Err(err(
            format!("{F}.flags"),
            "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other",
        ));
    }
    Ok(MemPolicy { mode, nodes })
}

#[cfg(test)]
mod tests;
