//! create, start, state, kill, delete, pause, resume, ps, features.

use std::path::Path;

use nix::sys::signal::Signal;

use super::args::{flag, FlagSpec};
use super::{parse_or_usage, single_id, Global};
use crate::container::lifecycle::{self, Container};
use crate::container::{self, LaunchOptions, Stdio};

pub(super) const CREATE_FLAGS: &[FlagSpec] = &[
    flag("bundle", Some('b'), true),
    flag("pid-file", None, true),
    flag("console-socket", None, true),
    flag("no-pivot", None, false),
    flag("no-new-keyring", None, false),
    flag("preserve-fds", None, true),
];

pub(super) const KILL_FLAGS: &[FlagSpec] =
    &[flag("all", Some('a'), false), flag("pid", Some('p'), true)];
pub(super) const DELETE_FLAGS: &[FlagSpec] = &[flag("force", Some('f'), false)];
pub(super) const PS_FLAGS: &[FlagSpec] = &[flag("format", Some('f'), true)];

fn report(command: &str, r: Result<(), lifecycle::Error>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            log_error!("dory {command}: {e}");
            1
        }
    }
}

fn load(command: &str, g: &Global, id: &str) -> Result<Container, i32> {
    Container::load(&g.root, id).map_err(|e| {
        log_error!("dory {command}: {e}");
        1
    })
}

/// Most fds `--preserve-fds` may pass: the kernel's ceiling on open files (`nr_open`'s
/// largest value is 1 << 20) less the three stdio fds. The child marks fds from
/// `3 + N` close-on-exec, which must not overflow.
pub const MAX_PRESERVE_FDS: u32 = (1 << 20) - 3;

/// `--preserve-fds N`: 0 when absent.
pub(super) fn preserve_fds(value: Option<&str>) -> Result<u32, String> {
    let Some(v) = value else {
        return Ok(0);
    };
    let n: u64 = v.parse().map_err(|_| format!("\"{v}\" is not a number"))?;
    match u32::try_from(n) {
        Ok(n) if n <= MAX_PRESERVE_FDS => Ok(n),
        _ => Err(format!("{n} is more than {MAX_PRESERVE_FDS} (limit)")),
    }
}

/// `create` and `run --detach`: launch up to the exec fifo (create) or all the way.
pub fn cmd_create(g: &Global, argv: &[String], detach_run: bool) -> i32 {
    let command = if detach_run { "run" } else { "create" };
    let p = match parse_or_usage(command, argv, CREATE_FLAGS) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let id = match single_id(command, &p) {
        Ok(id) => id,
        Err(c) => return c,
    };
    let preserve_fds = match preserve_fds(p.get("preserve-fds")) {
        Ok(n) => n,
        Err(e) => {
            log_error!("dory {command}: --preserve-fds: {e}");
            return 1;
        }
    };
    let bundle = Path::new(p.get("bundle").unwrap_or("."));
    let mut opts = LaunchOptions::new(id, bundle, &g.root, Stdio::Inherit);
    opts.create = true;
    opts.preserve_fds = preserve_fds;
    opts.console_socket = p.get("console-socket").map(Path::new);
    opts.pid_file = p.get("pid-file").map(Path::new);
    opts.no_pivot = p.has("no-pivot");
    let started = match container::launch(opts) {
        Ok(s) => s,
        Err(e) => {
            log_error!("dory {command}: {e}");
            return e.exit_code();
        }
    };
    if started.terminal && started.pty_master.is_some() {
        // No console socket: the terminal would have nobody on the other end.
        log_error!("dory {command}: process.terminal needs --console-socket when detached");
        if let Ok(c) = Container::load(&g.root, id) {
            let _ = lifecycle::delete(&c, true);
        }
        return 1;
    }
    if !detach_run {
        return 0;
    }
    match Container::load(&g.root, id) {
        Ok(c) => report(command, lifecycle::start(&c)),
        Err(e) => {
            log_error!("dory {command}: {e}");
            1
        }
    }
}

pub fn cmd_start(g: &Global, argv: &[String]) -> i32 {
    with_container("start", g, argv, &[], |c, _| lifecycle::start(c))
}

pub fn cmd_state(g: &Global, argv: &[String]) -> i32 {
    let p = match parse_or_usage("state", argv, &[]) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let id = match single_id("state", &p) {
        Ok(id) => id,
        Err(c) => return c,
    };
    match load("state", g, id) {
        Ok(c) => {
            // Indented as runc prints it (clients parse either; people read it).
            println!("{}", indent_json(&c.state_json()));
            0
        }
        Err(code) => code,
    }
}

/// `json` (compact, as dory writes it) indented by two spaces per level, as Go's
/// `json.MarshalIndent(v, "", "  ")` prints it; text inside strings is left alone.
fn indent_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len() * 2);
    let mut depth = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    let mut chars = json.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n("  ", depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                // An empty object or array stays on one line.
                if matches!(chars.peek(), Some('}' | ']')) {
                    if let Some(close) = chars.next() {
                        out.push(close);
                    }
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// Loads the one container a command names and runs `f` on it.
fn with_container(
    command: &str,
    g: &Global,
    argv: &[String],
    flags: &[FlagSpec],
    f: impl FnOnce(&Container, &super::args::Parsed) -> Result<(), lifecycle::Error>,
) -> i32 {
    let p = match parse_or_usage(command, argv, flags) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let id = match single_id(command, &p) {
        Ok(id) => id,
        Err(c) => return c,
    };
    match load(command, g, id) {
        Ok(c) => report(command, f(&c, &p)),
        Err(code) => code,
    }
}

pub fn cmd_kill(g: &Global, argv: &[String]) -> i32 {
    let p = match parse_or_usage("kill", argv, KILL_FLAGS) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let (id, sig) = match p.positional.as_slice() {
        [id] => (id.as_str(), Some(Signal::SIGTERM)),
        [id, s] => match lifecycle::parse_signal(s) {
            Some(sig) => (id.as_str(), sig),
            None => {
                log_error!(
                    "dory kill: unknown signal \"{s}\" (a name such as TERM or SIGKILL, or a number from 0 to 31)"
                );
                return 1;
            }
        },
        _ => {
            log_error!("dory kill: usage: dory kill <container-id> [signal]");
            return 1;
        }
    };
    match load("kill", g, id) {
        Ok(c) => report("kill", lifecycle::kill_container(&c, sig, p.has("all"))),
        Err(code) => code,
    }
}

pub fn cmd_delete(g: &Global, argv: &[String]) -> i32 {
    let p = match parse_or_usage("delete", argv, DELETE_FLAGS) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let id = match single_id("delete", &p) {
        Ok(id) => id,
        Err(c) => return c,
    };
    match Container::load(&g.root, id) {
        Ok(c) => report("delete", lifecycle::delete(&c, p.has("force"))),
        // Like runc: deleting a missing container with --force succeeds.
        Err(lifecycle::Error::NotFound(_)) if p.has("force") => 0,
        Err(e) => {
            log_error!("dory delete: {e}");
            1
        }
    }
}

pub fn cmd_pause(g: &Global, argv: &[String], pause: bool) -> i32 {
    let command = if pause { "pause" } else { "resume" };
    with_container(command, g, argv, &[], |c, _| {
        lifecycle::set_paused(c, pause)
    })
}

pub fn cmd_ps(g: &Global, argv: &[String]) -> i32 {
    let p = match parse_or_usage("ps", argv, PS_FLAGS) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let Some(id) = p.positional.first() else {
        log_error!("dory ps: requires the container id");
        return 1;
    };
    let c = match load("ps", g, id) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let pids = match lifecycle::pids(&c) {
        Ok(p) => p,
        Err(e) => {
            log_error!("dory ps: {e}");
            return 1;
        }
    };
    match p.get("format").unwrap_or("table") {
        "json" => {
            let list: Vec<String> = pids.iter().map(i32::to_string).collect();
            println!("[{}]", list.join(","));
            0
        }
        "table" => {
            // As runc: `ps` output (extra args are ps options), filtered to the pids.
            let ps_args: Vec<&str> = match p.positional.get(1..) {
                Some(rest) if !rest.is_empty() => rest.iter().map(String::as_str).collect(),
                _ => vec!["-ef"],
            };
            let out = match std::process::Command::new("ps").args(&ps_args).output() {
                Ok(o) => o,
                Err(e) => {
                    log_error!("dory ps: run ps: {e}");
                    return 1;
                }
            };
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let Some(header) = lines.next() else {
                return 1;
            };
            let Some(col) = header.split_whitespace().position(|h| h == "PID") else {
                log_error!("dory ps: no PID column in ps output");
                return 1;
            };
            println!("{header}");
            for l in lines {
                if let Some(pid) = l
                    .split_whitespace()
                    .nth(col)
                    .and_then(|s| s.parse::<i32>().ok())
                {
                    if pids.contains(&pid) {
                        println!("{l}");
                    }
                }
            }
            0
        }
        other => {
            log_error!("dory ps: invalid format \"{other}\" (table or json)");
            1
        }
    }
}

/// `features`: what this build implements (runtime-spec features.md).
pub fn cmd_features() -> i32 {
    println!("{}", FEATURES_JSON);
    0
}

const FEATURES_JSON: &str = r#"{
  "ociVersionMin": "1.0.0",
  "ociVersionMax": "1.2.0",
  "hooks": ["prestart","createRuntime","createContainer","startContainer","poststart","poststop"],
  "mountOptions": ["async","atime","bind","defaults","dev","diratime","dirsync","exec","idmap","lazytime","loud","mand","noatime","nodev","nodiratime","noexec","nolazytime","nomand","norelatime","nostrictatime","nosuid","private","ratime","rbind","rdev","rdiratime","relatime","remount","rexec","ridmap","rnoatime","rnodev","rnodiratime","rnoexec","rnorelatime","rnostrictatime","rnosuid","rnosymfollow","ro","rprivate","rrelatime","rro","rrw","rshared","rslave","rstrictatime","rsuid","rsymfollow","runbindable","rw","shared","silent","slave","strictatime","suid","sync","tmpcopyup","unbindable"],
  "linux": {
    "namespaces": ["cgroup","ipc","mount","network","pid","time","user","uts"],
    "capabilities": ["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_DAC_READ_SEARCH","CAP_FOWNER","CAP_FSETID","CAP_KILL","CAP_SETGID","CAP_SETUID","CAP_SETPCAP","CAP_LINUX_IMMUTABLE","CAP_NET_BIND_SERVICE","CAP_NET_BROADCAST","CAP_NET_ADMIN","CAP_NET_RAW","CAP_IPC_LOCK","CAP_IPC_OWNER","CAP_SYS_MODULE","CAP_SYS_RAWIO","CAP_SYS_CHROOT","CAP_SYS_PTRACE","CAP_SYS_PACCT","CAP_SYS_ADMIN","CAP_SYS_BOOT","CAP_SYS_NICE","CAP_SYS_RESOURCE","CAP_SYS_TIME","CAP_SYS_TTY_CONFIG","CAP_MKNOD","CAP_LEASE","CAP_AUDIT_WRITE","CAP_AUDIT_CONTROL","CAP_SETFCAP","CAP_MAC_OVERRIDE","CAP_MAC_ADMIN","CAP_SYSLOG","CAP_WAKE_ALARM","CAP_BLOCK_SUSPEND","CAP_AUDIT_READ","CAP_PERFMON","CAP_BPF","CAP_CHECKPOINT_RESTORE"],
    "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": true},
    "seccomp": {
      "enabled": true,
      "actions": ["SCMP_ACT_ALLOW","SCMP_ACT_ERRNO","SCMP_ACT_KILL","SCMP_ACT_KILL_PROCESS","SCMP_ACT_KILL_THREAD","SCMP_ACT_LOG","SCMP_ACT_NOTIFY","SCMP_ACT_TRACE","SCMP_ACT_TRAP"],
      "operators": ["SCMP_CMP_EQ","SCMP_CMP_GE","SCMP_CMP_GT","SCMP_CMP_LE","SCMP_CMP_LT","SCMP_CMP_MASKED_EQ","SCMP_CMP_NE"],
      "archs": ["SCMP_ARCH_AARCH64","SCMP_ARCH_ARM","SCMP_ARCH_X32","SCMP_ARCH_X86","SCMP_ARCH_X86_64"],
      "knownFlags": ["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW","SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
      "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW","SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    },
    "apparmor": {"enabled": true},
    "selinux": {"enabled": false},
    "intelRdt": {"enabled": false},
    "memoryPolicy": {"modes": ["MPOL_BIND","MPOL_DEFAULT","MPOL_INTERLEAVE","MPOL_LOCAL","MPOL_PREFERRED","MPOL_PREFERRED_MANY","MPOL_WEIGHTED_INTERLEAVE"], "flags": ["MPOL_F_NUMA_BALANCING","MPOL_F_RELATIVE_NODES","MPOL_F_STATIC_NODES"]},
    "mountExtensions": {"idmap": {"enabled": true}},
    "netDevices": {"enabled": true}
  },
  "annotations": {"org.opencontainers.runc.checkpoint.enabled": "false", "io.github.dory.version": "0.1.0"}
}"#;

pub(super) const EXEC_FLAGS: &[FlagSpec] = &[
    flag("process", Some('p'), true),
    flag("tty", Some('t'), false),
    flag("detach", Some('d'), false),
    flag("pid-file", None, true),
    flag("console-socket", None, true),
    flag("env", Some('e'), true),
    flag("cwd", None, true),
    flag("user", Some('u'), true),
    flag("additional-gids", Some('g'), true),
    flag("cap", Some('c'), true),
    flag("no-new-privs", None, false),
    flag("preserve-fds", None, true),
    flag("process-label", None, true),
    flag("apparmor", None, true),
    flag("ignore-paused", None, false),
    flag("cgroup", None, true),
];

pub(super) fn parse_ids(text: &str) -> Option<(u32, Option<u32>)> {
    match text.split_once(':') {
        Some((u, g)) => Some((u.parse().ok()?, Some(g.parse().ok()?))),
        None => Some((text.parse().ok()?, None)),
    }
}

pub fn cmd_exec(g: &Global, argv: &[String]) -> i32 {
    let p = match super::args::parse(argv, EXEC_FLAGS, Some(1)) {
        Ok(p) => p,
        Err(e) => return super::usage_error("exec", &e),
    };
    let Some((id, args)) = p.positional.split_first() else {
        log_error!("dory exec: requires the container id and a command (or --process FILE)");
        return 1;
    };
    if p.get("process-label").is_some_and(|v| !v.is_empty()) {
        log_error!("dory exec: --process-label is not supported (no SELinux support in dory)");
        return 1;
    }
    let user = match p.get("user").map(parse_ids) {
        None => None,
        Some(Some(u)) => Some(u),
        Some(None) => {
            log_error!("dory exec: --user: want UID[:GID] (numbers)");
            return 1;
        }
    };
    let mut gids = Vec::new();
    for gtext in p.all("additional-gids") {
        match gtext.parse::<u32>() {
            Ok(n) => gids.push(n),
            Err(_) => {
                log_error!("dory exec: --additional-gids \"{gtext}\": not a number");
                return 1;
            }
        }
    }
    let preserve_fds = match preserve_fds(p.get("preserve-fds")) {
        Ok(n) => n,
        Err(e) => {
            log_error!("dory exec: --preserve-fds: {e}");
            return 1;
        }
    };
    let cgroup = match container::sub_cgroup::SubCgroups::parse(p.all("cgroup")) {
        Ok(c) => c,
        Err(e) => {
            log_error!("dory exec: {e}");
            return 1;
        }
    };
    let req = container::exec::ExecRequest {
        process_file: p.get("process").map(Path::new),
        args: args.to_vec(),
        env: p.all("env").map(str::to_string).collect(),
        cwd: p.get("cwd").map(str::to_string),
        user,
        additional_gids: gids,
        caps: p.all("cap").map(str::to_string).collect(),
        no_new_privs: p.has("no-new-privs"),
        tty: p.has("tty"),
        detach: p.has("detach"),
        pid_file: p.get("pid-file").map(Path::new),
        console_socket: p.get("console-socket").map(Path::new),
        preserve_fds,
        ignore_paused: p.has("ignore-paused"),
        apparmor: p
            .get("apparmor")
            .filter(|v| !v.is_empty())
            .map(str::to_string),
        cgroup,
        hook_stdio: None,
    };
    match load("exec", g, id) {
        Ok(c) => container::exec::exec(&c, &req).unwrap_or_else(|(msg, code)| {
            log_error!("dory exec: {msg}");
            code
        }),
        Err(code) => code,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn state_is_indented_as_runc_prints_it() {
        let compact = r#"{"ociVersion":"1.0.2","id":"a,b:{c}","pid":0,"annotations":{"k":"v\"}"},"e":{},"l":[]}"#;
        assert_eq!(
            super::indent_json(compact),
            "{\n  \"ociVersion\": \"1.0.2\",\n  \"id\": \"a,b:{c}\",\n  \"pid\": 0,\n  \"annotations\": {\n    \"k\": \"v\\\"}\"\n  },\n  \"e\": {},\n  \"l\": []\n}"
        );
        let back: serde_json::Value = serde_json::from_str(&super::indent_json(compact)).unwrap();
        assert_eq!(
            back,
            serde_json::from_str::<serde_json::Value>(compact).unwrap()
        );
    }

    use super::*;

    #[test]
    fn preserve_fds_has_a_limit() {
        assert_eq!(preserve_fds(None), Ok(0));
        assert_eq!(preserve_fds(Some("2")), Ok(2));
        assert_eq!(preserve_fds(Some("1048573")), Ok(MAX_PRESERVE_FDS));
        assert_eq!(
            preserve_fds(Some("1048574")).unwrap_err(),
            "1048574 is more than 1048573 (limit)"
        );
        // 3 + u32::MAX would overflow in the child.
        assert_eq!(
            preserve_fds(Some("4294967295")).unwrap_err(),
            "4294967295 is more than 1048573 (limit)"
        );
        assert_eq!(
            preserve_fds(Some("x")).unwrap_err(),
            "\"x\" is not a number"
        );
    }
}
