//! The seccomp compiler against an evaluation of the rules written here, independently
//! of dory's `merge.rs` and `tree.rs`.
//!
//! The fuzzer's bytes choose a profile (default action, `architectures`, `flags`, up to
//! 8 rules over a few syscalls with up to 4 argument conditions, values drawn mostly from
//! a small pool so that rules share checks); it goes into a config.json, through dory's
//! parser, validation and compiler, and the program runs in dory's BPF interpreter
//! (which first applies the kernel's load-time checks) for 64 calls (architecture,
//! number, arguments) drawn from the profile's own numbers and values.
//!
//! The reference below is the documented semantics (runc + libseccomp 2.5, see dory's
//! `seccomp/merge.rs` and `compile.rs` module docs), written from the rules, not from
//! dory's code. It knows the one result of a call everywhere but in one place:
//! architectures, x32, runc's ENOSYS stub, rules with the default's action, rules naming
//! an argument twice, zero masks, the first unconditional rule, a syscall with one
//! conditional rule (or none). Where two or more conditional rules name the call's
//! syscall, libseccomp merges them into its tree of 32-bit checks, which decides by its
//! own order and has quirks that dory reproduces on purpose. Two, found by this target
//! and checked against runc 1.1.5 (libseccomp 2.5.4) with `flock`: a rule whose first
//! check equals an earlier rule's last one loses its other branch (`a0 GE 7` → ERRNO(10),
//! then `a1 NE 2^32 && a0 GE 0` → ERRNO(20): `flock(0, 2^64-2^32)` is allowed), and
//! rules share the level after equal checks, so one rule's later checks are reached from
//! another's path (`a0 LE 255 && a1 GT 1` → ERRNO(10), `a0 LE 2^31 && a1 EQ 0` →
//! ERRNO(20): `flock(2^31, 2^31)`, which neither rule matches, gets ERRNO(10)). There
//! the reference only bounds the result: an action of one of those rules, or the
//! default. Errors: the
//! reference predicts every invalid value; dory may refuse a valid profile only with
//! libseccomp's conflict error, for a conditional rule that shares a syscall with an
//! earlier rule of another action. Only for x86_64 hosts (the numbers below are x86_64's
//! ABIs).
//! `DORY_FUZZ_SHOW=1` prints each input's config.json (to turn a finding into a test).
#![no_main]

#[cfg(target_arch = "x86_64")]
libfuzzer_sys::fuzz_target!(|data: &[u8]| reference::one(data));

#[cfg(not(target_arch = "x86_64"))]
libfuzzer_sys::fuzz_target!(|_data: &[u8]| {});

#[cfg(target_arch = "x86_64")]
mod reference {
    use std::collections::BTreeSet;
    use std::fmt::Write;

    const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    const AUDIT_ARCH_I386: u32 = 0x4000_0003;
    const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;
    const X32_BIT: u32 = 0x4000_0000;

    const RET_KILL_PROCESS: u32 = 0x8000_0000;
    const RET_KILL_THREAD: u32 = 0;
    const RET_TRAP: u32 = 0x0003_0000;
    const RET_ERRNO: u32 = 0x0005_0000;
    const RET_TRACE: u32 = 0x7ff0_0000;
    const RET_LOG: u32 = 0x7ffc_0000;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const ENOSYS: u32 = 38;

    /// The syscalls profiles name: x86_64, i386 and x32 numbers (x32 without its bit).
    const SYSCALLS: &[(&str, [Option<u32>; 3])] = &[
        ("read", [Some(0), Some(3), Some(0)]),
        ("write", [Some(1), Some(4), Some(1)]),
        ("close", [Some(3), Some(6), Some(3)]),
        ("readv", [Some(19), Some(145), Some(515)]),
        ("getpid", [Some(39), Some(20), Some(39)]),
        ("socket", [Some(41), Some(359), Some(41)]),
        ("kill", [Some(62), Some(37), Some(62)]),
        ("flock", [Some(73), Some(143), Some(73)]),
        ("personality", [Some(135), Some(136), Some(135)]),
        ("clone3", [Some(435), Some(435), Some(435)]),
        ("futex_waitv", [Some(449), Some(449), Some(449)]),
        ("mseal", [Some(462), Some(462), Some(462)]),
        ("socketcall", [None, Some(102), None]),
        ("no_such_call", [None, None, None]),
    ];

    /// The ABIs of an x86_64 kernel: `architectures` name, 64-bit arguments, number base.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Abi {
        X86_64,
        I386,
        X32,
    }

    impl Abi {
        fn arch_name(self) -> &'static str {
            match self {
                Abi::X86_64 => "SCMP_ARCH_X86_64",
                Abi::I386 => "SCMP_ARCH_X86",
                Abi::X32 => "SCMP_ARCH_X32",
            }
        }

        fn wide(self) -> bool {
            self == Abi::X86_64
        }

        /// The number of syscall `name` in this ABI (x32's with its bit).
        fn nr(self, name: &str) -> Option<u32> {
            let (_, nrs) = SYSCALLS.iter().find(|(n, _)| *n == name)?;
            match self {
                Abi::X86_64 => nrs[0],
                Abi::I386 => nrs[1],
                Abi::X32 => nrs[2].map(|n| n | X32_BIT),
            }
        }
    }

    const ACTIONS: &[&str] = &[
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_LOG",
        "SCMP_ACT_TRACE",
    ];
    const ERRNOS: &[u32] = &[0, 1, 5, ENOSYS, 4094, 4095, 65535, 65536];
    const OPS: &[&str] = &[
        "SCMP_CMP_EQ",
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_GT",
        "SCMP_CMP_GE",
        "SCMP_CMP_MASKED_EQ",
    ];
    /// Values rules and calls share, so that checks meet (equal words, ranges that
    /// touch, high words that differ).
    const VALUES: &[u64] = &[
        0,
        1,
        2,
        5,
        7,
        8,
        0xff,
        0x1000,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_fffe,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0001,
        0x1_0000_0005,
        0x2_0000_0000,
        0x8000_0000_0000_0000,
        u64::MAX - 1,
        u64::MAX,
    ];

    /// The fuzzer's bytes, read front to back; zeros once they run out.
    struct Bytes<'a>(&'a [u8]);

    impl Bytes<'_> {
        fn byte(&mut self) -> u8 {
            match self.0.split_first() {
                Some((b, rest)) => {
                    self.0 = rest;
                    *b
                }
                None => 0,
            }
        }

        fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
            xs[usize::from(self.byte()) % xs.len()]
        }

        fn value(&mut self) -> u64 {
            let b = self.byte();
            if b < 224 {
                return VALUES[usize::from(b) % VALUES.len()];
            }
            let mut v = 0u64;
            for _ in 0..8 {
                v = v << 8 | u64::from(self.byte());
            }
            v
        }
    }

    #[derive(Debug, Clone, Copy)]
    struct Arg {
        index: u32,
        op: &'static str,
        value: u64,
        value_two: u64,
    }

    #[derive(Debug)]
    struct Rule {
        names: Vec<&'static str>,
        action: &'static str,
        errno: Option<u32>,
        args: Vec<Arg>,
    }

    #[derive(Debug)]
    struct Profile {
        default: &'static str,
        default_errno: Option<u32>,
        arches: Vec<&'static str>,
        flags: Vec<&'static str>,
        rules: Vec<Rule>,
    }

    fn profile(r: &mut Bytes<'_>) -> Profile {
        let default = r.pick(ACTIONS);
        let default_errno = (r.byte() % 4 == 0).then(|| r.pick(ERRNOS));
        let mask = r.byte();
        let mut arches = Vec::new();
        for (bit, name) in [
            "SCMP_ARCH_X86_64",
            "SCMP_ARCH_X86",
            "SCMP_ARCH_X32",
            "SCMP_ARCH_AARCH64",
        ]
        .into_iter()
        .enumerate()
        {
            if mask & (1 << bit) != 0 {
                arches.push(name);
            }
        }
        if mask & 0xf0 == 0xf0 {
            arches.push("SCMP_ARCH_NO_SUCH");
        }
        let flags = match r.byte() % 16 {
            0 => vec!["SECCOMP_FILTER_FLAG_LOG"],
            1 => vec!["SECCOMP_FILTER_FLAG_NO_SUCH"],
            _ => vec![],
        };
        let mut rules = Vec::new();
        for _ in 0..r.byte() % 9 {
            let names = (0..1 + r.byte() % 3).map(|_| r.pick(SYSCALLS).0).collect();
            let action = r.pick(ACTIONS);
            let errno = (r.byte() % 3 == 0).then(|| r.pick(ERRNOS));
            let mut args = Vec::new();
            for _ in 0..r.byte() % 5 {
                let b = r.byte();
                let index = match b {
                    255 => 6,
                    0..=159 => u32::from(b % 2),
                    _ => u32::from(b % 6),
                };
                let b = r.byte();
                let op = if b == 255 {
                    "SCMP_CMP_NO_SUCH"
                } else {
                    OPS[usize::from(b) % OPS.len()]
                };
                let (value, value_two) = (r.value(), r.value());
                args.push(Arg {
                    index,
                    op,
                    value,
                    value_two,
                });
            }
            rules.push(Rule {
                names,
                action,
                errno,
                args,
            });
        }
        Profile {
            default,
            default_errno,
            arches,
            flags,
            rules,
        }
    }

    /// A config.json (valid apart from its seccomp section) holding the profile.
    fn config(p: &Profile) -> String {
        let list = |xs: &[&str]| {
            xs.iter()
                .map(|x| format!("\"{x}\""))
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut s = String::new();
        let _ = write!(s, r#"{{"defaultAction":"{}""#, p.default);
        if let Some(e) = p.default_errno {
            let _ = write!(s, r#","defaultErrnoRet":{e}"#);
        }
        let _ = write!(
            s,
            r#","architectures":[{}],"flags":[{}],"syscalls":["#,
            list(&p.arches),
            list(&p.flags)
        );
        for (i, rule) in p.rules.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(
                s,
                r#"{{"names":[{}],"action":"{}""#,
                list(&rule.names),
                rule.action
            );
            if let Some(e) = rule.errno {
                let _ = write!(s, r#","errnoRet":{e}"#);
            }
            s.push_str(r#","args":["#);
            for (j, a) in rule.args.iter().enumerate() {
                if j > 0 {
                    s.push(',');
                }
                let _ = write!(
                    s,
                    r#"{{"index":{},"value":{},"valueTwo":{},"op":"{}"}}"#,
                    a.index, a.value, a.value_two, a.op
                );
            }
            s.push_str("]}");
        }
        s.push_str("]}");
        format!(
            r#"{{"ociVersion":"1.0.2","process":{{"user":{{"uid":0,"gid":0}},"args":["sh"],"cwd":"/"}},"root":{{"path":"rootfs"}},"linux":{{"seccomp":{s}}}}}"#
        )
    }

    /// What an action returns, or why it is invalid. As runc: the errno is used by
    /// ERRNO and TRACE only, default EPERM; libseccomp refuses errnos above 4094.
    fn ret(action: &str, errno: Option<u32>) -> Result<u32, &'static str> {
        let e = errno.unwrap_or(1);
        Ok(match action {
            "SCMP_ACT_ALLOW" => RET_ALLOW,
            "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => RET_KILL_THREAD,
            "SCMP_ACT_KILL_PROCESS" => RET_KILL_PROCESS,
            "SCMP_ACT_TRAP" => RET_TRAP,
            "SCMP_ACT_LOG" => RET_LOG,
            "SCMP_ACT_ERRNO" if e <= 4094 => RET_ERRNO | e,
            "SCMP_ACT_ERRNO" => return Err("errno above 4094"),
            "SCMP_ACT_TRACE" if e <= 0xffff => RET_TRACE | e,
            "SCMP_ACT_TRACE" => return Err("trace data above 65535"),
            _ => return Err("unknown action"),
        })
    }

    /// Why dory must refuse the profile, if it must.
    fn invalid(p: &Profile) -> Option<String> {
        if let Err(e) = ret(p.default, p.default_errno) {
            return Some(format!("defaultAction: {e}"));
        }
        if p.flags.iter().any(|f| f.contains("NO_SUCH")) {
            return Some("flags: unknown".into());
        }
        if p.arches.iter().any(|a| a.contains("NO_SUCH")) {
            return Some("architectures: unknown".into());
        }
        for (i, r) in p.rules.iter().enumerate() {
            if let Err(e) = ret(r.action, r.errno) {
                return Some(format!("syscalls[{i}]: {e}"));
            }
            for a in &r.args {
                if a.index >= 6 || a.op.contains("NO_SUCH") {
                    return Some(format!("syscalls[{i}].args: index or op"));
                }
            }
        }
        None
    }

    /// A condition as the ABI sees it: `None` when it always holds (MASKED_EQ with a
    /// mask that is zero in the compared width, which libseccomp drops).
    fn holds(a: &Arg, abi: Abi, arg: u64) -> Option<bool> {
        let w = |v: u64| if abi.wide() { v } else { v & 0xffff_ffff };
        let (x, v) = (w(arg), w(a.value));
        Some(match a.op {
            "SCMP_CMP_EQ" => x == v,
            "SCMP_CMP_NE" => x != v,
            "SCMP_CMP_LT" => x < v,
            "SCMP_CMP_LE" => x <= v,
            "SCMP_CMP_GT" => x > v,
            "SCMP_CMP_GE" => x >= v,
            _ if v == 0 => return None,
            _ => x & v == w(a.value_two) & v,
        })
    }

    /// One rule as libseccomp receives it from runc: its conditions, all required.
    struct Entry {
        ret: u32,
        conds: Vec<Arg>,
    }

    /// The rules naming call `nr` of `abi`, as runc hands them to libseccomp: rules
    /// with the default's action dropped, a rule naming one argument twice split into
    /// one entry per condition (alternatives), always-true conditions dropped.
    fn entries(p: &Profile, abi: Abi, nr: u32, default: u32, args: &[u64; 6]) -> Vec<Entry> {
        let mut out = Vec::new();
        for r in &p.rules {
            let ret = ret(r.action, r.errno).unwrap();
            if ret == default || !r.names.iter().any(|n| abi.nr(n) == Some(nr)) {
                continue;
            }
            let keep = |a: &&Arg| holds(a, abi, args[a.index as usize]).is_some();
            let indexes: BTreeSet<u32> = r.args.iter().map(|a| a.index).collect();
            if indexes.len() == r.args.len() {
                let conds = r.args.iter().filter(keep).copied().collect();
                out.push(Entry { ret, conds });
            } else {
                for a in &r.args {
                    let conds = [a].into_iter().filter(keep).copied().collect();
                    out.push(Entry { ret, conds });
                }
            }
        }
        out
    }

    /// The results the program may return for the call, by the rules.
    fn expected(p: &Profile, arch: u32, nr: u32, args: &[u64; 6]) -> BTreeSet<u32> {
        let default = ret(p.default, p.default_errno).unwrap();
        let listed = |abi: Abi| p.arches.contains(&abi.arch_name());
        let one = |r: u32| BTreeSet::from([r]);
        let abi = match arch {
            AUDIT_ARCH_I386 if listed(Abi::I386) => Abi::I386,
            AUDIT_ARCH_X86_64 if nr & X32_BIT == 0 => Abi::X86_64,
            AUDIT_ARCH_X86_64 if listed(Abi::X32) => Abi::X32,
            // -1 (a tracer's skipped call) gets the default; other x32 calls are refused.
            AUDIT_ARCH_X86_64 if nr == u32::MAX => return one(default),
            _ => return one(RET_KILL_PROCESS),
        };
        // runc's stub: numbers above the highest the profile names get ENOSYS, for the
        // listed ABIs, unless the default is permissive or ENOSYS already.
        let permissive = matches!(default & 0xffff_0000, RET_ALLOW | RET_LOG | RET_TRACE);
        if !permissive && p.default_errno != Some(ENOSYS) && listed(abi) {
            let last = p
                .rules
                .iter()
                .flat_map(|r| r.names.iter().filter_map(|n| abi.nr(n)))
                .max();
            if let Some(last) = last.filter(|&l| l != 0) {
                if nr > last {
                    return one(RET_ERRNO | ENOSYS);
                }
            }
        }
        let entries = entries(p, abi, nr, default, args);
        // The first unconditional rule decides alone.
        if let Some(e) = entries.iter().find(|e| e.conds.is_empty()) {
            return one(e.ret);
        }
        let matching: BTreeSet<u32> = entries
            .iter()
            .filter(|e| {
                e.conds
                    .iter()
                    .all(|a| holds(a, abi, args[a.index as usize]) == Some(true))
            })
            .map(|e| e.ret)
            .collect();
        match entries.len() {
            0 | 1 if matching.is_empty() => one(default),
            0 | 1 => matching,
            // libseccomp's merged tree (see the module doc): any of the rules' actions
            // or the default (KILL_THREAD: its 64-bit range adjustment can copy a missing
            // action as 0).
            _ => entries
                .iter()
                .map(|e| e.ret)
                .chain([default, RET_KILL_THREAD])
                .collect(),
        }
    }

    /// Whether dory's refusal of rule `i` as a conflict is one libseccomp could make:
    /// `i` has conditions in some filtered ABI and an earlier rule of another action
    /// (not the default's) names one of its syscalls there.
    fn plausible_conflict(p: &Profile, i: usize) -> bool {
        let default = ret(p.default, p.default_errno).unwrap();
        let Some(r) = p.rules.get(i) else {
            return false;
        };
        let ri = ret(r.action, r.errno).unwrap();
        if ri == default || r.args.is_empty() {
            return false;
        }
        let abis = [Abi::X86_64, Abi::I386, Abi::X32]
            .into_iter()
            .filter(|&a| a == Abi::X86_64 || p.arches.contains(&a.arch_name()));
        for abi in abis {
            let nrs: Vec<u32> = r.names.iter().filter_map(|n| abi.nr(n)).collect();
            for earlier in &p.rules[..i] {
                let re = ret(earlier.action, earlier.errno).unwrap();
                let shares = earlier
                    .names
                    .iter()
                    .any(|n| abi.nr(n).is_some_and(|x| nrs.contains(&x)));
                if re != default && re != ri && shares {
                    return true;
                }
            }
        }
        false
    }

    /// A small deterministic generator for the calls (seeded by the input).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
            xs[(self.next() % xs.len() as u64) as usize]
        }
    }

    /// Numbers and argument values worth calling with: the profile's own, their
    /// neighbours, the other word of 64 bits, and the shared pool.
    fn call_pools(p: &Profile) -> (Vec<u32>, Vec<u64>) {
        let mut nrs = vec![0, 1, 100, 463, 515, 1000, X32_BIT - 1, u32::MAX];
        for (name, _) in SYSCALLS {
            for abi in [Abi::X86_64, Abi::I386, Abi::X32] {
                if let Some(n) = abi.nr(name) {
                    nrs.extend([n, n.wrapping_add(1), n.wrapping_sub(1)]);
                }
            }
        }
        let mut vals: Vec<u64> = VALUES.to_vec();
        for r in &p.rules {
            for a in &r.args {
                for v in [a.value, a.value_two, a.value & a.value_two] {
                    vals.extend([
                        v,
                        v.wrapping_add(1),
                        v.wrapping_sub(1),
                        v ^ 0x1_0000_0000,
                        v & 0xffff_ffff,
                        v | 0xffff_ffff_0000_0000,
                    ]);
                }
            }
        }
        (nrs, vals)
    }

    pub fn one(data: &[u8]) {
        let p = profile(&mut Bytes(data));
        let text = config(&p);
        if std::env::var_os("DORY_FUZZ_SHOW").is_some() {
            // To turn a finding into a unit test: the config it compiled.
            eprintln!("{text}");
        }
        let compiled = dory::fuzz::seccomp_compile(text.as_bytes());
        let prog = match (invalid(&p), compiled) {
            (Some(why), Ok(_)) => panic!("dory accepted an invalid profile ({why}):\n{text}"),
            (Some(_), Err(e)) => {
                assert!(e.contains("linux.seccomp"), "{e}");
                return;
            }
            (None, Err(e)) => {
                let rule = e
                    .strip_prefix("config.json: linux.seccomp.syscalls[")
                    .and_then(|t| t.split_once(']'))
                    .filter(|(_, rest)| rest.starts_with(": an earlier rule"))
                    .and_then(|(n, _)| n.parse::<usize>().ok());
                match rule {
                    Some(i) if plausible_conflict(&p, i) => return,
                    _ => panic!("dory refused a valid profile: {e}\n{text}"),
                }
            }
            (None, Ok(None)) => panic!("no program for a seccomp section:\n{text}"),
            (None, Ok(Some(prog))) => prog,
        };
        let (nrs, vals) = call_pools(&p);
        let seed = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        let mut rng = Rng(seed | 1);
        let bpf = dory::fuzz::CheckedBpf::new(&prog)
            .unwrap_or_else(|e| panic!("the kernel would refuse the program: {e}\n{text}"));
        for _ in 0..64 {
            let arch = rng.pick(&[
                AUDIT_ARCH_X86_64,
                AUDIT_ARCH_X86_64,
                AUDIT_ARCH_X86_64,
                AUDIT_ARCH_I386,
                AUDIT_ARCH_AARCH64,
            ]);
            let nr = rng.pick(&nrs);
            let mut args = [0u64; 6];
            for a in &mut args {
                *a = rng.pick(&vals);
            }
            let got = bpf
                .run(&dory::fuzz::SeccompData { nr, arch, args })
                .unwrap_or_else(|e| panic!("the program did not return: {e}\n{text}"));
            let want = expected(&p, arch, nr, &args);
            assert!(
                want.contains(&got),
                "arch {arch:#x} nr {nr:#x} args {args:#x?}: got {got:#x}, want one of {want:#x?}\n{text}"
            );
        }
    }
}
