//! `images/oci-bundle`: a small multi-layer OCI image (`ci/oci-testimage`: whiteouts,
//! Entrypoint + Cmd, Env, WorkingDir, User, a Volume), in each of the three formats,
//! becomes a bundle that `dory run` runs; the container's probe reports what it sees and
//! every line is checked. Overrides, the User forms runc resolves, multi-arch images, and
//! bad images (wrong arch, missing or corrupt blobs) that must be refused naming the arch
//! or the digest, leaving nothing behind. Needs root (umoci keeps the image's owners,
//! `dory run`), skopeo and umoci (ci/setup).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{run_cmd, Bundle, Out, TempDir, DORY};
use serde_json::Value;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// This machine's arch in the repo's words (ci/lib.sh host_arch).
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x86_64",
        "aarch64" => "aarch64",
        "arm" => "armv7",
        other => panic!("no test image for {other}"),
    }
}

/// Another arch than this machine's, with its OCI platform text.
fn foreign_arch() -> (&'static str, &'static str) {
    match host_arch() {
        "aarch64" => ("x86_64", "linux/amd64"),
        _ => ("aarch64", "linux/arm64/v8"),
    }
}

/// The OCI platform text of this machine's arch.
fn host_platform() -> &'static str {
    match host_arch() {
        "x86_64" => "linux/amd64",
        "aarch64" => "linux/arm64",
        _ => "linux/arm",
    }
}

fn tools_present() {
    for t in ["skopeo", "umoci"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(t).is_file()))
            .unwrap_or(false);
        assert!(
            found,
            "{t} is not installed: run ci/setup (apt-get install skopeo umoci)"
        );
    }
}

/// `ci/oci-testimage ARGS… <dir>/<name>`: the test image as an OCI layout.
fn test_image(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    run_cmd(
        Command::new(format!("{REPO}/ci/oci-testimage"))
            .args(args)
            .arg(&out),
    )
    .expect_code(0);
    out
}

/// `skopeo copy oci:<layout> <transport>:<file>`: the same image as an archive.
fn archive(layout: &Path, transport: &str, file: &Path, reference: &str) -> PathBuf {
    let dest = format!("{transport}:{}{reference}", file.display());
    run_cmd(
        Command::new("skopeo")
            .args(["--insecure-policy", "copy", "--quiet"])
            .arg(format!("oci:{}", layout.display()))
            .arg(dest),
    )
    .expect_code(0);
    file.to_path_buf()
}

/// `images/oci-bundle` with this build's dory, its temporary files in `tmpdir`.
fn oci_bundle(tmpdir: &Path, args: &[&str]) -> Out {
    run_cmd(
        Command::new(format!("{REPO}/images/oci-bundle"))
            .arg("--dory")
            .arg(DORY)
            .args(args)
            .env("TMPDIR", tmpdir),
    )
}

/// A bundle made by oci-bundle from `image` (extra args before it), its volumes' first
/// content copied to `<base>/data` (what a board's image build does for /data/<id>).
fn bundle_from(name: &str, image: &Path, extra: &[&str]) -> Bundle {
    Bundle::made_by(name, |base, id| {
        let data = base.join("data");
        let tmpdir = base.join("tmp");
        std::fs::create_dir(&tmpdir).unwrap();
        let mut args = vec!["--id", id, "--data", data.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(image.to_str().unwrap());
        let bundle = base.join("bundle");
        args.push(bundle.to_str().unwrap());
        oci_bundle(&tmpdir, &args).expect_code(0);
        assert_eq!(
            entries(&tmpdir),
            Vec::<String>::new(),
            "oci-bundle left temp files"
        );
        std::fs::create_dir(&data).unwrap();
        run_cmd(
            Command::new("cp")
                .arg("-a")
                .arg(bundle.join("volumes/."))
                .arg(&data),
        )
        .expect_code(0);
    })
}

/// The probe's `DORY-OCI key=value` lines, values per key in order.
fn probe(out: &Out) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in out.stdout.lines() {
        if let Some((k, v)) = l.strip_prefix("DORY-OCI ").and_then(|r| r.split_once('=')) {
            m.entry(k.to_string())
                .or_default()
                .push(v.trim_end().to_string());
        } else if l == "DORY-OCI done" {
            m.entry("done".into()).or_default();
        }
    }
    m
}

/// Runs the bundle and checks the probe's lines against `want` (key, value...).
fn run_and_check(b: &Bundle, want: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    let out = b.run();
    out.expect_code(0);
    let seen = probe(&out);
    assert!(
        seen.contains_key("done"),
        "the probe did not finish: {}",
        out.stdout
    );
    for (k, v) in want {
        assert_eq!(
            seen.get(*k).map(Vec::as_slice).unwrap_or_default(),
            *v,
            "probe line {k}; all of it:\n{}",
            out.stdout
        );
    }
    seen
}

/// What the container must see of the test image with its default User "app".
const APP: &[(&str, &[&str])] = &[
    ("argc", &["2"]),
    ("arg", &["first", "second arg"]),
    ("cwd", &["/srv/app"]),
    ("ids", &["1234:2345"]),
    ("groups", &["2345 29 3456"]),
    ("greeting", &["hello from the image"]),
    ("home", &["/home/app"]),
    ("homeowner", &["1234:2345"]),
    ("board", &["unset"]),
    ("whiteout", &["gone"]),
    ("opaque", &["new.txt"]),
    ("seed", &["seeded by the image"]),
    ("volume", &["writable"]),
    ("root", &["readonly"]),
    ("capeff", &["0000000000000000"]),
    ("pids.max", &["max"]),
    ("scratch", &["none"]),
];

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn image_config_and_layers_reach_the_container_from_each_format() {
    needs_root!();
    tools_present();
    let t = TempDir::new("oci-formats");
    let layout = test_image(&t.path, "layout", &[]);
    let sources = [
        layout.clone(),
        archive(&layout, "oci-archive", &t.path.join("image-oci.tar"), ""),
        archive(
            &layout,
            "docker-archive",
            &t.path.join("image-docker.tar"),
            ":test/app:1",
        ),
    ];
    for src in &sources {
        let b = bundle_from("oci-format", src, &[]);
        assert_eq!(b.config["hostname"], b.id.as_str(), "{}", src.display());
        assert_eq!(b.config["root"]["readonly"], true);
        assert_eq!(b.config["process"]["terminal"], false);
        // On the host: the layers with their whiteouts and the image's owners.
        assert!(
            !b.rootfs.join("srv/app/gone.txt").exists(),
            "whiteout not honoured"
        );
        assert!(
            !b.rootfs.join("srv/opaque/old.txt").exists(),
            "opaque whiteout not honoured"
        );
        let home = std::fs::metadata(b.rootfs.join("home/app")).unwrap();
        assert_eq!((home.uid(), home.gid()), (1234, 2345), "owner of /home/app");
        run_and_check(&b, APP);
        // The volume is the host's <data>/var/lib/app, written by uid 1234 inside.
        let written = b.base.join("data/var/lib/app/written");
        assert_eq!(std::fs::read_to_string(&written).unwrap(), "ok\n");
        assert_eq!(std::fs::metadata(&written).unwrap().uid(), 1234);
        b.assert_nothing_left();
    }
}

#[test]
fn overrides_set_env_cmd_capabilities_resources_and_mounts() {
    needs_root!();
    tools_present();
    let t = TempDir::new("oci-overrides");
    let layout = test_image(&t.path, "layout", &[]);
    let overrides = t.path.join("overrides.json");
    std::fs::write(
        &overrides,
        r#"{"env": ["BOARD=test-board", "GREETING=replaced"],
            "cmd": ["one"],
            "capabilities": {"add": ["CAP_NET_RAW"], "drop": ["CAP_KILL"]},
            "resources": {"pids": {"limit": 32},
                          "devices": [{"allow": true, "type": "c", "major": 1, "minor": 3,
                                       "access": "rwm"}]},
            "mounts": [{"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                        "options": ["nosuid", "nodev", "size=64k"]}]}"#,
    )
    .unwrap();
    let b = bundle_from(
        "oci-overrides",
        &layout,
        &["--overrides", overrides.to_str().unwrap()],
    );
    let caps = &b.config["process"]["capabilities"];
    assert_eq!(
        caps["bounding"],
        serde_json::json!(["CAP_AUDIT_WRITE", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"])
    );
    // Device rules come after the default's deny-all (lists are appended).
    assert_eq!(
        b.config["linux"]["resources"]["devices"],
        serde_json::json!([{"allow": false, "access": "rwm"},
                           {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}])
    );
    let mut want: BTreeMap<&str, &[&str]> = APP.iter().copied().collect();
    want.insert("argc", &["1"]);
    want.insert("arg", &["one"]);
    want.insert("greeting", &["replaced"]);
    want.insert("board", &["test-board"]);
    // A user other than root gets only the added capability (podman's rule), and keeps
    // it across its exec (ambient).
    want.insert("capeff", &["0000000000002000"]);
    want.insert("pids.max", &["32"]);
    want.insert("scratch", &["writable"]);
    let want: Vec<(&str, &[&str])> = want.into_iter().collect();
    run_and_check(&b, &want);
    b.assert_nothing_left();
}

#[test]
fn user_is_resolved_against_the_images_passwd_and_group_as_runc_does() {
    needs_root!();
    tools_present();
    let t = TempDir::new("oci-users");
    // (User, ids, groups as `id -G` prints them, HOME, CapEff)
    let root_caps = "0000000020000420"; // the default set: AUDIT_WRITE, KILL, NET_BIND_SERVICE
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        ("", "0:0", "0", "/root", root_caps),
        ("root", "0:0", "0", "/root", root_caps),
        (
            "1234",
            "1234:2345",
            "2345 29 3456",
            "/home/app",
            "0000000000000000",
        ),
        (
            "app:extra",
            "1234:3456",
            "3456",
            "/home/app",
            "0000000000000000",
        ),
        (
            "app:2345",
            "1234:2345",
            "2345",
            "/home/app",
            "0000000000000000",
        ),
        (
            "nobody",
            "65534:65534",
            "65534 3456",
            "/nonexistent",
            "0000000000000000",
        ),
        ("4321", "4321:0", "0", "/", "0000000000000000"),
        ("4321:4444", "4321:4444", "4444", "/", "0000000000000000"),
    ];
    for (i, (user, ids, groups, home, capeff)) in cases.iter().enumerate() {
        let image = test_image(&t.path, &format!("user{i}"), &["--user", user]);
        let b = bundle_from("oci-user", &image, &[]);
        let seen = run_and_check(
            &b,
            &[
                ("ids", &[*ids]),
                ("groups", &[*groups]),
                ("home", &[*home]),
                ("capeff", &[*capeff]),
            ],
        );
        assert_eq!(seen["ids"], [*ids], "User {user:?}");
    }
}

/// The ELF machine of a file (e_machine, little-endian).
fn elf_machine(path: &Path) -> u16 {
    let b = std::fs::read(path).unwrap();
    u16::from_le_bytes([b[18], b[19]])
}

#[test]
fn a_multi_arch_image_gives_the_manifest_for_the_arch() {
    needs_root!();
    tools_present();
    let t = TempDir::new("oci-multi");
    let (other, other_platform) = foreign_arch();
    let image = test_image(&t.path, "multi", &["--arch", host_arch(), "--arch", other]);
    let b = bundle_from("oci-multi", &image, &["--arch", host_arch()]);
    run_and_check(&b, APP);
    let host_machine = elf_machine(&b.rootfs.join("bin/busybox"));
    let f = bundle_from("oci-multi-foreign", &image, &["--arch", other]);
    let foreign_machine = elf_machine(&f.rootfs.join("bin/busybox"));
    // EM_X86_64 62, EM_AARCH64 183, EM_ARM 40
    let want = |a: &str| match a {
        "x86_64" => 62,
        "aarch64" => 183,
        _ => 40,
    };
    assert_eq!(host_machine, want(host_arch()));
    assert_eq!(foreign_machine, want(other));
    // An arch the index lacks: both named (what was asked, what there is).
    let out_parent = TempDir::new("oci-multi-none");
    let tmpdir = out_parent.path.join("tmp");
    std::fs::create_dir(&tmpdir).unwrap();
    let dest = out_parent.path.join("bundle");
    let out = oci_bundle(
        &tmpdir,
        &[
            "--arch",
            "armv7",
            image.to_str().unwrap(),
            dest.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 1, "{out:?}");
    for want in ["linux/arm (--arch armv7)", host_platform(), other_platform] {
        assert!(
            out.stderr.contains(want),
            "{want:?} not named: {}",
            out.stderr
        );
    }
    assert_eq!(entries(&out_parent.path), ["tmp"], "something was left");
    assert_eq!(entries(&tmpdir), Vec::<String>::new());
}

/// The blobs of an OCI layout holding one image: (manifest, config, layers) digests.
fn blobs(layout: &Path) -> (String, String, Vec<String>) {
    let read =
        |p: PathBuf| -> Value { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
    let index = read(layout.join("index.json"));
    let manifest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let m = read(blob_path(layout, &manifest));
    let config = m["config"]["digest"].as_str().unwrap().to_string();
    let layers = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    (manifest, config, layers)
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

/// Flips one byte of a file in place.
fn corrupt(path: &Path) {
    let mut b = std::fs::read(path).unwrap();
    let at = b.len() / 2;
    b[at] ^= 0x20;
    std::fs::write(path, b).unwrap();
}

/// A docker-archive with one member changed by `edit` (a file under the unpacked tree;
/// it may remove or corrupt it), repacked with GNU tar.
fn edited_docker_archive(src: &Path, work: &Path, name: &str, edit: impl FnOnce(&Path)) -> PathBuf {
    let dir = work.join(format!("{name}.d"));
    std::fs::create_dir(&dir).unwrap();
    run_cmd(Command::new("tar").arg("-xf").arg(src).arg("-C").arg(&dir)).expect_code(0);
    edit(&dir);
    let out = work.join(format!("{name}.tar"));
    let members = entries(&dir);
    run_cmd(
        Command::new("tar")
            .arg("-cf")
            .arg(&out)
            .arg("-C")
            .arg(&dir)
            .args(&members),
    )
    .expect_code(0);
    out
}

#[test]
fn bad_images_and_overrides_are_refused_naming_the_cause_and_leave_nothing() {
    needs_root!();
    tools_present();
    let t = TempDir::new("oci-bad");
    let good = test_image(&t.path, "good", &[]);
    let (manifest, config, layers) = blobs(&good);
    let variant = |name: &str, edit: &dyn Fn(&Path)| -> PathBuf {
        let p = t.path.join(name);
        run_cmd(Command::new("cp").arg("-a").arg(&good).arg(&p)).expect_code(0);
        edit(&p);
        p
    };
    let (other, other_platform) = foreign_arch();
    let docker = archive(
        &good,
        "docker-archive",
        &t.path.join("docker.tar"),
        ":test/app:1",
    );
    // The docker-archive's layer files are named by their diff_id (uncompressed digest).
    let diff_id_of_last = {
        let c: Value =
            serde_json::from_slice(&std::fs::read(blob_path(&good, &config)).unwrap()).unwrap();
        c["rootfs"]["diff_ids"][2].as_str().unwrap().to_string()
    };
    let last_tar = format!("{}.tar", diff_id_of_last.strip_prefix("sha256:").unwrap());
    let overrides = |name: &str, text: &str| -> String {
        let p = t.path.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    };
    struct Case {
        what: &'static str,
        args: Vec<String>,
        image: PathBuf,
        names: Vec<String>,
    }
    let case = |what, image: PathBuf, args: Vec<String>, names: Vec<String>| Case {
        what,
        args,
        image,
        names,
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let cases = vec![
        case(
            "image for another arch",
            test_image(&t.path, "foreign", &["--arch", other]),
            vec![],
            s(&[
                other_platform,
                host_platform(),
                &format!("--arch {}", host_arch()),
            ]),
        ),
        case(
            "missing layer blob",
            variant("missing-layer", &|p| {
                std::fs::remove_file(blob_path(p, &layers[1])).unwrap()
            }),
            vec![],
            s(&[&layers[1], "missing"]),
        ),
        case(
            "corrupt layer blob",
            variant("corrupt-layer", &|p| corrupt(&blob_path(p, &layers[2]))),
            vec![],
            s(&[&layers[2], "corrupt"]),
        ),
        case(
            "corrupt config blob",
            variant("corrupt-config", &|p| corrupt(&blob_path(p, &config))),
            vec![],
            s(&[&config, "corrupt"]),
        ),
        case(
            "missing config blob",
            variant("missing-config", &|p| {
                std::fs::remove_file(blob_path(p, &config)).unwrap()
            }),
            vec![],
            s(&[&config, "missing"]),
        ),
        case(
            "corrupt manifest blob",
            variant("corrupt-manifest", &|p| corrupt(&blob_path(p, &manifest))),
            vec![],
            s(&[&manifest, "corrupt"]),
        ),
        case(
            "docker-archive without a layer",
            edited_docker_archive(&docker, &t.path, "docker-missing", |d| {
                std::fs::remove_file(d.join(&last_tar)).unwrap()
            }),
            vec![],
            s(&[&diff_id_of_last, "missing"]),
        ),
        case(
            "docker-archive with a corrupt layer",
            edited_docker_archive(&docker, &t.path, "docker-corrupt", |d| {
                corrupt(&d.join(&last_tar))
            }),
            vec![],
            s(&[&diff_id_of_last, "corrupt"]),
        ),
        case(
            "User not in the image's passwd",
            test_image(&t.path, "user-bob", &["--user", "bob"]),
            vec![],
            s(&["User 'bob'", "no user 'bob'", "/etc/passwd"]),
        ),
        case(
            "group not in the image's group file",
            test_image(&t.path, "group-nogrp", &["--user", "app:nogrp"]),
            vec![],
            s(&["no group 'nogrp'", "/etc/group"]),
        ),
        case(
            "uid out of range",
            test_image(&t.path, "uid-big", &["--user", "4294967296"]),
            vec![],
            s(&["4294967296", "outside 0-2147483647"]),
        ),
        case(
            "unknown overrides key",
            good.clone(),
            vec![
                "--overrides".into(),
                overrides("o1.json", r#"{"enviroment": []}"#),
            ],
            s(&[
                "unknown key 'enviroment'",
                "cmd, env, mounts, resources, capabilities",
            ]),
        ),
        case(
            "override env without =",
            good.clone(),
            vec![
                "--overrides".into(),
                overrides("o2.json", r#"{"env": ["NOEQUALS"]}"#),
            ],
            s(&["env[0]", "NOEQUALS", "KEY=VALUE"]),
        ),
        case(
            "override capability dory does not know",
            good.clone(),
            vec![
                "--overrides".into(),
                overrides("o3.json", r#"{"capabilities": {"add": ["CAP_FLY"]}}"#),
            ],
            s(&["refused by dory", "unknown capability \"CAP_FLY\""]),
        ),
        case(
            "override resources out of range",
            good.clone(),
            vec![
                "--overrides".into(),
                overrides("o4.json", r#"{"resources": {"memory": {"limit": -7}}}"#),
            ],
            s(&["linux.resources.memory.limit"]),
        ),
        case(
            "not an image",
            t.path.join("o1.json"),
            vec![],
            s(&[
                "o1.json",
                "not an OCI layout, oci-archive or docker-archive",
            ]),
        ),
    ];
    let mut failed = Vec::new();
    for c in &cases {
        let parent = TempDir::new("oci-bad-case");
        let tmpdir = parent.path.join("tmp");
        std::fs::create_dir(&tmpdir).unwrap();
        let dest = parent.path.join("bundle");
        let mut args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        args.extend([c.image.to_str().unwrap(), dest.to_str().unwrap()]);
        let out = oci_bundle(&tmpdir, &args);
        let mut why = Vec::new();
        if out.code != 1 {
            why.push(format!("exit {}", out.code));
        }
        for n in &c.names {
            if !out.stderr.contains(n.as_str()) {
                why.push(format!("does not name {n:?}"));
            }
        }
        if entries(&parent.path) != ["tmp"] || !entries(&tmpdir).is_empty() {
            why.push(format!(
                "left {:?} and {:?} in its temp dir",
                entries(&parent.path),
                entries(&tmpdir)
            ));
        }
        if !why.is_empty() {
            failed.push(format!(
                "{}: {}; stderr: {}",
                c.what,
                why.join(", "),
                out.stderr.trim()
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n")
    );
    // A bundle directory that exists is never written over.
    let existing = t.path.join("existing");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("keep"), "x").unwrap();
    let out = oci_bundle(
        &t.path,
        &[good.to_str().unwrap(), existing.to_str().unwrap()],
    );
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("exists"), "{}", out.stderr);
    assert_eq!(entries(&existing), ["keep"]);
}
