//! The command line without containers: `dory spec`, usage errors, `--version`.
//! Runs unprivileged.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::process::Command;

use common::{dory, run_cmd, TempDir, DORY, SEED_CONFIG};

/// `dory <args>` run in `dir`.
fn dory_in(dir: &std::path::Path, args: &[&str]) -> common::Out {
    run_cmd(Command::new(DORY).current_dir(dir).args(args))
}

#[test]
fn spec_writes_the_seed_config() {
    let t = TempDir::new("cli-spec");
    dory_in(&t.path, &["spec"]).expect_code(0);
    let written = std::fs::read_to_string(t.path.join("config.json")).unwrap();
    assert_eq!(
        written, SEED_CONFIG,
        "dory spec differs from tests/fixtures/seed-config.json"
    );
    // And it is JSON with the fields the runtime tests rely on.
    let v: serde_json::Value = serde_json::from_str(&written).unwrap();
    assert_eq!(v["process"]["terminal"], true);
    assert_eq!(v["root"]["path"], "rootfs");
}

#[test]
fn spec_refuses_to_overwrite() {
    let t = TempDir::new("cli-spec-exists");
    let path = t.path.join("config.json");
    std::fs::write(&path, "sentinel").unwrap();
    let out = dory_in(&t.path, &["spec"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("exists"), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "sentinel",
        "config.json was overwritten"
    );
}

#[test]
fn spec_bundle_flag_writes_elsewhere() {
    let t = TempDir::new("cli-spec-bundle");
    let cwd = t.path.join("cwd");
    let target = t.path.join("b1");
    let short = t.path.join("b2");
    for d in [&cwd, &target, &short] {
        std::fs::create_dir(d).unwrap();
    }
    dory_in(&cwd, &["spec", "--bundle", target.to_str().unwrap()]).expect_code(0);
    dory_in(&cwd, &["spec", "-b", short.to_str().unwrap()]).expect_code(0);
    assert_eq!(
        std::fs::read_to_string(target.join("config.json")).unwrap(),
        SEED_CONFIG
    );
    assert_eq!(
        std::fs::read_to_string(short.join("config.json")).unwrap(),
        SEED_CONFIG
    );
    assert!(
        !cwd.join("config.json").exists(),
        "spec --bundle also wrote to the cwd"
    );
    // A bundle directory that does not exist is an error, not a panic.
    let out = dory_in(
        &cwd,
        &["spec", "--bundle", t.path.join("missing").to_str().unwrap()],
    );
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("missing"), "{}", out.stderr);
}

/// `spec --check` validates a bundle as `create` would, unprivileged, and creates nothing:
/// ok for the default config over a rootfs; the field named for a bad one; no rootfs,
/// no config are errors.
#[test]
fn spec_check_validates_a_bundle_without_running_it() {
    let t = TempDir::new("cli-spec-check");
    let b = t.path.to_str().unwrap();
    let out = dory(&["spec", "--check", "--bundle", b]);
    assert_eq!(out.code, 1, "no config.json: {out:?}");
    assert!(out.stderr.contains("config.json"), "{}", out.stderr);
    dory(&["spec", "--bundle", b]).expect_code(0);
    let out = dory(&["spec", "--check", "--bundle", b]);
    assert_eq!(out.code, 1, "no rootfs: {out:?}");
    assert!(out.stderr.contains("root.path"), "{}", out.stderr);
    std::fs::create_dir(t.path.join("rootfs")).unwrap();
    let out = dory(&["spec", "--check", "--bundle", b]);
    out.expect_code(0);
    assert_eq!(out.stdout, "ok\n");
    let config = t.path.join("config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("\"CAP_KILL\"", "\"CAP_BOGUS\"")).unwrap();
    let out = dory(&["spec", "--check", "--bundle", b]);
    assert_eq!(out.code, 1, "unknown capability: {out:?}");
    assert!(
        out.message().contains("process.capabilities.bounding[1]")
            && out.message().contains("CAP_BOGUS"),
        "{}",
        out.stderr
    );
    let mut left: Vec<_> = std::fs::read_dir(&t.path)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["config.json", "rootfs"], "--check created something");
}
#[test]
fn unknown_flag_is_a_usage_error() {
    // run and list tell an ordinary user first that they need root.
    let root_only: &[&[&str]] = &[&["run", "--nope", "id"], &["list", "--nope"]];
    let as_root = nix::unistd::geteuid().is_root();
    for args in [&["--nope"][..], &["spec", "--nope"]]
        .into_iter()
        .chain(root_only.iter().copied().filter(|_| as_root))
    {
        let out = dory(args);
        assert_eq!(out.code, 1, "dory {args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("flag provided but not defined: --nope"),
            "dory {args:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn version() {
    let out = dory(&["--version"]);
    out.expect_code(0);
    let first = out.stdout.lines().next().unwrap_or("");
    assert_eq!(first, format!("dory version {}", env!("CARGO_PKG_VERSION")));
    // The spec version is the one `dory spec` writes.
    let seed: serde_json::Value = serde_json::from_str(SEED_CONFIG).unwrap();
    let written = seed["ociVersion"].as_str().unwrap();
    assert!(
        out.stdout.lines().any(|l| l == format!("spec: {written}")),
        "{}",
        out.stdout
    );
    // -v too, as runc accepts it.
    assert_eq!(dory(&["-v"]).stdout, out.stdout);
}

#[test]
fn broken_stdout_pipe_does_not_panic() {
    let t = TempDir::new("cli-epipe");
    for args in [
        &["list"][..],
        &["list", "--format", "json"],
        &["--version"],
        &["help"],
    ] {
        // stdout is a pipe whose read end is already closed: every write fails with EPIPE.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(DORY)
            .arg("--root")
            .arg(&t.path)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked"),
            "dory {args:?} panicked on EPIPE:\n{stderr}"
        );
        assert_ne!(
            out.status.code(),
            Some(101),
            "dory {args:?}: exit 101 is a Rust panic"
        );
    }
}

/// A bundle whose config.json has 1025 mounts (the limit is 1024): refused while parsing,
/// before anything is created.
fn bundle_with_too_many_mounts(t: &TempDir) -> std::path::PathBuf {
    let bundle = t.path.join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    let mut config: serde_json::Value = serde_json::from_str(SEED_CONFIG).unwrap();
    let mounts = config["mounts"].as_array_mut().unwrap();
    while mounts.len() < 1025 {
        mounts.push(serde_json::json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs"}));
    }
    std::fs::write(bundle.join("config.json"), config.to_string()).unwrap();
    bundle
}

const TOO_MANY_MOUNTS: &str = "config.json: mounts: more than 1024 entries (limit 1024)";

/// logrus's time: RFC 3339 in whole seconds, UTC ("2026-12-03T21:02:58Z").
fn is_logrus_time(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 20
        && t.ends_with('Z')
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
}

/// runc's error shape, which containerd's shim (every line of `--log`, as JSON, last
/// `level=error` wins) and podman (the whole `--log` file as one JSON object) parse:
/// with `--log F --log-format json` the file holds exactly one JSON line, level error,
/// the field-naming message as msg, and stderr the bare message; without `--log` stderr
/// holds that line itself (json or text).
#[test]
fn errors_are_logrus_lines_in_the_log_file_or_on_stderr() {
    // `create` needs root before it reads the config.
    if common::skip_unless_root("cli::errors_are_logrus_lines_in_the_log_file_or_on_stderr") {
        return;
    }
    let t = TempDir::new("cli-logfmt");
    let bundle = bundle_with_too_many_mounts(&t);
    let state = t.path.join("state");
    let log = t.path.join("log.json");
    let create = |global: &[&str]| {
        let mut c = Command::new(DORY);
        c.arg("--root").arg(&state).args(global);
        c.args(["create", "--bundle", bundle.to_str().unwrap(), "logfmt1"]);
        run_cmd(&mut c)
    };

    let out = create(&["--log", log.to_str().unwrap(), "--log-format", "json"]);
    assert_eq!(out.code, 1, "{out:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "one line per failed command: {text}");
    // podman: the whole file is one JSON object.
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["level"], "error", "{text}");
    let msg = v["msg"].as_str().unwrap();
    assert!(msg.contains(TOO_MANY_MOUNTS), "{msg}");
    assert_eq!(out.stderr.trim(), msg, "stderr gets the bare message");
    let file_time = v["time"].as_str().unwrap().to_owned();
    assert!(!state.join("logfmt1").exists(), "state left behind");

    let out = create(&["--log-format", "json"]);
    assert_eq!(out.code, 1, "{out:?}");
    let v: serde_json::Value = serde_json::from_str(out.stderr.trim())
        .unwrap_or_else(|e| panic!("stderr is not one JSON line ({e}): {}", out.stderr));
    assert_eq!(v["level"], "error");
    assert_eq!(v["msg"].as_str().unwrap(), msg);

    let out = create(&[]);
    assert_eq!(out.code, 1, "{out:?}");
    let line = out.stderr.trim();
    let rest = line
        .strip_prefix("time=\"")
        .unwrap_or_else(|| panic!("{line}"));
    let (time, rest) = rest.split_once('"').unwrap();
    assert!(is_logrus_time(time), "{line}");
    assert_eq!(rest, format!(" level=error msg=\"{msg}\""), "{line}");
    assert!(is_logrus_time(&file_time), "{file_time}");

    // A bad --log-format is itself reported as runc does, in text.
    let out = create(&["--log-format", "xml"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("level=error msg=\"dory: --log-format: want text or json\""),
        "{out:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        text,
        "log untouched"
    );
}

const COMMANDS: [&str; 17] = [
    "spec", "run", "create", "start", "state", "kill", "delete", "pause", "resume", "ps", "exec",
    "update", "events", "list", "features", "init", "ctl",
];

#[test]
fn every_command_answers_help_on_stdout() {
    for command in COMMANDS {
        for word in ["--help", "-h"] {
            let out = dory(&[command, word]);
            assert_eq!(out.code, 0, "dory {command} {word}: {out:?}");
            assert!(
                out.stdout.starts_with(&format!("usage: dory {command}")),
                "dory {command} {word}: {out:?}"
            );
        }
    }
    // Also after the id, and for exec only before it (after it, -h is the command's).
    let out = dory(&["kill", "someid", "--help"]);
    assert!(out.stdout.starts_with("usage: dory kill"), "{out:?}");
    let run = dory(&["run", "--help"]);
    for f in ["--bundle", "--detach", "--pid-file", "--console-socket"] {
        assert!(
            run.stdout.contains(f),
            "run --help lacks {f}: {}",
            run.stdout
        );
    }
}

#[test]
fn top_level_help_lists_every_command() {
    for args in [&["--help"][..], &["-h"], &["help"]] {
        let out = dory(args);
        assert_eq!(out.code, 0, "dory {args:?}: {out:?}");
        for command in COMMANDS {
            assert!(
                out.stdout.contains(&format!("\n  {command} ")),
                "dory {args:?} does not list {command}: {}",
                out.stdout
            );
        }
    }
}

#[test]
fn an_ordinary_user_is_told_up_front_that_root_is_needed() {
    if !nix::unistd::geteuid().is_root() {
        // Already an ordinary user: the check itself.
        let out = dory(&["list"]);
        assert_eq!(out.code, 1);
        assert!(out.stderr.contains("needs root"), "{out:?}");
        return;
    }
    // As root: the same binary run as nobody (setpriv from util-linux).
    for command in [
        &["list"][..],
        &["run", "x"],
        &["state", "x"],
        &["delete", "x"],
    ] {
        let out = common::run_cmd(
            std::process::Command::new("setpriv")
                .args([
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    common::DORY,
                ])
                .args(command),
        );
        assert_eq!(out.code, 1, "{command:?}: {out:?}");
        assert!(
            out.stderr.contains(&format!(
                "dory {}: needs root (rootless containers are not supported yet)",
                command[0]
            )),
            "{command:?}: {out:?}"
        );
    }
    // What needs no root still works as nobody.
    let out = common::run_cmd(
        std::process::Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                common::DORY,
            ])
            .arg("features"),
    );
    assert_eq!(out.code, 0, "{out:?}");
}
