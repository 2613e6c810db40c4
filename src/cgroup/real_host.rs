//! The cgroup layer on this machine's real cgroupfs (needs root; skips visibly otherwise).
//!
//! Creates "/dory-test-<pid>" in every hierarchy with a 64 MiB memory limit and a pids
//! limit of 10, moves a real `sleep 10` into it, freezes and thaws it, kills it, removes
//! the cgroup and checks that nothing is left. A guard cleans up if any step fails.

use std::fs;
use std::process::{Child, Command};
use std::time::Instant;

use super::*;

/// Kills the child and removes the cgroup when the test ends, passed or not.
struct Guard {
    child: Option<Child>,
    cg: Option<Cgroup>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(cg) = &self.cg {
            let _ = cg.freeze(false);
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(cg) = self.cg.take() {
            let _ = cg.remove();
        }
    }
}

/// Field 3 of /proc/<pid>/stat: the scheduler state letter.
fn proc_state(pid: i32) -> char {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = stat.rsplit_once(") ").unwrap().1;
    after_comm.chars().next().unwrap()
}

#[test]
fn real_host() {
    if !nix::unistd::geteuid().is_root() {
        crate::testutil::skip("cgroup::real_host", "needs root");
        return;
    }
    let layout = Layout::detect().unwrap();
    let path = format!("/dory-test-{}", std::process::id());
    let res = serde_json_core::from_str::<Resources<'_>>(
        r#"{"memory": {"limit": 67108864}, "pids": {"limit": 10}}"#,
    )
    .unwrap()
    .0;

    let t = Instant::now();
    let cg = Cgroup::create(&layout, &path, Some(&res)).unwrap();
    let t_create = t.elapsed();
    let mut guard = Guard {
        child: None,
        cg: Some(cg),
    };
    let cg = guard.cg.as_ref().unwrap();
    let dirs: Vec<PathBuf> = cg.dirs.iter().map(|d| d.leaf.clone()).collect();
    // A hybrid host's controller-less unified tree is not used (see `Cgroup::resolve`).
    let hierarchies =
        layout.v1.len() + usize::from(layout.unified.is_some() && layout.v1.is_empty());
    assert_eq!(dirs.len(), hierarchies);
    for d in &dirs {
        assert!(d.is_dir(), "{} missing", d.display());
    }

    let child = Command::new("sleep").arg("10").spawn().unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    guard.child = Some(child);
    let t = Instant::now();
    cg.add_pid(pid).unwrap();
    let t_add = t.elapsed();

    // /proc/<pid>/cgroup names our cgroup in every hierarchy used.
    let proc_cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for (controllers, _) in layout.v1_hierarchies() {
        assert_eq!(
            own_path(&proc_cgroup, controllers),
            Some(path.as_str()),
            "{proc_cgroup}"
        );
    }
    if layout.unified.is_some() && layout.v1.is_empty() {
        assert_eq!(
            own_path(&proc_cgroup, ""),
            Some(path.as_str()),
            "{proc_cgroup}"
        );
    }
    assert_eq!(cg.pids().unwrap(), vec![pid]);

    // The limits read back from the kernel.
    let (mem_dir, mem_file) = if layout.is_v2() {
        (cg.v2_dir().unwrap().to_path_buf(), "memory.max")
    } else {
        (
            cg.dir_for(Ctrl::Memory, "").unwrap().to_path_buf(),
            "memory.limit_in_bytes",
        )
    };
    assert_eq!(
        fs::read_to_string(mem_dir.join(mem_file)).unwrap().trim(),
        "67108864"
    );
    let pids_dir = cg.dir_for(Ctrl::Pids, "").unwrap();
    assert_eq!(
        fs::read_to_string(pids_dir.join("pids.max"))
            .unwrap()
            .trim(),
        "10"
    );

    // Freeze: the kernel reports the cgroup frozen and the task stops running.
    let t = Instant::now();
    cg.freeze(true).unwrap();
    let t_freeze = t.elapsed();
    let frozen_state = proc_state(pid);
    if layout.is_v2() {
        let events = fs::read_to_string(cg.v2_dir().unwrap().join("cgroup.events")).unwrap();
        assert!(events.lines().any(|l| l == "frozen 1"), "{events}");
    } else {
        let d = cg.dir_for(Ctrl::Freezer, "").unwrap();
        assert_eq!(
            fs::read_to_string(d.join("freezer.state")).unwrap().trim(),
            "FROZEN"
        );
    }
    // A frozen task shows as 'D' (v1 freezer, TASK_FROZEN) or 'S' (v2 signal stop).
    assert!(matches!(frozen_state, 'D' | 'S'), "state {frozen_state}");
    cg.freeze(false).unwrap();
    if !layout.is_v2() {
        let d = cg.dir_for(Ctrl::Freezer, "").unwrap();
        assert_eq!(
            fs::read_to_string(d.join("freezer.state")).unwrap().trim(),
            "THAWED"
        );
    }
    // The thawed task wakes asynchronously: give it up to a second.
    let mut thawed_state = proc_state(pid);
    for _ in 0..100 {
        if thawed_state == 'S' {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        thawed_state = proc_state(pid);
    }
    assert_eq!(thawed_state, 'S', "sleep runs (sleeps) again");

    // Kill, reap, remove: nothing may be left in any hierarchy.
    let mut child = guard.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let cg = guard.cg.take().unwrap();
    let t = Instant::now();
    cg.remove().unwrap();
    let t_remove = t.elapsed();
    for d in &dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    eprintln!(
        "cgroup::real_host: {hierarchies} hierarchies; create {t_create:?}, add_pid {t_add:?}, \
         freeze {t_freeze:?} (task state {frozen_state}), remove {t_remove:?}"
    );
}

/// The cgroup2 code path (pure-v2 layout) on this machine's cgroup2 mount: on a hybrid host
/// that is the controller-less `unified` tree, which still has the v2 freezer.
#[test]
fn real_host_cgroup2_freezer() {
    const NAME: &str = "cgroup::real_host_cgroup2_freezer";
    if !nix::unistd::geteuid().is_root() {
        crate::testutil::skip(NAME, "needs root");
        return;
    }
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let Some(line) = mountinfo.lines().find(|l| l.contains(" - cgroup2 ")) else {
        crate::testutil::skip(NAME, "no cgroup2 mount on this machine");
        return;
    };
    let layout = Layout::from_mountinfo(line).unwrap();
    assert!(layout.is_v2());
    let path = format!("/dory-test-v2-{}", std::process::id());
    let cg = Cgroup::create(&layout, &path, None).unwrap();
    let mut guard = Guard {
        child: None,
        cg: Some(cg),
    };
    let cg = guard.cg.as_ref().unwrap();
    let dir = cg.v2_dir().unwrap().to_path_buf();
    assert!(dir.is_dir());

    let child = Command::new("sleep").arg("10").spawn().unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    guard.child = Some(child);
    cg.add_pid(pid).unwrap();
    assert_eq!(cg.pids().unwrap(), vec![pid]);

    let t = Instant::now();
    cg.freeze(true).unwrap();
    let t_freeze = t.elapsed();
    let events = fs::read_to_string(dir.join("cgroup.events")).unwrap();
    assert!(events.lines().any(|l| l == "frozen 1"), "{events}");
    let frozen_state = proc_state(pid);
    assert!(matches!(frozen_state, 'D' | 'S'), "state {frozen_state}");
    cg.freeze(false).unwrap();
    let events = fs::read_to_string(dir.join("cgroup.events")).unwrap();
    assert!(events.lines().any(|l| l == "frozen 0"), "{events}");

    let mut child = guard.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let cg = guard.cg.take().unwrap();
    cg.remove().unwrap();
    assert!(!dir.exists(), "{} left behind", dir.display());
    eprintln!("{NAME}: freeze {t_freeze:?} (task state {frozen_state})");
}

/// A write the real kernel refuses (there is no CPU 999): the error names the field and
/// the errno, and not one directory is left in any hierarchy.
#[test]
fn real_host_failed_create_leaves_nothing() {
    if !nix::unistd::geteuid().is_root() {
        crate::testutil::skip(
            "cgroup::real_host_failed_create_leaves_nothing",
            "needs root",
        );
        return;
    }
    let layout = Layout::detect().unwrap();
    let path = format!("/dory-test-err-{}/leaf", std::process::id());
    let res = serde_json_core::from_str::<Resources<'_>>(
        r#"{"pids": {"limit": 5}, "cpu": {"cpus": "999"}}"#,
    )
    .unwrap()
    .0;
    // Where the directories would be, to check afterwards (and to clean up if this fails).
    let probe = Cgroup::open(&layout, &path).unwrap();
    let leaves: Vec<PathBuf> = probe.dirs.iter().map(|d| d.leaf.clone()).collect();
    struct Cleanup(Vec<PathBuf>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            for l in &self.0 {
                let _ = fs::remove_dir(l);
                let _ = l.parent().map(fs::remove_dir);
            }
        }
    }
    let _cleanup = Cleanup(leaves.clone());

    let e = Cgroup::create(&layout, &path, Some(&res)).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("linux.resources.cpu.cpus: write /sys/fs/cgroup/"),
        "{msg}"
    );
    // This kernel says ERANGE (beyond nr_cpu_ids); others may say EINVAL.
    assert!(msg.contains("/leaf/cpuset.cpus: "), "{msg}");
    assert!(matches!(e, Error::Write { .. }), "{msg}");
    for l in &leaves {
        assert!(!l.exists(), "{} left behind", l.display());
        assert!(!l.parent().unwrap().exists(), "{} left behind", l.display());
    }
}

/// The v2 device program on this machine's cgroup2 mount: a process in the cgroup may open
/// /dev/null (runc's default list) but not /dev/kmsg (1:11, listed nowhere).
#[test]
fn real_host_cgroup2_device_program() {
    const NAME: &str = "cgroup::real_host_cgroup2_device_program";
    if !nix::unistd::geteuid().is_root() {
        crate::testutil::skip(NAME, "needs root");
        return;
    }
    if std::env::var_os("DORY_FOREIGN").is_some() {
        crate::testutil::not_applicable(NAME, "bpf(2) is not emulated by qemu-user (DORY_FOREIGN)");
        return;
    }
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let Some(line) = mountinfo.lines().find(|l| l.contains(" - cgroup2 ")) else {
        crate::testutil::skip(NAME, "no cgroup2 mount on this machine");
        return;
    };
    let layout = Layout::from_mountinfo(line).unwrap();
    let path = format!("/dory-test-bpf-{}", std::process::id());
    let (res, _) = serde_json_core::from_slice::<Resources<'_>>(
        br#"{"devices": [{"allow": false, "access": "rwm"}]}"#,
    )
    .unwrap();
    let cg = Cgroup::create(&layout, &path, Some(&res)).unwrap();
    let mut guard = Guard {
        child: None,
        cg: Some(cg),
    };
    let child = Command::new("sh")
        .args([
            "-c",
            "read go; cat /dev/null && echo null-ok; head -c 1 /dev/kmsg >/dev/null 2>&1 || echo kmsg-denied",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    guard.child = Some(child);
    guard.cg.as_ref().unwrap().add_pid(pid).unwrap();
    let mut child = guard.child.take().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"go\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("null-ok"), "{text}");
    assert!(text.contains("kmsg-denied"), "{text}");
    // Outside the cgroup /dev/kmsg opens fine, so the refusal came from the program.
    assert!(fs::File::open("/dev/kmsg").is_ok());
}
