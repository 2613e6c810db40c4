//! The lifecycle verbs on an existing container: start, state, kill, delete, pause,
//! resume, ps. Each loads the state entry, derives the live status and acts.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::hooks::{self, Phase};
use super::state::{self, Loaded};
use super::EXEC_FIFO;
use crate::cgroup::{Cgroup, Layout};

/// The parent of the cgroups dory names itself (`/dory/<id>`).
pub const DEFAULT_CGROUP_PARENT: &str = "/dory/";

/// How long `delete --force` and `kill` wait for processes to be gone.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// The live status of a container (runtime-spec `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lifecycle errors; messages follow runc's where it has one.
#[derive(Debug)]
pub enum Error {
    NotFound(String),
    Io(String, std::io::Error),
    Cgroup(crate::cgroup::Error),
    /// The operation does not fit the container's status.
    WrongStatus(String),
    Signal(Errno),
    Timeout(String),
    Hook(String),
    /// The config `create` kept in the state directory cannot be read.
    SavedConfig(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound(id) => write!(f, "container \"{id}\" does not exist"),
            Error::Io(what, e) => write!(f, "{what}: {e}"),
            Error::Cgroup(e) => write!(f, "cgroup: {e}"),
            Error::WrongStatus(m) => f.write_str(m),
            Error::Signal(e) => write!(f, "kill: {}", e.desc()),
            Error::Timeout(m) | Error::Hook(m) | Error::SavedConfig(m) => f.write_str(m),
        }
    }
}

/// One container's state entry, loaded.
pub struct Container {
    pub id: String,
    pub dir: PathBuf,
    loaded: Loaded,
}

impl Container {
    pub fn load(root: &Path, id: &str) -> Result<Container, Error> {
        state::validate_id(id).map_err(|_| Error::NotFound(id.to_string()))?;
        let dir = state::dir(root, id);
        let loaded = Loaded::read(&dir).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound(id.to_string()),
            _ => Error::Io(format!("read state of \"{id}\""), e),
        })?;
        Ok(Container {
            id: id.to_string(),
            dir,
            loaded,
        })
    }

    pub fn state(&self) -> state::State<'_> {
        self.loaded.state()
    }

    pub fn cgroup(&self) -> Result<Cgroup, Error> {
        let layout = Layout::detect().map_err(Error::Cgroup)?;
        Cgroup::open(&layout, self.state().cgroup).map_err(Error::Cgroup)
    }

    /// The live status: the init's liveness, the exec fifo and the freezer.
    pub fn status(&self) -> Status {
        let s = self.state();
        if !state::is_running(&s) {
            return Status::Stopped;
        }
        if self.dir.join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if self
            .cgroup()
            .and_then(|c| c.is_frozen().map_err(Error::Cgroup))
            .unwrap_or(false)
        {
            return Status::Paused;
        }
        Status::Running
    }

    /// The OCI state JSON with the live status (what `dory state` prints).
    pub fn state_json(&self) -> String {
        let mut s = self.state();
        let status = self.status();
        s.status = status.as_str();
        if status == Status::Stopped {
            s.pid = 0;
        }
        let mut json = s.to_json(false);
        // runtime-spec state: the config's annotations, when it has any.
        if let Ok(a) = std::fs::read_to_string(self.dir.join(state::ANNOTATIONS)) {
            if a.starts_with('{') && json.ends_with('}') {
                json.pop();
                json.push_str(",\"annotations\":");
                json.push_str(&a);
                json.push('}');
            }
        }
        json
    }

    /// The config bytes `create` read (see `state::CONFIG`).
    pub fn saved_config(&self) -> Result<Vec<u8>, Error> {
        state::read_config(&self.dir).map_err(Error::SavedConfig)
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.state().pid)
    }
}

/// `start`: lets a created container exec its process.
pub fn start(c: &Container) -> Result<(), Error> {
    let status = c.status();
    if status != Status::Created {
        return Err(Error::WrongStatus(format!(
            "cannot start a container that is {status}"
        )));
    }
    let s = c.state();
    // The config as create read it: the bundle may have changed since (runtime-spec).
    let config = c.saved_config()?;
    // startContainer hooks run in the container before its program (runtime-spec).
    if let Err(e) = hooks::run_start_phase(c, &config) {
        return Err(abort_start(c, &config, e));
    }
    super::release_exec_fifo(&c.dir.join(EXEC_FIFO), &s).map_err(|e| match e {
        super::FifoError::Timeout => Error::Timeout(e.to_string()),
        super::FifoError::Io(..) | super::FifoError::InitExited => {
            Error::WrongStatus(e.to_string())
        }
    })?;
    rewrite_status(c, "running")?;
    // As runc: a failed poststart hook fails the start and ends the container (the
    // hooks after it do not run). runtime-spec asks for a warning instead.
    if let Err(e) = hooks::run_phase(&config, s.bundle, &c.id, "running", s.pid, Phase::Poststart) {
        return Err(abort_start(c, &config, e));
    }
    Ok(())
}

/// A hook failed `start`: runtime-spec's "stop the container and continue the lifecycle
/// at step 12": the container is killed and destroyed, then the poststop hooks run.
/// Returns the hook's error (with a failed removal's, if any).
fn abort_start(c: &Container, config: &[u8], hook_error: String) -> Error {
    match destroy(c, Some(config), "dory start") {
        Ok(()) => Error::Hook(hook_error),
        Err(e) => Error::Hook(format!("{hook_error}; removing the container: {e}")),
    }
}

fn rewrite_status(c: &Container, status: &str) -> Result<(), Error> {
    let mut s = c.state();
    s.status = status;
    state::write(&c.dir, &s).map_err(|e| Error::Io("write state".into(), e))
}

/// Parses a signal as runc does: `KILL`, `SIGKILL`, `9`.
/// A signal by name (`TERM`, `SIGTERM`, any case) or number; `0` gives `Some(None)`: no
/// signal, only the check that the process exists (as kill(2) and runc).
pub fn parse_signal(text: &str) -> Option<Option<Signal>> {
    if let Ok(n) = text.parse::<i32>() {
        return if n == 0 {
            Some(None)
        } else {
            Signal::try_from(n).ok().map(Some)
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>().ok().map(Some)
}

/// `kill`: signals the init, or with `all` every process of the cgroup. `None` only
/// checks that the init exists.
pub fn kill_container(c: &Container, sig: Option<Signal>, all: bool) -> Result<(), Error> {
    let status = c.status();
    // With --all, what is left in the cgroup after the init exited (an orphan of a
    // container without its own pid namespace) is still signalled, as runc does.
    if status == Status::Stopped && !all {
        return Err(Error::WrongStatus("container not running".into()));
    }
    // A created container's init is still dory, waiting for `start`, and as the first
    // process of its pid namespace the kernel drops every signal it has no handler for.
    // A signal that would end a program ends it instead (runc's waiting init dies too).
    let sig = match sig {
        Some(s) if status == Status::Created && terminates_by_default(s) => Some(Signal::SIGKILL),
        other => other,
    };
    if all {
        let cg = c.cgroup()?;
        for pid in cg.pids().map_err(Error::Cgroup)? {
            let _ = kill(Pid::from_raw(pid), sig);
        }
        if status == Status::Paused && sig == Some(Signal::SIGKILL) {
            let _ = cg.freeze(false);
        }
        return Ok(());
    }
    // Through a pidfd pinned at the start-time check: never a process that took the
    // init's pid after it exited.
    let pin = super::state::InitPin::new(&c.state())
        .ok_or_else(|| Error::WrongStatus("container not running".into()))?;
    crate::sys::pidfd_signal(pin.pidfd(), sig.map_or(0, |s| s as i32)).map_err(Error::Signal)?;
    if status == Status::Paused && sig == Some(Signal::SIGKILL) {
        // A frozen process dies only once thawed.
        let _ = c.cgroup().map(|cg| cg.freeze(false));
    }
    Ok(())
}

/// Whether a signal's default action ends the process (signal(7): Term or Core).
fn terminates_by_default(sig: Signal) -> bool {
    !matches!(
        sig,
        Signal::SIGCHLD
            | Signal::SIGCONT
            | Signal::SIGURG
            | Signal::SIGWINCH
            | Signal::SIGSTOP
            | Signal::SIGTSTP
            | Signal::SIGTTIN
            | Signal::SIGTTOU
    )
}

/// `delete`: removes a stopped (or created) container; `force` kills a running one.
pub fn delete(c: &Container, force: bool) -> Result<(), Error> {
    let status = c.status();
    match status {
        Status::Stopped | Status::Created => {}
        Status::Running | Status::Paused if force => {}
        Status::Running | Status::Paused => {
            return Err(Error::WrongStatus(format!(
                "cannot delete container {} that is not stopped: {status}",
                c.id
            )))
        }
    }
    // Read before the state directory goes: the poststop hooks run after. A state entry
    // without it (made by an older dory, or damaged) is still removed, without hooks.
    let config = c.saved_config().map_err(|e| {
        crate::cli::log::warning(format_args!("dory delete: {e}: no poststop hooks run"));
    });
    destroy(c, config.as_deref().ok(), "dory delete")
}

/// Kills the container if it still runs, removes its cgroup and state, then runs the
/// poststop hooks of `config` (their failures are warnings, prefixed with `command`).
fn destroy(c: &Container, config: Option<&[u8]>, command: &str) -> Result<(), Error> {
    if state::is_running(&c.state()) {
        kill_and_wait(c)?;
    }
    if let Ok(cg) = c.cgroup() {
        // Stray processes (no pid namespace) go with the container.
        super::kill_cgroup(&cg);
        cg.remove().map_err(Error::Cgroup)?;
        // dory's default "/dory/<id>": the shared parent goes with its last container.
        if c.state().cgroup.starts_with(DEFAULT_CGROUP_PARENT) {
            cg.remove_empty_parents(1);
        }
    }
    std::fs::remove_dir_all(&c.dir)
        .map_err(|e| Error::Io(format!("remove {}", c.dir.display()), e))?;
    let s = c.state();
    let Some(config) = config else {
        return Ok(());
    };
    if let Err(e) = hooks::run_phase(config, s.bundle, &c.id, "stopped", 0, Phase::Poststop) {
        // runtime-spec: a failing poststop hook is a warning.
        crate::cli::log::warning(format_args!("{command}: {e}"));
    }
    Ok(())
}

fn kill_and_wait(c: &Container) -> Result<(), Error> {
    let cg = c.cgroup().ok();
    let _ = kill(c.pid(), Signal::SIGKILL);
    if let Some(cg) = &cg {
        if let Ok(pids) = cg.pids() {
            for pid in pids {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        let _ = cg.freeze(false);
    }
    let deadline = Instant::now() + KILL_TIMEOUT;
    while state::is_running(&c.state()) {
        if Instant::now() > deadline {
            return Err(Error::Timeout(format!(
                "container {} did not exit after SIGKILL",
                c.id
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// `pause`/`resume`: freezes or thaws the cgroup.
pub fn set_paused(c: &Container, pause: bool) -> Result<(), Error> {
    let status = c.status();
    match (pause, status) {
        (true, Status::Running) | (false, Status::Paused) => {}
        (true, _) => {
            return Err(Error::WrongStatus(format!(
                "container not running: {status}"
            )))
        }
        (false, _) => {
            return Err(Error::WrongStatus(format!(
                "container not paused: {status}"
            )))
        }
    }
    c.cgroup()?.freeze(pause).map_err(Error::Cgroup)?;
    rewrite_status(c, if pause { "paused" } else { "running" })
}

/// `ps`: the pids in the container's cgroup.
pub fn pids(c: &Container) -> Result<Vec<i32>, Error> {
    c.cgroup()?.pids().map_err(Error::Cgroup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_and_numbers() {
        assert_eq!(parse_signal("KILL"), Some(Some(Signal::SIGKILL)));
        assert_eq!(parse_signal("SIGTERM"), Some(Some(Signal::SIGTERM)));
        assert_eq!(parse_signal("term"), Some(Some(Signal::SIGTERM)));
        assert_eq!(parse_signal("9"), Some(Some(Signal::SIGKILL)));
        assert_eq!(parse_signal("USR1"), Some(Some(Signal::SIGUSR1)));
        assert_eq!(parse_signal("NOPE"), None);
        assert_eq!(parse_signal("999"), None);
        assert_eq!(parse_signal("0"), Some(None));
    }
}
