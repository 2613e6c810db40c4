//! Compiling real and synthetic profiles and running the programs, in a classic-BPF
//! interpreter written here and in the kernel (a forked child loads the filter).

use crate::seccomp::bpf::JA;
use crate::seccomp::interp;
use crate::seccomp::names::{self, ABIS, AUDIT_ARCH_AARCH64};
use crate::seccomp::{compile, tables, Program, MAX_BPF_INSNS};
use crate::spec::{parse_unvalidated, Seccomp};

const PODMAN: &str = include_str!("../../tests/fixtures/podman-4.3-config.json");

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const KILL_PROCESS: u32 = libc::SECCOMP_RET_KILL_PROCESS;

fn errno(e: u32) -> u32 {
    libc::SECCOMP_RET_ERRNO | e
}

/// Builds the `seccomp_data` of a call (instruction pointer 0).
struct Data;

impl Data {
    fn native(name: &str, args: &[u64]) -> interp::Data {
        let nr = names::lookup(name).unwrap_or_else(|| panic!("{name} is not in the table"));
        Self::nr(nr, args)
    }

    fn nr(nr: u32, args: &[u64]) -> interp::Data {
        let mut a = [0u64; 6];
        a[..args.len()].copy_from_slice(args);
        interp::Data {
            nr,
            arch: ABIS[0].audit_arch,
            args: a,
        }
    }
}

/// Runs a program in the interpreter (`interp.rs`); panics on anything the kernel's
/// checker would refuse.
fn run(prog: &[libc::sock_filter], d: &interp::Data) -> u32 {
    interp::run(prog, d).unwrap_or_else(|e| panic!("{e}"))
}

/// The `linux.seccomp` of a config with the given seccomp object.
fn config(seccomp: &str) -> String {
    format!(
        r#"{{"ociVersion": "1.0.2", "process": {{"user": {{"uid": 0, "gid": 0}}, "args": ["sh"], "cwd": "/"}}, "root": {{"path": "rootfs"}}, "linux": {{"seccomp": {seccomp}}}}}"#
    )
}

fn with_profile<R>(text: &str, f: impl FnOnce(&Seccomp<'_>) -> R) -> R {
    let spec = parse_unvalidated(text.as_bytes()).unwrap();
    f(spec.linux.as_ref().unwrap().seccomp.as_ref().unwrap())
}

fn compiled(seccomp: &str) -> Program {
    with_profile(&config(seccomp), |s| compile(s).unwrap())
}

fn compile_err(seccomp: &str) -> String {
    with_profile(&config(seccomp), |s| compile(s).unwrap_err().to_string())
}

#[test]
fn tables_are_sorted_unique_and_fit_the_slots() {
    for (arch, table) in [
        ("x86_64", tables::X86_64),
        ("aarch64", tables::AARCH64),
        ("arm", tables::ARM),
    ] {
        assert!(table.len() > 300, "{arch}");
        for w in table.windows(2) {
            assert!(w[0].0 < w[1].0, "{arch}: {} before {}", w[0].0, w[1].0);
        }
        for (name, nr) in table {
            let slot = names::slot_of(*nr).unwrap_or_else(|| panic!("{arch}: {name} {nr}"));
            assert_eq!(names::nr_of(slot), *nr);
            assert_eq!(names::lookup_in(table, name), Some(*nr));
        }
    }
    assert_eq!(names::lookup_in(tables::X86_64, "read"), Some(0));
    assert_eq!(names::lookup_in(tables::X86_64, "getppid"), Some(110));
    assert_eq!(names::lookup_in(tables::AARCH64, "read"), Some(63));
    assert_eq!(names::lookup_in(tables::AARCH64, "open"), None);
    assert_eq!(names::lookup_in(tables::ARM, "read"), Some(3));
    assert_eq!(names::lookup_in(tables::ARM, "set_tls"), Some(0x0f_0005));
    assert_eq!(names::lookup_in(tables::ARM, "cacheflush"), Some(0x0f_0002));
    assert_eq!(names::lookup_in(tables::X86_64, "mseal"), Some(462));
    assert_eq!(names::lookup_in(tables::X86_64, "no_such_call"), None);
    // Slots grow with numbers (the compiler walks slots in number order).
    for s in 1..crate::seccomp::SYSCALL_SLOTS {
        assert!(names::nr_of(s) > names::nr_of(s - 1));
    }
}

#[test]
fn podman_names_become_bits() {
    with_profile(PODMAN, |s| {
        assert_eq!(s.syscalls.len(), 19);
        let big = &s.syscalls[1].names;
        assert_eq!(big.listed(), 374);
        // Names of other architectures (arm's, i386's) are skipped.
        assert!(big.known() < big.listed() && big.known() > 250, "{big:?}");
        let read = names::slot_of(names::lookup("read").unwrap()).unwrap();
        assert!(big.contains_slot(read));
        assert!(!s.syscalls[0].names.contains_slot(read));
    });
}

#[test]
fn podman_profile_decides_like_runc() {
    let prog = with_profile(PODMAN, |s| compile(s).unwrap());
    let p = prog.as_slice();
    // 3 ABIs (x86_64: native, i386, x32) against the kernel's 4096.
    assert!(p.len() < 1200, "{} instructions", p.len());
    let enosys = errno(38);
    let call = |name: &str, args: &[u64]| run(p, &Data::native(name, args));
    assert_eq!(call("read", &[]), ALLOW);
    assert_eq!(call("write", &[]), ALLOW);
    assert_eq!(call("socket", &[40]), ALLOW);
    // Named by no rule: the default, ERRNO(38).
    assert_eq!(call("add_key", &[]), enosys);
    assert_eq!(call("io_uring_setup", &[]), enosys);
    // ERRNO(1) rules.
    assert_eq!(call("kexec_load", &[]), errno(1));
    assert_eq!(call("open_by_handle_at", &[]), errno(1));
    assert_eq!(call("setdomainname", &[]), errno(1));
    assert_eq!(call("vhangup", &[]), errno(1));
    // personality: allowed for 5 exact values only, all 64 bits compared (32 on arm).
    for v in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
        assert_eq!(call("personality", &[v]), ALLOW, "{v:#x}");
    }
    for v in [1, 9, 0x20001, 0xffff_fffe] {
        assert_eq!(call("personality", &[v]), enosys, "{v:#x}");
    }
    if cfg!(target_pointer_width = "64") {
        for v in [0x1_0000_0000, 0x1_0000_0008, u64::MAX] {
            assert_eq!(call("personality", &[v]), enosys, "{v:#x}");
        }
    }
    // setns: allowed by the first rule naming it; the later ERRNO(1) rule is ignored
    // (libseccomp: the first unconditional rule wins).
    assert_eq!(call("setns", &[]), ALLOW);
    // Numbers above the highest the profile names: ENOSYS (runc's stub), whatever the
    // default; -1 too on architectures without x32.
    assert_eq!(run(p, &Data::nr(470, &[])), enosys);
    assert_eq!(run(p, &Data::nr(0x3fff_ffff, &[])), enosys);
    let mut d = Data::native("read", &[]);
    if names::HAS_X32 {
        assert_eq!(call("arch_prctl", &[]), ALLOW);
        // x32 (listed): judged with x32's numbers; above its highest: ENOSYS.
        let x32 = |name: &str| tables::X32.iter().find(|(n, _)| *n == name).unwrap().1;
        assert_eq!(run(p, &Data::nr(x32("read"), &[])), ALLOW);
        assert_eq!(run(p, &Data::nr(x32("kexec_load"), &[])), errno(1));
        assert_eq!(run(p, &Data::nr(x32("add_key"), &[])), enosys);
        assert_eq!(run(p, &Data::nr(0x4000_0000 | 0x300, &[])), enosys);
        // i386 (listed): its own numbers (write is 4 there, stat on x86_64).
        let i386 = |name: &str| tables::I386.iter().find(|(n, _)| *n == name).unwrap().1;
        d.arch = names::AUDIT_ARCH_I386;
        for (name, want) in [
            ("write", ALLOW),
            ("socketcall", ALLOW),
            ("kexec_load", errno(1)),
        ] {
            d.nr = i386(name);
            assert_eq!(run(p, &d), want, "{name}");
        }
        d.nr = i386("personality");
        d.args[0] = 0x1_0000_0008; // low word 8: allowed on a 32-bit ABI
        assert_eq!(run(p, &d), ALLOW);
        d.nr = 1000;
        assert_eq!(run(p, &d), enosys);
    } else if let Some(compat) = ABIS.get(1) {
        // aarch64: 32-bit arm is not listed by podman's profile: killed.
        d.arch = compat.audit_arch;
        assert_eq!(run(p, &d), KILL_PROCESS);
    }
    // Any other architecture: killed.
    d.arch = if ABIS[0].audit_arch == AUDIT_ARCH_AARCH64 {
        names::AUDIT_ARCH_X86_64
    } else {
        AUDIT_ARCH_AARCH64
    };
    assert_eq!(run(p, &d), KILL_PROCESS);
}

#[test]
fn every_native_syscall_gets_its_rule() {
    // A deny-list profile: default ALLOW; rule i denies with errno i + 1 (distinct
    // results show that every number reaches its own rule through the search tree).
    let table = ABIS[0].table;
    let chunk = table.len().div_ceil(60);
    let mut rules = Vec::new();
    for (i, names) in table.chunks(chunk).enumerate() {
        let list: Vec<String> = names.iter().map(|(n, _)| format!("\"{n}\"")).collect();
        rules.push(format!(
            r#"{{"names": [{}], "action": "SCMP_ACT_ERRNO", "errnoRet": {}}}"#,
            list.join(","),
            i + 1
        ));
    }
    let prog = compiled(&format!(
        r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{}]}}"#,
        rules.join(",")
    ));
    // Aliases (arm: sync_file_range2 = arm_sync_file_range) share a number: the first
    // rule naming it wins (equal actions rank by config order).
    let first_rule = |nr: u32| {
        table
            .chunks(chunk)
            .position(|c| c.iter().any(|(_, n)| *n == nr))
            .unwrap() as u32
            + 1
    };
    for names in table.chunks(chunk) {
        for (name, nr) in names {
            let got = run(prog.as_slice(), &Data::native(name, &[]));
            assert_eq!(got, errno(first_rule(*nr)), "{name}");
        }
    }
    // Between and beyond the table's numbers: the default.
    assert_eq!(run(prog.as_slice(), &Data::nr(5000, &[])), ALLOW);
    // A listed 32-bit ABI is judged by the same rules with its own numbers; an
    // unlisted or foreign one is killed.
    let prog = compiled(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"], "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO"}]}"#,
    );
    let mut d = Data::native("write", &[]);
    assert_eq!(run(prog.as_slice(), &d), ALLOW);
    if names::HAS_X32 {
        d.arch = names::AUDIT_ARCH_I386;
        for (nr, want) in [(3, errno(1)), (4, ALLOW)] {
            d.nr = nr;
            assert_eq!(run(prog.as_slice(), &d), want, "i386 {nr}");
        }
        for (nr, want) in [(0x4000_0000, errno(1)), (0x4000_0001, ALLOW)] {
            assert_eq!(
                run(prog.as_slice(), &Data::nr(nr, &[])),
                want,
                "x32 {nr:#x}"
            );
        }
    }
    for arch in [
        names::AUDIT_ARCH_ARM,
        names::AUDIT_ARCH_X86_64,
        AUDIT_ARCH_AARCH64,
    ] {
        if arch != ABIS[0].audit_arch {
            d.arch = arch;
            assert_eq!(run(prog.as_slice(), &d), KILL_PROCESS, "{arch:#x}");
        }
    }
}

/// A profile with default `default` and these rules.
fn profile(default: &str, rules: &[&str]) -> Program {
    compiled(&format!(
        r#"{{"defaultAction": "{default}", "syscalls": [{}]}}"#,
        rules.join(",")
    ))
}

#[test]
fn precedence_is_libseccomps() {
    let allow = r#"{"names": ["socket", "read"], "action": "SCMP_ACT_ALLOW"}"#;
    let vsock = r#"{"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97, "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_EQ"}]}"#;
    let trap = r#"{"names": ["socket"], "action": "SCMP_ACT_TRAP", "args": [{"index": 1, "value": 3, "op": "SCMP_CMP_EQ"}]}"#;
    let call = |p: &Program, args: &[u64]| run(p.as_slice(), &Data::native("socket", args));
    // An unconditional rule wins over conditional ones before or after it.
    for rules in [[allow, vsock, trap], [vsock, trap, allow]] {
        let p = profile("SCMP_ACT_ERRNO", &rules);
        assert_eq!(call(&p, &[40, 3]), ALLOW);
        assert_eq!(run(p.as_slice(), &Data::native("write", &[])), errno(1));
    }
    // Conditional rules: higher argument index first, whatever the config order.
    for rules in [[vsock, trap], [trap, vsock]] {
        let p = profile("SCMP_ACT_ALLOW", &rules);
        assert_eq!(call(&p, &[40, 1]), errno(97));
        assert_eq!(call(&p, &[2, 3]), libc::SECCOMP_RET_TRAP);
        assert_eq!(call(&p, &[40, 3]), libc::SECCOMP_RET_TRAP);
        assert_eq!(call(&p, &[2, 1]), ALLOW);
    }
    // The first unconditional rule wins; a rule with the default's action is dropped.
    let errno5 = r#"{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5}"#;
    let eperm = r#"{"names": ["read"], "action": "SCMP_ACT_ERRNO"}"#;
    let p = profile("SCMP_ACT_ERRNO", &[eperm, errno5, allow]);
    assert_eq!(run(p.as_slice(), &Data::native("read", &[])), errno(5));
    // One argument: EQ/NE before LT/LE before GT/GE; larger values first (LT: smaller).
    let rule = |op: &str, v: u64, e: u32| {
        format!(
            r#"{{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": {e}, "args": [{{"index": 0, "value": {v}, "op": "{op}"}}]}}"#
        )
    };
    let (gt5, gt9, lt20, lt30, eq7) = (
        rule("SCMP_CMP_GT", 5, 11),
        rule("SCMP_CMP_GT", 9, 12),
        rule("SCMP_CMP_LT", 20, 13),
        rule("SCMP_CMP_LT", 30, 14),
        rule("SCMP_CMP_EQ", 7, 15),
    );
    let p = profile("SCMP_ACT_ALLOW", &[&gt5, &gt9, &lt30, &lt20, &eq7]);
    let read = |v: u64| run(p.as_slice(), &Data::native("read", &[v]));
    assert_eq!(read(7), errno(15));
    assert_eq!(read(6), errno(13));
    assert_eq!(read(25), errno(14));
    assert_eq!(read(40), errno(12));
    // MASKED_EQ compares the value masked too; a zero mask makes the rule unconditional.
    let masked = |mask: u64, v: u64, e: u32| {
        format!(
            r#"{{"names": ["write"], "action": "SCMP_ACT_ERRNO", "errnoRet": {e}, "args": [{{"index": 1, "value": {mask}, "valueTwo": {v}, "op": "SCMP_CMP_MASKED_EQ"}}]}}"#
        )
    };
    let p = profile("SCMP_ACT_ALLOW", &[&masked(0xf0, 0x1f3, 21)]);
    assert_eq!(
        run(p.as_slice(), &Data::native("write", &[0, 0xf5])),
        errno(21)
    );
    let p = profile(
        "SCMP_ACT_ALLOW",
        &[&masked(0, 3, 22), &masked(0xf0, 0x10, 23)],
    );
    assert_eq!(
        run(p.as_slice(), &Data::native("write", &[0, 0x10])),
        errno(22)
    );
}

#[test]
fn conflicting_rules_are_refused_as_libseccomp_does() {
    let rule = |e: u32, extra: &str| {
        format!(
            r#"{{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": {e}, "args": [{{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}}{extra}]}}"#
        )
    };
    let longer = r#", {"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}"#;
    let err = |rules: &[&str]| {
        compile_err(&format!(
            r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{}]}}"#,
            rules.join(",")
        ))
    };
    assert!(err(&[&rule(5, ""), &rule(6, "")]).starts_with(
        "config.json: linux.seccomp.syscalls[1]: an earlier rule for one of its syscalls has the same checks"
    ));
    assert!(err(&[&rule(5, longer), &rule(6, "")])
        .starts_with("config.json: linux.seccomp.syscalls[1]:"));
    // Range rules on one argument share their high-word checks (runc: "file exists").
    let flock = |args: &str, e: u32| {
        format!(
            r#"{{"names": ["flock"], "action": "SCMP_ACT_ERRNO", "errnoRet": {e}, "args": [{args}]}}"#
        )
    };
    let lt = |v: u32| format!(r#"{{"index": 0, "value": {v}, "op": "SCMP_CMP_LT"}}"#);
    let ne = r#"{"index": 1, "value": 501, "op": "SCMP_CMP_NE"}"#;
    let (a, b) = (
        flock(&format!("{}, {ne}", lt(1000)), 30),
        flock(&lt(1001), 1),
    );
    // Only where the native ABI is 64-bit: a 32-bit ABI has one check per comparison and
    // no shared high-word node, so libseccomp (and dory) accept the pair on armv7.
    let native_wide = names::ABIS.first().is_some_and(|abi| abi.wide);
    if native_wide {
        assert!(err(&[&a, &b]).starts_with("config.json: linux.seccomp.syscalls[1]:"));
    } else {
        profile("SCMP_ACT_ALLOW", &[&a, &b]);
    }
    // Values equal in their low words conflict on a 32-bit ABI only (as under runc).
    let personality = |v: u64, e: u32| {
        format!(
            r#"{{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": {e}, "args": [{{"index": 0, "value": {v}, "op": "SCMP_CMP_EQ"}}]}}"#
        )
    };
    let (nine, nine_hi) = (personality(9, 61), personality((1 << 32) + 9, 62));
    if native_wide {
        profile("SCMP_ACT_ALLOW", &[&nine, &nine_hi]);
    } else {
        let text =
            format!(r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{nine}, {nine_hi}]}}"#);
        assert!(compile_err(&text).starts_with("config.json: linux.seccomp.syscalls[1]:"));
    }
    if names::HAS_X32 {
        let text = format!(
            r#"{{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"], "syscalls": [{nine}, {nine_hi}]}}"#
        );
        assert!(compile_err(&text).starts_with("config.json: linux.seccomp.syscalls[1]:"));
    }
    // A longer rule after a shorter one is ignored; the same rule twice is fine.
    let p = profile(
        "SCMP_ACT_ALLOW",
        &[&rule(5, ""), &rule(6, longer), &rule(5, "")],
    );
    assert_eq!(run(p.as_slice(), &Data::native("read", &[1, 2])), errno(5));
}

#[test]
fn one_argument_named_twice_means_any_of_them() {
    // As runc: conditions on distinct arguments must all hold; conditions repeating an
    // argument are alternatives.
    let prog = compiled(
        r#"{"defaultAction": "SCMP_ACT_KILL", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 7, "op": "SCMP_CMP_EQ"}]},
            {"names": ["write"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 2, "value": 10, "op": "SCMP_CMP_LT"}]}]}"#,
    );
    let call = |name: &str, args: &[u64]| run(prog.as_slice(), &Data::native(name, args));
    let kill = libc::SECCOMP_RET_KILL_THREAD;
    assert_eq!(call("read", &[1]), ALLOW);
    assert_eq!(call("read", &[7]), ALLOW);
    assert_eq!(call("read", &[2]), kill);
    assert_eq!(call("write", &[1, 0, 9]), ALLOW);
    assert_eq!(call("write", &[1, 0, 10]), kill);
    assert_eq!(call("write", &[2, 0, 9]), kill);
}

#[test]
fn actions_and_flags() {
    let cases = [
        ("SCMP_ACT_KILL", "", libc::SECCOMP_RET_KILL_THREAD),
        ("SCMP_ACT_KILL_THREAD", "", libc::SECCOMP_RET_KILL_THREAD),
        ("SCMP_ACT_KILL_PROCESS", "", KILL_PROCESS),
        ("SCMP_ACT_TRAP", "", libc::SECCOMP_RET_TRAP),
        ("SCMP_ACT_ERRNO", "", errno(1)),
        ("SCMP_ACT_ERRNO", r#", "errnoRet": 4094"#, errno(4094)),
        ("SCMP_ACT_TRACE", "", libc::SECCOMP_RET_TRACE | 1),
        (
            "SCMP_ACT_TRACE",
            r#", "errnoRet": 65535"#,
            libc::SECCOMP_RET_TRACE | 65535,
        ),
        ("SCMP_ACT_LOG", "", libc::SECCOMP_RET_LOG),
        // As runc: errnoRet only matters to ERRNO and TRACE.
        ("SCMP_ACT_LOG", r#", "errnoRet": 5"#, libc::SECCOMP_RET_LOG),
    ];
    for (action, extra, want) in cases {
        let prog = compiled(&format!(
            r#"{{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"], "syscalls": [{{"names": ["read"], "action": "{action}"{extra}}}]}}"#
        ));
        assert_eq!(
            run(prog.as_slice(), &Data::native("read", &[])),
            want,
            "{action}"
        );
        assert_eq!(prog.flags(), 2 | 4);
    }
    let prog = compiled(r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38}"#);
    assert_eq!(run(prog.as_slice(), &Data::native("read", &[])), errno(38));
    assert_eq!(prog.flags(), 0);
}

#[test]
fn errors_name_the_field() {
    let rule = |r: &str| {
        compile_err(&format!(
            r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{{"names": ["read"], "action": "SCMP_ACT_ALLOW"}}, {r}]}}"#
        ))
    };
    assert_eq!(
        rule(r#"{"names": ["read"], "action": "SCMP_ACT_FOO"}"#),
        "config.json: linux.seccomp.syscalls[1].action: unknown action \"SCMP_ACT_FOO\""
    );
    assert_eq!(
        rule(r#"{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}"#),
        "config.json: linux.seccomp.listenerPath: must be set when a rule uses SCMP_ACT_NOTIFY (the agent's unix socket)"
    );
    assert_eq!(
        rule(r#"{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 4095}"#),
        "config.json: linux.seccomp.syscalls[1].errnoRet: an errno must be at most 4094 (libseccomp's limit)"
    );
    assert_eq!(
        rule(r#"{"names": ["read"], "action": "SCMP_ACT_TRACE", "errnoRet": 65536}"#),
        "config.json: linux.seccomp.syscalls[1].errnoRet: SCMP_ACT_TRACE data must be at most 65535"
    );
    assert_eq!(
        rule(r#"{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}"#),
        "config.json: linux.seccomp.syscalls[1].args[1].index: must be from 0 to 5 (a syscall has 6 arguments)"
    );
    assert_eq!(
        rule(r#"{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_MASKED"}]}"#),
        "config.json: linux.seccomp.syscalls[1].args[0].op: unknown comparison operator \"SCMP_CMP_MASKED\""
    );
    assert_eq!(
        compile_err(r#"{"defaultAction": "SCMP_ACT_KILL_ALL"}"#),
        "config.json: linux.seccomp.defaultAction: unknown action \"SCMP_ACT_KILL_ALL\""
    );
    assert_eq!(
        compile_err(r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5000}"#),
        "config.json: linux.seccomp.defaultErrnoRet: an errno must be at most 4094 (libseccomp's limit)"
    );
    assert_eq!(
        compile_err(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_Z80"]}"#
        ),
        "config.json: linux.seccomp.architectures[1]: unknown architecture \"SCMP_ARCH_Z80\""
    );
    assert_eq!(
        compile_err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NEW_LISTENER"]}"#),
        "config.json: linux.seccomp.flags[0]: unknown seccomp flag \"SECCOMP_FILTER_FLAG_NEW_LISTENER\""
    );
    let e = with_profile(&config(r#"{"defaultAction": "SCMP_ACT_FOO"}"#), |s| {
        compile(s).unwrap_err()
    });
    assert_eq!(e.path(), "linux.seccomp.defaultAction");
    assert!(matches!(
        e.kind(),
        crate::seccomp::SeccompErrorKind::UnknownName { what: "action", .. }
    ));
    // Through spec validation, with the same text.
    let text = config(r#"{"defaultAction": "SCMP_ACT_FOO"}"#);
    assert_eq!(
        crate::spec::parse(text.as_bytes()).unwrap_err().to_string(),
        "config.json: linux.seccomp.defaultAction: unknown action \"SCMP_ACT_FOO\""
    );
}

/// A profile whose rule i names the first i + 1 syscalls with six conditions each:
/// every syscall has its own plan of up to 64 rules.
fn huge(rules: usize, conds: usize) -> String {
    let names: Vec<String> = ABIS[0]
        .table
        .iter()
        .take(64)
        .map(|(n, _)| format!("\"{n}\""))
        .collect();
    let cond = r#"{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}"#;
    let args = |rule: usize| -> Vec<String> {
        (0..conds)
            .map(|i| {
                cond.replace("\"index\": 0", &format!("\"index\": {i}"))
                    .replace("\"value\": 1", &format!("\"value\": {}", rule + 1))
            })
            .collect()
    };
    let list: Vec<String> = (0..rules)
        .map(|i| {
            format!(
                r#"{{"names": [{}], "action": "SCMP_ACT_ERRNO", "errnoRet": {}, "args": [{}]}}"#,
                names[..=i].join(","),
                i + 1,
                args(i).join(",")
            )
        })
        .collect();
    format!(
        r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{}]}}"#,
        list.join(",")
    )
}

#[test]
fn far_jumps_and_the_size_limit() {
    // Long enough that jumps over 255 instructions go through JA.
    let prog = compiled(&huge(12, 6));
    assert!(prog.as_slice().len() > 600, "{}", prog.as_slice().len());
    assert!(prog.as_slice().iter().any(|i| i.code == JA && i.k > 255));
    for (j, (name, _)) in ABIS[0].table.iter().take(12).enumerate() {
        // Syscall j is named by rules j.., rule i matching arguments all i + 1.
        let v = j as u64 + 1;
        let d = Data::native(name, &[v; 6]);
        assert_eq!(run(prog.as_slice(), &d), errno(j as u32 + 1), "{name}");
        let d = Data::native(name, &[v, v, v, v, v, 0]);
        assert_eq!(run(prog.as_slice(), &d), ALLOW, "{name}");
    }
    assert_eq!(
        compile_err(&huge(64, 6)),
        "config.json: linux.seccomp: the profile compiles to more than 4096 BPF instructions (limit 4096)"
    );
    assert!(crate::seccomp::error::TOO_LARGE.contains(&MAX_BPF_INSNS.to_string()));
}

/// Forks; the child sets no_new_privs, loads `prog` and returns `check()`'s exit code.
fn in_child(prog: &Program, check: impl FnOnce() -> i32) -> i32 {
    use crate::sys;
    let pid = sys::clone_fork(0).unwrap();
    if pid == 0 {
        let code = match sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0) {
            Err(_) => 101,
            Ok(_) => match sys::seccomp::install_filter(prog.as_slice(), prog.flags()) {
                Err(_) => 102,
                Ok(_) => check(),
            },
        };
        sys::exit_now(code);
    }
    let pid = nix::unistd::Pid::from_raw(pid);
    match nix::sys::wait::waitpid(pid, None).unwrap() {
        nix::sys::wait::WaitStatus::Exited(_, code) => code,
        other => panic!("child ended with {other:?}"),
    }
}

/// The kernel loads the filters (no root needed: no_new_privs) and applies them.
#[test]
fn kernel_applies_the_filter() {
    if std::env::var_os("DORY_FOREIGN").is_some() {
        // qemu-user does not emulate seccomp(2) for its guest.
        crate::testutil::not_applicable(
            "kernel_applies_the_filter",
            "under qemu-user (DORY_FOREIGN)",
        );
        return;
    }
    let prog = compiled(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid", "uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99}]}"#,
    );
    let code = in_child(&prog, || {
        // getppid cannot fail, so glibc returns the raw -errno; musl sets errno.
        nix::errno::Errno::clear();
        let r = nix::unistd::getppid().as_raw();
        let e = nix::errno::Errno::last_raw();
        if r == -99 || (r == -1 && e == 99) {
            0
        } else {
            1
        }
    });
    assert_eq!(code, 0, "getppid was not refused with errno 99");
    // podman's profile and a program with far jumps: accepted by the kernel's checker,
    // and allowed calls still work.
    for prog in [
        with_profile(PODMAN, |s| compile(s).unwrap()),
        compiled(&huge(12, 6)),
    ] {
        let code = in_child(&prog, || {
            if nix::unistd::getppid().as_raw() > 0 {
                0
            } else {
                1
            }
        });
        assert_eq!(code, 0);
    }
}

#[test]
fn capacities_name_the_field() {
    let parse_err = |seccomp: &str| {
        crate::spec::parse(config(seccomp).as_bytes())
            .unwrap_err()
            .to_string()
    };
    let names = vec!["\"read\""; crate::seccomp::MAX_SYSCALL_NAMES + 1].join(",");
    assert_eq!(
        parse_err(&format!(
            r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{{"names": [{names}], "action": "SCMP_ACT_ERRNO"}}]}}"#
        )),
        "config.json: linux.seccomp.syscalls[0].names: more than 1024 entries (limit 1024)"
    );
    let rule = r#"{"names": ["read"], "action": "SCMP_ACT_ERRNO"}"#;
    let rules = vec![rule; crate::seccomp::MAX_SECCOMP_RULES + 1].join(",");
    assert_eq!(
        parse_err(&format!(
            r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{rules}]}}"#
        )),
        "config.json: linux.seccomp.syscalls: more than 1024 entries (limit 1024)"
    );
    assert_eq!(
        parse_err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]}"#),
        "config.json: linux.seccomp.syscalls[0].args[0].value: expected an integer from 0 to 18446744073709551615"
    );
    // At the limits it parses (1024 rules, 1024 names of which one is known).
    let rules = vec![rule; crate::seccomp::MAX_SECCOMP_RULES].join(",");
    let spec = format!(r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{rules}]}}"#);
    crate::spec::parse(config(&spec).as_bytes()).unwrap();
}

/// Item 11: program lengths of real and worst-case profiles against the kernel's 4096.
#[test]
fn real_profiles_fit_the_kernel_limit() {
    let len = |text: &str| with_profile(text, |s| compile(s).unwrap().as_slice().len());
    let podman = len(PODMAN);
    // podman's profile as one rule per name (as older profiles are written).
    let c: serde_json::Value = serde_json::from_str(PODMAN).unwrap();
    let mut split = Vec::new();
    for r in c["linux"]["seccomp"]["syscalls"].as_array().unwrap() {
        for n in r["names"].as_array().unwrap() {
            let mut one = r.clone();
            one["names"] = serde_json::json!([n]);
            split.push(one);
        }
    }
    let mut p = c["linux"]["seccomp"].clone();
    p["syscalls"] = serde_json::Value::from(split);
    let text = PODMAN.replace(
        &serde_json::to_string(&c["linux"]["seccomp"]).unwrap(),
        &serde_json::to_string(&p).unwrap(),
    );
    let split_len = len(&text);
    // Worst case for the search trees: every syscall of every ABI its own errno.
    let names: Vec<String> = ABIS[0].table.iter().map(|(n, _)| n.to_string()).collect();
    let rules: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            format!(
                r#"{{"names": ["{n}"], "action": "SCMP_ACT_ERRNO", "errnoRet": {}}}"#,
                i + 1
            )
        })
        .collect();
    let worst = compiled(&format!(
        r#"{{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_ARM"], "syscalls": [{}]}}"#,
        rules.join(",")
    ))
    .as_slice()
    .len();
    eprintln!("BPF instructions: podman {podman}, podman one rule per name {split_len}, one errno per syscall {worst} (limit {MAX_BPF_INSNS})");
    assert!(podman < 1200 && split_len == podman, "{podman} {split_len}");
    assert!(worst < MAX_BPF_INSNS, "{worst}");
}

/// Found by the seccomp fuzz target. A 64-bit range check hangs the next condition from
/// two nodes (the high word greater; the high word equal and the low word greater), so
/// merging a second such rule visited that level twice: the second visit linked a node
/// before itself and the compiler looped for ever (libseccomp 2.5.4 does the same:
/// `runc run` with this profile spins in `runc init`). The level is merged once, and
/// the rules decide as written (the higher argument's check first).
#[test]
fn merged_rules_cannot_loop_the_tree() {
    let profile = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpid"], "action": "SCMP_ACT_KILL_THREAD", "args": [{"index": 1, "value": 5, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 7, "op": "SCMP_CMP_GT"}]},
        {"names": ["getpid"], "action": "SCMP_ACT_TRAP", "args": [{"index": 0, "value": 7, "op": "SCMP_CMP_GT"}, {"index": 5, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(compiled(profile));
    });
    let prog = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("compiling two merged range rules did not end in 20 s");
    let call = |args: &[u64]| run(prog.as_slice(), &Data::native("getpid", args));
    let (kill, trap) = (libc::SECCOMP_RET_KILL_THREAD, libc::SECCOMP_RET_TRAP);
    // a0 > 7 through either word: its high word, or its low word with a zero high word
    // (a 32-bit ABI, armv7's, compares the low word only: there the loop cannot arise).
    let wide = ABIS.first().is_some_and(|abi| abi.wide);
    let a0s: &[u64] = if wide { &[8, 1 << 32] } else { &[8] };
    for &a0 in a0s {
        assert_eq!(call(&[a0, 5]), kill, "{a0:#x}");
        assert_eq!(call(&[a0, 0, 0, 0, 0, 1]), trap, "{a0:#x}");
        assert_eq!(call(&[a0, 5, 0, 0, 0, 1]), trap, "{a0:#x}");
        assert_eq!(call(&[a0, 4, 0, 0, 0, 2]), ALLOW, "{a0:#x}");
    }
    assert_eq!(call(&[7, 5, 0, 0, 0, 1]), ALLOW);
}
