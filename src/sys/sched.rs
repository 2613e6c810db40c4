//! Wrappers for the process attributes the kernel keeps across execve: scheduling policy
//! (sched_setattr(2)), CPU affinity (sched_setaffinity(2)), I/O priority (ioprio_set(2)),
//! execution domain (personality(2)) and NUMA memory policy (set_mempolicy(2)). All act on
//! the calling thread and take only plain values or borrowed buffers: no allocation.

use libc::{c_int, c_ulong};
use nix::errno::Errno;

use super::check;

/// Words of a CPU or node mask: 1024 bits, the C library's `CPU_SETSIZE`.
pub const MASK_WORDS: usize = 16;

/// `struct sched_attr` as of `SCHED_ATTR_SIZE_VER1` (56 bytes, with the utilization
/// clamps, which a `SCHED_FLAG_UTIL_CLAMP_*` flag requires the kernel to see).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
    pub util_min: u32,
    pub util_max: u32,
}

/// The size the kernel is told (`SCHED_ATTR_SIZE_VER1`).
pub const SCHED_ATTR_SIZE: u32 = core::mem::size_of::<SchedAttr>() as u32;

/// `sched_setattr(2)` for the calling thread.
pub fn sched_setattr(attr: &SchedAttr) -> Result<(), Errno> {
    // SAFETY: `attr` is a valid `struct sched_attr` of the size it declares, borrowed for
    // the call; pid 0 is the calling thread, flags 0.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_sched_setattr,
            0 as libc::pid_t,
            attr as *const SchedAttr,
            0 as libc::c_uint,
        )
    };
    check(ret).map(drop)
}

/// `sched_setaffinity(2)` for the calling thread, with a 1024-bit mask.
pub fn sched_setaffinity(mask: &[u64; MASK_WORDS]) -> Result<(), Errno> {
    // SAFETY: the pointer and byte length describe `mask`, borrowed for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_sched_setaffinity,
            0 as libc::pid_t,
            core::mem::size_of_val(mask),
            mask.as_ptr(),
        )
    };
    check(ret).map(drop)
}

/// `ioprio_set(2)` with `IOPRIO_WHO_PROCESS` for the caller (`who` 0); `value` is
/// `class << 13 | level`.
pub fn ioprio_set(value: c_int) -> Result<(), Errno> {
    const IOPRIO_WHO_PROCESS: c_int = 1;
    // SAFETY: plain integer arguments.
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0 as c_int, value) };
    check(ret).map(drop)
}

/// `personality(2)`: sets the execution domain (`PER_LINUX`, `PER_LINUX32`).
pub fn personality(persona: c_ulong) -> Result<(), Errno> {
    // SAFETY: plain integer argument.
    let ret = unsafe { libc::personality(persona) };
    check(ret.into()).map(drop)
}

/// `set_mempolicy(2)`: `mode` holds the `MPOL_F_*` flags; `nodes` is a 1024-bit node mask
/// (the kernel reads `maxnode - 1` bits, so `maxnode` is one more than the mask's bits).
pub fn set_mempolicy(mode: c_int, nodes: &[u64; MASK_WORDS]) -> Result<(), Errno> {
    let maxnode = (MASK_WORDS * 64 + 1) as c_ulong;
    // SAFETY: the pointer describes `nodes` (maxnode - 1 bits, exactly its size), borrowed
    // for the call.
    let ret = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, nodes.as_ptr(), maxnode) };
    check(ret).map(drop)
}
