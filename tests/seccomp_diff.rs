//! Seccomp under dory and under runc (Debian's 1.1.5 with libseccomp 2.5.4: the
//! reference): the same bundle and profile, and a static probe
//! (`fixtures/seccomp_probe.c`, built with `gcc -static` at test time) that makes ~90
//! syscalls whose arguments hit and miss the profile's rules, each in a child, and prints
//! one line per call (return value and errno, or the signal that killed the child). The
//! outputs must be equal line for line. Needs root, runc and gcc; the i386 test needs
//! ci/setup's i386 busybox.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[macro_use]
mod common;

use std::path::Path;
use std::process::Command;

use common::{run_cmd, run_cmd_input, Bundle, Out, DORY};
use serde_json::{json, Value};

const PROBE_SRC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/seccomp_probe.c"
);
const PODMAN: &str = include_str!("fixtures/podman-4.3-config.json");
/// Unpacked from busybox-static:i386 by ci/setup (`DORY_I386_BUSYBOX` in ci/lib.sh).
const I386_BUSYBOX: &str = "/usr/local/lib/dory-i386/busybox";

/// podman 4.3's profile (default ERRNO(ENOSYS), x86_64 + x86 + x32 listed).
fn podman() -> Value {
    let c: Value = serde_json::from_str(PODMAN).unwrap();
    c["linux"]["seccomp"].clone()
}

/// A rule: `args` are (index, op without `SCMP_CMP_`, value[, valueTwo]).
fn rule(names: &[&str], action: &str, errno: Option<u32>, args: &[(u32, &str, u64, u64)]) -> Value {
    let mut r = json!({"names": names, "action": format!("SCMP_ACT_{action}")});
    if let Some(e) = errno {
        r["errnoRet"] = json!(e);
    }
    if !args.is_empty() {
        let a: Vec<Value> = args
            .iter()
            .map(|(i, op, v, two)| {
                json!({"index": i, "op": format!("SCMP_CMP_{op}"), "value": v, "valueTwo": two})
            })
            .collect();
        r["args"] = Value::from(a);
    }
    r
}

fn errno(names: &[&str], e: u32, args: &[(u32, &str, u64, u64)]) -> Value {
    rule(names, "ERRNO", Some(e), args)
}

fn allow_by_default(rules: Vec<Value>) -> Value {
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules})
}

/// A bundle running `args` under `profile`, with the probe (and `extra` files) in a
/// directory bound read-only at /mnt.
fn bundle(name: &str, profile: &Value, args: &[&str], extra: &[(&str, &str)]) -> Bundle {
    let mut b = Bundle::new(name, args);
    let dir = b.base.join("mnt");
    std::fs::create_dir(&dir).unwrap();
    let gcc = run_cmd(
        Command::new("gcc")
            .args(["-static", "-O1", "-o"])
            .arg(dir.join("probe"))
            .arg(PROBE_SRC),
    );
    assert_eq!(gcc.code, 0, "gcc -static failed: {}", gcc.stderr);
    for (from, to) in extra {
        std::fs::copy(from, dir.join(to)).unwrap_or_else(|e| panic!("copy {from}: {e}"));
    }
    b.config["linux"]["seccomp"] = profile.clone();
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/mnt", "type": "bind", "source": dir, "options": ["rbind", "ro"]
    }));
    b
}

fn runc_available() -> bool {
    let ok = Command::new("runc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIPPED: seccomp_diff: needs runc");
    }
    ok
}

fn runc_run(b: &Bundle) -> Out {
    b.write_config();
    let mut cmd = Command::new("runc");
    cmd.arg("--root")
        .arg(&b.state_root)
        .args(["run", "--bundle"])
        .arg(&b.dir)
        .arg(&b.id);
    run_cmd(&mut cmd)
}

/// `args` under dory and under runc with `profile`: (dory, runc).
fn both(name: &str, profile: &Value, args: &[&str], extra: &[(&str, &str)]) -> (Out, Out) {
    let d = bundle(&format!("{name}-dory"), profile, args, extra);
    let dory = d.run();
    let r = bundle(&format!("{name}-runc"), profile, args, extra);
    let runc = runc_run(&r);
    d.assert_nothing_left();
    (dory, runc)
}

/// Runs the probe under both and asserts equal outputs; returns dory's.
fn probe_like_runc(name: &str, profile: &Value) -> String {
    let (dory, runc) = both(name, profile, &["/mnt/probe"], &[]);
    assert_eq!(runc.code, 0, "runc: {}", runc.stderr);
    assert_eq!(dory.code, 0, "dory: {}", dory.stderr);
    let (d, r): (Vec<&str>, Vec<&str>) =
        (dory.stdout.lines().collect(), runc.stdout.lines().collect());
    assert_eq!(
        r.last(),
        Some(&"end"),
        "runc's probe did not finish:\n{}",
        runc.stdout
    );
    let diff: Vec<String> = (0..d.len().max(r.len()))
        .filter(|i| d.get(*i) != r.get(*i))
        .map(|i| format!("  runc: {:?}\n  dory: {:?}", r.get(i), d.get(i)))
        .collect();
    assert!(
        diff.is_empty(),
        "{name}: {} lines differ:\n{}",
        diff.len(),
        diff.join("\n")
    );
    dory.stdout
}

fn has(out: &str, line: &str) {
    assert!(
        out.lines().any(|l| l == line),
        "no line {line:?} in:\n{out}"
    );
}

/// Item 8: `setns` is named by an ALLOW rule, then by an ERRNO(1) rule: the first
/// unconditional rule wins. i386 and x32 are listed: judged by the rules (item 10).
#[test]
fn podman_profile_like_runc() {
    needs_root!();
    if !runc_available() {
        return;
    }
    let out = probe_like_runc("sc-podman", &podman());
    has(&out, "setns-bad ret=-1 errno=9");
    has(&out, "i386-setns-bad ret=-1 errno=9");
    has(&out, "personality-hi ret=-1 errno=38");
}

/// Every action: ERRNO (with values, 0 and the largest), KILL, KILL_PROCESS,
/// KILL_THREAD, TRAP (SIGSYS), TRACE (ENOSYS without a tracer), LOG, ALLOW (== the
/// default: dropped). Unlisted i386/x32 calls are killed.
#[test]
fn every_action_like_runc() {
    needs_root!();
    if !runc_available() {
        return;
    }
    let p = allow_by_default(vec![
        errno(&["getpgid"], 13, &[]),
        rule(&["getsid"], "ERRNO", None, &[]),
        rule(&["fsync"], "KILL", None, &[]),
        rule(&["fdatasync"], "KILL_PROCESS", None, &[]),
        rule(&["flock"], "KILL_THREAD", None, &[]),
        rule(&["fchdir"], "TRAP", None, &[]),
        rule(&["sched_yield"], "TRACE", None, &[]),
        rule(&["getppid"], "LOG", None, &[]),
        errno(&["dup"], 0, &[]),
        rule(&["close"], "ALLOW", None, &[]),
        errno(&["getpriority"], 4094, &[]),
    ]);
    let out = probe_like_runc("sc-actions", &p);
    for line in [
        "getsid-big ret=-1 errno=1",
        "fsync-bad signal=31",
        "fchdir-bad signal=31",
        "sched_yield ret=-1 errno=38",
        "dup-bad ret=0 errno=0",
        "getpriority-bad ret=-1 errno=4094",
        "i386-getppid signal=31",
        "x32-getppid signal=31",
    ] {
        has(&out, line);
    }
}

/// Every operator around 1000, on 64-bit values with and without a high word.
/// MASKED_EQ compares the value masked (libseccomp): 0x1f0 under mask 0xf0 is 0xf0.
#[test]
fn every_operator_like_runc() {
    needs_root!();
    if !runc_available() {
        return;
    }
    let p = allow_by_default(vec![
        errno(&["lseek"], 11, &[(1, "EQ", 1000, 0)]),
        errno(&["fsync"], 12, &[(0, "NE", 1001, 0)]),
        errno(&["fdatasync"], 13, &[(0, "LT", 1000, 0)]),
        errno(&["getpgid"], 14, &[(0, "LE", 1000, 0)]),
        errno(&["getsid"], 15, &[(0, "GT", 1000, 0)]),
        errno(&["fchdir"], 16, &[(0, "GE", 1000, 0)]),
        errno(&["flock"], 17, &[(1, "MASKED_EQ", 0xf0, 0x1f0)]),
        errno(&["kill"], 18, &[(0, "EQ", 999_000, 0)]),
    ]);
    let out = probe_like_runc("sc-ops", &p);
    for line in [
        "lseek-eq-hi ret=-1 errno=9",
        "fsync-hi ret=-1 errno=12",
        "fdatasync-hi ret=-1 errno=9",
        "getsid-hi ret=-1 errno=15",
        "flock-0x1f5 ret=-1 errno=17",
        "flock-0xe5 ret=0 errno=0",
    ] {
        has(&out, line);
    }
}

/// Item 8: several rules for one syscall. An unconditional rule replaces earlier
/// conditional ones; conditional rules go by argument index (higher first), operator
/// and value, not config order; several conditions on one rule; one argument twice (OR);
/// MASKED_EQ with a zero mask (unconditional).
#[test]
fn precedence_like_runc() {
    needs_root!();
    if !runc_available() {
        return;
    }
    let p = allow_by_default(vec![
        errno(&["dup"], 21, &[(0, "EQ", 1000, 0)]),
        errno(&["dup"], 22, &[]),
        errno(&["dup"], 23, &[(0, "EQ", 1001, 0)]),
        rule(&["close"], "ALLOW", None, &[]),
        errno(&["close"], 24, &[(0, "EQ", 1000, 0)]),
        errno(&["lseek"], 25, &[(0, "EQ", 1000, 0)]),
        errno(&["lseek"], 26, &[(2, "EQ", 2, 0)]),
        errno(&["kill"], 27, &[(1, "EQ", 0, 0)]),
        rule(&["kill"], "TRAP", None, &[(0, "EQ", 999_007, 0)]),
        errno(&["getpriority"], 28, &[(0, "EQ", 7, 0), (1, "GE", 2, 0)]),
        errno(&["getpriority"], 29, &[(0, "EQ", 8, 0), (1, "LE", 1, 0)]),
        errno(&["fsync"], 30, &[(0, "EQ", 1001, 0), (0, "EQ", 1002, 0)]),
        errno(&["getsid"], 31, &[(0, "GT", 999, 0)]),
        errno(&["getsid"], 32, &[(0, "LT", 1001, 0)]),
        errno(&["getsid"], 33, &[(0, "EQ", 1000, 0)]),
        errno(&["fchdir"], 34, &[(0, "GT", 999, 0)]),
        errno(&["fchdir"], 35, &[(0, "GT", 1000, 0)]),
        errno(&["fdatasync"], 36, &[(0, "MASKED_EQ", 0, 5)]),
        errno(&["fdatasync"], 37, &[(0, "EQ", 1000, 0)]),
    ]);
    let out = probe_like_runc("sc-prec", &p);
    for line in [
        "dup-1000 ret=-1 errno=22",
        "close-1000 ret=-1 errno=24",
        "lseek-eq ret=-1 errno=25",
        "lseek-whence2 ret=-1 errno=26",
        "kill-7-0 ret=-1 errno=27",
        "getpriority-7-2 ret=-1 errno=28",
        "getpriority-8-1 ret=-1 errno=29",
        "fsync-1002 ret=-1 errno=30",
        "getsid-1000 ret=-1 errno=33",
        "getsid-1001 ret=-1 errno=31",
        "fchdir-1001 ret=-1 errno=35",
        "fdatasync-1000 ret=-1 errno=36",
    ] {
        has(&out, line);
    }
}

/// Item 8: a rule whose action equals the default (ERRNO(38) here) is dropped, so a
/// later ALLOW applies; an earlier unconditional ERRNO(5) beats podman's later ALLOW.
#[test]
fn rule_with_the_default_action_is_dropped_like_runc() {
    needs_root!();
    if !runc_available() {
        return;
    }
    let mut p = podman();
    let rules = p["syscalls"].as_array_mut().unwrap();
    rules.insert(0, errno(&["sched_yield"], 5, &[]));
    rules.insert(0, errno(&["getppid"], 38, &[]));
    let out = probe_like_runc("sc-default", &p);
    has(&out, "getppid ret=1 errno=0");
    has(&out, "sched_yield ret=-1 errno=5");
}

/// podman's profile without its names numbered 435 and above, and with the default
/// errno EPERM.
fn podman_before_435() -> Value {
    let newer: Vec<&str> = include_str!("../src/seccomp/tables.rs")
        .split("pub(crate) const X86_64")
        .nth(1)
        .and_then(|t| t.split("];").next())
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (name, nr) = l.trim().strip_prefix("(\"")?.split_once("\", ")?;
            let nr: u32 = nr.trim_end_matches("),").parse().ok()?;
            (nr >= 435).then_some(name)
        })
        .collect();
    assert!(newer.contains(&"clone3"));
    let mut p = podman();
    p.as_object_mut().unwrap().remove("defaultErrnoRet");
    for r in p["syscalls"].as_array_mut().unwrap() {
        r["names"]
            .as_array_mut()
            .unwrap()
            .retain(|n| !newer.contains(&n.as_str().unwrap()));
    }
    p
}

/// Item 9: with `podman_before_435`, clone3 (435) and later get ENOSYS (runc's stub),
/// older unnamed syscalls EPERM; i386 and x32 by their own highest numbers.
#[test]
fn newer_syscalls_get_enosys_like_runc() {
    needs_root!();
    if !runc_available() {
        return;
    }
    let out = probe_like_runc("sc-enosys", &podman_before_435());
    has(&out, "clone3-null ret=-1 errno=38");
    has(&out, "add_key-null ret=-1 errno=1");
    has(&out, "i386-nr-1000 ret=-1 errno=38");
}

/// Item 9: the stub covers only the ABIs `architectures` lists (none if it is empty).
#[test]
fn enosys_stub_follows_the_listed_architectures_like_runc() {
    needs_root!();
    if !runc_available() {
        return;
    }
    for (name, arches) in [
        ("sc-enosys-64", json!(["SCMP_ARCH_X86_64"])),
        ("sc-enosys-none", json!([])),
        (
            "sc-enosys-compat",
            json!(["SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
        ),
    ] {
        let mut p = podman_before_435();
        p["architectures"] = arches;
        let out = probe_like_runc(name, &p);
        let clone3 = if name == "sc-enosys-64" { 38 } else { 1 };
        has(&out, &format!("clone3-null ret=-1 errno={clone3}"));
    }
}

/// Item 10: listed i386 is filtered by the same rules with i386's numbers.
#[test]
fn i386_calls_follow_the_rules_like_runc() {
    needs_root!();
    if !runc_available() {
        return;
    }
    let mut p = allow_by_default(vec![
        errno(&["getppid"], 41, &[]),
        errno(&["personality"], 42, &[(0, "EQ", 9, 0)]),
        rule(&["setns"], "KILL", None, &[]),
    ]);
    p["architectures"] = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]);
    let out = probe_like_runc("sc-i386", &p);
    has(&out, "i386-getppid ret=-1 errno=41");
    has(&out, "i386-personality-8 ret=-1 errno=42");
    has(&out, "i386-setns-bad signal=31");
    has(&out, "x32-getppid signal=31");
}

/// Item 10: a static i386 busybox runs `echo` under podman's profile as under runc.
#[test]
fn i386_busybox_runs_under_podmans_profile() {
    needs_root!();
    if !runc_available() {
        return;
    }
    assert!(
        Path::new(I386_BUSYBOX).exists(),
        "{I386_BUSYBOX} is missing: run ci/setup (busybox-static:i386)"
    );
    let args = [
        "/mnt/busybox",
        "sh",
        "-c",
        "/mnt/busybox echo hello from i386",
    ];
    let extra = [(I386_BUSYBOX, "busybox")];
    let (dory, runc) = both("sc-busybox386", &podman(), &args, &extra);
    assert_eq!(
        (runc.code, runc.stdout.as_str()),
        (0, "hello from i386\n"),
        "runc: {}",
        runc.stderr
    );
    assert_eq!(
        (dory.code, dory.stdout.as_str()),
        (0, "hello from i386\n"),
        "dory: {}",
        dory.stderr
    );
}

/// Item 11: podman's profile as one rule per name (456 rules), and a rule with 7
/// conditions (one argument named 7 times: alternatives), load and decide as under runc.
#[test]
fn hundreds_of_rules_and_many_conditions_like_runc() {
    needs_root!();
    if !runc_available() {
        return;
    }
    let mut p = podman();
    let mut split = Vec::new();
    for r in p["syscalls"].as_array().unwrap() {
        for n in r["names"].as_array().unwrap() {
            let mut one = r.clone();
            one["names"] = json!([n]);
            split.push(one);
        }
    }
    // add_key is not in podman's list: the rule decides.
    let seven: Vec<(u32, &str, u64, u64)> = [7, 6, 5, 4, 3, 2, 0]
        .iter()
        .map(|v| (0, "EQ", *v, 0))
        .collect();
    split.insert(0, errno(&["add_key"], 40, &seven));
    assert!(split.len() > 400, "{} rules", split.len());
    p["syscalls"] = Value::from(split);
    let out = probe_like_runc("sc-capacity", &p);
    has(&out, "add_key-null ret=-1 errno=40");
    has(&out, "setns-bad ret=-1 errno=9");
}

/// The session id of the container's init (field 6 of /proc/1/stat) printed by it.
const SID: &str = "echo sid=$(cut -d' ' -f6 /proc/1/stat)";

/// Item 12: the container's init is a session leader (sid 1 in its pid namespace) under
/// runc; with and without a terminal.
#[test]
fn init_is_a_session_leader_like_runc() {
    needs_root!();
    if !runc_available() {
        return;
    }
    let (dory, runc) = both("sc-setsid", &podman(), &["sh", "-c", SID], &[]);
    assert_eq!(runc.stdout, "sid=1\n", "runc: {}", runc.stderr);
    assert_eq!(dory.stdout, "sid=1\n", "dory: {}", dory.stderr);
    for rt in ["dory", "runc"] {
        let mut b = bundle(
            &format!("sc-setsid-tty-{rt}"),
            &podman(),
            &["sh", "-c", SID],
            &[],
        );
        b.config["process"]["terminal"] = Value::Bool(true);
        b.write_config();
        let exe = if rt == "dory" { DORY } else { "runc" };
        let cmdline = format!(
            "{exe} --root {} run --bundle {} {}",
            b.state_root.display(),
            b.dir.display(),
            b.id
        );
        let out = run_cmd_input(
            Command::new("script").args(["-qec", &cmdline, "/dev/null"]),
            None,
        );
        // (script echoes its end of input, ^@, somewhere around the output)
        let text = out.stdout.replace('\r', "").replace("^@", "");
        let sid = text.lines().find(|l| l.starts_with("sid="));
        assert_eq!(
            sid,
            Some("sid=1"),
            "{rt} with a terminal: {text}{}",
            out.stderr
        );
    }
}

/// Item 13: without `noNewPrivileges` the filter is loaded before the last checks; one it
/// refuses (here the procfs check of the exec fifo's reopen: `fstatfs`) fails `create`
/// with the errno it got, as under runc, not a later `start` with "stopped".
#[test]
fn failure_after_the_filter_reports_its_errno_like_runc() {
    needs_root!();
    if !runc_available() {
        return;
    }
    let p = allow_by_default(vec![errno(&["fstatfs"], 22, &[])]);
    for rt in ["dory", "runc"] {
        let mut b = bundle(&format!("sc-late-{rt}"), &p, &["true"], &[]);
        b.config["process"]["noNewPrivileges"] = Value::Bool(false);
        b.write_config();
        let exe = if rt == "dory" { DORY } else { "runc" };
        let mut cmd = Command::new(exe);
        cmd.arg("--root")
            .arg(&b.state_root)
            .args(["create", "--bundle"])
            .arg(&b.dir)
            .arg(&b.id);
        let out = run_cmd(&mut cmd);
        assert_ne!(out.code, 0, "{rt} create succeeded");
        assert!(
            out.stderr.to_lowercase().contains("invalid argument"),
            "{rt}: {}",
            out.stderr
        );
        if rt == "dory" {
            assert!(out.stderr.contains("exec fifo"), "{}", out.stderr);
            b.assert_nothing_left();
        } else {
            let mut del = Command::new("runc");
            del.arg("--root")
                .arg(&b.state_root)
                .args(["delete", "-f"])
                .arg(&b.id);
            let _ = run_cmd(&mut del);
        }
    }
}

/// Item 8: rules libseccomp refuses (checks that meet with another action: equal in the
/// low words, which is all i386 compares; range checks sharing their high word) fail
/// under both, dory naming the rule.
#[test]
fn conflicting_rules_are_refused_like_runc() {
    needs_root!();
    if !runc_available() {
        return;
    }
    let nine = |v: u64, e: u32| errno(&["personality"], e, &[(0, "EQ", v, 0)]);
    let mut low_words = allow_by_default(vec![nine(9, 61), nine((1 << 32) + 9, 62)]);
    low_words["architectures"] = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]);
    // Range checks sharing their high word share libseccomp's high-word nodes.
    let ranges = allow_by_default(vec![
        errno(&["flock"], 30, &[(0, "LT", 1000, 0), (1, "NE", 501, 0)]),
        errno(&["flock"], 1, &[(0, "LT", 1001, 0)]),
    ]);
    for (name, p) in [("sc-conflict", low_words), ("sc-conflict-ranges", ranges)] {
        let (dory, runc) = both(name, &p, &["true"], &[]);
        assert_ne!(runc.code, 0, "runc accepted {name}");
        assert!(runc.stderr.contains("file exists"), "runc: {}", runc.stderr);
        assert_ne!(dory.code, 0, "dory accepted {name}");
        assert!(
            dory.stderr
                .contains("config.json: linux.seccomp.syscalls[1]: an earlier rule"),
            "dory: {}",
            dory.stderr
        );
    }
}
