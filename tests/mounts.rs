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

use common::{run_cmd, Bundle, Out};
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
    let out = b.run();
    assert_ne!(out.code, 0, "dory accepted it: {out:?}");
    for n in needles {
        assert!(out.message().contains(n), "stderr lacks {n:?}: {out:?}");
    }
    assert!(!out.stdout.contains("SHOULD-NOT-RUN"), "{out:?}");
    // No mount mentioning the bundle or rootfs (other tests of this file mount their own
    // host directories meanwhile, so the whole table is not compared).
    b.assert_nothing_left();
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

// ---------------------------------------------------------------------------------------
// --no-pivot

/// The classic chroot escape, as a static binary for the busybox rootfs: chroot into a
/// subdirectory while the cwd stays outside it, climb `..`, chroot there, then look for
/// the host file named by argv[1].
const ESCAPE_C: &str = r#"
#include <stdio.h>
#include <unistd.h>
#include <sys/stat.h>
int main(int argc, char **argv) {
    if (argc < 2) return 2;
    mkdir("/dev/shm/x", 0755);
    if (chdir("/") != 0 || chroot("/dev/shm/x") != 0) {
        perror("chroot");
        printf("escape=chroot-refused\n");
        return 0;
    }
    for (int i = 0; i < 64; i++) chdir("..");
    if (chroot(".") != 0) perror("chroot .");
    printf(access(argv[1], F_OK) == 0 ? "escape=reached-host\n" : "escape=contained\n");
    return 0;
}
"#;

/// Builds the escape helper into `rootfs/bin/escape` (gcc and libc6-dev are in ci/setup).
fn build_escape_helper(b: &Bundle) {
    let src = b.base.join("escape.c");
    std::fs::write(&src, ESCAPE_C).unwrap();
    let out = run_cmd(
        std::process::Command::new("cc")
            .args(["-static", "-O1", "-o"])
            .arg(b.rootfs.join("bin/escape"))
            .arg(&src),
    );
    assert_eq!(
        out.code, 0,
        "cc -static failed (gcc + libc6-dev needed): {out:?}"
    );
}

/// `run --no-pivot` of `b`.
fn run_no_pivot(b: &Bundle) -> Out {
    b.write_config();
    let mut c = b.cmd(&["run", "--no-pivot", "--bundle"]);
    c.arg(&b.dir).arg(&b.id);
    run_cmd(&mut c)
}

/// Mount points of a mountinfo text.
fn mount_points(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| p.replace("\\040", " "))
        .collect()
}

#[test]
fn no_pivot_runs_and_shows_no_host_mount() {
    needs_root!();
    let mut b = Bundle::with_private_rootfs(
        "nopivot",
        &[
            "sh",
            "-c",
            "cat /proc/self/mountinfo; cd /../../..; echo cwd=$(pwd); ls /",
        ],
    );
    // A host mount the container must not see (without the detach it stays in its table).
    let host = HostMount::tmpfs(&b.base.join("host-only"));
    std::fs::write(b.base.join("host-only/HOST-FILE"), "x").unwrap();
    b.config["process"]["args"][2] = Value::from(format!(
        "cat /proc/self/mountinfo; cd /../../..; echo cwd=$(pwd); ls / ; \
         test -e {}/host-only/HOST-FILE && echo host_visible=1; true",
        b.base.display()
    ));
    let out = run_no_pivot(&b);
    out.expect_code(0);
    let dests: Vec<String> = b.config["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap().to_owned())
        .collect();
    let points = mount_points(&out.stdout);
    // `/` (the rootfs; the host's root beneath it is outside the container's root, so
    // not listed) and the config's own mounts; nothing else of the host's.
    assert_eq!(points.iter().filter(|p| *p == "/").count(), 1, "{out:?}");
    for p in points.iter().filter(|p| *p != "/") {
        // Config mounts, and what dory mounts below them (cgroup hierarchies, masks).
        let ours = dests
            .iter()
            .any(|d| p == d || p.starts_with(&format!("{d}/")));
        assert!(ours, "host mount {p} visible in the container: {out:?}");
    }
    assert!(!out.stdout.contains("host-only"), "{out:?}");
    assert!(!out.stdout.contains("host_visible=1"), "{out:?}");
    assert_eq!(out.value("cwd"), Some("/"), "{out:?}");
    // The container's own files: `..` at its root stays there.
    assert!(out.stdout.lines().any(|l| l == "bin"), "{out:?}");
    // The host's mount is still there: only the container's namespace lost it.
    assert!(b.base.join("host-only/HOST-FILE").exists());
    drop(host);
    b.assert_nothing_left();
}

#[test]
fn no_pivot_without_cap_sys_chroot_holds_the_chroot_escape() {
    needs_root!();
    let mut b = Bundle::with_private_rootfs("nopivot-esc", &[]);
    build_escape_helper(&b);
    let marker = b.base.join("HOST-MARKER");
    std::fs::write(&marker, "host").unwrap();
    b.config["process"]["args"] = json!(["/bin/escape", marker.to_str().unwrap()]);
    // The seed capabilities: no CAP_SYS_CHROOT, no CAP_SYS_ADMIN.
    let out = run_no_pivot(&b);
    out.expect_code(0);
    assert_eq!(out.value("escape"), Some("chroot-refused"), "{out:?}");
    assert!(!out.stderr.contains("warning"), "{out:?}");
}

/// A private-rootfs bundle running `args`, with `cap` added to the process's sets and a
/// host file the container must not reach; returns the bundle and that file's path.
fn bundle_with_cap(name: &str, cap: &str) -> (Bundle, String) {
    let mut b = Bundle::with_private_rootfs(name, &[]);
    let marker = b.base.join("HOST-MARKER");
    std::fs::write(&marker, "host").unwrap();
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!(cap));
    }
    (b, marker.to_str().unwrap().to_owned())
}

#[test]
fn no_pivot_with_cap_sys_chroot_holds_the_chroot_escape() {
    needs_root!();
    // The rootfs moved onto the namespace's root: `..` from it has no dentry of the
    // host's root filesystem to climb to, so the classic escape stays inside, as it does
    // after pivot_root.
    let (mut b, marker) = bundle_with_cap("nopivot-chroot", "CAP_SYS_CHROOT");
    build_escape_helper(&b);
    b.config["process"]["args"] = json!(["/bin/escape", marker]);
    let out = b.run();
    out.expect_code(0);
    assert_eq!(
        out.value("escape"),
        Some("contained"),
        "pivot_root: {out:?}"
    );
    let out = run_no_pivot(&b);
    out.expect_code(0);
    assert_eq!(
        out.value("escape"),
        Some("contained"),
        "--no-pivot: {out:?}"
    );
    assert!(
        out.stderr.contains("warning: --no-pivot")
            && out.stderr.contains("may hold CAP_SYS_CHROOT:"),
        "{out:?}"
    );
}

#[test]
fn no_pivot_with_cap_sys_admin_is_escapable_as_documented() {
    needs_root!();
    // What README and runc's man page warn of: with --no-pivot the host's root stays the
    // root of the container's mount namespace, under the rootfs. With CAP_SYS_ADMIN the
    // rootfs comes off it (`umount -l /`), and setns(2) into the namespace (CAP_SYS_CHROOT
    // too) makes it the caller's root. After pivot_root (the default) the namespace's
    // root is the rootfs itself: the same steps stay inside.
    let (mut b, marker) = bundle_with_cap("nopivot-admin", "CAP_SYS_ADMIN");
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_SYS_CHROOT"));
    }
    // The program after setns is looked up in the root it gives: the host's /bin/sh, or
    // nothing at all (exit 127) where that root is not the host's.
    let script = format!(
        "cd /proc/self/ns; umount -l /; nsenter --mount=mnt /bin/sh -c \
         'test -e {marker} && echo escape=reached-host'; echo done"
    );
    b.config["process"]["args"] = json!(["/bin/sh", "-c", script]);
    let out = b.run();
    out.expect_code(0);
    assert!(out.stdout.contains("done"), "{out:?}");
    assert!(!out.stdout.contains("reached-host"), "pivot_root: {out:?}");
    let out = run_no_pivot(&b);
    out.expect_code(0);
    assert_eq!(
        out.value("escape"),
        Some("reached-host"),
        "--no-pivot: {out:?}"
    );
    assert!(
        out.stderr
            .contains("may hold CAP_SYS_CHROOT and CAP_SYS_ADMIN:"),
        "{out:?}"
    );
}

#[test]
fn no_pivot_refuses_private_root_propagation_as_runc() {
    needs_root!();
    let mut b = Bundle::new("nopivot-priv", NOT_RUN);
    b.config["linux"]["rootfsPropagation"] = json!("rprivate");
    let out = run_no_pivot(&b);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("config.json: linux.rootfsPropagation: [r]private"),
        "{out:?}"
    );
    assert!(!out.stdout.contains("SHOULD-NOT-RUN"), "{out:?}");
    b.assert_nothing_left();
}

// ---------------------------------------------------------------------------------------
// No mount namespace

/// The seed config without a mount namespace and without what would need one.
fn without_mount_ns(b: &mut Bundle) {
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "mount");
    b.config["mounts"] = json!([]);
    b.config["linux"]["maskedPaths"] = json!([]);
    b.config["linux"]["readonlyPaths"] = json!([]);
    b.config["root"]["readonly"] = json!(false);
}

/// The optional fields (propagation) of the host's `/` in /proc/self/mountinfo.
fn host_root_propagation() -> String {
    common::host_mountinfo()
        .into_iter()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            let end = fields.iter().position(|f| *f == "-").unwrap();
            fields[6..end].join(" ")
        })
        .unwrap()
}

#[test]
fn no_mount_namespace_chroots_into_the_rootfs_and_exec_follows() {
    needs_root!();
    let mut b = Bundle::new("nomntns", &["sleep", "30"]);
    without_mount_ns(&mut b);
    let marker = b.base.join("HOST-MARKER");
    std::fs::write(&marker, "host").unwrap();
    let propagation = host_root_propagation();
    b.write_config();
    let dir = b.dir.to_str().unwrap().to_owned();
    run_cmd(&mut b.cmd(&["create", "--bundle", &dir, &b.id])).expect_code(0);
    run_cmd(&mut b.cmd(&["start", &b.id])).expect_code(0);
    let pid = b.wait_state().pid;
    // The host's mount namespace, rooted in the rootfs.
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/mnt")).unwrap();
    assert_eq!(ns(&pid.to_string()), ns("self"));
    let root = std::fs::read_link(format!("/proc/{pid}/root")).unwrap();
    assert_eq!(root, std::fs::canonicalize(&b.rootfs).unwrap());
    // An exec'd process is chrooted there too (entering no mount namespace would have
    // left it in the host's root).
    let script = format!(
        "ls /; test -e {} && echo host_visible=1; cd /../..; echo cwd=$(pwd); true",
        marker.display()
    );
    let out = run_cmd(&mut b.cmd(&["exec", &b.id, "sh", "-c", &script]));
    run_cmd(&mut b.cmd(&["delete", "--force", &b.id])).expect_code(0);
    out.expect_code(0);
    assert!(out.stdout.lines().any(|l| l == "bin"), "{out:?}");
    assert!(!out.stdout.contains("host_visible"), "{out:?}");
    assert_eq!(out.value("cwd"), Some("/"), "{out:?}");
    // Nothing of the host's mounts changed: no mount, no propagation change on `/`.
    assert_eq!(host_root_propagation(), propagation);
    // No host mount mentions the rootfs or the bundle (what dory would have mounted
    // there: the rootfs bound onto itself, config mounts). The whole table is not
    // compared: other tests, and other users of this host, mount meanwhile.
    b.assert_nothing_left();
}

#[test]
fn no_mount_namespace_refuses_what_would_change_the_host() {
    needs_root!();
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit); 6] = [
        (
            "mounts",
            |c| c["mounts"] = json!([{"destination": "/proc", "type": "proc", "source": "proc"}]),
        ),
        ("linux.maskedPaths", |c| {
            c["linux"]["maskedPaths"] = json!(["/proc/kcore"])
        }),
        ("linux.readonlyPaths", |c| {
            c["linux"]["readonlyPaths"] = json!(["/proc/sys"])
        }),
        ("root.readonly", |c| c["root"]["readonly"] = json!(true)),
        ("linux.rootfsPropagation", |c| {
            c["linux"]["rootfsPropagation"] = json!("rslave")
        }),
        ("--no-pivot", |_| {}),
    ];
    for (field, edit) in cases {
        let mut b = Bundle::new("nomntns-bad", NOT_RUN);
        without_mount_ns(&mut b);
        edit(&mut b.config);
        let out = if field == "--no-pivot" {
            run_no_pivot(&b)
        } else {
            b.run()
        };
        assert_ne!(out.code, 0, "{field}: {out:?}");
        let want = format!("config.json: {field}: needs a \"mount\" entry in linux.namespaces");
        assert!(out.message().contains(&want), "{field}: {out:?}");
        assert!(!out.stdout.contains("SHOULD-NOT-RUN"), "{out:?}");
        b.assert_nothing_left();
    }
}

// ---------------------------------------------------------------------------------------
// Idmapped mounts

/// A host directory `idvol` (on the test's temp filesystem) holding `f1000` owned by
/// 1000:1000 and `froot` owned by 0:0, and a tmpfs submount `idvol/sub` holding `f1000`.
fn idmap_volume(b: &Bundle) -> (PathBuf, HostMount) {
    let vol = b.base.join("idvol");
    std::fs::create_dir(&vol).unwrap();
    let sub = HostMount::tmpfs(&vol.join("sub"));
    for f in [vol.join("f1000"), sub.path.join("f1000")] {
        std::fs::write(&f, "x").unwrap();
        std::os::unix::fs::chown(&f, Some(1000), Some(1000)).unwrap();
    }
    std::fs::write(vol.join("froot"), "x").unwrap();
    (vol, sub)
}

fn maps(c: u32, h: u32, n: u32) -> Value {
    json!([{"containerID": c, "hostID": h, "size": n}])
}

const STAT: &str = "echo top=$(stat -c %u:%g /vol/f1000); echo root=$(stat -c %u:%g /vol/froot); \
                    echo sub=$(stat -c %u:%g /vol/sub/f1000)";

#[test]
fn idmapped_bind_shows_the_mapped_owner_inside() {
    needs_root!();
    // No user namespace in the container (runc 1.2 allows that): on-disk 1000 shows as
    // 2000 (uid) and 3000 (gid); root, outside the mapping, as the overflow id.
    let mut b = Bundle::new("idmap", &["sh", "-c", STAT]);
    let (vol, sub) = idmap_volume(&b);
    add_mount(
        &mut b,
        json!({"destination": "/vol", "type": "bind", "source": vol.to_str().unwrap(),
               "options": ["rbind"], "uidMappings": maps(1000, 2000, 1),
               "gidMappings": maps(1000, 3000, 1)}),
    );
    let out = b.run();
    out.expect_code(0);
    assert_eq!(out.value("top"), Some("2000:3000"), "{out:?}");
    assert_eq!(out.value("root"), Some("65534:65534"), "{out:?}");
    // `idmap` (the default with mappings) is not recursive: the submount is as it is.
    assert_eq!(out.value("sub"), Some("1000:1000"), "{out:?}");
    // The host's files are unchanged.
    let meta = std::fs::metadata(vol.join("f1000")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 1000);
    drop(sub);
    b.assert_nothing_left();
}

#[test]
fn ridmap_maps_the_submounts_too() {
    needs_root!();
    // tmpfs supports idmapped mounts since Linux 6.3, the ext4 of the temp dir always.
    let mut b = Bundle::new("ridmap", &["sh", "-c", STAT]);
    let (vol, _sub) = idmap_volume(&b);
    add_mount(
        &mut b,
        json!({"destination": "/vol", "type": "bind", "source": vol.to_str().unwrap(),
               "options": ["rbind", "ridmap"], "uidMappings": maps(1000, 2000, 1),
               "gidMappings": maps(1000, 3000, 1)}),
    );
    let out = b.run();
    out.expect_code(0);
    assert_eq!(out.value("top"), Some("2000:3000"), "{out:?}");
    assert_eq!(out.value("sub"), Some("2000:3000"), "{out:?}");
}

#[test]
fn idmapped_bind_in_a_user_namespace_container() {
    needs_root!();
    // As runc's idmap.bats: the container maps 0 to 100000 and so does the mount, so a
    // file of the host's root is root's inside, and a write lands as the host's root.
    let mut b = Bundle::with_private_rootfs(
        "idmap-userns",
        &[
            "sh",
            "-c",
            "echo root=$(stat -c %u:%g /vol/froot); id -u; touch /vol/new; echo w=$?",
        ],
    );
    let (vol, _sub) = idmap_volume(&b);
    std::os::unix::fs::chown(&vol, Some(0), Some(0)).unwrap();
    let chown = std::process::Command::new("chown")
        .args(["-R", "100000:100000"])
        .arg(&b.rootfs)
        .status()
        .unwrap();
    assert!(chown.success());
    b.config["root"]["readonly"] = json!(false);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = maps(0, 100000, 65536);
    b.config["linux"]["gidMappings"] = maps(0, 100000, 65536);
    add_mount(
        &mut b,
        json!({"destination": "/vol", "type": "bind", "source": vol.to_str().unwrap(),
               "options": ["bind"], "uidMappings": maps(0, 100000, 65536),
               "gidMappings": maps(0, 100000, 65536)}),
    );
    let out = b.run();
    out.expect_code(0);
    assert_eq!(out.value("root"), Some("0:0"), "{out:?}");
    assert_eq!(out.value("w"), Some("0"), "{out:?}");
    let meta = std::fs::metadata(vol.join("new")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 0);
}

#[test]
fn idmap_bad_input_is_refused_naming_the_field() {
    needs_root!();
    type Edit = fn(&mut Value, &str);
    let cases: [(&str, &str, Edit); 5] = [
        (
            "",
            "(does the source's filesystem support idmapped mounts?)",
            |c, _| {
                // sysfs has no idmapping support.
                c["mounts"].as_array_mut().unwrap().push(json!({
                    "destination": "/vol", "type": "bind", "source": "/sys/kernel",
                    "options": ["bind"], "uidMappings": maps(0, 1, 1),
                    "gidMappings": maps(0, 1, 1)}))
            },
        ),
        (
            "uidMappings",
            "idmapped mounts are only supported for bind mounts",
            |c, _| {
                c["mounts"].as_array_mut().unwrap().push(json!({
                    "destination": "/vol", "type": "tmpfs", "source": "tmpfs",
                    "uidMappings": maps(0, 1, 1), "gidMappings": maps(0, 1, 1)}))
            },
        ),
        (
            "uidMappings",
            "needs both uidMappings and gidMappings",
            |c, src| {
                c["mounts"].as_array_mut().unwrap().push(json!({
                    "destination": "/vol", "type": "bind", "source": src,
                    "options": ["bind"], "uidMappings": maps(0, 1, 1)}))
            },
        ),
        (
            "options",
            "idmap/ridmap needs uidMappings and gidMappings",
            |c, src| {
                c["mounts"].as_array_mut().unwrap().push(json!({
                    "destination": "/vol", "type": "bind", "source": src,
                    "options": ["bind", "idmap"]}))
            },
        ),
        (
            "uidMappings[0]",
            "hostID + size = 4294967297 is more than 4294967296 (limit)",
            |c, src| {
                c["mounts"].as_array_mut().unwrap().push(json!({
                    "destination": "/vol", "type": "bind", "source": src,
                    "options": ["bind"], "uidMappings": maps(0, 4294967295, 2),
                    "gidMappings": maps(0, 1, 1)}))
            },
        ),
    ];
    for (field, message, edit) in cases {
        let mut b = Bundle::new("idmap-bad", NOT_RUN);
        let n = b.config["mounts"].as_array().unwrap().len();
        let src = b.base.to_str().unwrap().to_owned();
        edit(&mut b.config, &src);
        let want = if field.is_empty() {
            format!("config.json: mounts[{n}]: /vol: idmapped mount")
        } else {
            format!("config.json: mounts[{n}].{field}")
        };
        expect_refused(&b, &[&want, message]);
    }
}

// ---------------------------------------------------------------------------------------
// Against runc

/// `/vol` mount points and their per-mount options, from a mountinfo text.
fn vol_mounts(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let point = *f.get(4)?;
            (point == "/vol" || point.starts_with("/vol/")).then(|| format!("{point} {}", f[5]))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn recursive_options_give_the_mount_table_runc_gives() {
    needs_root!();
    if run_cmd(std::process::Command::new("runc").arg("--version")).code != 0 {
        panic!("runc is needed for this comparison (apt-get install runc)");
    }
    let options = ["rbind", "rro", "rnosuid", "rnodev", "rnoexec", "rnoatime"];
    let mut outs = Vec::new();
    for runtime in ["dory", "runc"] {
        let mut b = Bundle::new(&format!("rcmp-{runtime}"), &["cat", "/proc/self/mountinfo"]);
        let (vol, sub) = volume_with_submount(&b);
        add_mount(
            &mut b,
            json!({"destination": "/vol", "type": "bind", "source": vol.to_str().unwrap(),
                   "options": options}),
        );
        let out = if runtime == "dory" {
            b.run()
        } else {
            b.write_config();
            let mut c = std::process::Command::new("runc");
            c.arg("--root").arg(&b.state_root).args(["run", "--bundle"]);
            run_cmd(c.arg(&b.dir).arg(&b.id))
        };
        out.expect_code(0);
        drop(sub);
        outs.push(vol_mounts(&out.stdout));
    }
    assert_eq!(outs[0].len(), 2, "{outs:?}");
    assert!(
        outs[0].iter().all(|l| l.contains("ro,nosuid,nodev,noexec")),
        "{outs:?}"
    );
    assert_eq!(outs[0], outs[1], "dory, then runc");
}
