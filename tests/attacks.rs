//! A hostile rootfs or container process against dory: mount destinations that are
//! symlinks pointing out of the rootfs, writes to /proc/<pid>/exe, leaked file
//! descriptors, and the init's working directory. Needs root; skips visibly otherwise.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use common::{mounts_mentioning, unique, Bundle};
use serde_json::{json, Value};

/// An empty directory on the host, outside every test directory, that a hostile rootfs
/// points a symlink at; the bundle removes it on drop.
fn host_target(b: &mut Bundle, name: &str) -> PathBuf {
    let t = std::env::temp_dir().join(unique(&format!("dory-attack-{name}")));
    std::fs::create_dir(&t).unwrap();
    b.extra.push(t.clone());
    t
}

fn dir_entries(p: &Path) -> Vec<String> {
    std::fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Replaces `<rootfs>/<name>` with a symlink to `target`.
fn plant_symlink(b: &Bundle, name: &str, target: &str) {
    let p = b.rootfs.join(name);
    let _ = std::fs::remove_dir(&p);
    symlink(target, &p).unwrap();
}

/// Creates `<rootfs>/<host path>`, the directory the symlink names when it is resolved
/// inside the rootfs (as a runtime must), so that the mount can proceed there.
fn make_twin(b: &Bundle, host: &Path) -> PathBuf {
    let twin = b.rootfs.join(host.strip_prefix("/").unwrap());
    std::fs::create_dir_all(&twin).unwrap();
    twin
}

/// After a run with a hostile symlink: the host directory it pointed at is still empty,
/// nothing is mounted there on the host, and nothing else is left behind. When dory
/// accepted the config, the container must see the mount (it landed inside the rootfs);
/// refusing the config is also fine.
fn check_symlink_attack(b: &Bundle, target: &Path, out: &common::Out, seen_inside: &str) {
    let entries = dir_entries(target);
    assert!(
        entries.is_empty(),
        "host dir {} got {entries:?}",
        target.display()
    );
    let m = mounts_mentioning(target);
    assert!(m.is_empty(), "host mounts at the attack target: {m:#?}");
    b.assert_nothing_left();
    if out.code == 0 {
        assert!(
            out.stdout.lines().any(|l| l == seen_inside),
            "the mount did not land inside the container (no {seen_inside:?}):\n{}\n{}",
            out.stdout,
            out.stderr
        );
    } else {
        eprintln!(
            "dory refused the hostile rootfs ({}): {}",
            out.code,
            out.stderr.trim()
        );
        assert!(!out.stdout.contains(seen_inside), "{}", out.stdout);
    }
}

#[test]
fn dev_symlink_to_absolute_host_path() {
    needs_root!();
    let mut b = Bundle::with_private_rootfs(
        "atk-abs",
        &["sh", "-c", "test -c /dev/null && echo dev-null-ok"],
    );
    let target = host_target(&mut b, "abs");
    plant_symlink(&b, "dev", target.to_str().unwrap());
    let twin = make_twin(&b, &target);
    let out = b.run();
    assert!(
        dir_entries(&twin).is_empty(),
        "the container's /dev stayed on the rootfs"
    );
    check_symlink_attack(&b, &target, &out, "dev-null-ok");
}

#[test]
fn dev_symlink_to_host_path_missing_in_rootfs() {
    needs_root!();
    // No twin inside the rootfs: refusing is right; following the link out is not.
    let mut b = Bundle::with_private_rootfs(
        "atk-miss",
        &["sh", "-c", "test -c /dev/null && echo dev-null-ok"],
    );
    let target = host_target(&mut b, "miss");
    plant_symlink(&b, "dev", target.to_str().unwrap());
    let out = b.run();
    check_symlink_attack(&b, &target, &out, "dev-null-ok");
}

#[test]
fn dev_symlink_to_relative_escape() {
    needs_root!();
    let mut b = Bundle::with_private_rootfs(
        "atk-rel",
        &["sh", "-c", "test -c /dev/null && echo dev-null-ok"],
    );
    let target = host_target(&mut b, "rel");
    // Enough `..` to climb from the rootfs to / on the host, then down to the target.
    let ups = "../".repeat(b.rootfs.components().count() + 2);
    let rel = format!("{ups}{}", target.strip_prefix("/").unwrap().display());
    plant_symlink(&b, "dev", &rel);
    let twin = make_twin(&b, &target);
    let out = b.run();
    assert!(
        dir_entries(&twin).is_empty(),
        "the container's /dev stayed on the rootfs"
    );
    check_symlink_attack(&b, &target, &out, "dev-null-ok");
}

#[test]
fn bind_mount_destination_symlink_to_host_path() {
    needs_root!();
    let mut b = Bundle::with_private_rootfs("atk-bind", &["sh", "-c", "cat /mnt/marker"]);
    let target = host_target(&mut b, "bind");
    let payload = b.base.join("payload");
    std::fs::create_dir(&payload).unwrap();
    std::fs::write(payload.join("marker"), "payload-marker\n").unwrap();
    plant_symlink(&b, "mnt", target.to_str().unwrap());
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/mnt",
        "type": "bind",
        "source": payload.to_str().unwrap(),
        "options": ["rbind", "ro"]
    }));
    let twin = make_twin(&b, &target);
    let out = b.run();
    assert!(
        dir_entries(&twin).is_empty(),
        "the bind mount stayed on the rootfs's side"
    );
    check_symlink_attack(&b, &target, &out, "payload-marker");
}

#[test]
fn proc_exe_cannot_be_overwritten() {
    needs_root!();
    let dory_before = std::fs::read(common::DORY).unwrap();
    // A writable rootfs, so only the kernel and dory stand between the writes and a binary.
    let mut b = Bundle::with_private_rootfs(
        "atk-exe",
        &[
            "sh",
            "-c",
            "echo exe1=$(readlink /proc/1/exe); echo pwn > /proc/1/exe; echo w1=$?; \
             echo pwn > /proc/self/exe; echo w2=$?; \
             for p in /proc/[0-9]*; do echo exe=$(readlink $p/exe); done; echo end",
        ],
    );
    b.config["root"]["readonly"] = Value::Bool(false);
    let busybox_before = std::fs::read(b.rootfs.join("bin/busybox")).unwrap();
    let out = b.run();
    out.expect_code(0);
    assert_eq!(out.value("exe1"), Some("/bin/busybox"), "{}", out.stdout);
    assert_ne!(
        out.value("w1"),
        Some("0"),
        "write to /proc/1/exe succeeded:\n{}",
        out.stdout
    );
    assert_ne!(
        out.value("w2"),
        Some("0"),
        "write to /proc/self/exe succeeded:\n{}",
        out.stdout
    );
    // Every process the container can see runs busybox: dory is not reachable.
    let exes: BTreeSet<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("exe="))
        .collect();
    assert_eq!(
        exes.into_iter().collect::<Vec<_>>(),
        ["/bin/busybox"],
        "{}",
        out.stdout
    );
    assert!(
        std::fs::read(common::DORY).unwrap() == dory_before,
        "the dory binary changed"
    );
    assert!(
        std::fs::read(b.rootfs.join("bin/busybox")).unwrap() == busybox_before,
        "busybox changed"
    );
    b.assert_nothing_left();
}

/// The fd numbers in a `ls /proc/<x>/fd` output section.
fn fd_set(text: &str) -> BTreeSet<u32> {
    text.split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect()
}

#[test]
fn only_stdio_fds_reach_the_container() {
    needs_root!();
    // /proc/1/fd listed by a child shows pid 1's table without the lister's own fd;
    // /proc/self/fd includes the fd ls reads the directory with (at most one more).
    let b = Bundle::new(
        "atk-fds",
        &["sh", "-c", "echo ==init; ls /proc/1/fd; echo ==self; ls /proc/self/fd; echo ==end; echo ready; exec cat"],
    );
    let mut r = b.spawn();
    r.wait_line("ready");
    let st = b.wait_state();
    // From the host, the init (now `cat`, exec'd by the shell) holds exactly 0, 1, 2.
    let host: BTreeSet<u32> = std::fs::read_dir(format!("/proc/{}/fd", st.pid))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
        .collect();
    assert_eq!(
        host,
        BTreeSet::from([0, 1, 2]),
        "fds of the container's init seen from the host"
    );
    let text = r.seen().join("\n");
    let init = fd_set(
        text.split("==init")
            .nth(1)
            .unwrap()
            .split("==self")
            .next()
            .unwrap(),
    );
    let own = fd_set(
        text.split("==self")
            .nth(1)
            .unwrap()
            .split("==end")
            .next()
            .unwrap(),
    );
    assert_eq!(init, BTreeSet::from([0, 1, 2]), "{text}");
    let extra: Vec<&u32> = own.iter().filter(|f| **f > 2).collect();
    assert!(
        own.is_superset(&BTreeSet::from([0, 1, 2])) && extra.len() <= 1,
        "{text}"
    );
    r.send("bye\n");
    let out = r.finish();
    out.expect_code(0);
    assert!(out.stdout.contains("bye"));
    b.assert_nothing_left();
}

/// (device, inode) of what `p` resolves to.
fn file_id(p: impl AsRef<Path>) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p.as_ref())
        .unwrap_or_else(|e| panic!("stat {}: {e}", p.as_ref().display()));
    (m.dev(), m.ino())
}

#[test]
fn init_cwd_is_inside_the_rootfs() {
    needs_root!();
    let mut b = Bundle::new(
        "atk-cwd",
        &[
            "sh",
            "-c",
            "echo cwd=$(readlink /proc/1/cwd); echo pwd=$(pwd); echo ready; read x",
        ],
    );
    b.config["process"]["cwd"] = Value::from("/tmp");
    let mut r = b.spawn();
    r.wait_line("ready");
    let st = b.wait_state();
    // The magic links jump to the real directory (their readlink text is the path inside
    // the container's mount namespace, useless from the host): compare device and inode.
    let cwd = file_id(format!("/proc/{}/cwd", st.pid));
    let root = file_id(format!("/proc/{}/root", st.pid));
    assert_eq!(
        cwd,
        file_id(b.rootfs.join("tmp")),
        "init's cwd is not <rootfs>/tmp"
    );
    assert_eq!(root, file_id(&b.rootfs), "init's root is not the rootfs");
    assert_ne!(cwd, file_id("/tmp"), "init's cwd is the host's /tmp");
    r.send("\n");
    let out = r.finish();
    out.expect_code(0);
    assert_eq!(out.value("cwd"), Some("/tmp"), "{}", out.stdout);
    assert_eq!(out.value("pwd"), Some("/tmp"), "{}", out.stdout);
    b.assert_nothing_left();
}

/// Waits (briefly) until `pid` is in the stopped state; false if it is gone or does not stop.
fn wait_stopped(pid: i32) -> bool {
    for _ in 0..200 {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        match stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next())
        {
            Some("T") => return true,
            Some("Z" | "X") | None => return false,
            _ => std::thread::sleep(std::time::Duration::from_micros(100)),
        }
    }
    false
}

/// The pid namespace link of a process.
fn pid_ns(pid: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()
}

/// The container side of a CVE-2019-5736 attack: reads a pid (in its pid namespace),
/// opens that process's /proc/<pid>/exe ("opened", or "sub=1" when refused), and on "go"
/// appends to the file through that fd ("wrote=0" when it could).
const EXE_ATTACKER: &[&str] = &[
    "sh",
    "-c",
    "echo ready; read p; \
     ( exec 3< /proc/$p/exe || exit 1; echo opened; read go; echo pwn >> /proc/self/fd/3; echo wrote=$? ) 2>&1; \
     echo sub=$?; read x",
];

/// A process's pid in the innermost pid namespace it is in (the last NSpid field).
fn innermost_pid(pid: i32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("NSpid:"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap()
        .to_owned()
}

#[test]
fn exec_process_binary_cannot_be_overwritten() {
    needs_root!();
    // CVE-2019-5736 against `dory exec`: while the exec'd process still runs the runtime's
    // binary inside the container's pid namespace, a container process opens
    // /proc/<pid>/exe and, once the runtime has exited, writes the binary through that
    // fd. The host catches the exec child in that window (SIGSTOP), lets the container try,
    // and checks the binary. The exec runs from a copy of dory, so a successful attack
    // damages only the copy.
    let b = Bundle::new("atk-exec", EXE_ATTACKER);
    let copy = b.base.join("dory-copy");
    std::fs::copy(common::DORY, &copy).unwrap();
    let copy_before = std::fs::read(&copy).unwrap();
    let dory_before = std::fs::read(common::DORY).unwrap();
    let mut r = b.spawn();
    r.wait_line("ready");
    let init = b.wait_state().pid;
    let ns = pid_ns(init).unwrap();
    // The file a process runs, by identity: the host reads a container process's exe link
    // as a path in the container's mount namespace, which names nothing here.
    let runs_copy = {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&copy).unwrap();
        let id = (m.dev(), m.ino());
        // dory re-executes itself from a sealed memfd copy: that runs the copy too.
        move |pid: i32| {
            std::fs::metadata(format!("/proc/{pid}/exe")).is_ok_and(|e| (e.dev(), e.ino()) == id)
                || std::fs::read_link(format!("/proc/{pid}/exe"))
                    .is_ok_and(|l| l.to_string_lossy().starts_with("/memfd:dory"))
        }
    };

    // Host side: find a process in the container's pid namespace that runs the dory copy.
    let caught = std::sync::Arc::new(std::sync::atomic::AtomicI32::new(0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scanner = {
        let (caught, stop, ns) = (caught.clone(), stop.clone(), ns.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                for e in std::fs::read_dir("/proc").unwrap().flatten() {
                    let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                        continue;
                    };
                    if pid == init || pid_ns(pid).as_ref() != Some(&ns) {
                        continue;
                    }
                    if !runs_copy(pid) {
                        continue;
                    }
                    let target = nix::unistd::Pid::from_raw(pid);
                    let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGSTOP);
                    // Keep it only if it stopped while still running the copy (it may
                    // have exec'd or exited before the signal landed).
                    if wait_stopped(pid) && runs_copy(pid) {
                        caught.store(pid, std::sync::atomic::Ordering::SeqCst);
                        return;
                    }
                    let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGCONT);
                }
            }
        })
    };
    let mut execs = Vec::new();
    for _ in 0..100 {
        let child = std::process::Command::new(&copy)
            .arg("--root")
            .arg(&b.state_root)
            .args(["exec", &b.id, "true"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        execs.push(child);
        let t = std::time::Instant::now();
        while caught.load(std::sync::atomic::Ordering::SeqCst) == 0
            && t.elapsed() < std::time::Duration::from_millis(50)
        {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        if caught.load(std::sync::atomic::Ordering::SeqCst) != 0 {
            break;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    scanner.join().unwrap();
    let tries = execs.len();
    let pid = caught.load(std::sync::atomic::Ordering::SeqCst);
    let cont = |pid: i32| {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGCONT,
        );
    };
    assert!(
        pid != 0,
        "never caught an exec'd process before its exec ({tries} tries)"
    );
    r.send(&format!("{}\n", innermost_pid(pid)));
    let verdict = r.wait_for_any(&["opened", "sub="]);
    cont(pid);
    // Let every `dory exec` finish: then nothing runs the copy and a write would not fail
    // with ETXTBSY.
    for mut e in execs {
        let _ = e.wait();
    }
    if verdict == "opened" {
        r.send("go\n");
        let wrote = r.wait_prefix("wrote=");
        assert_ne!(wrote, "wrote=0", "the container wrote the runtime binary");
    }
    let sub = r.wait_prefix("sub=");
    if verdict == "sub=" {
        // The open itself was refused (the process is not dumpable, or its exe is not the
        // runtime's file): the subshell ended with 1 after the error.
        assert_eq!(sub, "sub=1", "{:?}", r.seen());
        eprintln!(
            "open of /proc/<exec pid>/exe refused: {:?} tries={}",
            r.seen(),
            tries
        );
    }
    r.send("done\n");
    let out = r.finish();
    out.expect_code(0);
    assert!(
        std::fs::read(&copy).unwrap() == copy_before,
        "the dory binary used for exec was overwritten:\n{}",
        out.stdout
    );
    assert!(
        std::fs::read(common::DORY).unwrap() == dory_before,
        "the dory binary changed"
    );
    b.assert_nothing_left();
}

#[test]
fn created_init_binary_cannot_be_overwritten_from_a_shared_pid_namespace() {
    needs_root!();
    // CVE-2019-5736 against `dory create`: a created container's init waits for `start`
    // running dory's binary, with the container's capabilities already applied. Another
    // container sharing its pid namespace opens /proc/<init>/exe and, once the init is
    // gone, writes the binary through that fd. The second container is created from a copy
    // of dory, so a successful attack damages only the copy.
    let a = Bundle::new("atk-ns-a", EXE_ATTACKER);
    let mut b = Bundle::new("atk-ns-b", &["true"]);
    let copy = b.base.join("dory-copy");
    std::fs::copy(common::DORY, &copy).unwrap();
    let copy_before = std::fs::read(&copy).unwrap();
    let mut r = a.spawn();
    r.wait_line("ready");
    let a_init = a.wait_state().pid;
    for ns in b.config["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "pid" {
            ns["path"] = Value::from(format!("/proc/{a_init}/ns/pid"));
        }
    }
    b.write_config();
    let created = common::run_cmd(
        std::process::Command::new(&copy)
            .arg("--root")
            .arg(&b.state_root)
            .args(["create", "--bundle"])
            .arg(&b.dir)
            .arg(&b.id),
    );
    created.expect_code(0);
    let b_init = b.wait_state().pid;
    assert_eq!(
        pid_ns(b_init),
        pid_ns(a_init),
        "not in the shared pid namespace"
    );
    r.send(&format!("{}\n", innermost_pid(b_init)));
    let verdict = r.wait_for_any(&["opened", "sub="]);
    // The waiting init runs the copy: remove the container so a write could not fail with
    // ETXTBSY, and the attack gets its best chance.
    common::run_cmd(
        std::process::Command::new(&copy)
            .arg("--root")
            .arg(&b.state_root)
            .args(["delete", "--force", &b.id]),
    )
    .expect_code(0);
    if verdict == "opened" {
        r.send("go\n");
        let wrote = r.wait_prefix("wrote=");
        assert_ne!(wrote, "wrote=0", "the container wrote the runtime binary");
    }
    let sub = r.wait_prefix("sub=");
    assert_eq!(
        (verdict.as_str(), sub.as_str()),
        ("sub=", "sub=1"),
        "the other container could open the waiting init's binary: {:?}",
        r.seen()
    );
    r.send("done\n");
    r.finish().expect_code(0);
    assert!(
        std::fs::read(&copy).unwrap() == copy_before,
        "the dory binary used for create was overwritten"
    );
    b.assert_nothing_left();
    a.assert_nothing_left();
}

#[test]
fn cwd_through_an_inherited_fd_is_refused() {
    needs_root!();
    // CVE-2024-21626 against dory: until exec, the container's process still holds fds
    // from the host (here a directory fd its caller leaked to dory; on cgroup v2, the
    // cgroup directory dory opens for clone3). `process.cwd` = /proc/self/fd/N would start
    // the program with a working directory outside its root, from which `..` reaches the
    // host's root. dory must refuse it and leave nothing behind.
    let mut b = Bundle::new(
        "atk-cwd",
        &["sh", "-c", "echo pwd=$(pwd); cat secret; echo escaped"],
    );
    let host_dir = host_target(&mut b, "cwd");
    std::fs::write(host_dir.join("secret"), "host-secret\n").unwrap();
    b.config["process"]["cwd"] = Value::from("/proc/self/fd/7");
    b.write_config();
    let out = common::run_cmd(
        std::process::Command::new("sh")
            .args(["-c", "exec 7<\"$1\"; shift; exec \"$@\"", "sh"])
            .arg(&host_dir)
            .arg(common::DORY)
            .arg("--root")
            .arg(&b.state_root)
            .args(["run", "--bundle"])
            .arg(&b.dir)
            .arg(&b.id),
    );
    assert!(
        !out.stdout.contains("host-secret") && !out.stdout.contains("escaped"),
        "the container started outside its root: {out:?}"
    );
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains(
            "config.json: process.cwd (/proc/self/fd/7): not inside the container's root"
        ),
        "{out:?}"
    );
    b.assert_nothing_left();
}

#[test]
fn masked_paths_need_the_real_null_device() {
    needs_root!();
    // CVE-2025-31133 against dory: masking binds /dev/null over files such as
    // /proc/kcore. Without a fresh /dev from the config, /dev/null comes from the image; a
    // regular file (or a symlink to, say, a /proc/sys entry) there would be bound in
    // its place, readable and writable. dory must refuse anything but the null device.
    for fake in ["file", "symlink"] {
        let mut b = Bundle::with_private_rootfs(
            &format!("atk-null-{fake}"),
            &["sh", "-c", "cat /etc/masked; echo ran"],
        );
        // A file of the image to mask, so the test does not depend on the kernel's /proc.
        std::fs::create_dir_all(b.rootfs.join("etc")).unwrap();
        std::fs::write(b.rootfs.join("etc/masked"), "not-masked\n").unwrap();
        b.config["linux"]["maskedPaths"]
            .as_array_mut()
            .unwrap()
            .push(Value::from("/etc/masked"));
        let dev = b.rootfs.join("dev");
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::write(b.rootfs.join("decoy"), "decoy-content\n").unwrap();
        match fake {
            "file" => std::fs::write(dev.join("null"), "decoy-content\n").unwrap(),
            _ => symlink("/decoy", dev.join("null")).unwrap(),
        }
        // No tmpfs on /dev (nor the mounts under it): the image's /dev stays.
        b.config["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
        b.config["process"]["terminal"] = Value::Bool(false);
        let out = b.run();
        assert!(
            !out.stdout.contains("decoy-content")
                && !out.stdout.contains("not-masked")
                && !out.stdout.contains("ran"),
            "{fake}: a masked path showed the image's /dev/null: {out:?}"
        );
        assert_ne!(out.code, 0, "{out:?}");
        assert!(
            out.stderr.contains("config.json: linux.maskedPaths[")
                && out.stderr.contains("is not the null device"),
            "{fake}: {out:?}"
        );
        b.assert_nothing_left();
    }
}

/// Copies the shared libraries and loader `binary` needs (per `ldd`) into `rootfs` at the
/// same paths, so the binary can run there.
fn install_shared_libs(rootfs: &Path, binary: &Path) {
    let out = std::process::Command::new("ldd")
        .arg(binary)
        .output()
        .unwrap();
    for word in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        if !word.starts_with('/') {
            continue;
        }
        let dest = rootfs.join(word.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(word, &dest).unwrap();
    }
}

/// The container side of the re-exec attack: plants `/bin/evil`, a script whose
/// interpreter is `/proc/self/exe`, so that a runtime asked to exec it runs the runtime's
/// own binary inside the container (blocked opening a fifo as its log). It then finds that
/// process, opens its `/proc/<pid>/exe`, lets it finish, and on "go" appends to the binary
/// through the fd ("wrote=0" when it could).
const REEXEC_ATTACKER: &[&str] = &[
    "sh",
    "-c",
    "mkfifo /tmp/logfifo; printf '#!/proc/self/exe --log=/tmp/logfifo\\n' > /bin/evil; \
     chmod +x /bin/evil; echo ready; i=0; p=; \
     while [ -z \"$p\" ] && [ $i -lt 3000 ]; do \
       for d in /proc/[0-9]*; do l=$(readlink $d/exe 2>/dev/null); \
         case \"$l\" in ''|*busybox) ;; *) p=${d#/proc/}; echo exe=$l;; esac; done; \
       i=$((i+1)); done; \
     echo found=$p; \
     ( exec 3< /proc/$p/exe || exit 1; echo opened; cat /tmp/logfifo > /dev/null; \
       read go; echo pwn >> /proc/self/fd/3; echo wrote=$? ) 2>&1; \
     echo sub=$?; read x",
];

#[test]
fn runtime_reexecuted_through_proc_self_exe_cannot_be_overwritten() {
    needs_root!();
    // CVE-2019-5736, the re-exec variant: `dory exec` is asked to run a script whose
    // interpreter is /proc/self/exe. The kernel resolves that in the exec'ing process, which
    // is dory, so dory's binary runs again inside the container, dumpable. A container
    // process opens its /proc/<pid>/exe and, once no dory runs, writes through that fd.
    // The exec runs from a copy of dory (the container itself from the original), so a
    // successful attack damages only the copy, and nothing else keeps the copy busy.
    let mut b = Bundle::with_private_rootfs("atk-reexec", REEXEC_ATTACKER);
    b.config["root"]["readonly"] = Value::Bool(false);
    let copy = b.base.join("dory-copy");
    std::fs::copy(common::DORY, &copy).unwrap();
    let copy_before = std::fs::read(&copy).unwrap();
    let dory_before = std::fs::read(common::DORY).unwrap();
    // The test build of dory is dynamically linked: give the image the loader and the
    // libraries it needs, as the static release binary needs none.
    install_shared_libs(&b.rootfs, &copy);
    let mut r = b.spawn();
    r.wait_line("ready");
    let mut exec = std::process::Command::new(&copy)
        .arg("--root")
        .arg(&b.state_root)
        .args(["exec", &b.id, "/bin/evil"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let verdict = r.wait_for_any(&["opened", "sub="]);
    // Let `dory exec` finish: then no process runs the copy, and a write would not fail
    // with ETXTBSY.
    let t = std::time::Instant::now();
    while exec.try_wait().unwrap().is_none() {
        if t.elapsed() > common::TIMEOUT {
            let _ = exec.kill();
            let _ = exec.wait();
            panic!("dory exec did not finish: {:?}", r.seen());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(
        verdict,
        "opened",
        "the container never saw the runtime running inside it: {:?}",
        r.seen()
    );
    r.send("go\n");
    let wrote = r.wait_prefix("wrote=");
    let seen = r.seen().to_vec();
    r.wait_prefix("sub=");
    r.send("done\n");
    let out = r.finish();
    out.expect_code(0);
    assert!(
        std::fs::read(&copy).unwrap() == copy_before,
        "the dory binary used for exec was overwritten through /proc/<pid>/exe: {seen:?}"
    );
    assert_ne!(wrote, "wrote=0", "the container wrote the runtime binary");
    assert!(
        std::fs::read(common::DORY).unwrap() == dory_before,
        "the dory binary changed"
    );
    eprintln!("re-exec attack refused: {seen:?}");
    b.assert_nothing_left();
}

// ---- classes 2, 3, 5, 6: paths the container shapes after it exists ----

/// Restores a host file's content on drop (an attack that works would change it).
struct RestoreOnDrop(PathBuf, String);

impl Drop for RestoreOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, &self.1);
    }
}

/// The config's mounts without the one at `dest`.
fn drop_mount(b: &mut Bundle, dest: &str) {
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != dest);
}

#[test]
fn sysctl_write_cannot_be_redirected_to_a_host_wide_key() {
    needs_root!();
    // The config mounts procfs at /p instead of /proc; the image's own /proc holds
    // sys/net/ipv4/ip_default_ttl as a symlink to /p/sys/vm/dirty_expire_centisecs, a
    // host-wide key. A runtime that writes the (allowed, per-netns) sysctl by path follows
    // the link and changes the host (CVE-2025-52881 class).
    let host_key = PathBuf::from("/proc/sys/vm/dirty_expire_centisecs");
    let before = std::fs::read_to_string(&host_key).unwrap();
    let _restore = RestoreOnDrop(host_key.clone(), before.clone());
    // A valid TTL that differs from the host key's value.
    let value = if before.trim() == "77" { "78" } else { "77" };
    let mut b = Bundle::with_private_rootfs(
        "atk-sysctl",
        &["sh", "-c", "echo ttl=$(cat /p/sys/net/ipv4/ip_default_ttl)"],
    );
    drop_mount(&mut b, "/proc");
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/p", "type": "proc", "source": "proc"}));
    b.config["linux"]["sysctl"] = json!({ "net.ipv4.ip_default_ttl": value });
    let dir = b.rootfs.join("proc/sys/net/ipv4");
    std::fs::create_dir_all(&dir).unwrap();
    symlink(
        "/p/sys/vm/dirty_expire_centisecs",
        dir.join("ip_default_ttl"),
    )
    .unwrap();
    let out = b.run();
    let after = std::fs::read_to_string(&host_key).unwrap();
    assert_eq!(
        after, before,
        "the sysctl was written to the host's vm.dirty_expire_centisecs: {out:?}"
    );
    // The value reached the container's own network namespace, where it belongs.
    out.expect_code(0);
    assert_eq!(out.value("ttl"), Some(value), "{}", out.stdout);
    b.assert_nothing_left();
}

/// Waits (bounded) until `path` exists.
fn wait_file(path: &Path) -> bool {
    let t = std::time::Instant::now();
    while !path.exists() {
        if t.elapsed() > common::TIMEOUT {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    true
}

#[test]
fn proc_self_fd_of_the_container_cannot_redirect_the_fifo_or_a_mask() {
    needs_root!();
    // No procfs at /proc: the image's /proc/self/fd/N are symlinks to a file on a host
    // volume. A runtime that reopens the exec fifo (create) or binds the null device of a
    // mask through "/proc/self/fd/N" after the root switch follows them: it writes "0"
    // into the host file, and the masked path shows that file.
    let mut b = Bundle::with_private_rootfs(
        "atk-procfd",
        &[
            "sh",
            "-c",
            "echo \"masked=$(cat /etc/masked)\" > /vol/seen; echo done > /vol/done",
        ],
    );
    let vol = b.base.join("vol");
    std::fs::create_dir(&vol).unwrap();
    let victim = vol.join("victim");
    std::fs::write(&victim, "intact").unwrap();
    drop_mount(&mut b, "/proc");
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/vol", "type": "bind", "source": vol.to_str().unwrap(),
        "options": ["rbind", "rw"]
    }));
    b.config["linux"]["maskedPaths"] = json!(["/etc/masked"]);
    std::fs::write(b.rootfs.join("etc/masked"), "secret").unwrap();
    let fd_dir = b.rootfs.join("proc/self/fd");
    std::fs::create_dir_all(&fd_dir).unwrap();
    for n in 3..64 {
        symlink("/vol/victim", fd_dir.join(n.to_string())).unwrap();
    }
    b.write_config();
    let dir = b.dir.to_str().unwrap().to_owned();
    let created = common::run_cmd(&mut b.cmd(&["create", "--bundle", &dir, &b.id]));
    let started = common::run_cmd(&mut b.cmd(&["start", &b.id]));
    let done = wait_file(&vol.join("done"));
    let seen = std::fs::read_to_string(vol.join("seen")).unwrap_or_default();
    let _ = common::run_cmd(&mut b.cmd(&["delete", "--force", &b.id]));
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "intact",
        "the exec fifo was reopened through the container's /proc: {created:?} {started:?}"
    );
    assert!(done, "the container did not run: {created:?} {started:?}");
    assert_eq!(seen.trim(), "masked=", "the mask bound another file");
    b.assert_nothing_left();
}

#[test]
fn console_bind_does_not_follow_a_symlink() {
    needs_root!();
    // A volume bound over /dev holds `console` as a symlink to /etc/target. A runtime that
    // binds the pty onto "/dev/console" by path puts it over /etc/target instead.
    let mut b = Bundle::with_private_rootfs(
        "atk-console",
        &[
            "sh",
            "-c",
            "echo mounts-at-target=$(grep -c ' /etc/target ' /proc/self/mountinfo)",
        ],
    );
    b.config["process"]["terminal"] = Value::Bool(true);
    let devvol = b.base.join("devvol");
    std::fs::create_dir(&devvol).unwrap();
    symlink("/etc/target", devvol.join("console")).unwrap();
    std::fs::write(b.rootfs.join("etc/target"), "original").unwrap();
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    let at = mounts
        .iter()
        .position(|m| m["destination"] == "/dev")
        .unwrap()
        + 1;
    mounts.insert(
        at,
        json!({"destination": "/dev", "type": "bind", "source": devvol.to_str().unwrap(),
               "options": ["rbind", "rw"]}),
    );
    b.write_config();
    let cmdline = format!(
        "{} --root {} run --bundle {} {}",
        common::DORY,
        b.state_root.display(),
        b.dir.display(),
        b.id
    );
    let out =
        common::run_cmd(std::process::Command::new("script").args(["-qec", &cmdline, "/dev/null"]));
    let text = out.stdout.replace('\r', "");
    assert!(
        !text.contains("mounts-at-target=1"),
        "the pty was bound over /etc/target through the /dev/console symlink: {text}"
    );
    if text.contains("mounts-at-target=0") {
        eprintln!("console bound where it belongs");
    } else {
        assert!(
            text.contains("process.terminal"),
            "neither ran nor refused naming the field: {text}"
        );
        eprintln!("dory refused: {}", text.trim());
    }
    b.assert_nothing_left();
}

/// A racer for a shared volume: exchanges the paths argv[1] and argv[2] as fast as it can
/// (a no-op while one is missing), until /vol/stop exists or 60 s.
const RACER_C: &str = r#"
#define _GNU_SOURCE
#include <stdio.h>
#include <fcntl.h>
#include <unistd.h>
#include <time.h>
int main(int argc, char **argv) {
    if (argc != 3) return 2;
    time_t end = time(0) + 60;
    puts("racing"); fflush(stdout);
    for (unsigned long n = 0; time(0) < end; n++) {
        renameat2(AT_FDCWD, argv[1], AT_FDCWD, argv[2], RENAME_EXCHANGE);
        if ((n & 0xfff) == 0 && access("/vol/stop", F_OK) == 0) break;
    }
    return 0;
}
"#;

/// One race at a time: each racer spins a CPU, two at once starve everything else.
static RACE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs the victim `b` up to `times` times while a race goes on (`before` each run), until
/// `hit` says the attack worked. Returns the runs that ran, those refused (cleaned up), and
/// the run that hit with its output.
fn run_during_race(
    b: &Bundle,
    times: usize,
    mut before: impl FnMut(),
    mut hit: impl FnMut() -> bool,
) -> (usize, usize, Option<(usize, common::Out)>) {
    let (mut ran, mut refused) = (0, 0);
    for i in 0..times {
        before();
        let out = common::run_cmd(&mut b.run_cmd());
        if out.code == 0 {
            ran += 1;
        } else {
            refused += 1;
            eprintln!("refused: {}", out.stderr.trim());
            let _ = common::run_cmd(&mut b.cmd(&["delete", "--force", &b.id]));
        }
        if hit() {
            return (ran, refused, Some((i, out)));
        }
    }
    (ran, refused, None)
}

/// A bind of the host directory `vol` at `dest`, read-write.
fn vol_mount(vol: &Path, dest: &str) -> Value {
    json!({"destination": dest, "type": "bind",
           "source": vol.to_str().unwrap(), "options": ["rbind", "rw"]})
}

/// Container A of a race: [`RACER_C`] built into `vol` and run from it (mounted at /vol),
/// exchanging `/vol/<a>` and `/vol/<b>`. Returns once it races; write `vol/stop` to end it.
fn start_racer(name: &str, vol: &Path, a: &str, b: &str) -> (Bundle, common::Running) {
    // (The caller holds `RACE`.)
    let src = vol.join("racer.c");
    std::fs::write(&src, RACER_C).unwrap();
    let cc = std::process::Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(vol.join("racer"))
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let (pa, pb) = (format!("/vol/{a}"), format!("/vol/{b}"));
    let mut racer = Bundle::new(name, &["/vol/racer", &pa, &pb]);
    racer.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(vol_mount(vol, "/vol"));
    let mut running = racer.spawn();
    running.wait_line("racing");
    (racer, running)
}

#[test]
fn read_only_bind_cannot_be_raced_onto_another_mount() {
    needs_root!();
    let _race = RACE.lock().unwrap_or_else(|e| e.into_inner());
    // CVE-2021-30465 class: container B binds a host directory read-only at /vol/mnt, under
    // a volume /vol it shares with container A. A swaps /vol/mnt with a symlink to /vol in
    // a tight loop. A runtime that makes the bind and then remounts it read-only by
    // resolving the path again can land the remount on /vol instead: B's bind stays
    // writable and B writes the host directory.
    let shared = common::TempDir::new("dory-race");
    let vol = shared.path.join("vol");
    let secret = shared.path.join("secret");
    std::fs::create_dir_all(vol.join("mnt")).unwrap();
    std::fs::create_dir_all(&secret).unwrap();
    symlink("/vol", vol.join("swap")).unwrap();
    let (a, racer) = start_racer("atk-race-a", &vol, "mnt", "swap");
    let mut b = Bundle::new(
        "atk-race-b",
        &[
            "sh",
            "-c",
            "for d in /vol/mnt /vol/swap; do touch $d/pwned 2>/dev/null; done; true",
        ],
    );
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(vol_mount(&vol, "/vol"));
    mounts.push(json!({"destination": "/vol/mnt", "type": "bind",
                       "source": secret.to_str().unwrap(), "options": ["bind", "ro"]}));
    b.write_config();
    let (ran, refused, escaped) = run_during_race(
        &b,
        300,
        || {},
        || std::fs::read_dir(&secret).unwrap().next().is_some(),
    );
    std::fs::write(vol.join("stop"), "").unwrap();
    racer.finish();
    eprintln!("race: {ran} runs, {refused} refused");
    assert!(
        escaped.is_none(),
        "a read-only bind became writable after {escaped:?} ({ran} runs, {refused} refused)"
    );
    assert!(ran > 0, "the victim never ran ({refused} refused)");
    b.assert_nothing_left();
    a.assert_nothing_left();
}

// ---- class 4 and 8: config limits ----
// (class 4, mounts inside /proc and /sys, is in bad_input.rs: a refused config.)

#[test]
fn hook_timeout_too_large_for_a_deadline() {
    needs_root!();
    // A valid-looking config whose hook timeout overflows `Instant + Duration`: dory used
    // to abort between clone and start, leaving the state entry, the cgroup and the
    // container's waiting init behind. Now validation refuses it, naming the limit.
    for phase in ["prestart", "createRuntime"] {
        let mut b = Bundle::new(
            &format!("atk-hook-{}", phase.to_lowercase()),
            &["sh", "-c", "echo SHOULD-NOT-RUN"],
        );
        b.config["hooks"] = json!({ phase: [{"path": "/bin/true", "timeout": i64::MAX}] });
        let out = b.run();
        assert_ne!(out.code, 0, "{out:?}");
        assert!(
            out.stderr.contains(&format!(
                "config.json: hooks.{phase}[0].timeout: 9223372036854775807 is more than 86400 (limit)"
            )),
            "{out:?}"
        );
        assert!(!out.stderr.contains("panicked"), "{out:?}");
        assert!(!out.stdout.contains("SHOULD-NOT-RUN"), "{out:?}");
        b.assert_nothing_left();
    }
}

#[test]
fn preserve_fds_that_overflow_the_first_closed_fd() {
    needs_root!();
    // `--preserve-fds 4294967295`: the child computed `3 + N` in u32 (a panic in the
    // child, or in a release build fd 2 marked close-on-exec). Refused with the limit.
    let b = Bundle::new("atk-preserve", &["sh", "-c", "echo SHOULD-NOT-RUN"]);
    b.write_config();
    let mut cmd = b.cmd(&[
        "run",
        "--detach",
        "--preserve-fds",
        "4294967295",
        "--bundle",
    ]);
    cmd.arg(&b.dir).arg(&b.id);
    let out = common::run_cmd(&mut cmd);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("dory run: --preserve-fds: 4294967295 is more than 1048573 (limit)"),
        "{out:?}"
    );
    assert!(!out.stdout.contains("SHOULD-NOT-RUN"), "{out:?}");
    b.assert_nothing_left();
}

#[test]
fn non_utf8_argument_is_an_error_not_a_panic() {
    // std::env::args() panics on a word that is not UTF-8 (exit 101, a backtrace hint).
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let bad = OsStr::from_bytes(b"id-\xff");
    for args in [
        vec![OsStr::new("state"), bad],
        vec![OsStr::new("--root"), bad, OsStr::new("list")],
    ] {
        let out = common::run_cmd(std::process::Command::new(common::DORY).args(&args));
        assert_eq!(out.code, 1, "{out:?}");
        assert!(
            out.stderr.contains("is not valid UTF-8") && !out.stderr.contains("panicked"),
            "{out:?}"
        );
    }
}

/// Copies `bin` and the shared libraries `ldd` lists into `root`, at the same paths.
fn copy_with_libs(bin: &Path, root: &Path, to: &str) {
    std::fs::copy(bin, root.join(to)).unwrap();
    let ldd = std::process::Command::new("ldd").arg(bin).output();
    let text = ldd
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    for lib in text.split_whitespace().filter(|w| w.starts_with('/')) {
        let dest = root.join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(lib, &dest).unwrap();
    }
}

#[test]
fn pid1_test_mode_is_not_reachable_from_the_kernel_command_line() {
    needs_root!();
    // The kernel passes each unknown `KEY=VALUE` word of its command line into init's
    // environment: `DORY_INIT_TEST=1` there used to put PID 1 in test mode, in which
    // shutdown returns and PID 1 exits (a kernel panic on a board). Here dory is PID 1 of
    // a new pid namespace, chrooted into a scratch tmpfs (its boot mounts land there;
    // `/dev` is a file so no devtmpfs and the console stays this test's log), with that
    // variable set; SIGUSR2 asks for power-off. Before: "test mode", exit 0. Now: a real
    // init that ends in reboot(2), which kills the namespace, never an exit.
    for tool in ["/usr/bin/unshare", "/usr/sbin/chroot", "/usr/bin/ldd"] {
        assert!(Path::new(tool).exists(), "{tool} is required");
    }
    let dir = std::env::temp_dir().join(unique("dory-attack-pid1"));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("console.log");
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    // In the namespace: a tmpfs root holding dory and its libraries, then dory as PID 1.
    let script = r#"set -e
R="$1"; DORY="$2"
mount -t tmpfs -o mode=0755 tmpfs "$R"
mkdir -p "$R/proc" "$R/sys" "$R/run" "$R/tmp" "$R/etc" "$R/sbin"
: > "$R/dev"
cp -a "$3/." "$R/"
exec /usr/bin/env -i DORY_INIT_TEST=1 /usr/sbin/chroot "$R" /sbin/dory"#;
    let staging = dir.join("staging");
    std::fs::create_dir_all(staging.join("sbin")).unwrap();
    copy_with_libs(Path::new(common::DORY), &staging, "sbin/dory");
    let out = std::fs::File::create(&log).unwrap();
    let mut child = std::process::Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--kill-child",
            "--mount",
            "--uts",
            "--ipc",
            "--net",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(&root)
        .arg(common::DORY)
        .arg(&staging)
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let read_log =
        || String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
    // dory is unshare's child once it has exec'd; wait for its first line.
    let upid = child.id();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut pid = None;
    while std::time::Instant::now() < deadline && pid.is_none() {
        let kids = std::fs::read_to_string(format!("/proc/{upid}/task/{upid}/children"))
            .unwrap_or_default();
        if let Some(p) = kids.split_whitespace().next() {
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            if comm.trim() == "dory" && read_log().contains("dory: starting") {
                pid = Some(p.to_string());
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let Some(pid) = pid else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("dory did not start as PID 1; console:\n{}", read_log());
    };
    // Let it block its signals and reach its main loop, then ask for power-off.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let st = std::process::Command::new("kill")
        .args(["-USR2", &pid])
        .status()
        .unwrap();
    assert!(st.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the namespace did not end; console:\n{}", read_log());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let console = read_log();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        !console.contains("test mode") && console.contains("dory: starting as PID 1"),
        "DORY_INIT_TEST from the environment reached PID 1:\n{console}"
    );
    assert!(
        !status.success(),
        "PID 1 exited with status 0 instead of calling reboot(2):\n{console}"
    );
}

#[test]
fn mount_destination_cannot_reach_proc_through_an_image_symlink() {
    needs_root!();
    // The destination /etc/knobs passes the check of mounts[i].destination (it is not
    // under /proc), but the image makes it a symlink to /proc/sys/kernel: resolved inside
    // the rootfs, it lands on the container's procfs, and a tmpfs would hide the kernel's
    // files there (or a bind replace one).
    let mut b = Bundle::with_private_rootfs(
        "atk-procsym",
        &[
            "sh",
            "-c",
            "echo tmpfs-at-proc=$(grep -c ' /proc/sys/kernel ' /proc/self/mountinfo)",
        ],
    );
    symlink("/proc/sys/kernel", b.rootfs.join("etc/knobs")).unwrap();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/etc/knobs", "type": "tmpfs", "source": "tmpfs"}));
    let out = b.run();
    assert_ne!(
        out.code, 0,
        "a config mount landed inside /proc through an image symlink: {out:?}"
    );
    assert!(out.stderr.contains("mounts["), "{}", out.stderr);
    eprintln!("dory refused: {}", out.stderr.trim());
    b.assert_nothing_left();
}

#[test]
fn start_container_hook_from_the_image_runs_as_the_container() {
    needs_root!();
    // A startContainer hook's path resolves in the container: the image provides it. Run
    // with the runtime's privileges (every capability, the host's pid namespace and
    // cgroup, no seccomp) it could mknod the host's disk and mount it. It must run as the
    // container's process does: here without CAP_MKNOD, inside the container's pid
    // namespace.
    let mut b = Bundle::with_private_rootfs("atk-hook", &["sh", "-c", "cat /tmp/hook.out"]);
    b.config["root"]["readonly"] = Value::Bool(false);
    b.config["hooks"] = json!({"startContainer": [{"path": "/hook", "args": ["hook"]}]});
    let hook = b.rootfs.join("hook");
    std::fs::write(
        &hook,
        "#!/bin/sh\n\
         if mknod /tmp/probe b 7 0 2>/dev/null; then echo mknod=allowed; else echo mknod=denied; fi > /tmp/hook.out\n\
         echo \"pidns-self=$(cut -d' ' -f1 /proc/self/stat 2>/dev/null)\" >> /tmp/hook.out\n",
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = b.run();
    out.expect_code(0);
    assert_eq!(
        out.value("mknod"),
        Some("denied"),
        "the image's hook ran with capabilities the container does not have:\n{}",
        out.stdout
    );
    // /proc/self names the hook only if it is in the container's pid namespace.
    let pid = out.value("pidns-self").unwrap_or("");
    assert!(
        pid.parse::<u32>().is_ok_and(|p| p < 100),
        "the hook ran outside the container's pid namespace: {:?}\n{}",
        pid,
        out.stdout
    );
    assert!(!b.rootfs.join("tmp/probe").exists());
    b.assert_nothing_left();
}

#[test]
fn device_path_must_stay_under_dev() {
    needs_root!();
    // "/dev/../vol/dev0" starts with "/dev/" but names /vol: a device node made (or, in a
    // user namespace, a host path bound) outside /dev.
    let mut b = Bundle::new("atk-devpath", &["true"]);
    b.config["linux"]["devices"] = json!([
        {"path": "/dev/../tmp/dev0", "type": "c", "major": 1, "minor": 3, "fileMode": 438}
    ]);
    let out = b.run();
    assert_ne!(out.code, 0, "a device path with .. was accepted: {out:?}");
    assert!(
        out.stderr.contains("linux.devices[0].path"),
        "{}",
        out.stderr
    );
    b.assert_nothing_left();
}

#[test]
fn passwd_fifo_in_the_image_does_not_hang_the_runtime() {
    needs_root!();
    // The runtime reads the image's /etc/passwd for HOME: a fifo there must not block it
    // (nor a device be read).
    let b = Bundle::with_private_rootfs("atk-passwd", &["sh", "-c", "echo home=$HOME"]);
    let passwd = b.rootfs.join("etc/passwd");
    let _ = std::fs::remove_file(&passwd);
    nix::unistd::mkfifo(&passwd, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let out = b.run();
    out.expect_code(0);
    assert_eq!(out.value("home"), Some("/"), "{}", out.stdout);
    b.assert_nothing_left();
}

/// Between runs: no /vol/dev0, and /vol/link the symlink to `victim` (the racer stops
/// exchanging while dev0 is missing).
fn reset_dev_race(vol: &Path, victim: &Path) {
    let (dev0, link) = (vol.join("dev0"), vol.join("link"));
    if dev0.symlink_metadata().is_ok() {
        let _ = std::fs::rename(&dev0, &link);
    }
    let _ = std::fs::remove_file(&dev0);
    if !link
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
    {
        let _ = std::fs::remove_file(&link);
        symlink(victim, &link).unwrap();
    }
}

#[test]
fn device_node_mode_cannot_be_raced_onto_a_host_file() {
    needs_root!();
    let _race = RACE.lock().unwrap_or_else(|e| e.into_inner());
    // Container B makes a device node in a volume it shares with container A. A runtime
    // that sets the node's mode by name after mknod follows a symlink A swapped in, from the
    // host's root (this runs before pivot_root), and chmods a host file.
    // (The test resets the volume between runs: it plays both sides' bookkeeping.)
    let shared = common::TempDir::new("dory-devrace");
    let vol = shared.path.join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    let victim = shared.path.join("victim");
    std::fs::write(&victim, "secret").unwrap();
    std::fs::set_permissions(&victim, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    reset_dev_race(&vol, &victim);
    let (a, racer) = start_racer("atk-devrace-a", &vol, "dev0", "link");
    let mut b = Bundle::new("atk-devrace-b", &["true"]);
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(vol_mount(&vol, "/dev/vol"));
    b.config["linux"]["devices"] = json!([
        {"path": "/dev/vol/dev0", "type": "c", "major": 1, "minor": 3, "fileMode": 438}
    ]);
    b.write_config();
    use std::os::unix::fs::PermissionsExt;
    let mode = || std::fs::metadata(&victim).unwrap().permissions().mode() & 0o7777;
    let (ran, refused, _) = run_during_race(
        &b,
        300,
        || reset_dev_race(&vol, &victim),
        || mode() != 0o600,
    );
    std::fs::write(vol.join("stop"), "").unwrap();
    racer.finish();
    eprintln!("device race: {ran} runs, {refused} refused");
    assert_eq!(
        mode(),
        0o600,
        "a host file's mode was changed through the device node ({ran} runs, {refused} refused)"
    );
    assert!(
        ran > 0,
        "the victim container never ran ({refused} refused)"
    );
    b.assert_nothing_left();
    a.assert_nothing_left();
}

#[test]
fn child_cgroups_cannot_hide_processes_or_block_delete() {
    needs_root!();
    // With its own cgroup namespace and a writable cgroup mount, a container makes child
    // cgroups (24 deep) and moves a process into them: `ps` must still list it, `delete --force` kill
    // it, and nothing may stay behind (a leftover child made every delete fail with EBUSY).
    let mut b = Bundle::new(
        "atk-cgchild",
        &[
            "sh",
            "-c",
            "d=sub; for i in $(seq 24); do d=$d/x; done; \
             for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do mkdir -p ${h}$d 2>/dev/null; done; \
             D=$d sh -c 'for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do echo 0 > ${h}$D/cgroup.procs; done 2>/dev/null; \
                    echo hidden; exec sleep 1000' & \
             sleep 1000",
        ],
    );
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    if !ns.iter().any(|n| n["type"] == "cgroup") {
        ns.push(json!({"type": "cgroup"}));
    }
    for m in b.config["mounts"].as_array_mut().unwrap() {
        if m["type"] == "cgroup" || m["type"] == "cgroup2" {
            m["options"] = json!(["nosuid", "noexec", "nodev", "relatime", "rw"]);
        }
    }
    // create + start: no `run` parent that would clean up when the container dies.
    b.write_config();
    let dir = b.dir.to_str().unwrap().to_owned();
    common::run_cmd(&mut b.cmd(&["create", "--bundle", &dir, &b.id])).expect_code(0);
    common::run_cmd(&mut b.cmd(&["start", &b.id])).expect_code(0);
    let sleepers_seen = || {
        let ps = common::run_cmd(&mut b.cmd(&["ps", "--format", "json", &b.id]));
        let pids: Vec<i32> = serde_json::from_str(&ps.stdout).unwrap_or_default();
        let n = pids
            .iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| c.starts_with("sleep"))
            })
            .count();
        (n, pids)
    };
    let in_child = |pids: &[i32]| {
        pids.iter().any(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cgroup"))
                .is_ok_and(|c| c.contains("/sub/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x"))
        })
    };
    // Until the container has moved its process (it says so on its own schedule).
    let t = std::time::Instant::now();
    let (mut sleepers, mut pids) = sleepers_seen();
    while (sleepers < 2 || !in_child(&pids)) && t.elapsed() < std::time::Duration::from_secs(5) {
        std::thread::sleep(std::time::Duration::from_millis(50));
        (sleepers, pids) = sleepers_seen();
    }
    let in_child = in_child(&pids);
    let del = common::run_cmd(&mut b.cmd(&["delete", "--force", &b.id]));
    assert_eq!(
        sleepers, 2,
        "ps missed a process in a child cgroup: {pids:?}"
    );
    assert!(in_child, "no process went into the child cgroup: {pids:?}");
    del.expect_code(0);
    b.assert_nothing_left();
}

#[test]
fn tmpcopyup_cannot_be_made_to_block_on_a_swapped_fifo() {
    needs_root!();
    let _race = RACE.lock().unwrap_or_else(|e| e.into_inner());
    // tmpcopyup copies the directory it covers, here in a volume shared with container A,
    // which exchanges a regular file there with a fifo. A runtime that checks the type and
    // then opens by name blocks forever on the fifo (and as PID 1 never returns).
    let shared = common::TempDir::new("dory-copyrace");
    let vol = shared.path.join("vol");
    std::fs::create_dir_all(vol.join("lower")).unwrap();
    std::fs::write(vol.join("lower/f"), "data").unwrap();
    nix::unistd::mkfifo(
        &vol.join("lower/p"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let (a, racer) = start_racer("atk-copyrace-a", &vol, "lower/f", "lower/p");
    let mut b = Bundle::new("atk-copyrace-b", &["true"]);
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(vol_mount(&vol, "/vol"));
    mounts.push(
        json!({"destination": "/vol/lower", "type": "tmpfs", "source": "tmpfs",
                       "options": ["tmpcopyup"]}),
    );
    b.write_config();
    // A run that does not finish in time fails the test (run_cmd's timeout).
    let (ran, refused, _) = run_during_race(&b, 100, || {}, || false);
    std::fs::write(vol.join("stop"), "").unwrap();
    racer.finish();
    eprintln!("tmpcopyup race: {ran} runs, {refused} refused");
    assert!(ran > 0, "never ran ({refused} refused)");
    b.assert_nothing_left();
    a.assert_nothing_left();
}

#[test]
fn start_container_hook_gets_the_containers_stdio_not_the_callers_terminal() {
    needs_root!();
    // The hook is the image's code: given the terminal of whoever runs `dory start` as its
    // controlling tty, it could push input into the caller's shell (TIOCSTI), and holding
    // the caller's stdout it kept `dory start` from finishing.
    let mut b = Bundle::with_private_rootfs("atk-hookio", &["true"]);
    b.config["root"]["readonly"] = Value::Bool(false);
    b.config["hooks"] = json!({"startContainer": [{"path": "/hook", "args": ["hook"]}]});
    let hook = b.rootfs.join("hook");
    std::fs::write(
        &hook,
        "#!/bin/sh\necho \"hook-tty=$(cut -d' ' -f7 /proc/self/stat)\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    b.write_config();
    // The init's stdout: a file (what a shim would give as the container's log).
    let log = b.base.join("init-out");
    let dir = b.dir.to_str().unwrap().to_owned();
    let created = b
        .cmd(&["create", "--bundle", &dir, &b.id])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(created.success());
    // `dory start` on a terminal (script gives it a pty as its controlling tty).
    let cmdline = format!(
        "{} --root {} start {}",
        common::DORY,
        b.state_root.display(),
        b.id
    );
    let start =
        common::run_cmd(std::process::Command::new("script").args(["-qec", &cmdline, "/dev/null"]));
    let _ = common::run_cmd(&mut b.cmd(&["delete", "--force", &b.id]));
    let init_out = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !start.stdout.contains("hook-tty="),
        "the hook wrote to the caller's terminal: {start:?}"
    );
    assert_eq!(
        init_out.trim(),
        "hook-tty=0",
        "the hook's output is not the container's, or it has a controlling tty: {start:?}"
    );
    b.assert_nothing_left();
}
