//! The supervisor loop: one `poll(2)` over the signalfd, the ctl socket and the containers'
//! log pipes, with the timeout computed from the nearest deadline (backoff restart, stop
//! grace, health probe, watchdog pet). Nothing wakes it when nothing happens, except the
//! watchdog pet when a watchdog is configured.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

use heapless::Vec as HVec;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::board::{
    Board, Container, Kind, OnFailure, OnGiveUp, CTL_CLIENT_IN_CONTAINER, CTL_SOCKET_IN_CONTAINER,
    MAX_CONTAINERS,
};
use super::console::{container_line, debug, now_ms, say, Secs};
use super::ctl::{self, Request};
use super::order::Order;
use super::policy::{Decision, Exit, Policy, RestartState};
use super::ring::{LineSplitter, Ring, LOG_RING_BYTES};
use super::signals::{action_for, Action};
use super::watchdog::{self, Watchdog};
use crate::container::{self, LaunchOptions, Started, Stdio};

/// Where container state lives (the same root `dory run` uses).
pub const STATE_ROOT: &str = "/run/dory";
/// After SIGKILL, how long to wait for the exit before moving on.
pub const KILL_WAIT_MS: u64 = 2000;
/// At the end of shutdown: grace between `kill(-1, SIGTERM)` and `kill(-1, SIGKILL)`.
pub const ALL_TERM_GRACE_MS: u64 = 2000;
/// … and how long to wait for the last exits after `kill(-1, SIGKILL)`.
pub const ALL_KILL_WAIT_MS: u64 = 1000;
/// Rescue without a shell: reboot after this long (not in test mode).
pub const RESCUE_REBOOT_DELAY_MS: u64 = 10_000;
/// Bytes read from one log pipe per wake-up before serving others.
const LOG_READ_BUDGET: usize = 16 * 1024;
/// ctl clients served per wake-up of the loop before it looks at everything else again.
const CTL_CLIENTS_PER_WAKE: usize = 4;
/// fds polled: signalfd, ctl socket, one log pipe per container.
const MAX_POLL_FDS: usize = 2 + MAX_CONTAINERS;

/// How the supervisor was started.
#[derive(Debug, Clone, Default)]
pub struct Mode {
    /// `dory init` test mode: no reboot(2), no rescue shell, exit 0 at the end.
    pub test: bool,
    /// getpid() == 1 (a real board or the init of a pid namespace): `kill(-1)` is safe.
    pub pid1: bool,
    /// Path of the ctl socket.
    pub ctl_socket: String,
    /// `unsafeNoPivot` / `dory.nopivot`: containers may fall back to MS_MOVE + chroot.
    pub allow_no_pivot: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Running,
    Backoff { at_ms: u64 },
    Stopping,
    Stopped,
    Exited(Exit),
    GaveUp,
    Failed(Exit),
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Running => "running",
            State::Backoff { .. } => "backoff",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
            State::Exited(_) => "exited",
            State::GaveUp => "gave-up",
            State::Failed(_) => "failed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    Stop,
    Restart,
    Unhealthy,
    Shutdown,
}

#[derive(Debug, Clone, Copy)]
struct StopCtl {
    why: Why,
    deadline_ms: u64,
    killed: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct Probe {
    next_ms: u64,
    running: Option<(Pid, u64)>,
    fails: u32,
}

struct Slot<'a> {
    c: &'a Container<'a>,
    state: State,
    pid: Option<Pid>,
    started: Option<Started>,
    started_ms: u64,
    policy: RestartState,
    restarts: u32,
    stop: Option<StopCtl>,
    probe: Probe,
    log: Option<OwnedFd>,
    split: LineSplitter,
    ring: Ring<LOG_RING_BYTES>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Oneshots {
        current: Option<usize>,
    },
    Running,
    Rescue,
    Stopping {
        action: Action,
        step: usize,
    },
    KillAll {
        action: Action,
        stage: u8,
        deadline_ms: u64,
    },
    Done(Action),
}

#[derive(Clone, Copy)]
enum Tag {
    Signal,
    Ctl,
    Log(usize),
}

pub struct Supervisor<'a> {
    mode: Mode,
    slots: Vec<Slot<'a>>,
    order: Order,
    stop_list: HVec<usize, MAX_CONTAINERS>,
    phase: Phase,
    sigfd: SignalFd,
    ctl: Option<UnixListener>,
    rescue_shell: Option<Pid>,
    rescue_reboot_ms: Option<u64>,
    no_children: bool,
    /// Whether the first line of container output was seen (reported once, for boot time).
    first_output_seen: bool,
    /// When to report PID 1's memory once the board has settled after boot.
    idle_report_ms: Option<u64>,
    /// The file this dory runs from, bound into `"ctl": true` containers as the client.
    own_exe: std::path::PathBuf,
}

/// How long after "boot complete" dory reports its own resident memory (the board idle).
const IDLE_REPORT_AFTER_MS: u64 = 2000;

/// A `kB` figure of this process's /proc/self/status (`VmRSS:`, `RssAnon:`…).
fn own_status_kb(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn exit_text(e: Exit) -> String {
    match e {
        Exit::Code(c) => format!("status {c}"),
        Exit::Signal(s) => match Signal::try_from(s) {
            Ok(sig) => format!("signal {}", sig.as_str()),
            Err(_) => format!("signal {s}"),
        },
        Exit::Unhealthy => "unhealthy".into(),
    }
}

fn policy_name(p: Policy) -> &'static str {
    match p {
        Policy::Always => "always",
        Policy::OnFailure => "on-failure",
        Policy::Never => "never",
    }
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> nix::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(drop)
}

/// Binds the ctl socket (mode 0600), replacing a stale one.
fn bind_ctl(path: &str) -> Option<UnixListener> {
    if let Some(dir) = Path::new(path).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::remove_file(path);
    let l = match UnixListener::bind(path) {
        Ok(l) => l,
        Err(e) => {
            say!("dory: ctl socket {path}: {e}; dory ctl is unavailable");
            return None;
        }
    };
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    if let Err(e) = l.set_nonblocking(true) {
        say!("dory: ctl socket {path}: {e}");
    }
    Some(l)
}

impl<'a> Supervisor<'a> {
    /// Sets up the signalfd (the signals must already be blocked), the ctl socket and the
    /// watchdog.
    pub fn new(mode: Mode, board: &'a Board<'a>, order: Order) -> nix::Result<Self> {
        let sigfd = SignalFd::with_flags(
            &super::signals::handled(),
            SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC,
        )?;
        let ctl = bind_ctl(&mode.ctl_socket);
        if let Some(w) = board
            .watchdog
            .as_ref()
            .and_then(|w| Watchdog::open(w.device, w.timeout_secs))
        {
            watchdog::arm(w);
        }
        // Long steps of a launch or a stop pet the watchdog and end at this deadline
        // where the config sets none.
        container::waits::set_pid1(
            pet_watchdog,
            Duration::from_secs(u64::from(board.step_timeout_secs)),
        );
        let mut slots = Vec::with_capacity(board.containers.len());
        for c in &board.containers {
            slots.push(Slot {
                c,
                state: State::Waiting,
                pid: None,
                started: None,
                started_ms: 0,
                policy: RestartState::default(),
                restarts: 0,
                stop: None,
                probe: Probe::default(),
                log: None,
                split: LineSplitter::default(),
                ring: Ring::new(),
            });
        }
        Ok(Supervisor {
            mode,
            slots,
            order,
            stop_list: HVec::new(),
            phase: Phase::Oneshots { current: None },
            sigfd,
            ctl,
            rescue_shell: None,
            rescue_reboot_ms: None,
            no_children: false,
            first_output_seen: false,
            idle_report_ms: None,
            own_exe: std::fs::read_link("/proc/self/exe").unwrap_or_default(),
        })
    }

    /// Runs until a shutdown has stopped everything; returns the requested action and the
    /// watchdog (for the magic close after the last step).
    pub fn run(mut self, rescue: Option<String>) -> (Action, Option<Watchdog>) {
        match rescue {
            Some(reason) => self.enter_rescue(&reason),
            None => self.advance_boot(),
        }
        loop {
            self.reap();
            self.tick(now_ms());
            if let Phase::Done(action) = self.phase {
                if let Some(l) = self.ctl.take() {
                    drop(l);
                    let _ = std::fs::remove_file(&self.mode.ctl_socket);
                }
                return (action, watchdog::disarm_slot());
            }
            let timeout = match self.next_deadline() {
                None => PollTimeout::NONE,
                Some(d) => {
                    let ms = d.saturating_sub(now_ms());
                    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
                }
            };
            self.wait(timeout);
        }
    }

    // ----------------------------------------------------------------------------------
    // Events

    fn wait(&mut self, timeout: PollTimeout) {
        let mut ready: HVec<(Tag, PollFlags), MAX_POLL_FDS> = HVec::new();
        {
            let mut tags: HVec<Tag, MAX_POLL_FDS> = HVec::new();
            let mut fds: HVec<PollFd<'_>, MAX_POLL_FDS> = HVec::new();
            let _ = fds.push(PollFd::new(self.sigfd.as_fd(), PollFlags::POLLIN));
            let _ = tags.push(Tag::Signal);
            if let Some(l) = &self.ctl {
                let _ = fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
                let _ = tags.push(Tag::Ctl);
            }
            for (i, s) in self.slots.iter().enumerate() {
                if let Some(fd) = &s.log {
                    if fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN)).is_ok() {
                        let _ = tags.push(Tag::Log(i));
                    }
                }
            }
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => {
                    say!("dory: poll failed: {e}");
                    // Avoid a busy loop on a persistent error.
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            for (fd, tag) in fds.iter().zip(tags.iter()) {
                if let Some(r) = fd.revents() {
                    if !r.is_empty() {
                        let _ = ready.push((*tag, r));
                    }
                }
            }
        }
        for (tag, _) in ready {
            match tag {
                Tag::Signal => self.read_signals(),
                Tag::Ctl => self.serve_ctl(),
                Tag::Log(i) => self.read_log(i),
            }
        }
    }

    fn read_signals(&mut self) {
        loop {
            match self.sigfd.read_signal() {
                Ok(Some(info)) => {
                    let Ok(sig) = Signal::try_from(i32::try_from(info.ssi_signo).unwrap_or(0))
                    else {
                        continue;
                    };
                    if sig == Signal::SIGCHLD {
                        continue; // reaped at the top of the loop
                    }
                    match action_for(sig) {
                        Some(action) => {
                            say!("dory: {} received: {}", sig.as_str(), action.name());
                            self.begin_shutdown(action);
                        }
                        None => say!("dory: {} received, ignored", sig.as_str()),
                    }
                }
                Ok(None) => return,
                Err(Errno::EINTR) => {}
                Err(e) => {
                    say!("dory: reading signalfd: {e}");
                    return;
                }
            }
        }
    }

    /// Reaps every exited child.
    fn reap(&mut self) {
        loop {
            match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => self.on_reaped(pid, Exit::Code(code)),
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    self.on_reaped(pid, Exit::Signal(sig as i32))
                }
                Ok(WaitStatus::StillAlive) => return,
                Ok(_) => {}
                Err(Errno::EINTR) => {}
                Err(Errno::ECHILD) => {
                    self.no_children = true;
                    return;
                }
                Err(e) => {
                    say!("dory: waitpid: {e}");
                    return;
                }
            }
        }
    }

    fn on_reaped(&mut self, pid: Pid, exit: Exit) {
        let now = now_ms();
        if let Some(i) = self.slots.iter().position(|s| s.pid == Some(pid)) {
            self.on_container_exit(i, exit, now);
            return;
        }
        if let Some(s) = self
            .slots
            .iter_mut()
            .find(|s| s.probe.running.is_some_and(|(p, _)| p == pid))
        {
            s.probe.running = None;
            if exit == Exit::Code(0) {
                s.probe.fails = 0;
                debug!("dory: {} health probe ok", s.c.id);
            } else {
                let id = s.c.id;
                self.probe_failed(id, &exit_text(exit), now);
            }
            return;
        }
        if super::logfile::reaped(pid) {
            say!(
                "dory: log: the log writer exited ({}); lines go to the console only",
                exit_text(exit)
            );
            return;
        }
        if self.rescue_shell == Some(pid) {
            self.rescue_shell = None;
            say!("dory: rescue shell exited ({}); rebooting", exit_text(exit));
            self.begin_shutdown(Action::Reboot);
            return;
        }
        debug!("dory: reaped pid {pid} ({})", exit_text(exit));
    }

    // ----------------------------------------------------------------------------------
    // Timers

    fn next_deadline(&self) -> Option<u64> {
        let mut d: Option<u64> = None;
        let mut at = |t: u64| d = Some(d.map_or(t, |x| x.min(t)));
        if let Some(t) = watchdog::next_due() {
            at(t);
        }
        if let Some(t) = self.rescue_reboot_ms {
            at(t);
        }
        if let Some(t) = self.idle_report_ms {
            at(t);
        }
        if let Phase::KillAll { deadline_ms, .. } = self.phase {
            at(deadline_ms);
        }
        for s in &self.slots {
            if let State::Backoff { at_ms } = s.state {
                at(at_ms);
            }
            if let Some(st) = &s.stop {
                at(st.deadline_ms);
            }
            if s.state == State::Running && s.c.health.is_some() {
                match s.probe.running {
                    Some((_, deadline)) => at(deadline),
                    None => at(s.probe.next_ms),
                }
            }
        }
        d
    }

    fn tick(&mut self, now: u64) {
        if self.idle_report_ms.is_some_and(|t| now >= t) {
            self.idle_report_ms = None;
            if matches!(self.phase, Phase::Running) {
                let running = self
                    .slots
                    .iter()
                    .filter(|s| s.state == State::Running)
                    .count();
                let kb =
                    |key| own_status_kb(key).map_or_else(|| "?".to_string(), |k| k.to_string());
                say!(
                    "dory: idle: VmRSS {} kB with {running} services running (anon {} kB, file {} kB)",
                    kb("VmRSS:"),
                    kb("RssAnon:"),
                    kb("RssFile:")
                );
            }
        }
        let _ = watchdog::pet_if_due();
        if self.rescue_reboot_ms.is_some_and(|t| now >= t) {
            self.rescue_reboot_ms = None;
            self.begin_shutdown(Action::Reboot);
        }
        for i in 0..self.slots.len() {
            self.tick_slot(i, now);
        }
        self.tick_phase(now);
    }

    fn tick_slot(&mut self, i: usize, now: u64) {
        let Some(s) = self.slots.get_mut(i) else {
            return;
        };
        let id = s.c.id;
        if let State::Backoff { at_ms } = s.state {
            if now >= at_ms {
                s.restarts += 1;
                self.start(i);
                return;
            }
        }
        if let (Some(st), Some(pid)) = (s.stop.as_mut(), s.pid) {
            if now >= st.deadline_ms {
                if !st.killed {
                    say!(
                        "dory: {id} did not exit within {} ms; sending SIGKILL",
                        s.c.stop_grace_ms
                    );
                    let _ = kill(pid, Signal::SIGKILL);
                    st.killed = true;
                    st.deadline_ms = now + KILL_WAIT_MS;
                } else {
                    say!("dory: {id} (pid {pid}) still not reaped {KILL_WAIT_MS} ms after SIGKILL; moving on");
                    s.pid = None;
                    s.stop = None;
                    s.state = State::Stopped;
                    // Every way out of a slot leaves nothing: no state entry (the next
                    // start would find it "already exists"), no cgroup, no process. Its
                    // exit, when it comes, is reaped by the loop as an unknown pid.
                    if let Some(started) = s.started.take() {
                        started.destroy();
                    }
                }
            }
        }
        let Some(health) = &s.c.health else { return };
        if s.state != State::Running {
            return;
        }
        match s.probe.running {
            Some((ppid, deadline)) if now >= deadline => {
                kill_probe(ppid);
                s.probe.running = None;
                let timeout_ms = health.timeout_ms;
                self.probe_failed(id, &format!("timed out after {timeout_ms} ms"), now);
            }
            Some(_) => {}
            None if now >= s.probe.next_ms => {
                s.probe.next_ms = now + u64::from(health.interval_ms);
                if s.pid.is_none() {
                    return;
                }
                match super::probe::start(Path::new(STATE_ROOT), id, &health.args) {
                    Ok(ppid) => s.probe.running = Some((ppid, now + u64::from(health.timeout_ms))),
                    Err(e) => self.probe_failed(id, &e, now),
                }
            }
            None => {}
        }
    }

    fn probe_failed(&mut self, id: &str, why: &str, now: u64) {
        let Some(i) = self.slots.iter().position(|s| s.c.id == id) else {
            return;
        };
        let Some(s) = self.slots.get_mut(i) else {
            return;
        };
        let Some(h) = &s.c.health else { return };
        s.probe.fails += 1;
        say!(
            "dory: {id} health probe failed ({why}), {}/{} in a row",
            s.probe.fails,
            h.failures
        );
        if s.probe.fails >= h.failures && s.state == State::Running {
            say!("dory: {id} is unhealthy; restarting it");
            self.send_stop(i, Why::Unhealthy, now);
        }
    }

    fn tick_phase(&mut self, now: u64) {
        match self.phase {
            Phase::Stopping { action, mut step } => {
                loop {
                    let Some(&i) = self.stop_list.get(step) else {
                        self.phase = Phase::KillAll {
                            action,
                            stage: 0,
                            deadline_ms: now,
                        };
                        return self.tick_phase(now);
                    };
                    let Some(s) = self.slots.get(i) else {
                        step += 1;
                        continue;
                    };
                    if s.pid.is_none() {
                        step += 1;
                        continue;
                    }
                    match s.stop {
                        Some(mut st) if st.why != Why::Shutdown => {
                            st.why = Why::Shutdown;
                            if let Some(s) = self.slots.get_mut(i) {
                                s.stop = Some(st);
                            }
                        }
                        Some(_) => {}
                        None => self.send_stop(i, Why::Shutdown, now),
                    }
                    break;
                }
                self.phase = Phase::Stopping { action, step };
            }
            Phase::KillAll {
                action,
                stage,
                deadline_ms,
            } => {
                if !self.mode.pid1 {
                    self.phase = Phase::Done(action);
                    return;
                }
                match stage {
                    0 => {
                        // The log writer ends first, its files closed and complete.
                        super::logfile::stop();
                        say!("dory: sending SIGTERM to all processes");
                        let _ = kill(Pid::from_raw(-1), Signal::SIGTERM);
                        self.no_children = false;
                        self.phase = Phase::KillAll {
                            action,
                            stage: 1,
                            deadline_ms: now + ALL_TERM_GRACE_MS,
                        };
                    }
                    1 if self.no_children || now >= deadline_ms => {
                        if !self.no_children {
                            say!("dory: sending SIGKILL to all processes");
                            let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
                        }
                        self.phase = Phase::KillAll {
                            action,
                            stage: 2,
                            deadline_ms: now + ALL_KILL_WAIT_MS,
                        };
                    }
                    2 if self.no_children || now >= deadline_ms => self.phase = Phase::Done(action),
                    _ => {}
                }
            }
            _ => {}
        }
    }

    // ----------------------------------------------------------------------------------
    // Starting and stopping

    fn advance_boot(&mut self) {
        let Phase::Oneshots { current } = self.phase else {
            return;
        };
        let from = current.map_or(0, |c| c + 1);
        let next = self
            .slots
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, s)| s.c.kind == Kind::Oneshot)
            .map(|(i, _)| i);
        match next {
            Some(i) => {
                self.phase = Phase::Oneshots { current: Some(i) };
                self.start(i);
            }
            None => {
                self.phase = Phase::Running;
                let order = self.order.clone();
                for i in order {
                    if matches!(self.phase, Phase::Running) {
                        self.start(i);
                    }
                }
                if matches!(self.phase, Phase::Running) {
                    say!(
                        "dory: boot complete ({} services started)",
                        self.order.len()
                    );
                    self.idle_report_ms = Some(now_ms() + IDLE_REPORT_AFTER_MS);
                }
            }
        }
    }

    fn start(&mut self, i: usize) {
        let now = now_ms();
        let Some(s) = self.slots.get_mut(i) else {
            return;
        };
        // Leftover output of the previous run is drained and shown before the new pipe.
        if s.log.is_some() {
            self.read_log(i);
            if let Some(s) = self.slots.get_mut(i) {
                s.log = None;
                let id = s.c.id;
                s.split.flush(|l| container_line(id, l));
            }
        }
        let Some(s) = self.slots.get_mut(i) else {
            return;
        };
        s.stop = None;
        s.probe = Probe {
            next_ms: now + s.c.health.as_ref().map_or(0, |h| u64::from(h.interval_ms)),
            ..Probe::default()
        };
        s.started_ms = now;
        let id = s.c.id;
        let stdio = if s.c.console {
            console_stdio()
        } else {
            log_pipe().map(|(r, st)| (Some(r), st))
        };
        let (read_end, stdio) = match stdio {
            Ok(p) => p,
            Err(e) => {
                say!("dory: cannot start {id}: stdio: {e}");
                self.after_exit(i, Exit::Code(127), now);
                return;
            }
        };
        if s.c.data {
            if let Err(e) = make_data_dir(id) {
                say!("dory: cannot start {id}: /data/{id}: {e}");
                self.after_exit(i, Exit::Code(127), now);
                return;
            }
        }
        let Some(s) = self.slots.get_mut(i) else {
            return;
        };
        let mut opts = LaunchOptions::new(id, Path::new(s.c.bundle), Path::new(STATE_ROOT), stdio);
        opts.allow_no_pivot = self.mode.allow_no_pivot;
        opts.confine_data_binds = true;
        opts.make_data_sources = s.c.data;
        // `"ctl": true`: the control socket and this binary as its client (read-only).
        let ctl_binds = [
            (Path::new(&self.mode.ctl_socket), CTL_SOCKET_IN_CONTAINER),
            (self.own_exe.as_path(), CTL_CLIENT_IN_CONTAINER),
        ];
        if s.c.ctl {
            opts.extra_ro_binds = &ctl_binds;
        }
        let launched = container::launch(opts);
        // launch builds the config and plan on the stack: give those pages back.
        let trimmed = crate::sys::trim_stack();
        debug!(
            "dory: launched {id} in {} ms; trimmed {} KiB of stack range",
            now_ms().saturating_sub(now),
            trimmed / 1024
        );
        let Some(s) = self.slots.get_mut(i) else {
            return;
        };
        match launched {
            Ok(mut started) => {
                let pid = Pid::from_raw(started.pid);
                // A config with `process.terminal` gets a pty: its master is the log.
                let log = match started.pty_master.take() {
                    Some(m) if set_nonblocking(m.as_fd()).is_ok() => Some(m),
                    _ => read_end,
                };
                s.pid = Some(pid);
                s.started = Some(started);
                s.state = State::Running;
                s.log = log;
                say!("dory: started {id} (pid {pid}, t={})", Secs(now));
            }
            Err(e) => {
                say!("dory: cannot start {id}: {e}");
                self.after_exit(i, Exit::Code(127), now);
            }
        }
    }

    fn send_stop(&mut self, i: usize, why: Why, now: u64) {
        let Some(s) = self.slots.get_mut(i) else {
            return;
        };
        let Some(pid) = s.pid else { return };
        let sig = s.c.stop_signal;
        let grace = s.c.stop_grace_ms;
        say!(
            "dory: stopping {} ({}, grace {grace} ms)",
            s.c.id,
            sig.as_str()
        );
        if let Err(e) = kill(pid, sig) {
            say!("dory: kill {} {}: {e}", s.c.id, sig.as_str());
        }
        s.stop = Some(StopCtl {
            why,
            deadline_ms: now + u64::from(grace),
            killed: false,
        });
        s.state = State::Stopping;
    }

    fn on_container_exit(&mut self, i: usize, exit: Exit, now: u64) {
        // Its last output belongs before the exit line.
        self.read_log(i);
        let Some(s) = self.slots.get_mut(i) else {
            return;
        };
        s.pid = None;
        if let Some(started) = s.started.take() {
            started.destroy();
        }
        if let Some((ppid, _)) = s.probe.running.take() {
            kill_probe(ppid);
        }
        let ran = now.saturating_sub(s.started_ms);
        say!(
            "dory: {} exited ({}) after {ran} ms, t={}",
            s.c.id,
            exit_text(exit),
            Secs(now)
        );
        let stop = s.stop.take();
        let exit = match stop.map(|st| st.why) {
            Some(Why::Stop) | Some(Why::Shutdown) => {
                s.state = State::Stopped;
                return;
            }
            Some(Why::Restart) => {
                s.policy.reset();
                s.restarts += 1;
                if self.shutting_down() {
                    return;
                }
                self.start(i);
                return;
            }
            Some(Why::Unhealthy) => Exit::Unhealthy,
            None => exit,
        };
        self.after_exit(i, exit, now);
    }

    /// What happens after a container ended on its own (or could not be launched).
    fn after_exit(&mut self, i: usize, exit: Exit, now: u64) {
        let shutting_down = self.shutting_down();
        let in_boot = self.phase == Phase::Oneshots { current: Some(i) };
        let Some(s) = self.slots.get_mut(i) else {
            return;
        };
        let id = s.c.id;
        if shutting_down {
            s.state = State::Stopped;
            return;
        }
        if s.c.kind == Kind::Oneshot {
            s.state = if exit.is_failure() {
                State::Failed(exit)
            } else {
                State::Exited(exit)
            };
            if !in_boot {
                return;
            }
            if !exit.is_failure() {
                self.advance_boot();
                return;
            }
            match s.c.on_failure {
                OnFailure::Ignore => {
                    say!(
                        "dory: oneshot {id} failed ({}); ignored (onFailure: ignore)",
                        exit_text(exit)
                    );
                    self.advance_boot();
                }
                OnFailure::Reboot => {
                    say!(
                        "dory: oneshot {id} failed ({}); rebooting (onFailure: reboot)",
                        exit_text(exit)
                    );
                    self.begin_shutdown(Action::Reboot);
                }
                OnFailure::Poweroff => {
                    say!(
                        "dory: oneshot {id} failed ({}); powering off (onFailure: poweroff)",
                        exit_text(exit)
                    );
                    self.begin_shutdown(Action::Poweroff);
                }
                OnFailure::Rescue => {
                    let reason = format!("oneshot {id} failed ({})", exit_text(exit));
                    self.enter_rescue(&reason);
                }
            }
            return;
        }
        let spec = s.c.restart;
        match s.policy.on_exit(&spec, s.started_ms, now, exit) {
            Decision::Restart {
                at_ms,
                delay_ms,
                retry,
            } => {
                s.state = State::Backoff { at_ms };
                say!(
                    "dory: restarting {id} in {delay_ms} ms (retry {retry}/{})",
                    spec.max_retries
                );
            }
            Decision::Stay => {
                s.state = State::Exited(exit);
                say!(
                    "dory: {id} not restarted (policy {})",
                    policy_name(spec.policy)
                );
            }
            Decision::GiveUp { retries } => {
                s.state = State::GaveUp;
                let action = s.c.on_give_up;
                say!("dory: giving up on {id} after {retries} restarts");
                match action {
                    OnGiveUp::Ignore => {}
                    OnGiveUp::Reboot => self.begin_shutdown(Action::Reboot),
                    OnGiveUp::Poweroff => self.begin_shutdown(Action::Poweroff),
                }
            }
        }
    }

    fn shutting_down(&self) -> bool {
        matches!(
            self.phase,
            Phase::Stopping { .. } | Phase::KillAll { .. } | Phase::Done(_)
        )
    }

    fn enter_rescue(&mut self, reason: &str) {
        self.phase = Phase::Rescue;
        say!("dory: FATAL: {reason}");
        if self.mode.test {
            say!("dory: test mode: no rescue shell; waiting for a signal (SIGTERM reboot, SIGUSR2 poweroff)");
            return;
        }
        if Path::new("/bin/sh").exists() {
            match super::rescue::spawn_shell() {
                Ok(pid) => {
                    say!("dory: rescue shell on the console (pid {pid}); exit it to reboot");
                    self.rescue_shell = Some(pid);
                    return;
                }
                Err(e) => say!("dory: cannot start rescue shell: {e}"),
            }
        }
        say!(
            "dory: no rescue shell; rebooting in {} s",
            RESCUE_REBOOT_DELAY_MS / 1000
        );
        self.rescue_reboot_ms = Some(now_ms() + RESCUE_REBOOT_DELAY_MS);
    }

    fn begin_shutdown(&mut self, action: Action) {
        if self.shutting_down() {
            say!("dory: already shutting down");
            return;
        }
        say!("dory: shutting down ({})", action.name());
        self.rescue_reboot_ms = None;
        self.stop_list.clear();
        // A running oneshot first, then services in reverse start order.
        for (i, s) in self.slots.iter_mut().enumerate() {
            if let Some((ppid, _)) = s.probe.running.take() {
                kill_probe(ppid);
            }
            if matches!(s.state, State::Backoff { .. }) {
                s.state = State::Stopped;
            }
            if s.c.kind == Kind::Oneshot && s.pid.is_some() {
                let _ = self.stop_list.push(i);
            }
        }
        for &i in self.order.iter().rev() {
            let _ = self.stop_list.push(i);
        }
        self.phase = Phase::Stopping { action, step: 0 };
    }

    // ----------------------------------------------------------------------------------
    // Logs

    fn read_log(&mut self, i: usize) {
        let Some(s) = self.slots.get_mut(i) else {
            return;
        };
        let Some(fd) = &s.log else { return };
        let mut buf = [0u8; 1024];
        let mut budget = LOG_READ_BUDGET;
        let id = s.c.id;
        let eof = loop {
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) => break true,
                Ok(n) => {
                    let data = buf.get(..n).unwrap_or_default();
                    if !self.first_output_seen {
                        self.first_output_seen = true;
                        // /proc/uptime: since the kernel started (a real root's dory
                        // restarted its own clock at the switch).
                        let since_kernel =
                            kernel_uptime_ms().map_or_else(|| "?".to_string(), |ms| ms.to_string());
                        say!(
                            "dory: boot: first container output at +{} ms ({since_kernel} ms after the kernel started)",
                            now_ms()
                        );
                    }
                    s.ring.push(data);
                    s.split.feed(data, |l| container_line(id, l));
                    budget = budget.saturating_sub(n);
                    if budget == 0 {
                        break false;
                    }
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => break false,
                Err(_) => break true,
            }
        };
        if eof {
            s.split.flush(|l| container_line(id, l));
            s.log = None;
        }
    }

    // ----------------------------------------------------------------------------------
    // ctl

    fn serve_ctl(&mut self) {
        // A bounded batch per wake-up, the watchdog petted between clients: a stream of
        // clients (each may take up to ctl::IO_TIMEOUT_MS) cannot hold the loop.
        for _ in 0..CTL_CLIENTS_PER_WAKE {
            pet_watchdog();
            let conn = match &self.ctl {
                Some(l) => l.accept(),
                None => return,
            };
            match conn {
                Ok((stream, _)) => self.serve_one(stream),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    say!("dory: ctl accept: {e}");
                    return;
                }
            }
        }
    }

    fn serve_one(&mut self, mut stream: UnixStream) {
        let timeout = Some(Duration::from_millis(ctl::IO_TIMEOUT_MS));
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(timeout);
        let _ = stream.set_write_timeout(timeout);
        let mut buf = [0u8; ctl::MAX_REQUEST_BYTES];
        let mut n = 0;
        while n < buf.len() {
            let Some(rest) = buf.get_mut(n..) else { break };
            match stream.read(rest) {
                Ok(0) => break,
                Ok(k) => {
                    n += k;
                    if buf.get(..n).is_some_and(|b| b.contains(&b'\n')) {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let text = buf
            .get(..n)
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("");
        let line = text.lines().next().unwrap_or("");
        let reply = match ctl::parse_request(line) {
            Ok(Request::LogFiles(id)) => match self.find(id) {
                // Descriptors, not contents: the client reads the files, PID 1 does not.
                Ok(_) => {
                    for fd in super::logfile::open_files(id) {
                        if crate::sys::send_fd(stream.as_fd(), b"f", fd.as_fd()).is_err() {
                            break;
                        }
                    }
                    String::new()
                }
                Err(e) => e,
            },
            Ok(req) => self.handle(req),
            Err(e) => format!("error: {e}\n"),
        };
        let _ = stream.write_all(reply.as_bytes());
    }

    fn find(&self, id: &str) -> Result<usize, String> {
        self.slots
            .iter()
            .position(|s| s.c.id == id)
            .ok_or_else(|| format!("error: no container \"{id}\"\n"))
    }

    fn handle(&mut self, req: Request<'_>) -> String {
        let now = now_ms();
        let result = match req {
            Request::Status => {
                let mut out = String::new();
                ctl::format_status(
                    &mut out,
                    self.slots.iter().map(|s| ctl::StatusRow {
                        id: s.c.id,
                        state: s.state.name(),
                        pid: s.pid.map(Pid::as_raw),
                        restarts: s.restarts,
                    }),
                );
                Ok(out)
            }
            Request::Logs(id) => self.find(id).map(|i| {
                let mut out = String::new();
                if let Some(s) = self.slots.get(i) {
                    let (a, b) = s.ring.as_slices();
                    out.push_str(&String::from_utf8_lossy(a));
                    out.push_str(&String::from_utf8_lossy(b));
                }
                out
            }),
            // Answered in serve_one (descriptors on the socket).
            Request::LogFiles(id) => self.find(id).map(|_| String::new()),
            Request::Reboot | Request::Poweroff | Request::Halt => {
                let action = match req {
                    Request::Reboot => Action::Reboot,
                    Request::Halt => Action::Halt,
                    _ => Action::Poweroff,
                };
                say!("dory: ctl: {}", action.name());
                self.begin_shutdown(action);
                Ok(format!("ok: {}\n", action.name()))
            }
            Request::Start(id) | Request::Stop(id) | Request::Restart(id)
                if self.shutting_down() =>
            {
                let _ = id;
                Err("error: shutting down\n".to_string())
            }
            Request::Start(id) => self.find(id).and_then(|i| self.ctl_start(i, now)),
            Request::Stop(id) => self.find(id).and_then(|i| self.ctl_stop(i, now)),
            Request::Restart(id) => self.find(id).and_then(|i| self.ctl_restart(i, now)),
        };
        result.unwrap_or_else(|e| e)
    }

    fn ctl_start(&mut self, i: usize, _now: u64) -> Result<String, String> {
        let Some(s) = self.slots.get_mut(i) else {
            return Err("error: no such container\n".into());
        };
        let id = s.c.id;
        if s.pid.is_some() {
            return Err(format!("error: {id} is already running\n"));
        }
        say!("dory: ctl: start {id}");
        s.policy.reset();
        self.start(i);
        let s = self.slots.get(i);
        match s.and_then(|s| s.pid) {
            Some(pid) => Ok(format!("ok: started {id} (pid {pid})\n")),
            None => Err(format!("error: {id} did not start (see the console)\n")),
        }
    }

    fn ctl_stop(&mut self, i: usize, now: u64) -> Result<String, String> {
        let Some(s) = self.slots.get_mut(i) else {
            return Err("error: no such container\n".into());
        };
        let id = s.c.id;
        say!("dory: ctl: stop {id}");
        if s.pid.is_none() {
            if matches!(s.state, State::Backoff { .. }) {
                s.state = State::Stopped;
                return Ok(format!("ok: {id} stopped (restart cancelled)\n"));
            }
            return Err(format!("error: {id} is not running\n"));
        }
        if let Some(st) = &mut s.stop {
            st.why = Why::Stop;
            return Ok(format!("ok: {id} is already stopping\n"));
        }
        let (sig, grace) = (s.c.stop_signal, s.c.stop_grace_ms);
        self.send_stop(i, Why::Stop, now);
        Ok(format!(
            "ok: stopping {id} ({}, grace {grace} ms)\n",
            sig.as_str()
        ))
    }

    fn ctl_restart(&mut self, i: usize, now: u64) -> Result<String, String> {
        let Some(s) = self.slots.get_mut(i) else {
            return Err("error: no such container\n".into());
        };
        let id = s.c.id;
        if s.pid.is_none() {
            return self.ctl_start(i, now);
        }
        say!("dory: ctl: restart {id}");
        if let Some(st) = &mut s.stop {
            st.why = Why::Restart;
        } else {
            self.send_stop(i, Why::Restart, now);
        }
        Ok(format!("ok: restarting {id}\n"))
    }
}

/// What long waits in the container path call between polls.
fn pet_watchdog() {
    let _ = watchdog::pet_if_due();
}

/// Kills a probe: its process group (the probe leads a session of its own, so what it
/// started and left in its group goes too), then the probe itself should it have left
/// the group. The loop reaps it; what escaped the group stays in the container's cgroup.
fn kill_probe(probe: Pid) {
    let _ = nix::sys::signal::killpg(probe, Signal::SIGKILL);
    let _ = kill(probe, Signal::SIGKILL);
}

/// stdin, stdout and stderr on /dev/console, for a `"stdio": "console"` container: its
/// output is not logged (it is already on the console).
fn console_stdio() -> nix::Result<(Option<OwnedFd>, Stdio)> {
    let console = nix::fcntl::open(
        "/dev/console",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let out = console
        .try_clone()
        .map_err(|e| super::board::io_errno(&e))?;
    let err = console
        .try_clone()
        .map_err(|e| super::board::io_errno(&e))?;
    Ok((
        None,
        Stdio::Fds {
            stdin: console,
            stdout: out,
            stderr: err,
        },
    ))
}

/// Milliseconds since the kernel started (`/proc/uptime`, centisecond resolution).
fn kernel_uptime_ms() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/uptime").ok()?;
    let (secs, frac) = text.split_whitespace().next()?.split_once('.')?;
    let secs: u64 = secs.parse().ok()?;
    let cs: u64 = frac.get(..2)?.parse().ok()?;
    secs.checked_mul(1000)?.checked_add(cs.checked_mul(10)?)
}

/// `"data": true`: `/data/<id>` (0700, root's) for the container's config to bind, made
/// beneath an fd of /data (`mkdirat` creates and never follows a symlink) when missing.
fn make_data_dir(id: &str) -> nix::Result<()> {
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;
    let data = nix::fcntl::open(
        "/data",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    match nix::sys::stat::mkdirat(data.as_fd(), id, Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A pipe for a container's stdout and stderr (both the same write end) and /dev/null as
/// stdin; returns the non-blocking read end and the launch stdio.
fn log_pipe() -> nix::Result<(OwnedFd, Stdio)> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    set_nonblocking(r.as_fd())?;
    let w2 = w.try_clone().map_err(|e| super::board::io_errno(&e))?;
    let null = std::fs::File::open("/dev/null").map_err(|e| super::board::io_errno(&e))?;
    debug!("dory: log pipe fd {}", r.as_raw_fd());
    Ok((
        r,
        Stdio::Fds {
            stdin: null.into(),
            stdout: w,
            stderr: w2,
        },
    ))
}
