//! Bad input through the real CLI, as a table: config.json edits and raw bytes, what sits
//! at config.json's place, board.json (`dory init --check`, and once `dory init --test`
//! for real), flags and ids. Every row must be refused: exit != 0, an error naming the
//! field or flag and the limit, the container's program never run, and nothing left
//! behind (host mountinfo unchanged, no cgroup directory for the id in any hierarchy, no
//! state entry, no process mentioning the bundle or the id). One driver runs every row
//! and reports every failing row, not just the first. Needs root; skips visibly otherwise.
//!
//! Not a row: an id holding a NUL byte cannot reach dory (execve cuts arguments at NUL);
//! `validate_id`'s unit test covers it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[macro_use]
mod common;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{run_cmd, Bundle, Out, RootfsLease, DORY};
use serde_json::{json, Value};

/// What the container runs if a row is wrongly accepted: the marker on stdout shows it.
const MARKER: &str = "PROGRAM-RAN";
/// Longest one refused command may take; past it the command is killed and the row fails
/// (a FIFO with no writer used to hang `dory run` for ever).
const DEADLINE: Duration = Duration::from_secs(10);
/// Entries the seed config has before a row appends one (the appended index is this).
const SEED_MOUNTS: usize = 7;

/// What a row feeds dory.
enum Input {
    /// An edit of config.json as JSON (the bundle is there for files the edit points at).
    Config(fn(&Bundle, &mut Value)),
    /// config.json's bytes, made from the valid config's pretty-printed text.
    Raw(fn(String) -> Vec<u8>),
    /// Puts something else at config.json's place (a FIFO, a symlink to /dev/zero…).
    Place(fn(&Path)),
    /// dory's arguments after `--root <state>` (the bundle holds a valid config).
    Args(fn(&Bundle) -> Vec<String>),
    /// A board config made at the given path, checked with `dory init --check`.
    Board(fn(&Bundle, &Path)),
    /// A board config run by `dory init --test` as PID 1 of a pid namespace.
    InitTestMode(fn(&Bundle, &Path)),
}

struct Row {
    name: &'static str,
    input: Input,
    /// Each must be in the error (with runc's `\"` quoting undone).
    needles: &'static [&'static str],
}

fn row(name: &'static str, input: Input, needles: &'static [&'static str]) -> Row {
    Row {
        name,
        input,
        needles,
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// `args` with `{id}` and `{bundle}` replaced by the row's.
fn with_bundle(b: &Bundle, args: &[&str]) -> Vec<String> {
    let dir = b.dir.to_str().unwrap();
    args.iter()
        .map(|a| a.replace("{id}", &b.id).replace("{bundle}", dir))
        .collect()
}

fn write_board(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}

fn replace_config(path: &Path, with: impl FnOnce(&Path)) {
    std::fs::remove_file(path).unwrap();
    with(path);
}

fn push_mount(c: &mut Value, mount: Value) {
    let mounts = c["mounts"].as_array_mut().unwrap();
    assert_eq!(mounts.len(), SEED_MOUNTS, "the seed config changed");
    mounts.push(mount);
}

/// The valid config's text with the first `from` replaced by `to` (which must be there).
fn swap(text: &str, from: &str, to: &[u8]) -> Vec<u8> {
    let at = text
        .find(from)
        .unwrap_or_else(|| panic!("{from:?} not in config"));
    let mut out = text.as_bytes()[..at].to_vec();
    out.extend_from_slice(to);
    out.extend_from_slice(&text.as_bytes()[at + from.len()..]);
    out
}

/// config.json edits: wrong values, numbers out of range, capacities, overlong text,
/// `..`, the rootfs.
fn config_rows() -> Vec<Row> {
    use Input::Config;
    vec![
        row(
            "uid-negative",
            Config(|_, c| c["process"]["user"]["uid"] = json!(-1)),
            &["process.user.uid", "from 0 to 4294967295"],
        ),
        row(
            "uid-above-u32",
            Config(|_, c| c["process"]["user"]["uid"] = json!(1u64 << 32)),
            &["process.user.uid", "from 0 to 4294967295"],
        ),
        row(
            "rlimit-negative",
            Config(|_, c| c["process"]["rlimits"][0]["hard"] = json!(-1)),
            &["process.rlimits[0].hard", "from 0 to 18446744073709551615"],
        ),
        // runc writes -5 to the cgroup and the kernel refuses it (EINVAL); -1 is unlimited.
        row(
            "memory-limit-negative",
            Config(|_, c| c["linux"]["resources"] = json!({"memory": {"limit": -5}})),
            &[
                "linux.resources.memory.limit",
                "-1 (unlimited)",
                "at least 0",
            ],
        ),
        row(
            "cpu-shares-negative",
            Config(|_, c| c["linux"]["resources"] = json!({"cpu": {"shares": -1}})),
            &[
                "linux.resources.cpu.shares",
                "from 0 to 18446744073709551615",
            ],
        ),
        row(
            "oom-score-adj-range",
            Config(|_, c| c["process"]["oomScoreAdj"] = json!(5000)),
            &["process.oomScoreAdj", "-1000 to 1000"],
        ),
        row(
            "hostname-overlong",
            Config(|_, c| c["hostname"] = json!("h".repeat(65))),
            &["config.json: hostname", "limit 64"],
        ),
        row(
            "cwd-overlong",
            Config(|_, c| c["process"]["cwd"] = json!(format!("/{}", "d".repeat(5000)))),
            &["process.cwd", "limit 4096"],
        ),
        row(
            "cwd-relative",
            Config(|_, c| c["process"]["cwd"] = json!("tmp")),
            &["process.cwd", "must be an absolute path"],
        ),
        row(
            "args-empty",
            Config(|_, c| c["process"]["args"] = json!([])),
            &["process.args", "must not be empty"],
        ),
        row(
            "args-huge-array",
            Config(|_, c| c["process"]["args"] = json!(vec!["x"; 1025])),
            &["process.args", "limit 1024"],
        ),
        row(
            "env-huge-array",
            Config(|_, c| {
                c["process"]["env"] =
                    json!((0..5000).map(|i| format!("V{i}=1")).collect::<Vec<_>>())
            }),
            &["process.env", "limit 4096"],
        ),
        row(
            "arg-overlong",
            Config(|_, c| c["process"]["args"][2] = json!("x".repeat(200_000))),
            &["process.args[2]", "limit 131071"],
        ),
        row(
            "capabilities-huge-array",
            Config(|_, c| c["process"]["capabilities"]["bounding"] = json!(vec!["CAP_CHOWN"; 100])),
            &["process.capabilities.bounding", "limit 64"],
        ),
        row(
            "capability-unknown",
            Config(|_, c| c["process"]["capabilities"]["bounding"][2] = json!("CAP_FOO")),
            &[
                "process.capabilities.bounding[2]",
                "unknown capability \"CAP_FOO\"",
            ],
        ),
        row(
            "namespace-unknown",
            Config(|_, c| c["linux"]["namespaces"][1]["type"] = json!("nosuchns")),
            &["linux.namespaces[1]", "\"nosuchns\""],
        ),
        row(
            "mounts-huge-array",
            Config(|_, c| {
                let m = json!({"destination": "/tmp/m", "type": "tmpfs", "source": "tmpfs"});
                c["mounts"] = json!(vec![m; 1025]);
            }),
            &["config.json: mounts", "limit 1024"],
        ),
        row(
            "hooks-huge-array",
            Config(|_, c| {
                c["hooks"] = json!({"prestart": vec![json!({"path": "/bin/true"}); 100]})
            }),
            &["hooks.prestart", "limit 32"],
        ),
        row(
            "mount-destination-dotdot",
            Config(|_, c| {
                push_mount(
                    c,
                    json!({"destination": "/../../etc", "type": "tmpfs", "source": "tmpfs"}),
                )
            }),
            &[
                "mounts[7].destination",
                "\"/../../etc\"",
                "climbs above the container's root",
            ],
        ),
        row(
            "masked-path-dotdot",
            Config(|_, c| {
                c["linux"]["maskedPaths"] = json!(["/proc/kcore", "/tmp/../../etc/passwd"])
            }),
            &["linux.maskedPaths[1]", "climbs above the container's root"],
        ),
        row(
            "mount-destination-overlong",
            Config(|_, c| {
                push_mount(
                    c,
                    json!({"destination": format!("/{}", "d".repeat(5000)), "type": "tmpfs", "source": "tmpfs"}),
                )
            }),
            &["mounts[7].destination", "4096"],
        ),
        row(
            "mount-inside-proc-sys",
            Config(|_, c| {
                push_mount(
                    c,
                    json!({"destination": "/proc/../proc/sys", "type": "tmpfs", "source": "tmpfs"}),
                )
            }),
            &["mounts[7].destination", "is inside /proc"],
        ),
        row(
            "mount-over-sysrq-trigger",
            Config(|_, c| {
                push_mount(
                    c,
                    json!({"destination": "//proc/./sysrq-trigger", "type": "bind", "source": "/dev/null", "options": ["bind"]}),
                )
            }),
            &["mounts[7].destination", "is inside /proc"],
        ),
        row(
            "mount-inside-sys-kernel",
            Config(|_, c| {
                push_mount(
                    c,
                    json!({"destination": "/sys/./kernel", "type": "tmpfs", "source": "tmpfs"}),
                )
            }),
            &["mounts[7].destination", "is inside /sys"],
        ),
        row(
            "cgroups-path-dotdot",
            Config(|b, c| c["linux"]["cgroupsPath"] = json!(format!("/dory-test/../../{}", b.id))),
            &["linux.cgroupsPath", "must not contain \"..\""],
        ),
        row(
            "oci-version-2",
            Config(|_, c| c["ociVersion"] = json!("2.0.0")),
            &["ociVersion", "dory reads 1.x"],
        ),
        row(
            "rootfs-missing",
            Config(|_, c| c["root"]["path"] = json!("no-such-rootfs")),
            &["root.path", "no-such-rootfs", "No such file or directory"],
        ),
        row(
            "rootfs-is-a-file",
            Config(|b, c| {
                let f = b.base.join("rootfs-file");
                std::fs::write(&f, "").unwrap();
                c["root"]["path"] = json!(f);
            }),
            &["root.path", "rootfs-file", "not a directory"],
        ),
        row(
            "rootfs-dangling-symlink",
            Config(|b, c| {
                let l = b.base.join("rootfs-dangling");
                symlink(b.base.join("nowhere"), &l).unwrap();
                c["root"]["path"] = json!(l);
            }),
            &["root.path", "rootfs-dangling", "No such file or directory"],
        ),
        // A symlink is followed on the host side, as runc does (root.path is the user's
        // own host path): one to a device is refused as not a directory.
        row(
            "rootfs-symlink-to-dev-null",
            Config(|b, c| {
                let l = b.base.join("rootfs-null");
                symlink("/dev/null", &l).unwrap();
                c["root"]["path"] = json!(l);
            }),
            &["root.path", "rootfs-null", "not a directory"],
        ),
        row(
            "rootfs-overlong",
            Config(|_, c| c["root"]["path"] = json!(format!("/{}", "r".repeat(5000)))),
            &["root.path", "limit 4096"],
        ),
    ]
}

/// config.json as bytes: syntax, NUL, invalid UTF-8, duplicates, nesting, big numbers.
fn raw_rows() -> Vec<Row> {
    use Input::Raw;
    vec![
        row(
            "json-malformed",
            Raw(|t| swap(&t, "\"hostname\": \"runc\"", b"\"hostname\": runc")),
            &["config.json: line "],
        ),
        row(
            "json-truncated",
            Raw(|t| t.as_bytes()[..t.len() / 2].to_vec()),
            &["config.json: line "],
        ),
        row(
            "json-empty",
            Raw(|_| Vec::new()),
            &["config.json: line 1, column 1"],
        ),
        row(
            "json-byte-order-mark",
            Raw(|t| [&b"\xEF\xBB\xBF"[..], t.as_bytes()].concat()),
            &["config.json: line 1, column 1"],
        ),
        // Valid JSON padded with whitespace past the 1 MiB cap.
        row(
            "file-oversize",
            Raw(|t| {
                let pad = 1024 * 1024 + 1 - t.len();
                [
                    &t.as_bytes()[..t.len() - 1],
                    " ".repeat(pad).as_bytes(),
                    b"}",
                ]
                .concat()
            }),
            &[
                "config.json: file is larger than 1048576 bytes",
                "limit 1048576",
            ],
        ),
        row(
            "nul-byte-raw",
            Raw(|t| swap(&t, "\"hostname\": \"runc\"", b"\"hostname\": \"ru\0nc\"")),
            &["config.json: line ", "control character"],
        ),
        row(
            "nul-escaped",
            Raw(|t| {
                swap(
                    &t,
                    "\"hostname\": \"runc\"",
                    b"\"hostname\": \"ru\\u0000nc\"",
                )
            }),
            &["config.json: line ", "u0000 is not allowed"],
        ),
        row(
            "invalid-utf8",
            Raw(|t| swap(&t, "\"hostname\": \"runc\"", b"\"hostname\": \"ru\xFFnc\"")),
            &["config.json: line ", "invalid UTF-8"],
        ),
        row(
            "duplicate-key",
            Raw(|t| {
                swap(
                    &t,
                    "\"hostname\": \"runc\"",
                    b"\"hostname\": \"a\", \"hostname\": \"b\"",
                )
            }),
            &["config.json: hostname", "given twice"],
        ),
        row(
            "nesting-10000-deep",
            Raw(|t| {
                let deep = format!(",\"x\": {}{}}}", "[".repeat(10_000), "]".repeat(10_000));
                [&t.as_bytes()[..t.len() - 2], deep.as_bytes()].concat()
            }),
            &["nested deeper than 32 levels", "limit 32"],
        ),
        row(
            "uid-above-u64",
            Raw(|t| swap(&t, "\"uid\": 0", b"\"uid\": 184467440737095516160000")),
            &["process.user.uid", "from 0 to 4294967295"],
        ),
        row(
            "rlimit-above-u64",
            Raw(|t| swap(&t, "\"hard\": 1024", b"\"hard\": 18446744073709551616")),
            &["process.rlimits[0].hard", "from 0 to 18446744073709551615"],
        ),
        row(
            "uid-fraction",
            Raw(|t| swap(&t, "\"uid\": 0", b"\"uid\": 0.5")),
            &["process.user.uid", "fraction"],
        ),
        // `\/` is a plain '/': only an unescaped check sees /proc/sys.
        row(
            "mount-destination-escaped",
            Raw(|t| {
                let m = r#""mounts": [{"destination": "/proc\/sys", "type": "tmpfs", "source": "tmpfs"},"#;
                swap(&t, "\"mounts\": [", m.as_bytes())
            }),
            &["mounts[0].destination", "is inside /proc"],
        ),
    ]
}

/// Not a regular file at config.json's place.
fn place_rows() -> Vec<Row> {
    use Input::Place;
    vec![
        row(
            "config-is-a-fifo",
            Place(|p| replace_config(p, mkfifo)),
            &["config.json", "is a FIFO", "must be a regular file"],
        ),
        row(
            "config-symlink-to-dev-zero",
            Place(|p| replace_config(p, |p| symlink("/dev/zero", p).unwrap())),
            &[
                "config.json",
                "is a character device",
                "must be a regular file",
            ],
        ),
        row(
            "config-is-a-directory",
            Place(|p| replace_config(p, |p| std::fs::create_dir(p).unwrap())),
            &["config.json", "is a directory", "must be a regular file"],
        ),
    ]
}

/// Flags and ids.
fn cli_rows() -> Vec<Row> {
    use Input::Args;
    vec![
        row(
            "id-with-slash",
            Args(|b| with_bundle(b, &["run", "--bundle", "{bundle}", "{id}/x"])),
            &["invalid container id", "/x\"", "'/'"],
        ),
        row(
            "id-dotdot",
            Args(|b| with_bundle(b, &["run", "--bundle", "{bundle}", ".."])),
            &["invalid container id \"..\""],
        ),
        row(
            "id-dot",
            Args(|b| with_bundle(b, &["run", "--bundle", "{bundle}", "."])),
            &["invalid container id \".\""],
        ),
        row(
            "id-overlong",
            Args(|b| with_bundle(b, &["run", "--bundle", "{bundle}", &"i".repeat(1025)])),
            &["container id is longer than 1024 bytes", "limit 1024"],
        ),
        row(
            "id-empty",
            Args(|b| with_bundle(b, &["run", "--bundle", "{bundle}", ""])),
            &["container id must not be empty"],
        ),
        row(
            "id-with-newline",
            Args(|b| with_bundle(b, &["run", "--bundle", "{bundle}", "{id}\nx"])),
            &["invalid container id", "A-Z a-z 0-9 _ + - ."],
        ),
        row(
            "id-with-space",
            Args(|b| with_bundle(b, &["run", "--bundle", "{bundle}", "{id} x"])),
            &["invalid container id", "A-Z a-z 0-9 _ + - ."],
        ),
        row(
            "flag-unknown",
            Args(|b| with_bundle(b, &["run", "--nope", "--bundle", "{bundle}", "{id}"])),
            &["dory run: flag provided but not defined: --nope"],
        ),
        row(
            "flag-without-value",
            Args(|b| with_bundle(b, &["run", "{id}", "--bundle"])),
            &["dory run: flag needs an argument: --bundle"],
        ),
        row(
            "pid-file-without-detach",
            Args(|b| {
                with_bundle(
                    b,
                    &[
                        "run",
                        "--pid-file",
                        "/tmp/x",
                        "--bundle",
                        "{bundle}",
                        "{id}",
                    ],
                )
            }),
            &["--pid-file", "only supported with --detach"],
        ),
        row(
            "preserve-fds-huge",
            Args(|b| {
                with_bundle(
                    b,
                    &[
                        "create",
                        "--preserve-fds",
                        "99999999",
                        "--bundle",
                        "{bundle}",
                        "{id}",
                    ],
                )
            }),
            &["--preserve-fds", "1048573 (limit)"],
        ),
        row(
            "preserve-fds-negative",
            Args(|b| {
                with_bundle(
                    b,
                    &[
                        "create",
                        "--preserve-fds",
                        "-1",
                        "--bundle",
                        "{bundle}",
                        "{id}",
                    ],
                )
            }),
            &["--preserve-fds", "\"-1\" is not a number"],
        ),
        row(
            "kill-signal-99999",
            Args(|b| with_bundle(b, &["kill", "{id}", "99999"])),
            &["dory kill", "unknown signal \"99999\"", "0 to 31"],
        ),
        row(
            "update-memory-negative",
            Args(|b| with_bundle(b, &["update", "--memory", "-5", "{id}"])),
            &["--memory \"-5\"", "-1 for unlimited"],
        ),
        row(
            "update-resources-dev-zero",
            Args(|b| with_bundle(b, &["update", "--resources", "/dev/zero", "{id}"])),
            &["--resources /dev/zero", "must be a regular file"],
        ),
        row(
            "events-interval-zero",
            Args(|b| with_bundle(b, &["events", "--interval", "0", "{id}"])),
            &["--interval", "greater than 0"],
        ),
        row(
            "exec-user-negative",
            Args(|b| with_bundle(b, &["exec", "--user", "-1", "{id}", "true"])),
            &["--user", "UID[:GID]"],
        ),
        row(
            "log-format-unknown",
            Args(|_| strings(&["--log-format", "xml", "list"])),
            &["--log-format", "text or json"],
        ),
    ]
}

/// A valid container entry for boards (its bundle is the row's, which would print the
/// marker if it ever started).
fn board_with(b: &Bundle, top: &str, container: &str) -> String {
    format!(
        r#"{{{top}"containers":[{{"id":"c1","bundle":"{}","stdio":"console"{container}}}]}}"#,
        b.dir.display()
    )
}

/// board.json through `dory init --check --config FILE`.
fn board_rows() -> Vec<Row> {
    use Input::Board;
    vec![
        row(
            "board-step-timeout-zero",
            Board(|b, p| write_board(p, &board_with(b, r#""stepTimeoutSecs":0,"#, ""))),
            &["stepTimeoutSecs", "outside 1-3600"],
        ),
        row(
            "board-step-timeout-huge",
            Board(|b, p| write_board(p, &board_with(b, r#""stepTimeoutSecs":4000,"#, ""))),
            &["stepTimeoutSecs", "4000 is outside 1-3600"],
        ),
        row(
            "board-negative-grace",
            Board(|b, p| write_board(p, &board_with(b, "", r#","stopGraceMs":-1"#))),
            &["containers[0].stopGraceMs", "a non-negative integer"],
        ),
        row(
            "board-number-above-u32",
            Board(|b, p| {
                write_board(
                    p,
                    &board_with(b, "", r#","stopGraceMs":99999999999999999999"#),
                )
            }),
            &["containers[0].stopGraceMs", "larger than 4294967295"],
        ),
        row(
            "board-id-overlong",
            Board(|b, p| {
                write_board(
                    p,
                    &board_with(b, "", "").replace("\"c1\"", &format!("\"{}\"", "i".repeat(65))),
                )
            }),
            &["containers[0].id", "1-64"],
        ),
        row(
            "board-hostname-overlong",
            Board(|b, p| {
                write_board(
                    p,
                    &board_with(b, &format!(r#""hostname":"{}","#, "h".repeat(65)), ""),
                )
            }),
            &["hostname", "1-64 bytes"],
        ),
        row(
            "board-too-many-containers",
            Board(|b, p| {
                let one = |i: usize| format!(r#"{{"id":"c{i}","bundle":"{}"}}"#, b.dir.display());
                let all: Vec<String> = (0..17).map(one).collect();
                write_board(p, &format!(r#"{{"containers":[{}]}}"#, all.join(",")));
            }),
            &["containers", "more than 16 entries", "MAX_CONTAINERS"],
        ),
        row(
            "board-duplicate-key",
            Board(|b, p| {
                write_board(
                    p,
                    &board_with(b, "", r#","kind":"service","kind":"oneshot""#),
                )
            }),
            &["containers[0].kind", "given twice"],
        ),
        row(
            "board-unknown-key",
            Board(|b, p| write_board(p, &board_with(b, "", r#","stopGraceMS":5"#))),
            &["containers[0].stopGraceMS", "unknown field"],
        ),
        row(
            "board-nesting-5000-deep",
            Board(|_, p| {
                write_board(
                    p,
                    &format!(
                        r#"{{"containers":{}{}}}"#,
                        "[".repeat(5_000),
                        "]".repeat(5_000)
                    ),
                )
            }),
            &["containers[0]", "expected an object"],
        ),
        row(
            "board-bundle-relative",
            Board(|b, p| {
                write_board(
                    p,
                    &board_with(b, "", "").replace("\"bundle\":\"/", "\"bundle\":\"../"),
                )
            }),
            &["containers[0].bundle", "not an absolute path"],
        ),
        row(
            "board-invalid-utf8",
            Board(|b, p| {
                std::fs::write(
                    p,
                    board_with(b, "", "")
                        .replacen("c1", "c\u{FFFD}", 1)
                        .replace('\u{FFFD}', "\u{1}")
                        .into_bytes()
                        .into_iter()
                        .map(|c| if c == 1 { 0xFF } else { c })
                        .collect::<Vec<u8>>(),
                )
                .unwrap()
            }),
            &["invalid JSON", "UTF-8 text"],
        ),
        row(
            "board-nul-byte",
            Board(|b, p| write_board(p, &board_with(b, "", "").replacen("c1", "c\u{0}1", 1))),
            &["invalid JSON", "no control characters in strings"],
        ),
        row(
            "board-escape",
            Board(|b, p| write_board(p, &board_with(b, "", "").replacen("c1", "c\\u0031", 1))),
            &["containers[0].id", "backslash escapes are not supported"],
        ),
        row(
            "board-oversize",
            Board(|b, p| {
                let t = board_with(b, "", "");
                write_board(p, &format!("{}{}", t, " ".repeat(16 * 1024)));
            }),
            &["larger than 16384 bytes", "MAX_BOARD_BYTES"],
        ),
        row(
            "board-is-a-fifo",
            Board(|_, p| mkfifo(p)),
            &["is a FIFO", "must be a regular file"],
        ),
        row(
            "board-symlink-to-dev-zero",
            Board(|_, p| symlink("/dev/zero", p).unwrap()),
            &["is a character device", "must be a regular file"],
        ),
    ]
}

/// `dory init --test` for real (PID 1 of its own pid namespace, /run a fresh tmpfs), on a
/// bad board that also names a valid container: the board is refused, the container
/// never starts.
fn init_rows() -> Vec<Row> {
    vec![row(
        "board-init-test-mode",
        Input::InitTestMode(|b, p| write_board(p, &board_with(b, r#""stepTimeoutSecs":0,"#, ""))),
        &["dory: FATAL: ", "stepTimeoutSecs: 0 is outside 1-3600"],
    )]
}

fn all_rows() -> Vec<Row> {
    [
        config_rows(),
        raw_rows(),
        place_rows(),
        cli_rows(),
        board_rows(),
        init_rows(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Runs `cmd` with stdout and stderr in files under `dir`; past [`DEADLINE`] kills it and
/// says so.
fn run_with_deadline(mut cmd: Command, dir: &Path) -> Result<Out, String> {
    let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .map_err(|e| format!("spawn {cmd:?}: {e}"))?;
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("hung: killed after {DEADLINE:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ok(Out {
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    })
}

/// The namespace init `unshare` forked: dory once it exec'd.
fn child_of(pid: u32) -> Option<i32> {
    let kids = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    kids.split_whitespace().next()?.parse().ok()
}

/// `dory init --test --config board` as PID 1 of a new pid namespace; waits for it to
/// refuse the board (and stay up, as PID 1 must), then SIGTERMs it. The exit code is
/// dory's after the signal; a dory that exits on its own fails the row.
fn run_init_test_mode(board: &Path, dir: &Path) -> Result<Out, String> {
    const SCRIPT: &str = "mount -t tmpfs tmpfs /run && mount -t proc proc /proc && \
                          exec \"$0\" init --test \"$@\"";
    let log = dir.join("console");
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--pid",
        "--fork",
        "--kill-child",
        "--mount",
        "--propagation",
        "private",
    ])
    .args(["sh", "-c", SCRIPT, DORY, "--config"])
    .arg(board)
    .stdin(Stdio::null())
    .stdout(std::fs::File::create(&log).unwrap())
    .stderr(std::fs::File::create(&log).unwrap());
    let mut child = cmd.spawn().map_err(|e| format!("spawn unshare: {e}"))?;
    let console = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = Instant::now() + DEADLINE;
    while !console().contains("waiting for a signal") {
        if let Some(st) = child.try_wait().unwrap() {
            return Err(format!(
                "dory init exited on its own ({st}):\n{}",
                console()
            ));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("no refusal within {DEADLINE:?}:\n{}", console()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if let Some(pid) = child_of(child.id()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let out = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Out {
                code: st.code().unwrap_or(-1),
                stdout: console(),
                stderr: console(),
            };
        }
        if Instant::now() > deadline + DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("did not end on SIGTERM:\n{}", console()));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(out)
}

/// What a refused command left behind: a state entry, a cgroup directory of one of `ids`
/// in any hierarchy (under the tests' parent or at the top), a process whose command line
/// mentions the bundle's directory or an id, a host mount that was not there `before`
/// (but for other tests' mounts in their own temp directories).
fn leftovers(b: &Bundle, ids: &[String], before: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    let entries: Vec<_> = std::fs::read_dir(&b.state_root)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    if !entries.is_empty() {
        found.push(format!("state entries: {entries:?}"));
    }
    // Only plain names: `..` or `a/b` would name other directories.
    let plain = ids
        .iter()
        .filter(|id| !id.is_empty() && !id.contains('/') && *id != "." && *id != "..");
    for id in plain {
        for m in common::cgroup_mounts() {
            for dir in [m.join(common::CGROUP_PARENT).join(id), m.join(id)] {
                if dir.exists() {
                    found.push(format!("cgroup directory {}", dir.display()));
                }
            }
        }
    }
    let base = b.base.to_string_lossy().into_owned();
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if pid == me || !pid.bytes().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmdline.contains(&base) || ids.iter().any(|id| !id.is_empty() && cmdline.contains(id)) {
            found.push(format!("process {pid}: {cmdline}"));
        }
    }
    let after = common::host_mountinfo();
    found.extend(
        after
            .iter()
            .filter(|l| !before.contains(l) && !another_tests(l, &b.base))
            .map(|l| format!("new host mount: {l}")),
    );
    found
}

/// Whether the mountinfo line `line` is a mount another test (in this process or in a
/// test binary running at the same time) made in its own temp directory, not ours.
fn another_tests(line: &str, ours: &Path) -> bool {
    let others = std::env::temp_dir().join("dory-test-");
    let point = line.split(' ').nth(4).unwrap_or("");
    point.starts_with(others.to_str().unwrap()) && !Path::new(point).starts_with(ours)
}

/// Runs one row in a bundle of its own; returns what was wrong with the refusal.
fn check_row(row: &Row) -> Vec<String> {
    let mut b = Bundle::new(row.name, &["sh"]);
    // $0 is the id: a leaked container process would show it in its command line.
    b.config["process"]["args"] = json!(["sh", "-c", format!("echo {MARKER}"), b.id]);
    b.write_config();
    let board = b.base.join("board.json");
    let ids = vec![b.id.clone()];
    let before = common::host_mountinfo();
    let mut cmd = b.run_cmd();
    let mut init_test_mode = false;
    match &row.input {
        Input::Config(edit) => {
            let mut config = b.config.clone();
            edit(&b, &mut config);
            b.config = config;
            b.write_config();
        }
        Input::Raw(make) => {
            let text = serde_json::to_string_pretty(&b.config).unwrap();
            std::fs::write(b.config_path(), make(text)).unwrap();
        }
        Input::Place(put) => put(&b.config_path()),
        Input::Args(args) => {
            // Ids made from the row's (`<id>/x`) contain it: `ids` covers them.
            cmd = Command::new(DORY);
            cmd.arg("--root").arg(&b.state_root).args(args(&b));
        }
        Input::Board(make) => {
            make(&b, &board);
            cmd = b.cmd(&["init", "--check", "--config"]);
            cmd.arg(&board);
        }
        Input::InitTestMode(make) => {
            make(&b, &board);
            init_test_mode = true;
        }
    }
    let result = if init_test_mode {
        run_init_test_mode(&board, &b.base)
    } else {
        run_with_deadline(cmd, &b.base)
    };
    let mut problems = Vec::new();
    match result {
        Err(e) => problems.push(e),
        Ok(out) => {
            if out.code == 0 && !init_test_mode {
                problems.push("exit 0: accepted".into());
            }
            let message = out.message();
            for n in row.needles {
                if !message.contains(n) {
                    problems.push(format!("error lacks {n:?}"));
                }
            }
            if out.stdout.contains(MARKER) {
                problems.push("the container's program ran".into());
            }
            if !problems.is_empty() {
                problems.push(format!("exit {}; stderr: {}", out.code, out.stderr.trim()));
            }
        }
    }
    problems.extend(leftovers(&b, &ids, &before));
    problems
}

#[test]
fn bad_inputs_are_refused_and_leave_nothing_behind() {
    needs_root!();
    // One rootfs for all rows (otherwise each row's bundle would build it anew).
    let _rootfs = RootfsLease::acquire();
    let rows = all_rows();
    assert!(rows.len() >= 30, "only {} rows", rows.len());
    let mut failures = Vec::new();
    for r in &rows {
        let problems = check_row(r);
        if !problems.is_empty() {
            failures.push(format!("{}:\n    {}", r.name, problems.join("\n    ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

/// The table's checks can fail: the valid inputs each row starts from are accepted, and
/// the program's marker is seen when the container does run.
#[test]
fn the_inputs_rows_start_from_are_accepted() {
    needs_root!();
    let mut b = Bundle::new("control", &["sh"]);
    b.config["process"]["args"] = json!(["sh", "-c", format!("echo {MARKER}"), b.id]);
    let out = b.run();
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains(MARKER), "{out:?}");
    b.assert_nothing_left();
    let board = b.base.join("board.json");
    write_board(&board, &board_with(&b, r#""stepTimeoutSecs":30,"#, ""));
    let out = run_cmd(b.cmd(&["init", "--check", "--config"]).arg(&board));
    assert_eq!((out.code, out.stdout.as_str()), (0, "ok\n"), "{out:?}");
}

// ---- Refusals that are not a row's shape: after the process exists, or run for real ----

/// The program bad configs name: if it ever runs, the test sees its marker.
const ARGS: &[&str] = &["sh", "-c", "echo SHOULD-NOT-RUN"];

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
