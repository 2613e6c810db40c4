//! A classic-BPF interpreter for the programs the compiler emits, for the unit tests and
//! the seccomp fuzz target (not built into the shipped binary).
//!
//! [`check`] refuses what the kernel's loader refuses (`bpf_check_classic` and
//! `seccomp_check_filter`): an empty or too long program, an opcode outside the subset
//! seccomp allows, a load outside `struct seccomp_data` or not word-aligned, a jump past
//! the end, a last instruction that is not a return. Classic BPF jumps only forward, so a
//! checked program ends within its length: [`run`] also counts its steps and fails past
//! the length, which catches an interpreter or layout mistake rather than hanging.

use crate::seccomp::bpf::{ALU_AND_K, JA, JEQ_K, JGE_K, JGT_K, JSET_K, LD_W_ABS, RET_K};
use crate::seccomp::MAX_BPF_INSNS;

/// `sizeof(struct seccomp_data)`: nr, arch, instruction_pointer, args[6].
const DATA_BYTES: u32 = 64;

/// `struct seccomp_data` as the filter sees it (the instruction pointer is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Data {
    pub nr: u32,
    pub arch: u32,
    pub args: [u64; 6],
}

impl Data {
    /// The 32-bit word at byte `offset` (checked by [`check`]), in native byte order.
    fn word(&self, offset: u32) -> Option<u32> {
        let mut bytes = [0u8; DATA_BYTES as usize];
        let mut put = |at: usize, b: &[u8]| {
            if let Some(dst) = bytes.get_mut(at..at + b.len()) {
                dst.copy_from_slice(b);
            }
        };
        put(0, &self.nr.to_ne_bytes());
        put(4, &self.arch.to_ne_bytes());
        for (i, a) in self.args.iter().enumerate() {
            put(16 + 8 * i, &a.to_ne_bytes());
        }
        let o = usize::try_from(offset).ok()?;
        let w: [u8; 4] = bytes.get(o..o.checked_add(4)?)?.try_into().ok()?;
        Some(u32::from_ne_bytes(w))
    }
}

/// A program that passed [`check`], to run on many calls.
#[derive(Debug, Clone, Copy)]
pub struct Checked<'p>(&'p [libc::sock_filter]);

impl<'p> Checked<'p> {
    /// [`check`]s `prog`.
    pub fn new(prog: &'p [libc::sock_filter]) -> Result<Self, String> {
        check(prog)?;
        Ok(Self(prog))
    }

    /// What the program returns for `d`.
    pub fn run(&self, d: &Data) -> Result<u32, String> {
        execute(self.0, d)
    }
}

/// Checks `prog` as the kernel does when it is loaded; the error says where and why.
pub fn check(prog: &[libc::sock_filter]) -> Result<(), String> {
    if prog.is_empty() || prog.len() > MAX_BPF_INSNS {
        return Err(format!(
            "{} instructions (1 to {MAX_BPF_INSNS})",
            prog.len()
        ));
    }
    let in_range = |pc: usize, off: u64| {
        let to = u64::try_from(pc).unwrap_or(u64::MAX) + 1 + off;
        to < u64::try_from(prog.len()).unwrap_or(0)
    };
    for (pc, ins) in prog.iter().enumerate() {
        let ok = match ins.code {
            LD_W_ABS => ins.k % 4 == 0 && ins.k < DATA_BYTES,
            ALU_AND_K | RET_K => true,
            JA => in_range(pc, u64::from(ins.k)),
            JEQ_K | JGT_K | JGE_K | JSET_K => {
                in_range(pc, u64::from(ins.jt)) && in_range(pc, u64::from(ins.jf))
            }
            _ => false,
        };
        if !ok {
            return Err(format!(
                "instruction {pc} (code {:#x}, jt {}, jf {}, k {:#x}) is refused by the kernel's checker",
                ins.code, ins.jt, ins.jf, ins.k
            ));
        }
    }
    match prog.last() {
        Some(last) if last.code == RET_K => Ok(()),
        _ => Err("the last instruction is not a return".into()),
    }
}

/// Checks `prog` ([`check`]) and runs it on `d`: what it returns.
#[cfg(test)]
pub fn run(prog: &[libc::sock_filter], d: &Data) -> Result<u32, String> {
    Checked::new(prog)?.run(d)
}

/// Runs a checked program.
fn execute(prog: &[libc::sock_filter], d: &Data) -> Result<u32, String> {
    let mut a = 0u32;
    let mut pc = 0usize;
    for _ in 0..prog.len() {
        let ins = prog
            .get(pc)
            .ok_or_else(|| format!("fell off the end at {pc}"))?;
        let k = ins.k;
        let jump = |cond: bool| pc + 1 + usize::from(if cond { ins.jt } else { ins.jf });
        pc = match ins.code {
            LD_W_ABS => {
                a = d
                    .word(k)
                    .ok_or_else(|| format!("bad load offset {k} at {pc}"))?;
                pc + 1
            }
            ALU_AND_K => {
                a &= k;
                pc + 1
            }
            RET_K => return Ok(k),
            JA => pc + 1 + usize::try_from(k).unwrap_or(usize::MAX - pc - 1),
            JEQ_K => jump(a == k),
            JGT_K => jump(a > k),
            JGE_K => jump(a >= k),
            JSET_K => jump(a & k != 0),
            c => return Err(format!("unexpected opcode {c:#x} at {pc}")),
        };
    }
    Err(format!("no return after {} steps (a loop?)", prog.len()))
}
