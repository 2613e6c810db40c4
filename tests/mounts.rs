//! Mount features, checked from inside real containers: recursive mount attributes
//! (`rro`, `rnoexec`, ...), idmapped bind mounts, a container without a mount namespace,
//! and `--no-pivot`. Needs root; skips visibly otherwise.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[macro_use]
mod common;

use std::path::{Path, PathBuf};

use common::{Bundle, Out};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde_json::{json, Value};

/// A tmpfs mounted on a host directory for the test; detached on drop, also when the test
/// fails.
struct HostMount {
    path: PathBuf,
}

impl HostMount {
    fn tmpfs(path: &Path) -> HostMount {
        std::fs::create_dir_all(path).unwrap();
        mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::empty(),
            Some("mode=755"),
        )
        .unwrap_or_else(|e| panic!("mount tmpfs on {}: {e}", path.display()));
        HostMount { path: path.into() }
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = umount2(&self.path, MntFlags::MNT_DETACH);
    }
}

/// A host directory `vol` with a tmpfs submount at `vol/sub`, each holding an executable
/// script `run.sh` that prints a marker.
fn volume_with_submount(b: &Bundle) -> (PathBuf, HostMount) {
    let vol = b.base.join("vol");
    std::fs::create_dir(&vol).unwrap();
    let sub = HostMount::tmpfs(&vol.join("sub"));
    for dir in [&vol, &sub.path] {
        let script = dir.join("run.sh");
        std::fs::write(&script, "#!/bin/sh\necho EXECUTED\n").unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    (vol, sub)
}

fn add_mount(b: &mut Bundle, m: Value) {
    b.config["mounts"].as_array_mut().unwrap().push(m);
}

/// `touch` in the volume and in its submount, then each script: one `key=rc` line each.
const PROBE: &str = "touch /vol/a; echo top_write=$?; touch /vol/sub/a; echo sub_write=$?; \
                     /vol/run.sh >/dev/null; echo top_exec=$?; \
                     /vol/sub/run.sh >/dev/null; echo sub_exec=$?";

fn probe_with(name: &str, options: &[&str]) -> Out {
    let mut b = Bundle::new(name, &["sh", "-c", PROBE]);
    let (vol, _sub) = volume_with_submount(&b);
    add_mount(
        &mut b,
        json!({"destination": "/vol", "type": "bind", "source": vol.to_str().unwrap(),
               "options": options}),
    );
    let out = b.run();
    out.expect_code(0);
    out
}

#[test]
fn rro_makes_the_submounts_of_an_rbind_read_only() {
    needs_root!();
    // The baseline: plain `ro` covers only the top mount, the submount stays writable.
    let out = probe_with("ro-top", &["rbind", "ro"]);
    assert_ne!(out.value("top_write"), Some("0"), "{out:?}");
    assert_eq!(out.value("sub_write"), Some("0"), "{out:?}");
    // `rro`: the submount too.
    let out = probe_with("rro", &["rbind", "rro"]);
    assert_ne!(out.value("top_write"), Some("0"), "{out:?}");
    assert_ne!(out.value("sub_write"), Some("0"), "{out:?}");
    assert!(out.stderr.contains("Read-only file system"), "{out:?}");
    // The scripts still run: read-only is not noexec.
    assert_eq!(out.value("sub_exec"), Some("0"), "{out:?}");
}

#[test]
fn rnoexec_reaches_the_submounts_and_rrw_undoes_rro() {
    needs_root!();
    let out = probe_with("noexec-top", &["rbind", "noexec"]);
    assert_ne!(out.value("top_exec"), Some("0"), "{out:?}");
    assert_eq!(out.value("sub_exec"), Some("0"), "{out:?}");
    let out = probe_with("rnoexec", &["rbind", "rnoexec", "rro", "rrw"]);
    assert_ne!(out.value("top_exec"), Some("0"), "{out:?}");
    assert_ne!(out.value("sub_exec"), Some("0"), "{out:?}");
    assert!(out.stderr.contains("Permission denied"), "{out:?}");
    // The later `rrw` undid `rro`.
    assert_eq!(out.value("top_write"), Some("0"), "{out:?}");
    assert_eq!(out.value("sub_write"), Some("0"), "{out:?}");
}

#[test]
fn recursive_atime_and_nosymfollow_show_in_the_mount_table() {
    needs_root!();
    let mut b = Bundle::new(
        "ratime",
        &[
            "sh",
            "-c",
            "grep ' /vol' /proc/self/mountinfo; ln -s run.sh /vol/sub/l; \
                       /vol/sub/l >/dev/null; echo link_exec=$?",
        ],
    );
    let (vol, _sub) = volume_with_submount(&b);
    add_mount(
        &mut b,
        json!({"destination": "/vol", "type": "bind", "source": vol.to_str().unwrap(),
               "options": ["rbind", "rnoatime", "rnodiratime", "rnosymfollow"]}),
    );
    let out = b.run();
    out.expect_code(0);
    let lines: Vec<&str> = out.stdout.lines().filter(|l| l.contains(" /vol")).collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    for l in &lines {
        let opts = l.split(' ').nth(5).unwrap();
        for o in ["noatime", "nodiratime", "nosymfollow"] {
            assert!(opts.split(',').any(|x| x == o), "{o} missing: {l}");
        }
    }
    // nosymfollow: the symlink in the submount is not followed.
    assert_ne!(out.value("link_exec"), Some("0"), "{out:?}");
}

/// Runs `b` (config as written) and checks the refusal: exit != 0, stderr holds every
/// needle, the program never ran, nothing is left behind.
fn expect_refused(b: &Bundle, needles: &[&str]) -> Out {
    let before = common::host_mountinfo();
    let out = b.run();
    assert_ne!(out.code, 0, "dory accepted it: {out:?}");
    for n in needles {
        assert!(out.stderr.contains(n), "stderr lacks {n:?}: {out:?}");
    }
    assert!(!out.stdout.contains("SHOULD-NOT-RUN"), "{out:?}");
    b.assert_nothing_left();
    let after = common::host_mountinfo();
    let new: Vec<&String> = after.iter().filter(|l| !before.contains(l)).collect();
    assert!(new.is_empty(), "new host mounts: {new:#?}");
    out
}

const NOT_RUN: &[&str] = &["sh", "-c", "echo SHOULD-NOT-RUN"];

#[test]
fn unknown_recursive_option_on_a_bind_is_refused() {
    needs_root!();
    let mut b = Bundle::new("bad-ropt", NOT_RUN);
    let n = b.config["mounts"].as_array().unwrap().len();
    let src = b.base.to_str().unwrap().to_owned();
    add_mount(
        &mut b,
        json!({"destination": "/vol", "type": "bind", "source": src,
               "options": ["rbind", "rnoexce"]}),
    );
    expect_refused(
        &b,
        &[
            &format!("config.json: mounts[{n}].options[1]"),
            "unknown mount option \"rnoexce\"",
        ],
    );
}

#[test]
fn recursive_option_on_a_cgroup_mount_is_refused() {
    needs_root!();
    let mut b = Bundle::new("bad-rcg", NOT_RUN);
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    let i = mounts
        .iter()
        .position(|m| m["type"] == "cgroup")
        .expect("the seed config has a cgroup mount");
    mounts[i]["options"]
        .as_array_mut()
        .unwrap()
        .push(json!("rro"));
    expect_refused(
        &b,
        &[&format!("config.json: mounts[{i}].options"), "cgroup"],
    );
}
