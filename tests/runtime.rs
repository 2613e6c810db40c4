//! `dory run` on a real busybox rootfs with the seed config: what the container sees
//! (pid 1, hostname, capabilities, limits, read-only and masked paths, devices, network),
//! what the host sees (mounts, state, cgroups, `dory list`), exit codes and the terminal.
//! Needs root; skips visibly otherwise.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{cap_mask, cgroup_dirs, mounts_mentioning, run_cmd, run_cmd_input, Bundle, DORY};
use serde_json::Value;

/// Mount points (field 5) and their per-mount options (field 6) of a mountinfo text.
fn mount_points(mountinfo: &str) -> Vec<(String, String)> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let point = f.nth(4)?;
            let opts = f.next()?;
            Some((point.to_owned(), opts.to_owned()))
        })
        .collect()
}

#[test]
fn pid1_and_only_own_processes() {
    needs_root!();
    // The glob runs in the shell itself (no fork), so /proc lists exactly the pids alive:
    // the shell alone. Then ps (a child: the trailing echo keeps busybox sh from exec-ing
    // its last command) must list the shell and itself.
    let b = Bundle::new(
        "pid1",
        &[
            "sh",
            "-c",
            "echo self=$$; cd /proc; set -- [0-9]*; echo procs=$*; ps -o pid,comm; echo end",
        ],
    );
    let out = b.run();
    out.expect_code(0);
    assert_eq!(out.value("self"), Some("1"), "{}", out.stdout);
    assert_eq!(
        out.value("procs"),
        Some("1"),
        "/proc lists other processes:\n{}",
        out.stdout
    );
    let rows: Vec<(u32, String)> = out
        .stdout
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("PID"))
        .skip(1)
        .take_while(|l| *l != "end")
        .map(|l| {
            let mut f = l.split_whitespace();
            (
                f.next().unwrap().parse().unwrap(),
                f.next().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rows.len(),
        2,
        "ps must show the shell and itself only:\n{}",
        out.stdout
    );
    assert_eq!(rows[0], (1, "sh".to_owned()), "{}", out.stdout);
    assert_eq!(rows[1].1, "ps", "{}", out.stdout);
    assert!(rows[1].0 > 1);
    b.assert_nothing_left();
}

#[test]
fn hostname_is_the_configs() {
    needs_root!();
    let host_before = nix::unistd::gethostname().unwrap();
    let b = Bundle::new("hostname", &["hostname"]);
    assert_eq!(b.config["hostname"], "runc", "the seed config's hostname");
    let out = b.run();
    out.expect_code(0);
    assert_eq!(out.stdout.trim(), "runc");
    // Another name, so the default is not what makes it pass.
    let mut b2 = Bundle::new("hostname2", &["hostname"]);
    b2.config["hostname"] = Value::from("dory-h-42");
    let out = b2.run();
    out.expect_code(0);
    assert_eq!(out.stdout.trim(), "dory-h-42");
    assert_eq!(
        nix::unistd::gethostname().unwrap(),
        host_before,
        "the host's hostname changed"
    );
}

#[test]
fn no_capabilities_in_the_config_means_none() {
    needs_root!();
    // As runc: a config without process.capabilities gets no capabilities at all, not
    // the runtime's own (full root).
    let mut b = Bundle::new("nocaps", &["grep", "^Cap", "/proc/self/status"]);
    b.config["process"]
        .as_object_mut()
        .unwrap()
        .remove("capabilities");
    let out = b.run();
    out.expect_code(0);
    for key in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        let v = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}:")))
            .unwrap_or_else(|| panic!("no {key} in\n{}", out.stdout));
        assert_eq!(
            u64::from_str_radix(v.trim(), 16).unwrap(),
            0,
            "{key}: {}",
            out.stdout
        );
    }
    b.assert_nothing_left();
}

#[test]
fn capabilities_and_no_new_privs() {
    needs_root!();
    // grep is the container's init here, so /proc/self is the process dory exec'd.
    let b = Bundle::new(
        "caps",
        &["grep", "-E", "^(Cap|NoNewPrivs)", "/proc/self/status"],
    );
    let out = b.run();
    out.expect_code(0);
    let field = |name: &str| -> u64 {
        let v = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} in\n{}", out.stdout));
        u64::from_str_radix(v.trim(), 16).unwrap()
    };
    // CAP_AUDIT_WRITE (29) | CAP_KILL (5) | CAP_NET_BIND_SERVICE (10).
    const SEED: u64 = 0x2000_0420;
    for (set, key) in [
        ("bounding", "CapBnd"),
        ("effective", "CapEff"),
        ("permitted", "CapPrm"),
    ] {
        assert_eq!(cap_mask(&b.config, set), SEED, "seed {set}");
        assert_eq!(field(key), SEED, "{key}:\n{}", out.stdout);
    }
    // The seed has no inheritable set.
    assert_eq!(cap_mask(&b.config, "inheritable"), 0);
    assert_eq!(field("CapInh"), 0, "{}", out.stdout);
    // The seed lists ambient caps, but the kernel refuses to raise an ambient capability
    // that is not also inheritable (PR_CAP_AMBIENT_RAISE → EPERM), and the inheritable set
    // stays empty (as runc keeps it since CVE-2022-29162): so CapAmb is 0.
    assert_eq!(field("CapAmb"), 0, "{}", out.stdout);
    assert_eq!(
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix("NoNewPrivs:"))
            .map(str::trim),
        Some("1"),
        "{}",
        out.stdout
    );
}

#[test]
fn rlimit_nofile() {
    needs_root!();
    let b = Bundle::new("rlimit", &["cat", "/proc/self/limits"]);
    let r = &b.config["process"]["rlimits"][0];
    assert_eq!(
        (r["type"].as_str(), r["soft"].as_u64(), r["hard"].as_u64()),
        (Some("RLIMIT_NOFILE"), Some(1024), Some(1024))
    );
    let out = b.run();
    out.expect_code(0);
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    let f: Vec<&str> = line["Max open files".len()..].split_whitespace().collect();
    assert_eq!(&f[..2], ["1024", "1024"], "{line}");
}

#[test]
fn root_is_readonly() {
    needs_root!();
    let b = Bundle::new(
        "rofs",
        &[
            "sh",
            "-c",
            "touch /x; echo touch=$?; test -e /x; echo exists=$?; touch /dev/shm/ok; echo shm=$?",
        ],
    );
    assert_eq!(b.config["root"]["readonly"], true);
    let out = b.run();
    out.expect_code(0);
    assert_ne!(
        out.value("touch"),
        Some("0"),
        "touch / succeeded:\n{}",
        out.stdout
    );
    assert_eq!(out.value("exists"), Some("1"), "{}", out.stdout);
    // A writable tmpfs works: the failure above is the read-only root, not touch.
    assert_eq!(out.value("shm"), Some("0"), "{}{}", out.stdout, out.stderr);
    assert!(!b.rootfs.join("x").exists());
}

/// The config's list at `linux.<key>` as strings.
fn paths(b: &Bundle, key: &str) -> Vec<String> {
    b.config["linux"][key]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect()
}

/// A shell line printing `P <path> dir|file|none <entries or bytes>` per path.
fn probe_script(paths: &[String]) -> String {
    let mut s = String::new();
    for p in paths {
        s.push_str(&format!(
            "if [ -d {p} ]; then k=\"dir $(ls -A {p} | wc -l)\"; elif [ -e {p} ]; then k=\"file $(cat {p} 2>/dev/null | wc -c)\"; \
             else k=none; fi; echo \"P {p} $k\"; "
        ));
    }
    s.push_str("echo ==mountinfo; cat /proc/self/mountinfo");
    s
}

/// The probe line for `path`: [kind, size].
fn probe<'a>(out: &'a common::Out, path: &str) -> Vec<&'a str> {
    let prefix = format!("P {path} ");
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no probe of {path}:\n{}", out.stdout));
    line[prefix.len()..].split(' ').collect()
}

#[test]
fn masked_paths() {
    needs_root!();
    let mut b = Bundle::new("masked", &[]);
    let masked = paths(&b, "maskedPaths");
    b.config["process"]["args"] = serde_json::json!(["sh", "-c", probe_script(&masked)]);
    let out = b.run();
    out.expect_code(0);
    let inside = mount_points(out.stdout.split("==mountinfo").nth(1).unwrap());
    let mut checked = 0;
    for p in &masked {
        // runc skips masked paths the kernel does not have (this VM's kernel lacks
        // /proc/kcore, for one); each one that exists must be masked.
        if !Path::new(p).exists() {
            continue;
        }
        checked += 1;
        let pr = probe(&out, p);
        if Path::new(p).is_dir() {
            assert_eq!(
                pr[..2],
                ["dir", "0"],
                "{p} is not an empty directory inside:\n{}",
                out.stdout
            );
        } else {
            assert_eq!(
                pr[..2],
                ["file", "0"],
                "{p} does not read empty inside:\n{}",
                out.stdout
            );
        }
        assert!(
            inside.iter().any(|(m, _)| m == p),
            "{p} is not a mount point inside:\n{}",
            out.stdout
        );
    }
    assert!(checked >= 2, "fewer than 2 masked paths exist on this host");
    // The host's view of at least one masked path is not empty, so the 0s mean masking.
    let host_timer_list = std::fs::read("/proc/timer_list")
        .map(|v| v.len())
        .unwrap_or(0);
    let host_firmware = std::fs::read_dir("/sys/firmware")
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(
        host_timer_list > 0 || host_firmware > 0,
        "nothing to mask on this host?"
    );
}

#[test]
fn readonly_paths() {
    needs_root!();
    let mut b = Bundle::new("ropaths", &[]);
    let ro = paths(&b, "readonlyPaths");
    // The write must fail because /proc/sys is read-only (EROFS), not merely for want of
    // CAP_SYS_ADMIN (EPERM). (busybox `test -w` is always true for root: not usable.)
    let script = format!(
        "echo evil > /proc/sys/kernel/hostname; echo hostw=$?; echo host=$(hostname); {}",
        probe_script(&ro)
    );
    b.config["process"]["args"] = serde_json::json!(["sh", "-c", script]);
    let out = b.run();
    out.expect_code(0);
    assert_ne!(out.value("hostw"), Some("0"), "{}", out.stdout);
    assert!(
        out.stderr.contains("Read-only file system"),
        "writing /proc/sys did not fail with EROFS:\n{}",
        out.stderr
    );
    assert_eq!(out.value("host"), Some("runc"), "{}", out.stdout);
    let inside = mount_points(out.stdout.split("==mountinfo").nth(1).unwrap());
    let mut checked = 0;
    for p in &ro {
        // Paths this kernel lacks (/proc/sysrq-trigger on this VM) are skipped, as runc does.
        if !Path::new(p).exists() {
            continue;
        }
        checked += 1;
        assert_ne!(
            probe(&out, p)[0],
            "none",
            "{p} is missing inside:\n{}",
            out.stdout
        );
        let Some((_, opts)) = inside.iter().rev().find(|(m, _)| m == p) else {
            panic!("{p} is not a mount point in the container:\n{}", out.stdout)
        };
        assert!(opts.split(',').any(|o| o == "ro"), "{p} mounted {opts}");
    }
    assert!(
        checked >= 2,
        "fewer than 2 readonly paths exist on this host"
    );
}

#[test]
fn dev_null_works_and_mknod_is_refused() {
    needs_root!();
    let b = Bundle::new(
        "devices",
        &[
            "sh",
            "-c",
            "echo data > /dev/null; echo nullw=$?; echo nullr=$(cat /dev/null | wc -c); \
             echo zero=$(head -c 5 /dev/zero | wc -c); \
             mknod /dev/shm/n c 1 3; echo mknod=$?; test -e /dev/shm/n; echo exists=$?",
        ],
    );
    let out = b.run();
    out.expect_code(0);
    assert_eq!(
        out.value("nullw"),
        Some("0"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(out.value("nullr"), Some("0"), "{}", out.stdout);
    assert_eq!(out.value("zero"), Some("5"), "{}", out.stdout);
    assert_ne!(
        out.value("mknod"),
        Some("0"),
        "mknod succeeded:\n{}",
        out.stdout
    );
    assert_eq!(out.value("exists"), Some("1"), "{}", out.stdout);
}

#[test]
fn only_loopback_in_network_namespace() {
    needs_root!();
    let b = Bundle::new(
        "net",
        &["sh", "-c", "cat /proc/net/dev; echo ==ip; ip -o link"],
    );
    let out = b.run();
    out.expect_code(0);
    let (dev, ip) = out.stdout.split_once("==ip").unwrap();
    let ifaces: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(ifaces, ["lo"], "{}", out.stdout);
    let links: Vec<&str> = ip.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(links.len(), 1, "{ip}");
    assert!(links[0].contains(": lo:"), "{ip}");
}

#[test]
fn host_sees_no_container_mounts() {
    needs_root!();
    let before = common::host_mountinfo();
    let b = Bundle::new("mounts", &["sh", "-c", "echo ready; read x; echo bye"]);
    let mut r = b.spawn();
    r.wait_line("ready");
    // While it runs: none of the container's mounts propagated to the host.
    for p in [&b.base, &b.rootfs] {
        let m = mounts_mentioning(p);
        assert!(
            m.is_empty(),
            "host sees container mounts while it runs: {m:#?}"
        );
    }
    r.send("go\n");
    let out = r.finish();
    out.expect_code(0);
    assert!(out.stdout.contains("bye"));
    let after = common::host_mountinfo();
    let new: Vec<&String> = after.iter().filter(|l| !before.contains(l)).collect();
    let p1 = b.base.to_string_lossy().into_owned();
    let p2 = b.rootfs.to_string_lossy().into_owned();
    let leaked: Vec<&&String> = new
        .iter()
        .filter(|l| l.contains(&p1) || l.contains(&p2))
        .collect();
    assert!(leaked.is_empty(), "new host mounts: {leaked:#?}");
    b.assert_nothing_left();
}

#[test]
fn exit_codes_propagate() {
    needs_root!();
    let b = Bundle::new("exit0", &["true"]);
    b.run().expect_code(0);
    b.assert_nothing_left();
    let b = Bundle::new("exit42", &["sh", "-c", "exit 42"]);
    b.run().expect_code(42);
    b.assert_nothing_left();
    let b = Bundle::new("exit1", &["false"]);
    b.run().expect_code(1);
}

#[test]
fn killed_by_signal_gives_128_plus_signal() {
    needs_root!();
    // In its own pid namespace the shell is init, and the kernel drops a SIGKILL that init
    // sends itself (`kill -9 $$` is a no-op there). So: (1) without a pid namespace the
    // shell kills itself; (2) with one, the host kills the container's init.
    let mut b = Bundle::new("sigkill-self", &["sh", "-c", "kill -9 $$; echo survived"]);
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "pid");
    let out = b.run();
    out.expect_code(128 + 9);
    assert!(!out.stdout.contains("survived"));
    b.assert_nothing_left();

    let b = Bundle::new("sigkill-host", &["sh", "-c", "echo ready; read x"]);
    let mut r = b.spawn();
    r.wait_line("ready");
    let st = b.wait_state();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(st.pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let out = r.finish();
    out.expect_code(128 + 9);
    b.assert_nothing_left();
}

#[test]
fn terminal_through_a_pty() {
    needs_root!();
    let mut b = Bundle::new("tty", &["sh"]);
    b.config["process"]["terminal"] = Value::Bool(true);
    b.write_config();
    let cmdline = run_cmdline(&b);
    // The echoed input holds the commands, not their results: marker-42 and console-is-6
    // appear only if the shell ran them.
    let input =
        "echo marker-$((6*7))\ntty\ntest -c /dev/console && echo console-is-$((2*3))\nexit 3\n";
    let out = run_cmd_input(
        std::process::Command::new("script").args(["-qec", &cmdline, "/dev/null"]),
        Some(input),
    );
    let text = out.stdout.replace('\r', "");
    assert!(text.contains("\nmarker-42\n"), "{text}\n{}", out.stderr);
    assert!(
        text.lines().any(|l| l.trim() == "/dev/pts/0"),
        "tty is not /dev/pts/0:\n{text}"
    );
    assert!(
        text.contains("\nconsole-is-6\n"),
        "no /dev/console:\n{text}"
    );
    assert_eq!(out.code, 3, "{text}\n{}", out.stderr);
    b.assert_nothing_left();
}

#[test]
fn list_shows_running_container() {
    needs_root!();
    let b = Bundle::new("list", &["sh", "-c", "echo ready; read x"]);
    let mut r = b.spawn();
    r.wait_line("ready");
    let st = b.wait_state();
    assert!(st.pid > 0);
    let bundle = b.dir.to_string_lossy().into_owned();

    let table = run_cmd(&mut b.cmd(&["list"]));
    table.expect_code(0);
    let mut lines = table.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
        "{}",
        table.stdout
    );
    let row: Vec<&str> = lines
        .find(|l| l.split_whitespace().next() == Some(b.id.as_str()))
        .unwrap_or_else(|| panic!("{} not listed:\n{}", b.id, table.stdout))
        .split_whitespace()
        .collect();
    assert_eq!(row[1], st.pid.to_string(), "{}", table.stdout);
    assert_eq!(row[2], "running");
    assert_eq!(row[3], bundle);

    let json = run_cmd(&mut b.cmd(&["list", "--format", "json"]));
    json.expect_code(0);
    let v: Value = serde_json::from_str(&json.stdout)
        .unwrap_or_else(|e| panic!("list --format json: {e}:\n{}", json.stdout));
    let items = v.as_array().expect("a JSON array");
    let c = items
        .iter()
        .find(|c| c["id"] == b.id.as_str())
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(c["pid"].as_i64(), Some(i64::from(st.pid)));
    assert!(c["pid"].as_i64().unwrap() > 0);
    assert_eq!(c["status"], "running");
    assert_eq!(c["bundle"], bundle.as_str());

    let q = run_cmd(&mut b.cmd(&["list", "-q"]));
    q.expect_code(0);
    assert_eq!(q.stdout.lines().collect::<Vec<_>>(), [b.id.as_str()]);

    r.send("\n");
    r.finish().expect_code(0);

    let table = run_cmd(&mut b.cmd(&["list"]));
    table.expect_code(0);
    assert!(!table.stdout.contains(&b.id), "{}", table.stdout);
    let q = run_cmd(&mut b.cmd(&["list", "-q"]));
    assert_eq!(q.stdout.trim(), "");
    let json = run_cmd(&mut b.cmd(&["list", "--format", "json"]));
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v, Value::Array(vec![]));
}

#[test]
fn same_id_twice_is_an_error() {
    needs_root!();
    let b = Bundle::new(
        "twice",
        &["sh", "-c", "echo ready; read x; echo first-done"],
    );
    let mut r = b.spawn();
    r.wait_line("ready");
    let st = b.wait_state();
    let second = run_cmd(&mut b.run_cmd());
    assert_ne!(
        second.code, 0,
        "second run of the same id succeeded:\n{}",
        second.stdout
    );
    assert!(
        second.stderr.contains(&b.id),
        "error does not name the id: {}",
        second.stderr
    );
    assert!(!second.stdout.contains("ready"), "the second container ran");
    // The failed attempt must not have touched the first one's state or cgroup.
    let again = b.state().expect("first container's state is gone");
    assert_eq!(again.pid, st.pid);
    assert!(
        !cgroup_dirs(&b.id).is_empty(),
        "first container's cgroup is gone"
    );
    r.send("\n");
    let out = r.finish();
    out.expect_code(0);
    assert!(out.stdout.contains("first-done"));
    b.assert_nothing_left();
}

#[test]
fn state_dir_exists_while_running_and_is_removed_after() {
    needs_root!();
    let b = Bundle::new("state", &["sh", "-c", "echo ready; read x"]);
    let mut r = b.spawn();
    r.wait_line("ready");
    let st = b.wait_state();
    assert!(b.state_dir().join("state.json").is_file());
    assert_eq!(st.json["id"], b.id.as_str());
    assert_eq!(st.json["status"], "running");
    assert_eq!(st.json["bundle"], b.dir.to_string_lossy().as_ref());
    assert!(Path::new(&format!("/proc/{}", st.pid)).exists());
    r.send("\n");
    r.finish().expect_code(0);
    assert!(
        !b.state_dir().exists(),
        "{} left behind",
        b.state_dir().display()
    );
    b.assert_nothing_left();
}

#[test]
fn cgroup_exists_while_running_and_is_removed_after() {
    needs_root!();
    let b = Bundle::new(
        "cgroup",
        &["sh", "-c", "cat /proc/self/cgroup; echo ready; read x"],
    );
    let mut r = b.spawn();
    r.wait_line("ready");
    let st = b.wait_state();
    let dirs = cgroup_dirs(&b.id);
    assert!(!dirs.is_empty(), "no cgroup /dory-test/{}", b.id);
    let memory = Path::new("/sys/fs/cgroup/memory");
    if memory.is_dir() {
        let d = memory.join("dory-test").join(&b.id);
        assert!(
            d.join("memory.limit_in_bytes").is_file(),
            "{} missing",
            d.display()
        );
    }
    for d in &dirs {
        let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap();
        let pids: BTreeSet<i32> = procs.lines().map(|p| p.trim().parse().unwrap()).collect();
        assert!(
            pids.contains(&st.pid),
            "{} holds {pids:?}, not {}",
            d.display(),
            st.pid
        );
    }
    // Inside, the cgroup namespace shows the container's cgroup as the root.
    let inside: Vec<String> = r
        .seen()
        .iter()
        .take_while(|l| *l != "ready")
        .filter(|l| l.contains(':'))
        .cloned()
        .collect();
    assert!(!inside.is_empty());
    for l in &inside {
        assert!(l.ends_with(":/"), "/proc/self/cgroup inside: {l}");
    }
    r.send("\n");
    r.finish().expect_code(0);
    assert!(
        cgroup_dirs(&b.id).is_empty(),
        "cgroup left: {:?}",
        cgroup_dirs(&b.id)
    );
    for d in dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

#[test]
fn args_and_env_escapes_arrive_unescaped() {
    needs_root!();
    let mut b = Bundle::new("escapes", &[]);
    let args = ["a\"b", "c\\d", "é<>&", "tab\there"];
    let mut argv = vec![
        "sh",
        "-c",
        "printf '%s|' \"$@\"; echo; echo \"env=$GREETING\"",
        "zero",
    ];
    argv.extend(args);
    b.config["process"]["args"] = serde_json::json!(argv);
    b.config["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(Value::from("GREETING=say \"hi\" <there> & more"));
    // Written as Go's encoder (podman, containerd) writes it: <, >, & as \u003c, \u003e,
    // \u0026; quotes, backslashes and tabs as \", \\, \t; é as UTF-8.
    let text = serde_json::to_string_pretty(&b.config)
        .unwrap()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    assert!(text.contains("\\u003cthere\\u003e \\u0026 more"));
    std::fs::write(b.config_path(), text).unwrap();
    let out = run_cmd(&mut b.run_cmd());
    out.expect_code(0);
    let mut lines = out.stdout.lines();
    assert_eq!(
        lines.next(),
        Some(format!("{}|", args.join("|")).as_str()),
        "{}",
        out.stdout
    );
    assert_eq!(lines.next(), Some("env=say \"hi\" <there> & more"));
}

#[test]
fn user_and_additional_groups() {
    needs_root!();
    let mut b = Bundle::new("user", &["sh", "-c", "echo ids=$(id -u) $(id -g) $(id -G)"]);
    b.config["process"]["user"] =
        serde_json::json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 7]});
    let out = b.run();
    out.expect_code(0);
    assert_eq!(
        out.value("ids"),
        Some("1000 1001 1001 5 7"),
        "{}",
        out.stdout
    );
}

#[test]
fn signals_are_forwarded_to_the_container() {
    needs_root!();
    let b = Bundle::new(
        "signals",
        &[
            "sh",
            "-c",
            "trap 'echo got-usr1; exit 7' USR1; echo ready; while :; do sleep 0.05; done",
        ],
    );
    let mut r = b.spawn();
    r.wait_line("ready");
    b.wait_state();
    let dory_pid = nix::unistd::Pid::from_raw(r.dory_pid());
    nix::sys::signal::kill(dory_pid, nix::sys::signal::Signal::SIGUSR1).unwrap();
    let out = r.finish();
    out.expect_code(7);
    assert!(out.stdout.contains("got-usr1"), "{}", out.stdout);
    b.assert_nothing_left();
}

#[test]
fn stdin_reaches_the_container() {
    needs_root!();
    let b = Bundle::new("stdin", &["sh", "-c", "read a; read b; echo \"got=$a+$b\""]);
    let out = run_cmd_input(&mut b.run_cmd_written(), Some("one\ntwo\n"));
    out.expect_code(0);
    assert_eq!(out.value("got"), Some("one+two"));
}

#[test]
fn orphans_die_with_the_init_and_the_cgroup_goes() {
    needs_root!();
    // The background sleep outlives the shell: the pid namespace's end must kill it.
    let b = Bundle::new("orphans", &["sh", "-c", "sleep 300 & echo bg=$!; exit 0"]);
    let t = std::time::Instant::now();
    let out = b.run();
    out.expect_code(0);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    b.assert_nothing_left();
}

#[test]
fn without_pid_namespace_leftover_processes_are_killed() {
    needs_root!();
    // No pid namespace: nothing kills the background sleep for dory but dory itself. runc
    // kills every process left in the container's cgroup when its init exits.
    let mut b = Bundle::new("nopidns", &["sh", "-c", "sleep 300 & echo bg=$!; exit 0"]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "pid");
    let t = std::time::Instant::now();
    let out = b.run();
    out.expect_code(0);
    let bg: i32 = out.value("bg").unwrap().parse().unwrap();
    let alive = common::proc_start_time(bg).is_some();
    assert!(!alive, "the container's background process {bg} survived");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "dory run took {:?}",
        t.elapsed()
    );
    b.assert_nothing_left();
}

#[test]
fn list_shows_stopped_when_the_init_is_gone() {
    needs_root!();
    let b = Bundle::new("stopped", &["sh", "-c", "echo ready; read x"]);
    let mut r = b.spawn();
    r.wait_line("ready");
    let st = b.wait_state();
    // dory run dies without cleaning up; then the container's init goes too.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(r.dory_pid()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    drop(r);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(st.pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = std::time::Instant::now() + common::TIMEOUT;
    while common::proc_start_time(st.pid).is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "init {} does not die",
            st.pid
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let json = run_cmd(&mut b.cmd(&["list", "--format", "json"]));
    json.expect_code(0);
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    let c = v
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == b.id.as_str())
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(c["status"], "stopped", "{v}");
    assert_eq!(c["pid"], 0, "{v}");
    // The Bundle's drop removes the stale state entry and the cgroup.
}

#[test]
fn same_id_runs_again_after_the_first_ended() {
    needs_root!();
    let b = Bundle::new("again", &["true"]);
    b.run().expect_code(0);
    b.run().expect_code(0);
    b.assert_nothing_left();
}

#[test]
fn bundle_defaults_to_the_current_directory() {
    needs_root!();
    let b = Bundle::new("cwd-bundle", &["sh", "-c", "echo ready; read x"]);
    b.write_config();
    let mut cmd = b.cmd(&["run"]);
    cmd.arg(&b.id).current_dir(&b.dir);
    let mut r = common::Running::spawn(cmd);
    r.wait_line("ready");
    let st = b.wait_state();
    assert_eq!(
        st.json["bundle"],
        b.dir.to_string_lossy().as_ref(),
        "state must hold the absolute bundle path"
    );
    r.send("\n");
    r.finish().expect_code(0);
    b.assert_nothing_left();
}

#[test]
fn terminal_output_is_not_truncated_at_exit() {
    needs_root!();
    let mut b = Bundle::new("tty-big", &["sh", "-c", "seq 1 50000; echo last-line"]);
    b.config["process"]["terminal"] = Value::Bool(true);
    b.write_config();
    let cmdline = run_cmdline(&b);
    let out = run_cmd(std::process::Command::new("script").args(["-qec", &cmdline, "/dev/null"]));
    out.expect_code(0);
    let text = out.stdout.replace('\r', "");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 50_001, "{}", out.stderr);
    assert_eq!(lines[49_999], "50000");
    assert_eq!(lines[50_000], "last-line");
    b.assert_nothing_left();
}

#[test]
fn cgroup_resources_are_applied() {
    needs_root!();
    let mut b = Bundle::new(
        "resources",
        &[
            "sh",
            "-c",
            "echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes); \
             echo pids=$(cat /sys/fs/cgroup/pids/pids.max); echo ready; read x",
        ],
    );
    if !Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
        panic!("this test expects cgroup v1 memory and pids hierarchies (as on the CI machine)");
    }
    b.config["linux"]["resources"]["memory"] = serde_json::json!({"limit": 67_108_864});
    b.config["linux"]["resources"]["pids"] = serde_json::json!({"limit": 50});
    let mut r = b.spawn();
    r.wait_line("ready");
    let host = |ctrl: &str, file: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{ctrl}/dory-test/{}/{file}", b.id))
            .unwrap()
            .trim()
            .to_owned()
    };
    assert_eq!(host("memory", "memory.limit_in_bytes"), "67108864");
    assert_eq!(host("pids", "pids.max"), "50");
    r.send("\n");
    let out = r.finish();
    out.expect_code(0);
    // The container sees its own cgroup at the root of its cgroup namespace.
    assert_eq!(out.value("mem"), Some("67108864"), "{}", out.stdout);
    assert_eq!(out.value("pids"), Some("50"), "{}", out.stdout);
    b.assert_nothing_left();
}

#[test]
fn list_reports_unusual_bundle_paths_exactly() {
    needs_root!();
    let mut b = Bundle::new("oddpath", &["sh", "-c", "echo ready; read x"]);
    // A bundle directory whose name needs JSON escaping: quote, backslash, space, é.
    b.dir = b.base.join("b \"q\\ é");
    std::fs::create_dir(&b.dir).unwrap();
    let bundle = b.dir.to_str().unwrap().to_owned();
    let mut r = b.spawn();
    r.wait_line("ready");
    let st = b.wait_state();
    assert_eq!(st.json["bundle"], bundle.as_str(), "state.json");
    let json = run_cmd(&mut b.cmd(&["list", "--format", "json"]));
    json.expect_code(0);
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        v[0]["bundle"],
        bundle.as_str(),
        "list --format json: {}",
        json.stdout
    );
    let table = run_cmd(&mut b.cmd(&["list"]));
    assert!(
        table.stdout.contains(&format!("   {bundle}   ")),
        "list:\n{}",
        table.stdout
    );
    r.send("\n");
    r.finish().expect_code(0);
    b.assert_nothing_left();
}

/// Directories named `name` up to 4 levels under every cgroup mount.
fn cgroup_dirs_named(name: &str) -> Vec<PathBuf> {
    fn walk(dir: &std::path::Path, name: &str, depth: usize, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if !p.is_dir() {
                continue;
            }
            if e.file_name() == name {
                out.push(p.clone());
            }
            if depth > 0 {
                walk(&p, name, depth - 1, out);
            }
        }
    }
    let mut out = Vec::new();
    for m in common::cgroup_mounts() {
        walk(&m, name, 3, &mut out);
    }
    out
}

/// Removes, on drop, cgroups a failed test left under the caller's own cgroup.
struct RemoveCgroupsNamed(String);

impl Drop for RemoveCgroupsNamed {
    fn drop(&mut self) {
        for d in cgroup_dirs_named(&self.0) {
            let _ = std::fs::remove_dir(d);
        }
    }
}

#[test]
fn relative_cgroups_path_without_cgroup_namespace() {
    needs_root!();
    // A relative linux.cgroupsPath lives under the caller's own cgroup, which differs per
    // hierarchy (here the memory one is not the root); the cgroup mount must show the
    // container that directory, with its limit.
    let mut b = Bundle::new(
        "relcg",
        &[
            "sh",
            "-c",
            "echo limit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)",
        ],
    );
    let _cleanup = RemoveCgroupsNamed(b.id.clone());
    b.config["linux"]["cgroupsPath"] = Value::from(b.id.as_str());
    b.config["linux"]["resources"] = serde_json::json!({"memory": {"limit": 50331648}});
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "cgroup");
    let out = b.run();
    out.expect_code(0);
    assert_eq!(out.value("limit"), Some("50331648"), "{out:?}");
    let left = cgroup_dirs_named(&b.id);
    assert!(left.is_empty(), "cgroups left: {left:?}");
    b.assert_nothing_left();
}

#[test]
fn shared_and_unbindable_rootfs_propagation() {
    needs_root!();
    // pivot_root(2) refuses a new root under a shared parent mount: dory makes the mount
    // holding the rootfs private in the container's namespace, then gives the new root
    // the propagation asked for.
    for (prop, tag) in [
        ("shared", " shared:"),
        ("rshared", " shared:"),
        ("unbindable", " unbindable "),
    ] {
        let mut b = Bundle::new(
            &format!("prop-{prop}"),
            &["awk", "$5 == \"/\"", "/proc/self/mountinfo"],
        );
        b.config["linux"]["rootfsPropagation"] = Value::from(prop);
        let before = common::host_mountinfo();
        let out = b.run();
        out.expect_code(0);
        assert!(out.stdout.contains(tag), "{prop}: {out:?}");
        assert_eq!(
            common::host_mountinfo(),
            before,
            "{prop}: host mounts changed"
        );
        b.assert_nothing_left();
    }
}

#[test]
fn missing_cwd_is_created() {
    needs_root!();
    // As runc: process.cwd that the image lacks is made before the program starts.
    let mut b = Bundle::with_private_rootfs("mkcwd", &["sh", "-c", "echo cwd=$(pwd)"]);
    b.config["process"]["cwd"] = Value::from("/work/dir");
    let out = b.run();
    out.expect_code(0);
    assert_eq!(out.value("cwd"), Some("/work/dir"), "{out:?}");
    assert!(b.rootfs.join("work/dir").is_dir());
    b.assert_nothing_left();
}

/// `dory run` of the bundle as one shell command line (for `script`, which gives it a pty).
fn run_cmdline(b: &Bundle) -> String {
    format!(
        "{DORY} --root {} run --bundle {} {}",
        b.state_root.display(),
        b.dir.display(),
        b.id
    )
}
