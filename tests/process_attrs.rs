//! Process attributes the kernel keeps across execve, checked from inside the container
//! (and for `dory exec`): `linux.personality`, `process.ioPriority`, `process.scheduler`,
//! `process.execCPUAffinity`, `linux.memoryPolicy`. Needs root; skips visibly otherwise.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[macro_use]
mod common;

use std::path::PathBuf;

use common::{cgroup_mounts, run_cmd, Bundle, Out, TempDir};
use serde_json::{json, Value};

fn dory_in(b: &Bundle, args: &[&str]) -> Out {
    run_cmd(&mut b.cmd(args))
}

/// `create` + `start` of a container whose init sleeps, for `exec` to join.
fn started(b: &Bundle) {
    b.write_config();
    let dir = b.dir.to_str().unwrap();
    dory_in(b, &["create", "--bundle", dir, &b.id]).expect_code(0);
    dory_in(b, &["start", &b.id]).expect_code(0);
}

/// `dory exec` in `b` with `args`, then the container is deleted (the result is checked
/// after, so a failed assertion still leaves nothing running).
fn exec_then_delete(b: &Bundle, args: &[&str]) -> Out {
    let mut full = vec!["exec", b.id.as_str()];
    full.extend_from_slice(args);
    let out = dory_in(b, &full);
    dory_in(b, &["delete", "--force", &b.id]).expect_code(0);
    out
}

/// `exec -p FILE` with `process` written to a temp file.
fn exec_process_file(b: &Bundle, process: &Value) -> Out {
    let dir = TempDir::new("procattrs-p");
    let file = dir.path.join("process.json");
    std::fs::write(&file, serde_json::to_string(process).unwrap()).unwrap();
    dory_in(b, &["exec", "-p", file.to_str().unwrap(), &b.id])
}

/// The container's process (`config.process`) with other args, for `exec -p`.
fn process_with_args(b: &Bundle, args: &[&str]) -> Value {
    let mut p = b.config["process"].clone();
    p["args"] = json!(args);
    p
}

/// Runs `b` and expects a refusal naming `needle`, with nothing left behind.
fn refused(b: &Bundle, needle: &str) {
    let out = b.run();
    assert_ne!(out.code, 0, "{out:?}");
    // The message as written, out of runc's `msg="…"` quoting (`\"` for `"`).
    let message = out.stderr.replace("\\\"", "\"");
    assert!(message.contains(needle), "want {needle:?} in {out:?}");
    b.assert_nothing_left();
}

/// What `uname -m` says under PER_LINUX32 on this machine.
fn machine32() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "i686",
        "aarch64" => "armv7l",
        other => panic!("no 32-bit personality known for {other}"),
    }
}

#[test]
fn personality_linux32_shows_the_32_bit_machine_in_run_and_exec() {
    needs_root!();
    let host = run_cmd(std::process::Command::new("uname").arg("-m"));
    let host = host.stdout.trim().to_owned();
    let script = "uname -m; cat /proc/self/personality";
    let plain = Bundle::new("pers-none", &["sh", "-c", script]);
    let out = plain.run();
    out.expect_code(0);
    assert_eq!(out.stdout.lines().collect::<Vec<_>>(), [&*host, "00000000"]);
    for (domain, want, persona) in [
        ("LINUX32", machine32(), "00000008"),
        ("LINUX", &*host, "00000000"),
    ] {
        let mut b = Bundle::new("pers", &["sh", "-c", script]);
        b.config["linux"]["personality"] = json!({"domain": domain});
        let out = b.run();
        out.expect_code(0);
        assert_eq!(
            out.stdout.lines().collect::<Vec<_>>(),
            [want, persona],
            "{domain}"
        );
        b.assert_nothing_left();
    }
    // An exec'd process gets the container's personality too (runc's setns init).
    let mut b = Bundle::new("pers-exec", &["sleep", "30"]);
    b.config["linux"]["personality"] = json!({"domain": "LINUX32"});
    started(&b);
    let out = exec_then_delete(&b, &["uname", "-m"]);
    out.expect_code(0);
    assert_eq!(out.stdout.trim(), machine32());
    b.assert_nothing_left();
}

#[test]
fn io_priority_for_the_init_and_exec() {
    needs_root!();
    let mut b = Bundle::new("ioprio", &["sh", "-c", "ionice -p $$; ionice -p 1"]);
    b.config["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
    let out = b.run();
    out.expect_code(0);
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["best-effort: prio 6", "best-effort: prio 6"]
    );
    b.assert_nothing_left();
    // Seen from the host too, and given to an exec'd process; `exec -p` brings its own.
    let mut b = Bundle::new("ioprio-exec", &["sleep", "30"]);
    b.config["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
    started(&b);
    let pid = b.state().unwrap().pid.to_string();
    let host = run_cmd(std::process::Command::new("ionice").args(["-p", &pid]));
    assert_eq!(host.stdout.trim(), "idle", "{host:?}");
    let mut p = process_with_args(&b, &["sh", "-c", "ionice -p $$"]);
    p["ioPriority"] = json!({"class": "IOPRIO_CLASS_RT", "priority": 2});
    let own = exec_process_file(&b, &p);
    let inherited = exec_then_delete(&b, &["sh", "-c", "ionice -p $$"]);
    inherited.expect_code(0);
    own.expect_code(0);
    assert_eq!(inherited.stdout.trim(), "idle");
    assert_eq!(own.stdout.trim(), "realtime: prio 2");
    b.assert_nothing_left();
}

/// (policy, rt_priority, nice) of the process whose /proc/<pid>/stat this is.
fn sched_of(stat: &str) -> (u32, u32, i32) {
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 19 (nice), 40 (rt_priority), 41 (policy); `rest` starts at field 3.
    (
        f[38].parse().unwrap(),
        f[37].parse().unwrap(),
        f[16].parse().unwrap(),
    )
}

#[test]
fn scheduler_batch_with_nice_for_the_init_and_exec() {
    needs_root!();
    let mut b = Bundle::new("sched", &["cat", "/proc/self/stat"]);
    b.config["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7});
    let out = b.run();
    out.expect_code(0);
    assert_eq!(sched_of(&out.stdout), (3, 0, 7), "{}", out.stdout);
    b.assert_nothing_left();
    let mut b = Bundle::new("sched-exec", &["sleep", "30"]);
    b.config["process"]["scheduler"] = json!({"policy": "SCHED_IDLE"});
    started(&b);
    let out = exec_then_delete(&b, &["cat", "/proc/self/stat"]);
    out.expect_code(0);
    assert_eq!(sched_of(&out.stdout).0, 5, "{}", out.stdout);
    b.assert_nothing_left();
}

#[test]
fn scheduler_deadline_even_from_a_pinned_caller() {
    needs_root!();
    // The kernel refuses SCHED_DEADLINE to a task whose affinity does not span its root
    // domain (EPERM): the affinity is reset before the scheduler is set, so a caller pinned
    // to one CPU does not make the container fail.
    let mut b = Bundle::new("sched-dl", &["cat", "/proc/self/stat"]);
    b.config["process"]["scheduler"] = json!({
        "policy": "SCHED_DEADLINE", "runtime": 1_000_000, "deadline": 10_000_000, "period": 10_000_000
    });
    b.write_config();
    let dir = b.dir.to_str().unwrap().to_owned();
    let out = dory_on_cpu1(&b, &["run", "--bundle", &dir, &b.id]);
    out.expect_code(0);
    assert_eq!(sched_of(&out.stdout).0, 6, "{}", out.stdout);
    b.assert_nothing_left();
}

/// A cgroup at the top of every hierarchy (a real-time budget must come from the root's,
/// which `/dory-test` does not have), removed on drop.
struct TopCgroup(String);

impl Drop for TopCgroup {
    fn drop(&mut self) {
        for m in cgroup_mounts() {
            let _ = std::fs::remove_dir(m.join(&self.0));
        }
    }
}

#[test]
fn scheduler_fifo_needs_a_realtime_budget_in_cgroup_v1() {
    needs_root!();
    let rt_root = PathBuf::from("/sys/fs/cgroup/cpu/cpu.rt_runtime_us");
    assert!(
        rt_root.exists(),
        "this test expects cgroup v1 with RT group scheduling (see README)"
    );
    // Without a budget the kernel refuses (EPERM), as for runc: the error says what to set.
    let mut b = Bundle::new("sched-fifo", &["cat", "/proc/self/stat"]);
    b.config["process"]["scheduler"] = json!({"policy": "SCHED_FIFO", "priority": 10});
    refused(&b, "linux.resources.cpu.realtimeRuntime");
    // With one, the process runs SCHED_FIFO at priority 10.
    let mut b = Bundle::new("sched-fifo-rt", &["cat", "/proc/self/stat"]);
    let top = TopCgroup(format!("dory-rt-{}", b.id));
    b.config["linux"]["cgroupsPath"] = json!(format!("/{}", top.0));
    b.config["linux"]["resources"]["cpu"] =
        json!({"realtimeRuntime": 10000, "realtimePeriod": 1000000});
    b.config["process"]["scheduler"] = json!({"policy": "SCHED_FIFO", "priority": 10});
    let out = b.run();
    out.expect_code(0);
    // (The nice value of an RT task is whatever it had: not compared.)
    let (policy, rt_priority, _) = sched_of(&out.stdout);
    assert_eq!((policy, rt_priority), (1, 10), "{}", out.stdout);
    for m in cgroup_mounts() {
        assert!(!m.join(&top.0).exists(), "{} left behind", top.0);
    }
}

/// `Cpus_allowed_list` of /proc/self/status in `text`.
fn cpus_allowed(text: &str) -> &str {
    text.lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no Cpus_allowed_list in {text}"))
}

/// CPUs this machine has online, e.g. "0-1"; the test needs two.
fn online_cpus() -> String {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .unwrap()
        .trim()
        .to_owned()
}

/// `dory --root <state> ARGS…` run on CPU 1 only (`taskset`), as a caller pinned there.
fn dory_on_cpu1(b: &Bundle, args: &[&str]) -> Out {
    let mut c = std::process::Command::new("taskset");
    c.args(["-c", "1", common::DORY, "--root"])
        .arg(&b.state_root)
        .args(args);
    run_cmd(&mut c)
}

const STATUS: [&str; 3] = ["grep", "Cpus_allowed_list", "/proc/self/status"];

#[test]
fn exec_cpu_affinity_final_and_initial() {
    needs_root!();
    let all = online_cpus();
    assert_eq!(all, "0-1", "this test needs CPUs 0 and 1 online");
    let mut b = Bundle::new("affinity", &["sleep", "30"]);
    b.config["process"]["execCPUAffinity"] = json!({"initial": "1", "final": "0"});
    b.write_config();
    let dir = b.dir.to_str().unwrap().to_owned();
    // Created by a caller pinned to CPU 1: the init gets every CPU (the setting is for
    // exec'd processes only, and runc resets the init's affinity).
    dory_on_cpu1(&b, &["create", "--bundle", &dir, &b.id]).expect_code(0);
    dory_in(&b, &["start", &b.id]).expect_code(0);
    let pid = b.state().unwrap().pid;
    let init = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    // `final` from the config.
    let mut args = vec!["exec", b.id.as_str()];
    args.extend_from_slice(&STATUS);
    let fin = dory_in(&b, &args);
    // `exec -p` with `initial` only: the process stays there after the cgroup join.
    let mut p = process_with_args(&b, &STATUS);
    p["execCPUAffinity"] = json!({"initial": "1"});
    let initial_only = exec_process_file(&b, &p);
    dory_in(&b, &["delete", "--force", &b.id]).expect_code(0);
    assert_eq!(cpus_allowed(&init), all, "init");
    fin.expect_code(0);
    assert_eq!(cpus_allowed(&fin.stdout), "0", "final");
    initial_only.expect_code(0);
    assert_eq!(cpus_allowed(&initial_only.stdout), "1", "initial only");
    b.assert_nothing_left();
}

#[test]
fn without_exec_cpu_affinity_the_callers_affinity_is_not_inherited() {
    needs_root!();
    let all = online_cpus();
    assert_eq!(all, "0-1", "this test needs CPUs 0 and 1 online");
    // As runc: the init and exec'd processes get every CPU their cgroup allows, whatever
    // CPUs the runtime's caller was pinned to.
    let b = Bundle::new("affinity-reset", &["sleep", "30"]);
    b.write_config();
    let dir = b.dir.to_str().unwrap().to_owned();
    dory_on_cpu1(&b, &["create", "--bundle", &dir, &b.id]).expect_code(0);
    dory_in(&b, &["start", &b.id]).expect_code(0);
    let pid = b.state().unwrap().pid;
    let init = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let mut args = vec!["exec", b.id.as_str()];
    args.extend_from_slice(&STATUS);
    let exec = dory_on_cpu1(&b, &args);
    dory_in(&b, &["delete", "--force", &b.id]).expect_code(0);
    assert_eq!(cpus_allowed(&init), all, "init");
    exec.expect_code(0);
    assert_eq!(cpus_allowed(&exec.stdout), all, "exec");
    b.assert_nothing_left();
}

#[test]
fn exec_cpu_affinity_outside_the_cpuset_is_an_error() {
    needs_root!();
    let mut b = Bundle::new("affinity-cpuset", &["sleep", "30"]);
    b.config["linux"]["resources"]["cpu"] = json!({"cpus": "0", "mems": "0"});
    b.config["process"]["execCPUAffinity"] = json!({"final": "1"});
    started(&b);
    let out = exec_then_delete(&b, &["true"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("process.execCPUAffinity.final: sched_setaffinity: Invalid argument"),
        "{out:?}"
    );
    b.assert_nothing_left();
}

/// The policies /proc/self/numa_maps shows, one per mapping.
fn numa_policies(text: &str) -> Vec<&str> {
    text.lines().filter_map(|l| l.split(' ').nth(1)).collect()
}

#[test]
fn memory_policy_for_the_init_and_exec() {
    needs_root!();
    for (mode, want) in [
        ("MPOL_BIND", "bind:0"),
        ("MPOL_INTERLEAVE", "interleave:0"),
        ("MPOL_PREFERRED", "prefer:0"),
    ] {
        let mut b = Bundle::new("mempolicy", &["cat", "/proc/self/numa_maps"]);
        b.config["linux"]["memoryPolicy"] = json!({"mode": mode, "nodes": "0"});
        let out = b.run();
        out.expect_code(0);
        let p = numa_policies(&out.stdout);
        assert!(
            !p.is_empty() && p.iter().all(|x| *x == want),
            "{mode}: {}",
            out.stdout
        );
        b.assert_nothing_left();
    }
    let mut b = Bundle::new("mempolicy-exec", &["sleep", "30"]);
    b.config["linux"]["memoryPolicy"] =
        json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]});
    started(&b);
    let out = exec_then_delete(&b, &["cat", "/proc/self/numa_maps"]);
    out.expect_code(0);
    let p = numa_policies(&out.stdout);
    assert!(
        !p.is_empty() && p.iter().all(|x| *x == "bind=static:0"),
        "{}",
        out.stdout
    );
    b.assert_nothing_left();
}

#[test]
fn memory_policy_on_a_missing_node_fails_like_runc() {
    needs_root!();
    let online = std::fs::read_to_string("/sys/devices/system/node/online").unwrap();
    assert_eq!(online.trim(), "0", "this test expects a single NUMA node");
    // runc: "set_mempolicy: invalid argument" from the container's init.
    let mut b = Bundle::new("mempolicy-bad", &["true"]);
    b.config["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "1"});
    refused(&b, "linux.memoryPolicy: set_mempolicy: Invalid argument");
}

#[test]
fn bad_attributes_are_refused_before_anything_is_made() {
    needs_root!();
    for (section, key, value, needle) in [
        (
            "process",
            "ioPriority",
            json!({"class": "IOPRIO_CLASS_BE", "priority": 8}),
            "config.json: process.ioPriority.priority: 8 is outside 0..7 (limit)",
        ),
        (
            "process",
            "scheduler",
            json!({"policy": "SCHED_SOMETIMES"}),
            "config.json: process.scheduler.policy: unknown policy \"SCHED_SOMETIMES\"",
        ),
        (
            "process",
            "execCPUAffinity",
            json!({"final": "0-2048"}),
            "config.json: process.execCPUAffinity.final: \"0-2048\": 2048 is above 1023 (limit)",
        ),
        (
            "linux",
            "personality",
            json!({"domain": "PER_BSD"}),
            "config.json: linux.personality.domain: unknown domain \"PER_BSD\"",
        ),
        (
            "linux",
            "memoryPolicy",
            json!({"mode": "MPOL_BIND", "nodes": "1-0"}),
            "config.json: linux.memoryPolicy.nodes: \"1-0\": a range ends below its start",
        ),
    ] {
        let mut b = Bundle::new("attrs-bad", &["true"]);
        b.config[section][key] = value;
        refused(&b, needle);
    }
}
