//! The container dory builds, compared with the one runc (Debian's 1.1.5, the reference)
//! builds from the same config: capabilities, limits, identity, mounts, devices, fds,
//! cgroups. Needs root and runc; skips visibly otherwise.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::{run_cmd, Bundle, Out};

/// Prints one section per aspect; each line of a section is compared as a set.
const PROBE: &str = "\
echo '== status'; grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; \
echo '== limits'; cat /proc/self/limits; \
echo '== ident'; hostname; id; umask; \
echo '== env'; env; \
echo '== mounts'; cat /proc/self/mountinfo; \
echo '== dev'; ls -ln /dev /dev/pts /dev/shm /dev/mqueue; \
echo '== fds'; ls /proc/1/fd; \
echo '== cgroup'; cat /proc/self/cgroup; \
echo '== end'";

fn runc_available() -> bool {
    Command::new("runc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The lines of section `name`.
fn section(out: &Out, name: &str) -> Vec<String> {
    let start = format!("== {name}");
    out.stdout
        .lines()
        .skip_while(|l| *l != start)
        .skip(1)
        .take_while(|l| !l.starts_with("== "))
        .map(str::to_owned)
        .collect()
}

/// Mount point, its per-mount options and the filesystem type of a mountinfo line (the
/// optional fields before " - " differ between runtimes and are left out).
fn mount_key(line: &str) -> String {
    let (pre, post) = line.split_once(" - ").unwrap();
    let f: Vec<&str> = pre.split(' ').collect();
    let fstype = post.split(' ').next().unwrap();
    format!("{} {} {fstype}", f[4], f[5])
}

/// `ls -ln` lines without the date and size columns: type/mode, owner, group, device
/// numbers (for device files), name.
fn dev_key(line: &str) -> Option<String> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 9 || line.ends_with(':') || line.starts_with("total") {
        return None;
    }
    // A symlink ends in `name -> target`.
    let name = match f.iter().position(|x| *x == "->") {
        Some(i) => format!("{} -> {}", f[i - 1], f[i + 1..].join(" ")),
        None => f[f.len() - 1].to_owned(),
    };
    if name == "." || name == ".." {
        return None;
    }
    let dev = if f[0].starts_with('c') || f[0].starts_with('b') {
        format!("{}{}", f[4], f[5])
    } else {
        String::new()
    };
    Some(format!("{} {} {} {dev} {name}", f[0], f[2], f[3]))
}

fn set(v: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    v.into_iter().collect()
}

/// Runs the probe under dory and under runc with the same seed-derived config.
fn both() -> Option<(Out, Out)> {
    if !runc_available() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: runc_compat: needs runc (apt-get install runc)"
        );
        return None;
    }
    let d = Bundle::new("cmp-dory", &["sh", "-c", PROBE]);
    let dory = d.run();
    dory.expect_code(0);
    let r = Bundle::new("cmp-runc", &["sh", "-c", PROBE]);
    r.write_config();
    let mut cmd = Command::new("runc");
    cmd.arg("--root")
        .arg(&r.state_root)
        .args(["run", "--bundle"])
        .arg(&r.dir)
        .arg(&r.id);
    let runc = run_cmd(&mut cmd);
    runc.expect_code(0);
    d.assert_nothing_left();
    Some((dory, runc))
}

#[test]
fn same_container_as_runc() {
    needs_root!();
    let Some((dory, runc)) = both() else { return };
    for name in ["status", "ident", "fds"] {
        assert_eq!(
            section(&dory, name),
            section(&runc, name),
            "section {name}\ndory:\n{}\nrunc:\n{}",
            dory.stdout,
            runc.stdout
        );
    }
    assert_eq!(
        section(&dory, "limits"),
        section(&runc, "limits"),
        "/proc/self/limits differs"
    );
    // runc adds HOME when the config has none: see `home_is_set_like_runc`.
    let env = |o: &Out| {
        set(section(o, "env")
            .into_iter()
            .filter(|l| !l.starts_with("HOME=")))
    };
    assert_eq!(env(&dory), env(&runc), "environment");
    // Order differs (runc masks after the readonly paths); runc leaves the /sys/fs/cgroup
    // tmpfs rw under its ro cgroup mounts, dory makes it ro too (stricter, accepted).
    let mounts = |o: &Out| {
        set(section(o, "mounts").iter().map(|l| mount_key(l)).map(|k| {
            if k.starts_with("/sys/fs/cgroup ") {
                k.replace(" rw,", " ro,")
            } else {
                k
            }
        }))
    };
    assert_eq!(mounts(&dory), mounts(&runc), "mount points, options, types");
    // Also /dev/core, which runc (and dory) create only where the host has /proc/kcore.
    let dev = |o: &Out| set(section(o, "dev").iter().filter_map(|l| dev_key(l)));
    assert_eq!(dev(&dory), dev(&runc), "/dev");
    assert_eq!(
        set(section(&dory, "cgroup")),
        set(section(&runc, "cgroup")),
        "/proc/self/cgroup"
    );
}

#[test]
fn home_is_set_like_runc() {
    needs_root!();
    let Some((dory, runc)) = both() else { return };
    let home = |o: &Out| {
        section(o, "env")
            .into_iter()
            .find(|l| l.starts_with("HOME="))
    };
    assert!(runc.stdout.contains("HOME=/"), "{}", runc.stdout);
    assert_eq!(
        home(&dory),
        home(&runc),
        "runc sets HOME (from /etc/passwd, else /) when the env lacks it"
    );
}
