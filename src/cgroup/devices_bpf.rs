//! cgroup v2 device rules: a `BPF_PROG_TYPE_CGROUP_DEVICE` program built from the same
//! rule list v1 writes to `devices.allow`/`devices.deny`. Pure: the program is data here;
//! `sys::bpf` loads and attaches it.
//!
//! v1 semantics, which the program reproduces: rules apply in order and the last one that
//! matches a request decides; nothing matching means deny. The program therefore tests the
//! rules from last to first and returns at the first match.

/// One eBPF instruction (`struct bpf_insn`, little-endian register nibbles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u8,
    /// dst register in the low nibble, src in the high nibble.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

/// A device rule: `kind` b, c or a (any); `None` major/minor = any; access letters r, w, m.
#[derive(Debug, Clone, Copy)]
pub struct DeviceRule<'a> {
    pub allow: bool,
    pub kind: char,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub access: &'a str,
}

// Opcodes (linux/bpf.h, linux/bpf_common.h).
const LDX_MEM_W: u8 = 0x61;
const MOV64_REG: u8 = 0xbf;
const MOV64_IMM: u8 = 0xb7;
const AND64_IMM: u8 = 0x57;
const RSH64_IMM: u8 = 0x77;
const JNE_IMM: u8 = 0x55;
const JEQ_IMM: u8 = 0x15;
const EXIT: u8 = 0x95;

// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }; access_type is
// (access << 16) | type.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

// Registers: r1 context, r2 access, r3 type, r4 major, r5 minor, r0 result/scratch.
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (dst & 0x0f) | (src << 4),
        off,
        imm,
    }
}

fn access_bits(access: &str) -> i32 {
    access.chars().fold(0, |m, c| {
        m | match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => 0,
        }
    })
}

/// The test of one rule: jumps to the next rule on a mismatch, returns allow/deny on a match.
fn rule_block(r: &DeviceRule<'_>) -> Vec<Insn> {
    // Conditions first, each "if mismatch: skip the rest of the block".
    // (register, overlap test (1) or equality/subset (0), immediate, masked access test)
    let mut conds: Vec<(u8, u8, i32, bool)> = Vec::new();
    match r.kind {
        'b' => conds.push((3, 0, DEV_BLOCK, false)),
        'c' => conds.push((3, 0, DEV_CHAR, false)),
        _ => {}
    }
    let bits = access_bits(r.access);
    let all = ACC_READ | ACC_WRITE | ACC_MKNOD;
    if r.allow && bits & all != all {
        // An allow rule covers a request only if it grants every bit: (access & ~rule) == 0.
        conds.push((0, 0, !bits & all, true));
    } else if !r.allow && bits & all != all {
        // A deny rule takes away its bits: it matches a request asking for any of them.
        conds.push((0, 1, bits & all, true));
    }
    if let Some(m) = r.major.filter(|m| *m >= 0) {
        conds.push((4, 0, i32::try_from(m).unwrap_or(i32::MAX), false));
    }
    if let Some(m) = r.minor.filter(|m| *m >= 0) {
        conds.push((5, 0, i32::try_from(m).unwrap_or(i32::MAX), false));
    }
    let mut out = Vec::new();
    // Length of the block: 2 per masked test, 1 per plain test, 2 for the verdict.
    let total: usize = conds.iter().map(|c| if c.3 { 3 } else { 1 }).sum::<usize>() + 2;
    for (reg, overlap, imm, masked) in conds {
        if masked {
            out.push(insn(MOV64_REG, 0, 2, 0, 0));
            out.push(insn(AND64_IMM, 0, 0, 0, imm));
            let skip = total - out.len() - 1;
            // Subset test: skip unless the masked bits are 0; overlap test: skip if 0.
            let jump = if overlap == 1 { JEQ_IMM } else { JNE_IMM };
            out.push(insn(jump, 0, 0, skip as i16, 0));
        } else {
            let skip = total - out.len() - 1;
            out.push(insn(JNE_IMM, reg, 0, skip as i16, imm));
        }
    }
    out.push(insn(MOV64_IMM, 0, 0, 0, i32::from(r.allow)));
    out.push(insn(EXIT, 0, 0, 0, 0));
    out
}

/// The program for `rules` (v1 order: the last matching rule decides; default deny).
pub fn program(rules: &[DeviceRule<'_>]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),      // r2 = access_type
        insn(MOV64_REG, 3, 2, 0, 0),      // r3 = access_type
        insn(AND64_IMM, 3, 0, 0, 0xffff), // r3 = type
        insn(RSH64_IMM, 2, 0, 0, 16),     // r2 = access
        insn(LDX_MEM_W, 4, 1, 4, 0),      // r4 = major
        insn(LDX_MEM_W, 5, 1, 8, 0),      // r5 = minor
    ];
    for r in rules.iter().rev() {
        let block = rule_block(r);
        let unconditional = block.len() == 2;
        p.extend(block);
        // A rule matching everything always returns: what follows would be dead code,
        // which the verifier refuses.
        if unconditional {
            return p;
        }
    }
    p.push(insn(MOV64_IMM, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program on one request (the subset of eBPF `program` emits).
    fn run(p: &[Insn], kind: i32, access: i32, major: u32, minor: u32) -> u64 {
        let ctx = [((access << 16) | kind) as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_MEM_W => r[dst] = u64::from(ctx[i.off as usize / 4]),
                MOV64_REG => r[dst] = r[src],
                MOV64_IMM => r[dst] = i.imm as i64 as u64,
                AND64_IMM => r[dst] &= i.imm as i64 as u64,
                RSH64_IMM => r[dst] >>= i.imm,
                JNE_IMM => {
                    if r[dst] != i.imm as i64 as u64 {
                        pc += i.off as usize;
                    }
                }
                JEQ_IMM => {
                    if r[dst] == i.imm as i64 as u64 {
                        pc += i.off as usize;
                    }
                }
                EXIT => return r[0],
                c => panic!("opcode {c:#x}"),
            }
        }
    }

    fn rule(
        allow: bool,
        kind: char,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> DeviceRule<'_> {
        DeviceRule {
            allow,
            kind,
            major,
            minor,
            access,
        }
    }

    #[test]
    fn deny_all_then_runc_defaults() {
        let rules = [
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', None, None, "m"),
            rule(true, 'b', None, None, "m"),
            rule(true, 'c', Some(1), Some(3), "rwm"),
            rule(true, 'c', Some(136), None, "rwm"),
        ];
        let p = program(&rules);
        // /dev/null: read, write, mknod.
        assert_eq!(run(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 3), 1);
        // /dev/zero (1:5) not listed: denied.
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 5), 0);
        // mknod of any char or block device, but not reading it.
        assert_eq!(run(&p, DEV_CHAR, ACC_MKNOD, 8, 0), 1);
        assert_eq!(run(&p, DEV_BLOCK, ACC_MKNOD, 8, 0), 1);
        assert_eq!(run(&p, DEV_BLOCK, ACC_READ, 8, 0), 0);
        assert_eq!(run(&p, DEV_BLOCK, ACC_READ | ACC_MKNOD, 8, 0), 0);
        // every pty.
        assert_eq!(run(&p, DEV_CHAR, ACC_WRITE, 136, 7), 1);
        assert_eq!(run(&p, DEV_BLOCK, ACC_WRITE, 136, 7), 0);
    }

    #[test]
    fn last_matching_rule_wins_and_default_is_deny() {
        let p = program(&[
            rule(true, 'a', None, None, "rwm"),
            rule(false, 'c', Some(1), Some(5), "w"),
        ]);
        // Nothing after the unconditional allow-all (the verifier refuses dead code).
        assert_eq!(p.last().map(|i| i.code), Some(EXIT));
        assert_eq!(p.iter().filter(|i| i.code == EXIT).count(), 2);
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 5), 1);
        assert_eq!(run(&p, DEV_CHAR, ACC_WRITE, 1, 5), 0);
        // A deny rule takes its bits away from any request that asks for them.
        assert_eq!(run(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 5), 0);
        assert_eq!(run(&p, DEV_BLOCK, ACC_WRITE, 1, 5), 1);
        assert_eq!(run(&program(&[]), DEV_CHAR, ACC_READ, 1, 3), 0);
        // An allow rule with fewer bits does not cover a request for more.
        let p = program(&[rule(true, 'c', Some(1), Some(3), "r")]);
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 3), 1);
        assert_eq!(run(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 3), 0);
    }
}
