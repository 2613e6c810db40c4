//! A small classic-BPF assembler with labels.
//!
//! Conditional jumps reach at most 255 instructions ahead (`jt`/`jf` are bytes); `JA`
//! reaches anywhere. Code is written with symbolic forward targets; [`Asm::finish`]
//! lays it out, and every conditional jump whose target is too far goes through a `JA`
//! placed right after it. Layout repeats until no jump grows (sizes only grow, so it
//! ends).
//!
//! The symbolic code and the layout tables are scratch space on the heap (bounded by
//! [`MAX_BPF_INSNS`]): in a debug build, stack copies of them overflowed the 2 MB test
//! threads. Only the finished program is a fixed-size value.

/// `BPF_LD | BPF_W | BPF_ABS`.
pub const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
/// `BPF_ALU | BPF_AND | BPF_K`.
pub const ALU_AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
/// `BPF_RET | BPF_K`.
pub const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
/// `BPF_JMP | BPF_JA`.
pub const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
pub const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
pub const JGT_K: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
pub const JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
#[cfg(any(test, fuzzing))] // the compiler compares with JEQ/JGT/JGE after an AND; the interpreter knows JSET
pub const JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;

/// Longest program: the kernel's `BPF_MAXINSNS`.
pub const MAX_BPF_INSNS: usize = 4096;
/// Labels per program (at most one per instruction is ever needed).
const MAX_LABELS: usize = MAX_BPF_INSNS;

/// A jump target: the next instruction, or a label bound later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Next,
    Label(u16),
}

#[derive(Debug, Clone, Copy)]
enum Ins {
    Stmt {
        code: u16,
        k: u32,
    },
    Jump {
        code: u16,
        k: u32,
        t: Target,
        f: Target,
    },
    Ja(u16),
}

/// Why assembling failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsmError {
    /// More than [`MAX_BPF_INSNS`] instructions.
    TooLarge,
    /// A label used but never bound, or bound before its use (BPF jumps forward only).
    BadLabel,
}

pub struct Asm {
    /// At most [`MAX_BPF_INSNS`] entries.
    code: std::vec::Vec<Ins>,
    /// Symbolic instruction index of each label, once bound; at most [`MAX_LABELS`].
    labels: std::vec::Vec<Option<u16>>,
    overflow: bool,
}

impl Asm {
    pub fn new() -> Self {
        Self {
            code: std::vec::Vec::new(),
            labels: std::vec::Vec::new(),
            overflow: false,
        }
    }

    fn push(&mut self, ins: Ins) {
        if self.code.len() < MAX_BPF_INSNS {
            self.code.push(ins);
        } else {
            self.overflow = true;
        }
    }

    /// A new, unbound label.
    pub fn label(&mut self) -> Target {
        let n = self.labels.len();
        if n < MAX_LABELS {
            self.labels.push(None);
        } else {
            self.overflow = true;
        }
        Target::Label(u16::try_from(n).unwrap_or(u16::MAX))
    }

    /// Binds `label` to the next instruction emitted.
    pub fn bind(&mut self, label: Target) {
        if let Target::Label(n) = label {
            let at = u16::try_from(self.code.len()).unwrap_or(u16::MAX);
            if let Some(slot) = self.labels.get_mut(usize::from(n)) {
                *slot = Some(at);
            }
        }
    }

    /// `A = seccomp_data[offset]` (32 bits).
    pub fn load(&mut self, offset: u32) {
        self.push(Ins::Stmt {
            code: LD_W_ABS,
            k: offset,
        });
    }

    /// `A &= k`.
    pub fn and(&mut self, k: u32) {
        self.push(Ins::Stmt { code: ALU_AND_K, k });
    }

    /// `return k`.
    pub fn ret(&mut self, k: u32) {
        self.push(Ins::Stmt { code: RET_K, k });
    }

    /// `if (A <op> k) goto t else goto f` with `op` one of the `J*_K` codes.
    pub fn jump(&mut self, code: u16, k: u32, t: Target, f: Target) {
        self.push(Ins::Jump { code, k, t, f });
    }

    /// `goto target`.
    pub fn goto(&mut self, target: Target) {
        match target {
            Target::Next => {}
            Target::Label(n) => self.push(Ins::Ja(n)),
        }
    }

    /// Lays out and encodes the program into `out` (cleared first).
    pub fn finish(&self, out: &mut std::vec::Vec<libc::sock_filter>) -> Result<(), AsmError> {
        if self.overflow {
            return Err(AsmError::TooLarge);
        }
        out.clear();
        // Encoded size of each symbolic instruction: 1, plus one JA per far target.
        let mut size: std::vec::Vec<u8> = std::vec![1; self.code.len()];
        let mut pos: std::vec::Vec<u32> = std::vec::Vec::with_capacity(self.code.len());
        loop {
            pos.clear();
            let mut at = 0u32;
            for s in &size {
                pos.push(at);
                at += u32::from(*s);
            }
            let total = at;
            let mut grew = false;
            for (i, ins) in self.code.iter().enumerate() {
                if let Ins::Jump { t, f, .. } = ins {
                    let far_t = self.far(*t, i, &pos, total)?;
                    let far_f = self.far(*f, i, &pos, total)?;
                    let want = 1 + u8::from(far_t) + u8::from(far_f);
                    if let Some(s) = size.get_mut(i) {
                        if *s < want {
                            *s = want;
                            grew = true;
                        }
                    }
                }
            }
            if !grew {
                if usize::try_from(total).unwrap_or(usize::MAX) > MAX_BPF_INSNS {
                    return Err(AsmError::TooLarge);
                }
                break;
            }
        }
        let total = size.iter().map(|s| u32::from(*s)).sum::<u32>();
        for (i, ins) in self.code.iter().enumerate() {
            let from = pos.get(i).copied().unwrap_or(0);
            let emit = |out: &mut std::vec::Vec<libc::sock_filter>, code, jt, jf, k| {
                if out.len() >= MAX_BPF_INSNS {
                    return Err(AsmError::TooLarge);
                }
                out.push(libc::sock_filter { code, jt, jf, k });
                Ok(())
            };
            match *ins {
                Ins::Stmt { code, k } => emit(out, code, 0, 0, k)?,
                Ins::Ja(n) => {
                    let to = self.resolve(Target::Label(n), i, &pos, total)?;
                    emit(out, JA, 0, 0, offset(from, to)?)?;
                }
                Ins::Jump { code, k, t, f } => {
                    let to_t = self.resolve(t, i, &pos, total)?;
                    let to_f = self.resolve(f, i, &pos, total)?;
                    let far_t = self.far(t, i, &pos, total)?;
                    let far_f = self.far(f, i, &pos, total)?;
                    // Trampolines follow the jump: first the one for t, then for f.
                    let jt = if far_t { 0 } else { short(from, to_t)? };
                    let jf = match (far_t, far_f) {
                        (true, true) => 1,
                        (false, true) => 0,
                        _ => short(from, to_f)?,
                    };
                    emit(out, code, jt, jf, k)?;
                    let mut at = from + 1;
                    if far_t {
                        emit(out, JA, 0, 0, offset(at, to_t)?)?;
                        at += 1;
                    }
                    if far_f {
                        emit(out, JA, 0, 0, offset(at, to_f)?)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Position of `target` as seen from symbolic instruction `i`.
    fn resolve(&self, target: Target, i: usize, pos: &[u32], total: u32) -> Result<u32, AsmError> {
        match target {
            Target::Next => Ok(pos.get(i + 1).copied().unwrap_or(total)),
            Target::Label(n) => {
                let at = self
                    .labels
                    .get(usize::from(n))
                    .copied()
                    .flatten()
                    .ok_or(AsmError::BadLabel)?;
                if usize::from(at) <= i {
                    return Err(AsmError::BadLabel);
                }
                Ok(pos.get(usize::from(at)).copied().unwrap_or(total))
            }
        }
    }

    /// Whether a conditional jump at `from` cannot reach `target` directly.
    fn far(&self, target: Target, i: usize, pos: &[u32], total: u32) -> Result<bool, AsmError> {
        let Target::Label(_) = target else {
            return Ok(false);
        };
        let from = pos.get(i).copied().unwrap_or(total);
        let to = self.resolve(target, i, pos, total)?;
        Ok(to.saturating_sub(from + 1) > u32::from(u8::MAX))
    }
}

/// `JA` offset from the instruction at `from` to `to`.
fn offset(from: u32, to: u32) -> Result<u32, AsmError> {
    to.checked_sub(from + 1).ok_or(AsmError::BadLabel)
}

/// Conditional-jump offset from `from` to `to`.
fn short(from: u32, to: u32) -> Result<u8, AsmError> {
    u8::try_from(offset(from, to)?).map_err(|_| AsmError::BadLabel)
}
