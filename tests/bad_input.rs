//! `dory run` with bad input: each must fail with exit != 0, an error naming the field
//! (as `config.json: <field>: <message>`), the container's program never run, and nothing
//! left behind (no host mount, no cgroup directory, no state entry). Needs root; skips
//! visibly otherwise.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[macro_use]
mod common;

use common::{run_cmd, Bundle, Out};
use serde_json::{json, Value};

/// The program bad configs name: if it ever runs, the test sees its marker.
const ARGS: &[&str] = &["sh", "-c", "echo SHOULD-NOT-RUN"];

/// Runs `b` with config.json as it is on disk and checks the refusal: exit != 0, stderr
/// holds every needle, the program did not run, nothing is left behind.
fn expect_refused(b: &Bundle, needles: &[&str]) -> Out {
    let before = common::host_mountinfo();
    let out = run_cmd(&mut b.run_cmd());
    assert_ne!(
        out.code, 0,
        "dory accepted it:\n{}\n{}",
        out.stdout, out.stderr
    );
    // The message as written, out of runc's `msg="…"` quoting (`\"` for `"`).
    let message = out.stderr.replace("\\\"", "\"");
    for n in needles {
        assert!(
            message.contains(n),
            "stderr does not mention {n:?}:\n{}",
            out.stderr
        );
    }
    assert!(
        !out.stdout.contains("SHOULD-NOT-RUN"),
        "the container ran:\n{}",
        out.stdout
    );
    b.assert_nothing_left();
    let after = common::host_mountinfo();
    let new: Vec<&String> = after.iter().filter(|l| !before.contains(l)).collect();
    assert!(new.is_empty(), "new host mounts: {new:#?}");
    out
}

/// Writes the (valid) config, then the text `edit` makes of it.
fn write_raw(b: &Bundle, edit: impl FnOnce(String) -> String) {
    let text = serde_json::to_string_pretty(&b.config).unwrap();
    std::fs::write(b.config_path(), edit(text)).unwrap();
}

#[test]
fn malformed_json() {
    needs_root!();
    let b = Bundle::new("bad-json", ARGS);
    write_raw(&b, |t| {
        let bad = t.replacen("\"hostname\": \"runc\"", "\"hostname\": runc", 1);
        assert_ne!(bad, t);
        bad
    });
    // Syntax errors carry a position: config.json: line L, column C: …
    expect_refused(&b, &["config.json: line "]);
}

#[test]
fn truncated_file() {
    needs_root!();
    let b = Bundle::new("bad-trunc", ARGS);
    write_raw(&b, |t| t[..t.len() / 2].to_owned());
    // Syntax errors carry a position: config.json: line L, column C: …
    expect_refused(&b, &["config.json: line "]);
}

#[test]
fn empty_file() {
    needs_root!();
    let b = Bundle::new("bad-empty", ARGS);
    write_raw(&b, |_| String::new());
    // Syntax errors carry a position: config.json: line L, column C: …
    expect_refused(&b, &["config.json: line "]);
}

#[test]
fn oversize_file() {
    needs_root!();
    // Valid JSON, padded with whitespace past the 256 KiB cap.
    const LIMIT: usize = 256 * 1024;
    let b = Bundle::new("bad-big", ARGS);
    write_raw(&b, |t| {
        let pad = LIMIT + 1 - t.len();
        format!("{}{}", &t[..t.len() - 1], " ".repeat(pad) + "}")
    });
    assert!(std::fs::metadata(b.config_path()).unwrap().len() > LIMIT as u64);
    expect_refused(&b, &["config.json", &LIMIT.to_string()]);
}

#[test]
fn too_many_mounts() {
    needs_root!();
    let mut b = Bundle::new("bad-mounts", ARGS);
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    let mut n = 0;
    while mounts.len() < 33 {
        mounts
            .push(json!({"destination": format!("/tmp/m{n}"), "type": "tmpfs", "source": "tmpfs"}));
        n += 1;
    }
    b.write_config();
    // config.json: mounts: more than 32 entries (limit 32)
    expect_refused(&b, &["config.json: mounts", "limit 32"]);
}

#[test]
fn unknown_capability() {
    needs_root!();
    let mut b = Bundle::new("bad-cap", ARGS);
    b.config["process"]["capabilities"]["bounding"][2] = Value::from("CAP_FOO");
    b.write_config();
    // config.json: process.capabilities.bounding[2]: unknown capability "CAP_FOO"
    expect_refused(&b, &["process.capabilities.bounding[2]", "\"CAP_FOO\""]);
}

#[test]
fn unknown_namespace_type() {
    needs_root!();
    let mut b = Bundle::new("bad-ns", ARGS);
    b.config["linux"]["namespaces"][1]["type"] = Value::from("nosuchns");
    b.write_config();
    expect_refused(&b, &["linux.namespaces[1]", "\"nosuchns\""]);
}

#[test]
fn missing_rootfs() {
    needs_root!();
    let mut b = Bundle::new("bad-rootfs", ARGS);
    b.config["root"]["path"] = Value::from("no-such-rootfs");
    b.write_config();
    expect_refused(&b, &["root.path", "no-such-rootfs"]);
    assert!(
        !b.dir.join("no-such-rootfs").exists(),
        "dory created the missing rootfs"
    );
}

#[test]
fn empty_args() {
    needs_root!();
    let mut b = Bundle::new("bad-args", ARGS);
    b.config["process"]["args"] = json!([]);
    b.write_config();
    expect_refused(&b, &["process.args"]);
}

#[test]
fn relative_cwd() {
    needs_root!();
    let mut b = Bundle::new("bad-cwd", ARGS);
    b.config["process"]["cwd"] = Value::from("tmp");
    b.write_config();
    expect_refused(&b, &["process.cwd"]);
}

#[test]
fn id_with_slash() {
    needs_root!();
    let b = Bundle::new("bad-id", ARGS);
    b.write_config();
    let id = format!("{}/x", b.id);
    let mut cmd = b.cmd(&["run", "--bundle"]);
    cmd.arg(&b.dir).arg(&id);
    let out = run_cmd(&mut cmd);
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(
        out.stderr.contains(&id),
        "error does not name the id {id:?}: {}",
        out.stderr
    );
    assert!(!out.stdout.contains("SHOULD-NOT-RUN"));
    // Neither `<root>/<id>/x` nor `<root>/<id>` may exist, nor a cgroup.
    assert!(!b.state_root.join(&id).exists() && !b.state_dir().exists());
    b.assert_nothing_left();
}

#[test]
fn id_dot_dotdot_and_too_long() {
    needs_root!();
    let b = Bundle::new("bad-ids", ARGS);
    b.write_config();
    let long = "x".repeat(1025);
    for id in ["..", ".", long.as_str()] {
        let mut cmd = b.cmd(&["run", "--bundle"]);
        cmd.arg(&b.dir).arg(id);
        let out = run_cmd(&mut cmd);
        assert_ne!(out.code, 0, "id {id:?} accepted: {}", out.stdout);
        assert!(out.stderr.contains("id"), "id {id:?}: {}", out.stderr);
        assert!(!out.stdout.contains("SHOULD-NOT-RUN"));
    }
    // `..` must not have touched the state root's parent (the test's base directory).
    assert!(!b.base.join("state.json").exists());
    let entries: Vec<_> = std::fs::read_dir(&b.state_root)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(entries.is_empty(), "state root holds {entries:?}");
    b.assert_nothing_left();
}

#[test]
fn program_not_found() {
    needs_root!();
    let b = Bundle::new("bad-exec", &["/bin/no-such-program"]);
    let out = b.run();
    out.expect_code(127);
    assert!(
        out.stderr.contains("/bin/no-such-program"),
        "{}",
        out.stderr
    );
    b.assert_nothing_left();
}

#[test]
fn pid_file_that_cannot_be_written() {
    needs_root!();
    // The pid file is written after the container's init exists: a failure there must
    // still kill the init and remove its cgroup and state entry, and leave no temp file.
    let b = Bundle::new("bad-pidfile", &["sleep", "30"]);
    b.write_config();
    let target = b.base.join("pid-is-a-dir");
    std::fs::create_dir(&target).unwrap();
    let out = run_cmd(
        b.cmd(&["create", "--pid-file"])
            .arg(&target)
            .arg("--bundle")
            .arg(&b.dir)
            .arg(&b.id),
    );
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("--pid-file"), "{out:?}");
    let left: Vec<_> = std::fs::read_dir(&b.base)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("dory-tmp"))
        .collect();
    assert!(left.is_empty(), "temp files left: {left:?}");
    let sleeping = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("cmdline")).ok())
        .any(|c| c.contains(&b.id));
    assert!(!sleeping, "the container's init was left running");
    b.assert_nothing_left();
}

#[test]
fn console_socket_without_terminal() {
    needs_root!();
    let b = Bundle::new("bad-console", ARGS);
    b.write_config();
    let out = run_cmd(
        b.cmd(&["create", "--console-socket"])
            .arg(b.base.join("no-such.sock"))
            .arg("--bundle")
            .arg(&b.dir)
            .arg(&b.id),
    );
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("process.terminal"), "{out:?}");
    b.assert_nothing_left();
}

// ---- class 4 of issue 9: mount destinations inside /proc and /sys ----

#[test]
fn mount_destinations_inside_proc_and_sys() {
    needs_root!();
    // Each would cover a kernel file of the container's /proc or /sys (hiding a mask, or
    // putting a writable file where a host knob was); written uncleanly so that only a
    // lexical cleaning catches them. Refused before anything is created.
    let cases: &[(&str, Value)] = &[
        (
            "proc-sys",
            json!({"destination": "/proc/../proc/sys", "type": "tmpfs", "source": "tmpfs"}),
        ),
        (
            "sysrq",
            json!({"destination": "//proc/./sysrq-trigger", "type": "bind", "source": "/dev/null",
                   "options": ["bind"]}),
        ),
        (
            "sys-kernel",
            json!({"destination": "/sys/./kernel", "type": "tmpfs", "source": "tmpfs"}),
        ),
        (
            "escaped",
            json!({"destination": "/proc\\/sys", "type": "tmpfs", "source": "tmpfs"}),
        ),
    ];
    for (name, mount) in cases {
        let mut b = Bundle::new(&format!("bad-pseudo-{name}"), ARGS);
        let mounts = b.config["mounts"].as_array_mut().unwrap();
        mounts.push(mount.clone());
        let i = mounts.len() - 1;
        b.write_config();
        if *name == "escaped" {
            // serde_json wrote `\\/`: make it the JSON escape `\/` (a plain '/').
            write_raw(&b, |t| t.replacen("/proc\\\\/sys", "/proc\\/sys", 1));
        }
        let field = format!("config.json: mounts[{i}].destination: ");
        let out = expect_refused(&b, &[&field]);
        assert!(
            out.stderr.contains("is inside /proc") || out.stderr.contains("is inside /sys"),
            "{name}: {}",
            out.stderr
        );
    }
}

#[test]
fn real_runtime_mounts_at_proc_sys_and_cgroup_still_run() {
    needs_root!();
    // The default config (proc at /proc, sysfs at /sys, cgroup at /sys/fs/cgroup) plus an
    // lxcfs-style bind over /proc/uptime: all allowed, the container runs.
    let mut b = Bundle::new("ok-pseudo", &["sh", "-c", "cat /proc/uptime; echo RAN"]);
    let uptime = b.base.join("uptime");
    std::fs::write(&uptime, "42.00 42.00\n").unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/proc/uptime", "type": "bind",
        "source": uptime.to_str().unwrap(), "options": ["bind", "ro"]}));
    let out = b.run();
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("42.00 42.00") && out.stdout.contains("RAN"),
        "{out:?}"
    );
}
