//! OCI hooks: run with the state JSON on stdin, their own env, and a timeout.
//!
//! prestart, createRuntime, poststart and poststop run in dory's (the runtime's)
//! namespaces; createContainer in the container's, entered by setns between fork and exec.
//! startContainer hooks come from the container's filesystem: they run as the container's
//! process does (as `dory exec` runs one, see [`run_start_container`]), never with the
//! runtime's privileges.

use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use crate::spec::{self, Hook};
use crate::sys;

/// When a hook runs (runtime-spec config.md "POSIX-platform Hooks").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Phase {
    pub fn field(self) -> &'static str {
        match self {
            Phase::Prestart => "hooks.prestart",
            Phase::CreateRuntime => "hooks.createRuntime",
            Phase::CreateContainer => "hooks.createContainer",
            Phase::StartContainer => "hooks.startContainer",
            Phase::Poststart => "hooks.poststart",
            Phase::Poststop => "hooks.poststop",
        }
    }

    /// Whether the hooks after a failed one still run: runtime-spec makes a failing
    /// poststop hook a warning, and the rest of the lifecycle, the remaining hooks
    /// included, goes on as if it had succeeded. A failing poststart hook fails `start`
    /// as runc's does (runtime-spec would warn).
    pub fn failure_is_a_warning(self) -> bool {
        matches!(self, Phase::Poststop)
    }

    /// The hooks of this phase in a config.
    pub fn of<'s, 'a>(self, spec: &'s spec::Spec<'a>) -> &'s [Hook<'a>] {
        let Some(h) = spec.hooks.as_ref() else {
            return &[];
        };
        match self {
            Phase::Prestart => &h.prestart,
            Phase::CreateRuntime => &h.create_runtime,
            Phase::CreateContainer => &h.create_container,
            Phase::StartContainer => &h.start_container,
            Phase::Poststart => &h.poststart,
            Phase::Poststop => &h.poststop,
        }
    }
}

fn unescape(raw: &str) -> Result<String, String> {
    let mut buf = vec![0u8; raw.len()];
    let n = spec::unescape_into(raw, &mut buf).map_err(|_| "invalid string".to_string())?;
    buf.truncate(n);
    String::from_utf8(buf).map_err(|_| "invalid UTF-8".to_string())
}

/// Namespaces of `pid` that a container-phase hook joins, opened before fork.
fn namespaces_of(pid: i32) -> Vec<OwnedFd> {
    ["user", "ipc", "uts", "net", "pid", "cgroup", "mnt"]
        .iter()
        .filter_map(|ns| {
            let theirs = format!("/proc/{pid}/ns/{ns}");
            let same = nix::sys::stat::stat(theirs.as_str()).ok().map(|s| s.st_ino)
                == nix::sys::stat::stat(format!("/proc/self/ns/{ns}").as_str())
                    .ok()
                    .map(|s| s.st_ino);
            if same {
                return None;
            }
            open(
                theirs.as_str(),
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .ok()
        })
        .collect()
}

/// Runs every hook of `phase` in order; the first failure stops and is returned with the
/// field it came from. `join` is the container init's pid for container-phase hooks.
pub fn run(
    hooks: &[Hook<'_>],
    phase: Phase,
    state_json: &str,
    join: Option<i32>,
) -> Result<(), String> {
    // Poststop: every hook runs; their failures come back together, one line each. Any
    // other phase stops at the first failure.
    let mut warnings = String::new();
    for (i, h) in hooks.iter().enumerate() {
        if let Err(e) = run_one(h, state_json, join) {
            let e = format!("config.json: {}[{i}]: {e}", phase.field());
            if !phase.failure_is_a_warning() {
                return Err(e);
            }
            if !warnings.is_empty() {
                warnings.push('\n');
            }
            warnings.push_str(&e);
        }
    }
    if warnings.is_empty() {
        Ok(())
    } else {
        Err(warnings)
    }
}

fn run_one(h: &Hook<'_>, state_json: &str, join: Option<i32>) -> Result<(), String> {
    let path = unescape(h.path)?;
    let mut cmd = Command::new(&path);
    let mut args = h.args.iter();
    // args[0] is the hook's argv[0], as in execv.
    if let Some(a0) = args.next() {
        std::os::unix::process::CommandExt::arg0(&mut cmd, unescape(a0)?);
    }
    for a in args {
        cmd.arg(unescape(a)?);
    }
    cmd.env_clear();
    for e in &h.env {
        let e = unescape(e)?;
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    if let Some(pid) = join {
        sys::join_namespaces_on_spawn(&mut cmd, namespaces_of(pid));
    }
    let mut child = cmd.spawn().map_err(|e| format!("{path}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook may exit without reading: the write then gets EPIPE instead of a SIGPIPE
        // that would kill dory mid-lifecycle (the CLI restores SIGPIPE's default action).
        let _sigpipe = sys::SigpipeIgnored::new();
        // A hook that does not read its stdin must not fail the write.
        let _ = stdin.write_all(state_json.as_bytes());
    }
    let deadline = deadline(h.timeout);
    let mut pause = Duration::from_micros(200);
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("{path}: {status}")),
            Ok(None) => {}
            Err(e) => return Err(format!("{path}: wait: {e}")),
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{path}: timed out after {} s",
                limit_secs(h.timeout)
            ));
        }
        super::waits::tick();
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Runs the startContainer hooks of the config saved at create in the container `c`
/// (see [`run_start_container`]).
pub fn run_start_phase(c: &super::lifecycle::Container, config: &[u8]) -> Result<(), String> {
    let s = c.state();
    let phase = Phase::StartContainer;
    with_phase_hooks(
        config,
        s.bundle,
        &c.id,
        "created",
        s.pid,
        phase,
        |hooks, st| run_start_container(c, hooks, st),
    )
}

/// Runs startContainer hooks inside the created container `c`, as runc runs them from the
/// container's init: every namespace (pid included), the cgroup, the user, capabilities,
/// rlimits, no_new_privs and seccomp of the container's process. The path resolves in the
/// container's root. Environment: the container process's, then the hook's `env`.
pub fn run_start_container(
    c: &super::lifecycle::Container,
    hooks: &[Hook<'_>],
    state_json: &str,
) -> Result<(), String> {
    for (i, h) in hooks.iter().enumerate() {
        run_in_container(c, h, state_json)
            .map_err(|e| format!("config.json: {}[{i}]: {e}", Phase::StartContainer.field()))?;
    }
    Ok(())
}

fn run_in_container(
    c: &super::lifecycle::Container,
    h: &Hook<'_>,
    state_json: &str,
) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let path = unescape(h.path)?;
    let mut args = vec![path.clone()];
    for a in h.args.iter().skip(1) {
        args.push(unescape(a)?);
    }
    let env = h
        .env
        .iter()
        .map(|e| unescape(e))
        .collect::<Result<Vec<_>, _>>()?;
    // The state goes into the pipe first (it is far smaller than a pipe's buffer), so
    // nothing waits on the hook to read it.
    let (rd, wr) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    {
        let mut w = std::fs::File::from(wr);
        w.write_all(state_json.as_bytes())
            .map_err(|e| format!("state to the hook: {e}"))?;
    }
    // Output goes where the container's own goes (its init's stdout and stderr, as given
    // at create), never to this caller: the hook is the image's code, and the caller's
    // terminal or pipes are not its to hold or type into.
    let pin = super::state::InitPin::new(&c.state()).ok_or("the container's init is gone")?;
    let out = init_stdio(&pin, 1)?;
    let err = init_stdio(&pin, 2)?;
    let req = super::exec::ExecRequest {
        args,
        env,
        detach: true,
        hook_stdio: Some([rd.as_raw_fd(), out.as_raw_fd(), err.as_raw_fd()]),
        ..Default::default()
    };
    let pid = super::exec::exec(c, &req).map_err(|(msg, _)| format!("{path}: {msg}"))?;
    drop((rd, out, err));
    wait_hook(pid, &path, h.timeout)
}

/// The container init's fd `n` (1 or 2) itself, as the hook's would be had the init run
/// it (shared offset and flags); /dev/null when the init has none.
fn init_stdio(init: &super::state::InitPin, n: i32) -> Result<OwnedFd, String> {
    match sys::pidfd_getfd(init.pidfd(), n) {
        Ok(fd) => Ok(fd),
        Err(_) => open(
            c"/dev/null",
            OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| format!("/dev/null: {e}")),
    }
}

/// Waits for a hook process started by [`run_in_container`], killing it at its timeout.
fn wait_hook(pid: i32, path: &str, timeout: Option<i64>) -> Result<(), String> {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let pid = nix::unistd::Pid::from_raw(pid);
    let deadline = deadline(timeout);
    let mut pause = Duration::from_micros(200);
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, 0)) => return Ok(()),
            Ok(WaitStatus::Exited(_, code)) => return Err(format!("{path}: exit status {code}")),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Err(format!("{path}: killed by {sig}")),
            Ok(_) => {}
            Err(e) => return Err(format!("{path}: wait: {e}")),
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return Err(format!("{path}: timed out after {} s", limit_secs(timeout)));
        }
        super::waits::tick();
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// When a hook with `timeout` (seconds) started now must have ended. Validation caps the
/// timeout (`MAX_HOOK_TIMEOUT_SECS`); a deadline past what `Instant` can hold would mean
/// no deadline rather than an abort.
/// Without a `timeout`, PID 1's `stepTimeoutSecs` applies (the CLI waits, as runc).
fn deadline(timeout: Option<i64>) -> Option<Instant> {
    super::waits::deadline(configured(timeout))
}

/// A hook's own `timeout`, when it has a usable one.
fn configured(timeout: Option<i64>) -> Option<Duration> {
    timeout
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t.unsigned_abs()))
}

/// The limit a timed-out hook ran into, in seconds, for its error.
fn limit_secs(timeout: Option<i64>) -> u64 {
    configured(timeout)
        .or_else(super::waits::default_limit)
        .map_or(0, |d| d.as_secs())
}

/// The state JSON passed to hooks.
pub fn state_json(id: &str, status: &str, pid: i32, bundle: &str, cfg: &spec::Spec<'_>) -> String {
    let mut o = String::from("{\"ociVersion\":\"1.0.2\",\"id\":");
    super::state::json_str(&mut o, id);
    o.push_str(",\"status\":");
    super::state::json_str(&mut o, status);
    o.push_str(&format!(",\"pid\":{pid},\"bundle\":"));
    super::state::json_str(&mut o, bundle);
    if !cfg.annotations.is_empty() {
        o.push_str(",\"annotations\":");
        o.push_str(&super::state::annotations_json(cfg));
    }
    o.push('}');
    o
}

/// Runs one phase's hooks of `config` (the bytes create read) in dory's namespaces
/// (poststart, poststop: later dory processes than create).
pub fn run_phase(
    config: &[u8],
    bundle: &str,
    id: &str,
    status: &str,
    pid: i32,
    phase: Phase,
) -> Result<(), String> {
    with_phase_hooks(config, bundle, id, status, pid, phase, |hooks, st| {
        run(hooks, phase, st, None)
    })
}

/// Parses `config` and hands `phase`'s hooks and the state JSON to `run_them` (nothing
/// when the phase has none).
fn with_phase_hooks(
    config: &[u8],
    bundle: &str,
    id: &str,
    status: &str,
    pid: i32,
    phase: Phase,
    run_them: impl FnOnce(&[Hook<'_>], &str) -> Result<(), String>,
) -> Result<(), String> {
    let cfg = spec::parse(config).map_err(|e| e.to_string())?;
    let hooks = phase.of(&cfg);
    if hooks.is_empty() {
        return Ok(());
    }
    let st = state_json(id, status, pid, bundle, &cfg);
    run_them(hooks, &st)
}

/// Whether a config has hooks for any phase after create (poststart, poststop…).
pub fn has_later_hooks(spec: &spec::Spec<'_>) -> bool {
    [Phase::StartContainer, Phase::Poststart, Phase::Poststop]
        .iter()
        .any(|p| !p.of(spec).is_empty())
}
