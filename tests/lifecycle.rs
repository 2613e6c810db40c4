//! The OCI lifecycle through dory's CLI on a real busybox rootfs: create/start/state/
//! kill/delete and their errors, run --detach with a pid file, exec, ps, pause/resume,
//! update/events, hooks in every phase, user and time namespaces. Needs root; skips
//! visibly otherwise.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::{run_cmd, Bundle, Out};
use serde_json::Value;

fn dory_in(b: &Bundle, args: &[&str]) -> Out {
    run_cmd(&mut b.cmd(args))
}

fn status_of(b: &Bundle) -> String {
    let out = dory_in(b, &["state", &b.id]);
    out.expect_code(0);
    let v: Value = serde_json::from_str(&out.stdout).expect("state prints JSON");
    v["status"].as_str().unwrap().to_owned()
}

fn wait_status(b: &Bundle, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while status_of(b) != want {
        assert!(Instant::now() < deadline, "status never became {want}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn create(b: &Bundle) {
    b.write_config();
    let dir = b.dir.to_str().unwrap();
    dory_in(b, &["create", "--bundle", dir, &b.id]).expect_code(0);
}

#[test]
fn create_start_kill_delete_and_their_errors() {
    needs_root!();
    let mut b = Bundle::new("lifecycle", &["sleep", "30"]);
    b.config["annotations"] = serde_json::json!({"org.example.tier": "say \"hi\" <x>"});
    create(&b);
    let st: Value = serde_json::from_str(&dory_in(&b, &["state", &b.id]).stdout).unwrap();
    assert_eq!(st["annotations"]["org.example.tier"], "say \"hi\" <x>");
    let st = b.state().expect("state after create");
    assert!(st.pid > 0);
    assert_eq!(status_of(&b), "created");
    // The process exists but has not run the program yet.
    let comm = std::fs::read_to_string(format!("/proc/{}/cmdline", st.pid)).unwrap();
    assert!(
        !comm.contains("sleep"),
        "program ran before start: {comm:?}"
    );

    // Errors runc gives, with dory's wording.
    let e = dory_in(&b, &["delete", &b.id]);
    assert_eq!(
        e.code, 0,
        "delete of a created container removes it, as runc: {e:?}"
    );
    assert_eq!(dory_in(&b, &["state", &b.id]).code, 1);
    create(&b);
    dory_in(&b, &["start", &b.id]).expect_code(0);
    assert_eq!(status_of(&b), "running");
    let again = dory_in(&b, &["start", &b.id]);
    assert_eq!(again.code, 1);
    assert!(
        again
            .stderr
            .contains("cannot start a container that is running"),
        "{again:?}"
    );
    let del = dory_in(&b, &["delete", &b.id]);
    assert_eq!(del.code, 1);
    assert!(del.stderr.contains("not stopped: running"), "{del:?}");

    dory_in(&b, &["kill", &b.id, "KILL"]).expect_code(0);
    wait_status(&b, "stopped");
    let k = dory_in(&b, &["kill", &b.id, "TERM"]);
    assert_eq!(k.code, 1);
    assert!(k.stderr.contains("not running"), "{k:?}");
    dory_in(&b, &["delete", &b.id]).expect_code(0);
    let s = dory_in(&b, &["state", &b.id]);
    assert_eq!(s.code, 1);
    assert!(s.stderr.contains("does not exist"), "{s:?}");
    // --force on a missing container succeeds, as runc.
    dory_in(&b, &["delete", "--force", &b.id]).expect_code(0);
    b.assert_nothing_left();
}

#[test]
fn unknown_signal_and_bad_flags_are_usage_errors() {
    needs_root!();
    let b = Bundle::new("usage", &["sleep", "30"]);
    create(&b);
    let k = dory_in(&b, &["kill", &b.id, "SIGNOPE"]);
    assert_eq!(k.code, 1);
    assert!(k.stderr.contains("unknown signal"), "{k:?}");
    // The flag as typed (main's parser since "usage errors show the flag as typed").
    let f = dory_in(&b, &["delete", "--frobnicate", &b.id]);
    assert_eq!(f.code, 1);
    assert!(
        f.stderr
            .contains("flag provided but not defined: --frobnicate"),
        "{f:?}"
    );
    dory_in(&b, &["delete", "--force", &b.id]).expect_code(0);
    b.assert_nothing_left();
}

#[test]
fn state_records_a_clean_bundle_path() {
    needs_root!();
    // `--bundle DIR/.//` is recorded as DIR, as runc does.
    let b = Bundle::new("cleanbundle", &["sleep", "30"]);
    b.write_config();
    let messy = format!("{}/.//", b.dir.display());
    dory_in(&b, &["create", "--bundle", &messy, &b.id]).expect_code(0);
    let st = dory_in(&b, &["state", &b.id]);
    let v: Value = serde_json::from_str(&st.stdout).unwrap();
    assert_eq!(v["bundle"], b.dir.to_str().unwrap(), "{st:?}");
    dory_in(&b, &["delete", "--force", &b.id]).expect_code(0);
    b.assert_nothing_left();
}

#[test]
fn signals_to_a_created_container() {
    needs_root!();
    // Signal 0 only checks the init exists; a terminating signal ends a created container
    // (its init is still dory, which the kernel would otherwise shield as a pid-ns init).
    let b = Bundle::new("killcreated", &["sleep", "30"]);
    create(&b);
    dory_in(&b, &["kill", &b.id, "0"]).expect_code(0);
    dory_in(&b, &["kill", &b.id, "WINCH"]).expect_code(0);
    assert_eq!(status_of(&b), "created");
    dory_in(&b, &["kill", &b.id, "TERM"]).expect_code(0);
    wait_status(&b, "stopped");
    dory_in(&b, &["delete", &b.id]).expect_code(0);
    b.assert_nothing_left();
}

#[test]
fn run_detach_pid_file_exec_ps_pause_resume() {
    needs_root!();
    let b = Bundle::new("detach", &["sleep", "30"]);
    b.write_config();
    let pid_file = b.base.join("pid");
    let dir = b.dir.to_str().unwrap();
    // Flags after the id, as some clients send them.
    dory_in(
        &b,
        &[
            "run",
            &b.id,
            "-d",
            "--bundle",
            dir,
            "--pid-file",
            pid_file.to_str().unwrap(),
        ],
    )
    .expect_code(0);
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert_eq!(pid, b.state().unwrap().pid);
    assert_eq!(status_of(&b), "running");

    // exec: environment, cwd, user and the exit code.
    let e = dory_in(
        &b,
        &[
            "exec",
            "-e",
            "GREETING=hello world",
            "--cwd",
            "/tmp",
            "--user",
            "1000:1000",
            &b.id,
            "sh",
            "-c",
            "echo g=$GREETING; echo cwd=$(pwd); echo id=$(id -u):$(id -g); exit 7",
        ],
    );
    assert_eq!(e.code, 7, "{e:?}");
    assert_eq!(e.value("g"), Some("hello world"));
    assert_eq!(e.value("cwd"), Some("/tmp"));
    assert_eq!(e.value("id"), Some("1000:1000"));
    // exec sees the container's pid namespace: its init is pid 1.
    let ps1 = dory_in(&b, &["exec", &b.id, "cat", "/proc/1/cmdline"]);
    ps1.expect_code(0);
    assert!(ps1.stdout.starts_with("sleep"), "{ps1:?}");
    let missing = dory_in(&b, &["exec", &b.id, "no-such-program"]);
    assert_eq!(missing.code, 127, "{missing:?}");
    assert!(
        missing.stderr.contains("executable file not found"),
        "{missing:?}"
    );

    // ps: the init is listed (json and table).
    let ps = dory_in(&b, &["ps", "--format", "json", &b.id]);
    ps.expect_code(0);
    let pids: Vec<i32> = serde_json::from_str(&ps.stdout).unwrap();
    assert_eq!(pids, vec![pid]);
    let table = dory_in(&b, &["ps", &b.id]);
    assert!(
        table.stdout.lines().any(|l| l.contains("sleep 30")),
        "{table:?}"
    );

    // pause/resume: the freezer stops the process, state says so.
    dory_in(&b, &["pause", &b.id]).expect_code(0);
    assert_eq!(status_of(&b), "paused");
    let again = dory_in(&b, &["pause", &b.id]);
    assert_eq!(again.code, 1);
    // exec into a paused container is refused, and promptly, without --ignore-paused
    // (see exec_ignore_paused_runs_the_process_once_resumed).
    let frozen = dory_in(&b, &["exec", &b.id, "true"]);
    assert_eq!(frozen.code, 1, "{frozen:?}");
    assert!(frozen.stderr.contains("paused"), "{frozen:?}");
    dory_in(&b, &["resume", &b.id]).expect_code(0);
    assert_eq!(status_of(&b), "running");

    dory_in(&b, &["delete", "--force", &b.id]).expect_code(0);
    assert!(
        common::proc_start_time(pid).is_none(),
        "init still alive after delete --force"
    );
    b.assert_nothing_left();
}

#[test]
fn exec_into_a_created_container() {
    needs_root!();
    // As runc: the init waits for `start`, but an exec joins its namespaces and cgroup.
    let b = Bundle::new("execcreated", &["sleep", "30"]);
    create(&b);
    assert_eq!(status_of(&b), "created");
    let e = dory_in(
        &b,
        &[
            "exec",
            &b.id,
            "sh",
            "-c",
            "echo h=$(hostname); echo init=$(tr '\\0' ' ' < /proc/1/cmdline); \
             echo same_cgroup=$(test \"$(cat /proc/self/cgroup)\" = \"$(cat /proc/1/cgroup)\" && echo yes)",
        ],
    );
    e.expect_code(0);
    assert_eq!(e.value("h"), Some("runc"), "{e:?}");
    // The init is still dory's clone, waiting for `start` (not yet `sleep`), and the
    // exec'd process joined its cgroup in every hierarchy.
    let init = e.value("init").unwrap_or_default();
    assert!(
        init.contains("create") && !init.starts_with("sleep"),
        "{e:?}"
    );
    assert_eq!(e.value("same_cgroup"), Some("yes"), "{e:?}");
    assert_eq!(status_of(&b), "created");
    dory_in(&b, &["delete", "--force", &b.id]).expect_code(0);
    b.assert_nothing_left();
}

#[test]
fn update_and_events_stats() {
    needs_root!();
    let b = Bundle::new("update", &["sleep", "30"]);
    b.write_config();
    let dir = b.dir.to_str().unwrap();
    dory_in(&b, &["run", "-d", "--bundle", dir, &b.id]).expect_code(0);
    dory_in(
        &b,
        &["update", "--memory", "64m", "--pids-limit", "20", &b.id],
    )
    .expect_code(0);
    let ev = dory_in(&b, &["events", "--stats", &b.id]);
    ev.expect_code(0);
    let v: Value = serde_json::from_str(ev.stdout.trim()).unwrap();
    assert_eq!(v["type"], "stats");
    assert_eq!(v["data"]["memory"]["usage"]["limit"], 64 << 20);
    assert_eq!(v["data"]["pids"]["limit"], 20);
    assert_eq!(v["data"]["pids"]["current"], 1);
    let bad = dory_in(&b, &["update", "--memory", "lots", &b.id]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("--memory"), "{bad:?}");
    dory_in(&b, &["delete", "--force", &b.id]).expect_code(0);
    b.assert_nothing_left();
}

#[test]
fn hooks_run_in_order_with_state_on_stdin() {
    needs_root!();
    let mut b = Bundle::new("hooks", &["sh", "-c", "echo program"]);
    let log = b.base.join("hooks.log");
    let log_s = log.to_str().unwrap().to_owned();
    let hook = |name: &str| {
        serde_json::json!([{
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("read -r state; echo \"{name} $state\" >> {log_s}")],
        }])
    };
    let uts_file = b.base.join("cc-uts");
    b.config["annotations"] = serde_json::json!({"org.example.hooks": "with \"quotes\""});
    b.config["hooks"] = serde_json::json!({
        "prestart": hook("prestart"),
        "createRuntime": hook("createRuntime"),
        "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", format!("readlink /proc/self/ns/uts > {}; echo createContainer >> {log_s}", uts_file.display())]}],
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo startContainer-ran; hostname"]}],
        "poststart": hook("poststart"),
        "poststop": hook("poststop"),
    });
    let out = b.run();
    out.expect_code(0);
    // startContainer runs inside the container (its hostname), before the program.
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines, ["startContainer-ran", "runc", "program"], "{out:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    let order: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        order,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "poststart",
            "poststop"
        ]
    );
    let prestart_state: Value =
        serde_json::from_str(text.lines().next().unwrap().split_once(' ').unwrap().1).unwrap();
    assert_eq!(prestart_state["id"], b.id.as_str());
    assert_eq!(prestart_state["status"], "creating");
    // The state on a hook's stdin carries the config's annotations (runtime-spec state).
    assert_eq!(
        prestart_state["annotations"]["org.example.hooks"],
        "with \"quotes\""
    );
    let poststop_state: Value =
        serde_json::from_str(text.lines().last().unwrap().split_once(' ').unwrap().1).unwrap();
    assert_eq!(
        poststop_state["annotations"]["org.example.hooks"],
        "with \"quotes\""
    );
    // createContainer ran in the container's uts namespace, not the host's.
    let cc_uts = std::fs::read_to_string(&uts_file).unwrap();
    let host_uts = std::fs::read_link("/proc/self/ns/uts").unwrap();
    assert_ne!(cc_uts.trim(), host_uts.to_str().unwrap());
    b.extra.push(log);
    b.assert_nothing_left();
}

/// A hook that appends `word` to `log` on the host.
fn append_hook(word: &str, log: &std::path::Path) -> Value {
    serde_json::json!({"path": "/bin/sh",
        "args": ["sh", "-c", format!("echo {word} >> {}", log.display())]})
}

fn read_log(log: &std::path::Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

#[test]
fn failing_poststop_hooks_are_warnings_and_the_rest_run() {
    needs_root!();
    // runtime-spec: a failing poststop hook is logged as a warning, and the remaining
    // hooks and the lifecycle go on. The failing hook exits without reading its stdin, so
    // dory's write of the state also meets a closed pipe (EPIPE, no SIGPIPE).
    let mut b = Bundle::new("hookwarn", &["true"]);
    let log = b.base.join("hooks.log");
    b.config["hooks"] = serde_json::json!({
        "poststop": [{"path": "/bin/false"}, append_hook("poststop-second", &log)],
    });
    create(&b);
    dory_in(&b, &["start", &b.id]).expect_code(0);
    wait_status(&b, "stopped");
    let delete = dory_in(&b, &["delete", &b.id]);
    delete.expect_code(0);
    assert!(
        delete.stderr.contains("level=warning") && delete.stderr.contains("hooks.poststop[0]"),
        "{delete:?}"
    );
    assert_eq!(read_log(&log), "poststop-second\n");
    b.assert_nothing_left();
}

/// Whether the process `pid` that started at `start_time` (state.json's) still lives.
fn init_alive(pid: i32, start_time: Option<u64>) -> bool {
    pid > 0 && common::proc_start_time(pid) == start_time
}

/// runtime-spec: a failing startContainer hook makes `start` fail, stops the container
/// and "continues the lifecycle at step 12": it is destroyed and the poststop hooks run.
/// (runc 1.1.5's `start` exits 0 here and leaves a stopped container; its init dies.)
/// `run` does the same. No hook runs the program.
#[test]
fn failing_start_container_hook_stops_and_destroys_the_container() {
    needs_root!();
    let mut b = Bundle::new("startfail", &["sh", "-c", "echo should-not-run"]);
    let log = b.base.join("hooks.log");
    b.config["hooks"] = serde_json::json!({
        "startContainer": [{"path": "/bin/false"}],
        "poststart": [append_hook("poststart", &log)],
        "poststop": [append_hook("poststop", &log)],
    });
    create(&b);
    let st = b.wait_state();
    let start_time = st.json["startTime"].as_u64();
    let start = dory_in(&b, &["start", &b.id]);
    assert_eq!(start.code, 1, "{start:?}");
    assert!(!init_alive(st.pid, start_time), "the init still runs");
    assert_eq!(
        read_log(&log),
        "poststop\n",
        "poststop ran once, poststart never"
    );
    b.assert_nothing_left();
    assert!(
        start.stderr.contains("level=error") && start.stderr.contains("hooks.startContainer[0]"),
        "{start:?}"
    );
    // Deleting what is gone, as containerd and podman do after a failed start.
    dory_in(&b, &["delete", "--force", &b.id]).expect_code(0);

    std::fs::remove_file(&log).unwrap();
    let out = b.run();
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("hooks.startContainer[0]"), "{out:?}");
    assert!(!out.stdout.contains("should-not-run"), "{out:?}");
    assert_eq!(read_log(&log), "poststop\n");
    b.assert_nothing_left();
}

/// As runc 1.1.5 (checked against it): a failing poststart hook fails `start` (and `run`)
/// with the hook's error, the container is killed and destroyed, the poststart hooks after
/// it do not run and the poststop hooks do. (runtime-spec asks for a warning; dory follows
/// runc, which clients written for it expect.)
#[test]
fn failing_poststart_hook_fails_start_and_ends_the_container_as_runc() {
    needs_root!();
    let mut b = Bundle::new("poststartfail", &["sleep", "100"]);
    let log = b.base.join("hooks.log");
    b.config["hooks"] = serde_json::json!({
        "poststart": [{"path": "/bin/false"}, append_hook("poststart-second", &log)],
        "poststop": [append_hook("poststop", &log)],
    });
    create(&b);
    let st = b.wait_state();
    let start_time = st.json["startTime"].as_u64();
    let start = dory_in(&b, &["start", &b.id]);
    assert_eq!(start.code, 1, "{start:?}");
    assert!(start.stderr.contains("hooks.poststart[0]"), "{start:?}");
    assert!(!init_alive(st.pid, start_time), "the init still runs");
    assert_eq!(read_log(&log), "poststop\n");
    b.assert_nothing_left();

    std::fs::remove_file(&log).unwrap();
    let out = b.run();
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("hooks.poststart[0]"), "{out:?}");
    assert_eq!(read_log(&log), "poststop\n");
    b.assert_nothing_left();
}

/// runtime-spec (and runc, checked): a failing prestart, createRuntime or createContainer
/// hook fails `create`, leaves nothing behind, and the poststop hooks run.
#[test]
fn failing_create_phase_hooks_leave_nothing_and_run_poststop() {
    needs_root!();
    for phase in ["prestart", "createRuntime", "createContainer"] {
        let mut b = Bundle::new("createhookfail", &["true"]);
        let log = b.base.join("hooks.log");
        b.config["hooks"] = serde_json::json!({
            phase: [{"path": "/bin/false"}],
            "poststop": [append_hook(&format!("poststop-after-{phase}"), &log)],
        });
        b.write_config();
        let dir = b.dir.to_str().unwrap();
        let out = dory_in(&b, &["create", "--bundle", dir, &b.id]);
        assert_eq!(out.code, 1, "{phase}: {out:?}");
        assert!(out.stderr.contains(&format!("hooks.{phase}[0]")), "{out:?}");
        b.assert_nothing_left();
        assert_eq!(read_log(&log), format!("poststop-after-{phase}\n"));
    }
}

#[test]
fn failing_prestart_hook_stops_the_container_and_leaves_nothing() {
    needs_root!();
    let mut b = Bundle::new("hookfail", &["sh", "-c", "echo should-not-run"]);
    b.config["hooks"] = serde_json::json!({"prestart": [{"path": "/bin/false"}]});
    let out = b.run();
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("hooks.prestart[0]"), "{out:?}");
    assert!(!out.stdout.contains("should-not-run"));
    b.assert_nothing_left();
}

#[test]
fn user_namespace_with_mappings() {
    needs_root!();
    let mut b = Bundle::with_private_rootfs("userns", &["sh", "-c", "echo id=$(id -u):$(id -g); echo map=$(cat /proc/self/uid_map); touch /tmp/x && echo owner=$(stat -c %u /tmp/x); echo oom=$(cat /proc/self/oom_score_adj)"]);
    // The rootfs belongs to the mapped root, as a rootless image would.
    let status = std::process::Command::new("chown")
        .args(["-R", "200000:200000"])
        .arg(&b.rootfs)
        .status()
        .unwrap();
    assert!(status.success());
    b.config["root"]["readonly"] = Value::Bool(false);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"type": "user"}));
    b.config["linux"]["uidMappings"] =
        serde_json::json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    b.config["linux"]["gidMappings"] =
        serde_json::json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    // Raising the score needs no privilege; in a new user namespace the parent writes it.
    b.config["process"]["oomScoreAdj"] = Value::from(345);
    let out = b.run();
    out.expect_code(0);
    assert_eq!(out.value("id"), Some("0:0"));
    assert_eq!(out.value("oom"), Some("345"), "{out:?}");
    assert_eq!(
        out.value("map")
            .map(|m| m.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["0", "200000", "65536"])
    );
    assert_eq!(out.value("owner"), Some("0"));
    // On the host the file belongs to the mapped id.
    let meta = std::fs::metadata(b.rootfs.join("tmp/x")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 200000);
    b.assert_nothing_left();
}

#[test]
fn oom_score_adj_is_applied() {
    needs_root!();
    let mut b = Bundle::new("oomscore", &["cat", "/proc/self/oom_score_adj"]);
    b.config["process"]["oomScoreAdj"] = Value::from(678);
    let out = b.run();
    out.expect_code(0);
    assert_eq!(out.stdout.trim(), "678", "{out:?}");
    b.assert_nothing_left();
}

#[test]
fn user_namespace_without_cgroup_namespace_still_gets_its_cgroup_mount() {
    needs_root!();
    // A new user namespace may not mount cgroupfs unless it also has a cgroup namespace:
    // as runc, dory binds the container's own cgroup directories from the host instead.
    let mut b = Bundle::with_private_rootfs(
        "userns-cg",
        &[
            "sh",
            "-c",
            "echo limit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)",
        ],
    );
    let status = std::process::Command::new("chown")
        .args(["-R", "200000:200000"])
        .arg(&b.rootfs)
        .status()
        .unwrap();
    assert!(status.success());
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "cgroup");
    ns.push(serde_json::json!({"type": "user"}));
    b.config["linux"]["uidMappings"] =
        serde_json::json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    b.config["linux"]["gidMappings"] =
        serde_json::json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    b.config["linux"]["resources"] = serde_json::json!({"memory": {"limit": 41943040}});
    let out = b.run();
    out.expect_code(0);
    assert_eq!(out.value("limit"), Some("41943040"), "{out:?}");
    b.assert_nothing_left();
}

/// The first number of a `/proc/uptime` text: seconds since boot.
fn uptime_secs(text: &str) -> f64 {
    text.split_whitespace().next().unwrap().parse().unwrap()
}

/// A time namespace whose boot time is 10 days (864000 s) ahead of the host's.
fn with_boottime_offset(b: &mut Bundle) {
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"type": "time"}));
    b.config["linux"]["timeOffsets"] =
        serde_json::json!({"boottime": {"secs": 864000, "nanosecs": 0}});
}

#[test]
fn time_namespace_offsets() {
    needs_root!();
    let mut b = Bundle::new("timens", &["cat", "/proc/uptime"]);
    with_boottime_offset(&mut b);
    let out = b.run();
    out.expect_code(0);
    let inside = uptime_secs(&out.stdout);
    let host = uptime_secs(&std::fs::read_to_string("/proc/uptime").unwrap());
    assert!(
        (inside - host - 864000.0).abs() < 60.0,
        "inside {inside}, host {host}"
    );
    b.assert_nothing_left();
}

#[test]
fn seccomp_filter_is_loaded_and_enforced() {
    needs_root!();
    let mut b = Bundle::new(
        "seccomp",
        &["sh", "-c", "grep Seccomp: /proc/self/status; mkdir /dev/shm/x; echo mkdir=$?; mkdir /dev/shm/y/z 2>/dev/null; echo ok"],
    );
    let arch = if cfg!(target_arch = "x86_64") {
        "SCMP_ARCH_X86_64"
    } else {
        "SCMP_ARCH_AARCH64"
    };
    b.config["linux"]["seccomp"] = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": [arch],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    });
    let out = b.run();
    out.expect_code(0);
    assert!(out.stdout.contains("Seccomp:\t2"), "{out:?}");
    assert_eq!(out.value("mkdir"), Some("1"), "{out:?}");
    assert!(out.stderr.contains("Operation not permitted"), "{out:?}");
    b.assert_nothing_left();
}

#[test]
fn podman_seccomp_profile_runs_a_shell_and_blocks_unshare() {
    needs_root!();
    let profile: Value =
        serde_json::from_str(include_str!("fixtures/podman-4.3-config.json")).unwrap();
    let mut b = Bundle::new(
        "seccomp-podman",
        &["sh", "-c", "echo hello; unshare -r true; echo unshare=$?"],
    );
    b.config["linux"]["seccomp"] = profile["linux"]["seccomp"].clone();
    let out = b.run();
    out.expect_code(0);
    assert_eq!(out.stdout.lines().next(), Some("hello"), "{out:?}");
    assert_eq!(out.value("unshare"), Some("1"), "{out:?}");
    b.assert_nothing_left();
}

#[test]
fn tmpcopyup_fills_the_tmpfs_with_the_directory_it_covers() {
    needs_root!();
    let mut b = Bundle::with_private_rootfs(
        "copyup",
        &["sh", "-c", "grep -c root /etc/passwd; readlink /etc/link; stat -c %a /etc/sub; cat /etc/sub/f; echo x > /etc/new && echo writable"],
    );
    std::fs::create_dir_all(b.rootfs.join("etc/sub")).unwrap();
    std::fs::write(b.rootfs.join("etc/sub/f"), "deep\n").unwrap();
    std::fs::set_permissions(
        b.rootfs.join("etc/sub"),
        std::os::unix::fs::PermissionsExt::from_mode(0o710),
    )
    .unwrap();
    std::os::unix::fs::symlink("passwd", b.rootfs.join("etc/link")).unwrap();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"destination": "/etc", "type": "tmpfs", "source": "tmpfs", "options": ["rw", "nosuid", "tmpcopyup"]}));
    let out = b.run();
    out.expect_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines, ["1", "passwd", "710", "deep", "writable"], "{out:?}");
    // The image itself is untouched.
    assert!(!b.rootfs.join("etc/new").exists());
    b.assert_nothing_left();
}

#[test]
fn exec_joins_the_time_namespace_and_env_overrides_the_config() {
    needs_root!();
    let mut b = Bundle::new("exec-timens", &["sleep", "30"]);
    with_boottime_offset(&mut b);
    b.config["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(Value::from("FOO=from-config"));
    create(&b);
    dory_in(&b, &["start", &b.id]).expect_code(0);
    let out = dory_in(
        &b,
        &[
            "exec",
            "-e",
            "FOO=from-cli",
            &b.id,
            "sh",
            "-c",
            "cut -d' ' -f1 /proc/uptime; env | grep '^FOO='",
        ],
    );
    dory_in(&b, &["delete", "--force", &b.id]).expect_code(0);
    out.expect_code(0);
    let mut lines = out.stdout.lines();
    let inside = uptime_secs(lines.next().unwrap());
    let host = uptime_secs(&std::fs::read_to_string("/proc/uptime").unwrap());
    assert!(
        (inside - host - 864000.0).abs() < 60.0,
        "exec'd process: uptime {inside}, host {host}: not in the container's time namespace"
    );
    assert_eq!(
        lines.collect::<Vec<_>>(),
        ["FOO=from-cli"],
        "{}",
        out.stdout
    );
    b.assert_nothing_left();
}

#[test]
fn state_is_private_to_root() {
    needs_root!();
    use std::os::unix::fs::PermissionsExt;
    let b = Bundle::new("private-state", &["sleep", "30"]);
    create(&b);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let (root, dir, file) = (
        mode(&b.state_root),
        mode(&b.state_dir()),
        mode(&b.state_dir().join("state.json")),
    );
    dory_in(&b, &["delete", "--force", &b.id]).expect_code(0);
    assert_eq!(
        (root, dir, file),
        (0o700, 0o700, 0o600),
        "state root, container dir, state.json modes"
    );
    b.assert_nothing_left();
}

#[test]
fn exec_gets_the_containers_oom_score_and_rlimits() {
    needs_root!();
    // The exec'd process is forked from `dory exec`: without the container's values it
    // would keep the caller's (a shim's OOM score, its nofile limit).
    let mut b = Bundle::new("exec-limits", &["sleep", "30"]);
    b.config["process"]["oomScoreAdj"] = Value::from(517);
    b.config["process"]["rlimits"] =
        serde_json::json!([{"type": "RLIMIT_NOFILE", "hard": 123, "soft": 121}]);
    create(&b);
    dory_in(&b, &["start", &b.id]).expect_code(0);
    let out = dory_in(
        &b,
        &[
            "exec",
            &b.id,
            "sh",
            "-c",
            "cat /proc/self/oom_score_adj; ulimit -n; ulimit -Hn",
        ],
    );
    dory_in(&b, &["delete", "--force", &b.id]).expect_code(0);
    out.expect_code(0);
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["517", "121", "123"],
        "{out:?}"
    );
    b.assert_nothing_left();
}

#[test]
fn exec_with_a_process_file_gets_the_containers_oom_score_and_rlimits() {
    needs_root!();
    // What a shim (`--process process.json`) or Docker's exec hands over often lacks the
    // container's oomScoreAdj and rlimits: the process must still get them, not the
    // caller's. As runc: the config's oomScoreAdj even over the file's; the file's rlimits
    // when it lists some.
    let mut b = Bundle::new("exec-p-limits", &["sleep", "30"]);
    b.config["process"]["oomScoreAdj"] = Value::from(123);
    b.config["process"]["rlimits"] = serde_json::json!([
        {"type": "RLIMIT_NOFILE", "hard": 888, "soft": 777},
        {"type": "RLIMIT_NPROC", "hard": 4321, "soft": 1234}
    ]);
    create(&b);
    dory_in(&b, &["start", &b.id]).expect_code(0);
    let report = "echo $(cat /proc/self/oom_score_adj) $(ulimit -n) $(ulimit -Hn) \
                  $(ulimit -u) $(ulimit -Hu)";
    let bare = serde_json::json!({
        "args": ["sh", "-c", report],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0},
        "env": ["PATH=/bin:/usr/bin"]
    });
    let mut own = bare.clone();
    own["oomScoreAdj"] = Value::from(456);
    own["rlimits"] = serde_json::json!([{"type": "RLIMIT_NOFILE", "hard": 555, "soft": 444}]);
    let exec_file = |name: &str, process: &Value| {
        let path = b.base.join(name);
        std::fs::write(&path, process.to_string()).unwrap();
        dory_in(&b, &["exec", "--process", path.to_str().unwrap(), &b.id])
    };
    let bare_out = exec_file("bare.json", &bare);
    let own_out = exec_file("own.json", &own);
    dory_in(&b, &["delete", "--force", &b.id]).expect_code(0);
    bare_out.expect_code(0);
    own_out.expect_code(0);
    assert_eq!(
        bare_out.stdout.trim(),
        "123 777 888 1234 4321",
        "{bare_out:?}"
    );
    let own_fields: Vec<&str> = own_out.stdout.split_whitespace().collect();
    assert_eq!(own_fields[..3], ["123", "444", "555"], "{own_out:?}");
    b.assert_nothing_left();
}

/// Whether this host runs AppArmor (runc's check: securityfs entry and the module on).
fn host_has_apparmor() -> bool {
    std::path::Path::new("/sys/kernel/security/apparmor").exists()
        && std::fs::read("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|v| v.first() == Some(&b'Y'))
}

#[test]
fn an_apparmor_profile_runs_and_is_only_ignored_where_the_host_has_no_apparmor() {
    needs_root!();
    // containerd gives unprivileged containers a profile on AppArmor hosts. "unconfined"
    // is valid on every AppArmor host; on one without AppArmor, dory runs the container
    // and says, as a warning, that the profile was not applied.
    let mut b = Bundle::new("apparmor", &["sleep", "30"]);
    b.config["process"]["apparmorProfile"] = Value::from("unconfined");
    b.write_config();
    let dir = b.dir.to_str().unwrap().to_owned();
    let created = dory_in(&b, &["create", "--bundle", &dir, &b.id]);
    dory_in(&b, &["start", &b.id]).expect_code(0);
    let process = b.base.join("process.json");
    std::fs::write(
        &process,
        serde_json::json!({"args": ["echo", "from-file"], "cwd": "/",
            "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"],
            "apparmorProfile": "unconfined"})
        .to_string(),
    )
    .unwrap();
    let execs = [
        dory_in(&b, &["exec", &b.id, "echo", "from-config"]),
        dory_in(
            &b,
            &[
                "exec",
                "--apparmor",
                "unconfined",
                &b.id,
                "echo",
                "from-flag",
            ],
        ),
        dory_in(&b, &["exec", "--process", process.to_str().unwrap(), &b.id]),
    ];
    dory_in(&b, &["delete", "--force", &b.id]).expect_code(0);
    created.expect_code(0);
    let notes = [
        "config.json: process.apparmorProfile",
        "process.apparmorProfile",
        "--apparmor",
        "process.apparmorProfile",
    ];
    let outs = std::iter::once(&created).chain(execs.iter());
    for ((out, field), said) in outs
        .zip(notes)
        .zip(["", "from-config", "from-flag", "from-file"])
    {
        out.expect_code(0);
        assert_eq!(out.stdout.trim(), said, "{out:?}");
        let warned = format!("{field}: \\\"unconfined\\\" not applied: AppArmor is not enabled");
        if host_has_apparmor() {
            assert!(!out.stderr.contains("not applied"), "{out:?}");
        } else {
            assert!(
                out.stderr.contains("level=warning") && out.stderr.contains(&warned),
                "want a warning {warned:?}: {out:?}"
            );
            assert!(!out.stderr.contains("level=error"), "{out:?}");
        }
    }
    b.assert_nothing_left();
}

#[test]
fn a_strict_seccomp_profile_without_close_range_or_getcwd_runs() {
    needs_root!();
    // A profile that denies everything but what a shell (and the runtime's own last steps:
    // the user switch and capabilities) needs: the runtime must not depend on close_range
    // or getcwd after loading it, with or without noNewPrivileges.
    let allowed = [
        "arch_prctl",
        "brk",
        "execve",
        "exit_group",
        "getpid",
        "getppid",
        "getrandom",
        "getuid",
        "geteuid",
        "mprotect",
        "mmap",
        "munmap",
        "newfstatat",
        "prctl",
        "prlimit64",
        "readlink",
        "rseq",
        "rt_sigaction",
        "rt_sigprocmask",
        "set_robust_list",
        "set_tid_address",
        "uname",
        "write",
        "read",
        "ioctl",
        "fcntl",
        "openat",
        "close",
        "setgroups",
        "setresgid",
        "setresuid",
        "capset",
        "capget",
    ];
    for nnp in [false, true] {
        let mut b = Bundle::new("seccomp-strict", &["sh", "-c", "echo strict-ok"]);
        b.config["process"]["noNewPrivileges"] = Value::Bool(nnp);
        b.config["linux"]["seccomp"] = serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": allowed.to_vec(), "action": "SCMP_ACT_ALLOW"}],
        });
        let out = b.run();
        assert_eq!(
            (out.code, out.stdout.trim()),
            (0, "strict-ok"),
            "noNewPrivileges {nnp}: {out:?}"
        );
        b.assert_nothing_left();
    }
}

#[test]
fn kill_all_reaches_what_is_left_after_the_init_exited() {
    needs_root!();
    // Without its own pid namespace, a container's init can exit and leave a process in
    // its cgroup (a shared-pid pod's orphan): `kill --all` must still signal it.
    let mut b = Bundle::new(
        "kill-orphan",
        &[
            "sh",
            "-c",
            "sleep 1000 < /dev/null > /dev/null 2>&1 & exit 0",
        ],
    );
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "pid");
    create(&b);
    dory_in(&b, &["start", &b.id]).expect_code(0);
    wait_status(&b, "stopped");
    let orphans = || {
        common::cgroup_dirs(&b.id)
            .first()
            .and_then(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let before = orphans();
    let killed = dory_in(&b, &["kill", "--all", &b.id, "KILL"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while orphans() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let after = orphans();
    dory_in(&b, &["delete", "--force", &b.id]).expect_code(0);
    assert_eq!(before, 1, "the orphan was not in the cgroup");
    killed.expect_code(0);
    assert_eq!(after, 0, "the orphan survived kill --all");
    b.assert_nothing_left();
}

/// Hooks that append `<phase>-<tag>` to `log` on the host (poststart, poststop), a
/// startContainer hook that succeeds only in version "A", and `FOO=<tag>` in the env.
fn versioned_config(b: &mut Bundle, tag: &str, log: &std::path::Path) {
    let append = |phase: &str| {
        serde_json::json!([{"path": "/bin/sh",
            "args": ["sh", "-c", format!("echo {phase}-{tag} >> {}", log.display())]}])
    };
    let start_hook = if tag == "A" {
        "/bin/true"
    } else {
        "/bin/false"
    };
    b.config["hooks"] = serde_json::json!({
        "startContainer": [{"path": start_hook}],
        "poststart": append("poststart"),
        "poststop": append("poststop"),
    });
    let env = b.config["process"]["env"].as_array_mut().unwrap();
    env.retain(|e| !e.as_str().unwrap().starts_with("FOO="));
    env.push(format!("FOO={tag}").into());
}

/// runtime-spec: changes to config.json after create do not affect the container. dory
/// keeps the config create read in the state directory: start, exec and delete behave as
/// at create whether the bundle's config.json now holds other hooks and env, is not JSON
/// or is gone.
#[test]
fn the_bundle_is_not_read_again_after_create() {
    needs_root!();
    let mut b = Bundle::new("frozencfg", &["sleep", "100"]);
    let log = b.base.join("hooks.log");
    versioned_config(&mut b, "A", &log);
    create(&b);
    let exec_foo = |b: &Bundle| {
        let e = dory_in(b, &["exec", &b.id, "sh", "-c", "echo foo=$FOO"]);
        e.expect_code(0);
        e.value("foo").map(str::to_owned)
    };

    // Other hooks and env in the bundle: exec keeps create's process env.
    versioned_config(&mut b, "B", &log);
    b.write_config();
    assert_eq!(
        exec_foo(&b).as_deref(),
        Some("A"),
        "exec read the new config"
    );

    // Not JSON: start still runs create's startContainer (true) and poststart hooks.
    std::fs::write(b.config_path(), "{ not json").unwrap();
    let start = dory_in(&b, &["start", &b.id]);
    start.expect_code(0);
    assert_eq!(status_of(&b), "running");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "poststart-A\n");

    // Gone: exec still works.
    std::fs::remove_file(b.config_path()).unwrap();
    assert_eq!(
        exec_foo(&b).as_deref(),
        Some("A"),
        "exec without config.json"
    );

    // Version B back in the bundle: delete runs create's poststop hook.
    b.write_config();
    dory_in(&b, &["kill", &b.id, "KILL"]).expect_code(0);
    wait_status(&b, "stopped");
    dory_in(&b, &["delete", &b.id]).expect_code(0);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "poststart-A\npoststop-A\n"
    );
    b.assert_nothing_left();
}

/// The container's directory in the v1 hierarchy whose mount point ends with `name`
/// (`"freezer"`, `"pids"`).
fn v1_dir(b: &Bundle, name: &str) -> std::path::PathBuf {
    common::cgroup_dirs(&b.id)
        .into_iter()
        .find(|d| {
            d.parent()
                .and_then(|p| p.parent())
                .is_some_and(|m| m.ends_with(name))
        })
        .unwrap_or_else(|| panic!("no {name} hierarchy"))
}

fn procs_of(dir: &std::path::Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

/// Sub-cgroups a test made below the container's: on drop (before the Bundle's, which
/// cannot remove a cgroup that still has children) their processes are killed and the
/// directories removed. dory's own delete removes them when the test gets that far.
struct SubCgroupGuard(Vec<std::path::PathBuf>);

impl Drop for SubCgroupGuard {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        for d in &self.0 {
            while d.exists() && Instant::now() < deadline {
                for pid in std::fs::read_to_string(d.join("cgroup.procs"))
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.parse().ok())
                {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                if std::fs::remove_dir(d).is_err() {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
}

fn run_detached(b: &Bundle) -> i32 {
    b.write_config();
    let dir = b.dir.to_str().unwrap();
    dory_in(b, &["run", "-d", "--bundle", dir, &b.id]).expect_code(0);
    b.wait_state().pid
}

/// Thaws a v1 freezer cgroup when dropped: a frozen process dies of SIGKILL only once
/// thawed, so a failed test would otherwise leave the container and its cgroup behind.
struct ThawOnDrop(std::path::PathBuf);

impl Drop for ThawOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, "THAWED");
    }
}

/// runc: `exec --ignore-paused` goes into a paused container; its process joins the
/// frozen cgroup (so it is frozen before its exec) and exec returns once `resume` lets
/// it run. Without the flag: runc's error.
#[test]
fn exec_ignore_paused_runs_the_process_once_resumed() {
    needs_root!();
    let b = Bundle::new("ignpaused", &["sleep", "100"]);
    let init = run_detached(&b);
    let freezer = v1_dir(&b, "freezer");
    // Declared after the Bundle, so dropped first: its SIGKILL reaches thawed processes.
    let _thaw = ThawOnDrop(freezer.join("freezer.state"));
    dory_in(&b, &["pause", &b.id]).expect_code(0);
    let mut cmd = b.cmd(&[
        "exec",
        "--ignore-paused",
        &b.id,
        "sh",
        "-c",
        "echo ran-in=$(cat /proc/self/cgroup | grep -c freezer)",
    ]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut exec = cmd.spawn().unwrap();
    // From the host: a second process sits in the frozen freezer cgroup, and exec waits.
    let deadline = Instant::now() + Duration::from_secs(10);
    while procs_of(&freezer).len() < 2 {
        if exec.try_wait().unwrap().is_some() {
            let out = exec.wait_with_output().unwrap();
            panic!(
                "exec ended while paused ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(Instant::now() < deadline, "the exec'd process never joined");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        exec.try_wait().unwrap().is_none(),
        "exec returned while paused"
    );
    assert_eq!(
        std::fs::read_to_string(freezer.join("freezer.state"))
            .unwrap()
            .trim(),
        "FROZEN"
    );
    assert_eq!(status_of(&b), "paused");

    // Without the flag: refused at once.
    let refused = dory_in(&b, &["exec", &b.id, "true"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("cannot exec in a paused container (use --ignore-paused to override)"),
        "{refused:?}"
    );
    dory_in(&b, &["resume", &b.id]).expect_code(0);
    let out = exec.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.trim(),
        "ran-in=1",
        "the process ran inside the container"
    );
    assert_eq!(procs_of(&freezer), vec![init]);
    dory_in(&b, &["delete", "--force", &b.id]).expect_code(0);
    b.assert_nothing_left();
}

/// runc 1.1: `exec --cgroup CTRL:PATH` and `--cgroup PATH` put the process in an
/// existing sub-cgroup of the container's (checked on the host's cgroup files and from
/// /proc/self/cgroup inside); a missing one or a path leaving the container's cgroup is
/// refused and nothing runs.
#[test]
fn exec_cgroup_puts_the_process_in_a_sub_cgroup() {
    needs_root!();
    let b = Bundle::new("execcg", &["sleep", "100"]);
    run_detached(&b);
    let dirs = common::cgroup_dirs(&b.id);
    let _subs = SubCgroupGuard(dirs.iter().map(|d| d.join("sub")).collect());
    for d in &dirs {
        std::fs::create_dir(d.join("sub")).unwrap();
        // A new v1 cpuset cgroup has no cpus or mems: nothing could join it.
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(v) = std::fs::read_to_string(d.join(f)) {
                std::fs::write(d.join("sub").join(f), v.trim()).unwrap();
            }
        }
    }
    let pids = v1_dir(&b, "pids");
    let freezer = v1_dir(&b, "freezer");
    let pid_file = b.base.join("exec.pid");
    let pf = pid_file.to_str().unwrap();

    // One controller: pids:sub; the others stay in the container's cgroup.
    let args = [
        "exec",
        "-d",
        "--pid-file",
        pf,
        "--cgroup",
        "pids:sub",
        &b.id,
        "sleep",
        "100",
    ];
    dory_in(&b, &args).expect_code(0);
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert!(
        procs_of(&pids.join("sub")).contains(&pid),
        "not in pids/sub"
    );
    assert!(
        procs_of(&freezer).contains(&pid),
        "not in the container's freezer cgroup"
    );
    assert!(procs_of(&freezer.join("sub")).is_empty());
    let inside = dory_in(
        &b,
        &[
            "exec",
            "--cgroup",
            "pids:sub",
            &b.id,
            "cat",
            "/proc/self/cgroup",
        ],
    );
    inside.expect_code(0);
    let line = |ctrl: &str| {
        inside
            .stdout
            .lines()
            .find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|x| x == ctrl))
            })
            .map(|l| l.rsplit(':').next().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no {ctrl} line: {inside:?}"))
    };
    assert!(line("pids").ends_with("/sub"), "{inside:?}");
    assert!(!line("freezer").ends_with("/sub"), "{inside:?}");

    // PATH alone: every hierarchy.
    let args = [
        "exec",
        "-d",
        "--pid-file",
        pf,
        "--cgroup",
        "/sub",
        &b.id,
        "sleep",
        "100",
    ];
    dory_in(&b, &args).expect_code(0);
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    for d in &dirs {
        assert!(
            procs_of(&d.join("sub")).contains(&pid),
            "not in {}/sub",
            d.display()
        );
    }

    for (arg, want) in [
        ("nosuch", "--cgroup: "),
        ("../x", "would leave the container's cgroup"),
        ("bogus:sub", "unknown controller bogus"),
    ] {
        let out = dory_in(
            &b,
            &["exec", "--cgroup", arg, &b.id, "sh", "-c", "echo ran"],
        );
        assert_eq!(out.code, 1, "{arg}: {out:?}");
        assert!(out.stderr.contains(want), "{arg}: {out:?}");
        assert!(!out.stdout.contains("ran"), "{arg}: {out:?}");
    }
    dory_in(&b, &["delete", "--force", &b.id]).expect_code(0);
    b.assert_nothing_left();
}

/// A state entry without the config create saved (made by an older dory, or damaged) is
/// still deleted, with a warning that no poststop hook ran; exec says what is missing.
#[test]
fn delete_works_without_the_saved_config() {
    needs_root!();
    let b = Bundle::new("nosaved", &["sleep", "100"]);
    create(&b);
    std::fs::remove_file(b.state_dir().join("config.json")).unwrap();
    let exec = dory_in(&b, &["exec", &b.id, "true"]);
    assert_eq!(exec.code, 1, "{exec:?}");
    assert!(
        exec.stderr.contains("the config saved at create"),
        "{exec:?}"
    );
    let delete = dory_in(&b, &["delete", "--force", &b.id]);
    delete.expect_code(0);
    assert!(
        delete.stderr.contains("level=warning") && delete.stderr.contains("no poststop hooks run"),
        "{delete:?}"
    );
    b.assert_nothing_left();
}
