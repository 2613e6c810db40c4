//! `dory exec`: a new process inside a running container: its namespaces, its cgroup, a
//! process from `--process FILE` or from the container's config with the command line's
//! overrides.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sched::CloneFlags;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::lifecycle::{Container, Status};
use super::{hand_over_pty, run, write_pid_file};
use crate::plan::attrs::exec_attrs;
use crate::plan::{apparmor, apparmor_attr, rlimit_steps, Arena, ProcessPlan};
use crate::sandbox::{self, ExecContext, Failure};
use crate::spec::{self, NamespaceKind};
use crate::sys;

/// What the command line asks of `exec`.
#[derive(Default)]
pub struct ExecRequest<'a> {
    pub process_file: Option<&'a Path>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: Option<String>,
    /// `uid[:gid]`.
    pub user: Option<(u32, Option<u32>)>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub tty: bool,
    pub detach: bool,
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
    pub preserve_fds: u32,
    /// `--apparmor PROFILE`: instead of the process's or the container's.
    pub apparmor: Option<String>,
    /// `--ignore-paused`: exec into a paused container too (the process starts frozen).
    pub ignore_paused: bool,
    /// `--cgroup`: a sub-cgroup of the container's for the process.
    pub cgroup: super::sub_cgroup::SubCgroups,
    /// A startContainer hook (see `hooks::run_start_container`): these fds as its stdio
    /// instead of dory's, a session of its own (no controlling terminal of the caller's),
    /// and with `detach`, [`exec`] returns its pid for the caller to wait on.
    pub hook_stdio: Option<[RawFd; 3]>,
}

/// Namespace files of /proc/<pid>/ns, in the order they are joined (user first).
const NS_FILES: &[(&str, NamespaceKind)] = &[
    ("user", NamespaceKind::User),
    ("ipc", NamespaceKind::Ipc),
    ("uts", NamespaceKind::Uts),
    ("net", NamespaceKind::Network),
    ("cgroup", NamespaceKind::Cgroup),
    // The clocks' offsets too (a single-threaded process moves at once).
    ("time", NamespaceKind::Time),
    ("mnt", NamespaceKind::Mount),
];

fn ns_inode(path: &str) -> Option<u64> {
    nix::sys::stat::stat(path).ok().map(|s| s.st_ino)
}

/// The container's seccomp filter for an exec'd process, and where its listener goes.
type Filter = (
    Option<Box<crate::seccomp::Program>>,
    Option<crate::seccomp::notify::Listener>,
);

/// Builds the process plan: a `--process` file, or the container's config process with
/// the command line's overrides.
fn build_process(
    c: &Container,
    req: &ExecRequest<'_>,
    strings: &mut Arena,
) -> Result<(ProcessPlan, Filter), String> {
    // The container's config as create read it (never the bundle's, which may have
    // changed since) gives the seccomp filter (and the process without --process).
    let bytes = super::state::read_config(&c.dir)?;
    let cfg = spec::parse(&bytes).map_err(|e| e.to_string())?;
    let filter = crate::plan::compile_seccomp(&cfg).map_err(|e| e.to_string())?;
    let listener = super::seccomp_listener(&cfg).map_err(|e| e.to_string())?;
    let mut plan = if let Some(file) = req.process_file {
        let text = std::fs::read(file).map_err(|e| format!("--process {}: {e}", file.display()))?;
        let (p, _) = serde_json_core::from_slice::<spec::Process<'_>>(&text)
            .map_err(|_| format!("--process {}: not a valid process JSON", file.display()))?;
        if let Some(caps) = &p.capabilities {
            for set in [
                &caps.bounding,
                &caps.effective,
                &caps.permitted,
                &caps.inheritable,
                &caps.ambient,
            ] {
                if let Some(bad) = set.iter().find(|n| spec::caps::from_name(n).is_none()) {
                    return Err(format!("--process: unknown capability \"{bad}\""));
                }
            }
        }
        let mut plan = ProcessPlan::build(&p, strings).map_err(|e| e.to_string())?;
        plan.attrs = exec_attrs(cfg.process.as_ref(), Some(&p), cfg.linux.as_ref())
            .map_err(|e| e.to_string())?;
        if let Some(own) = cfg.process.as_ref() {
            // As runc: the container's oomScoreAdj, whatever the file says (runc writes the
            // config's value for every process it starts in the container; dory takes the
            // file's only when the config has none). Rlimits: the file's when it lists any,
            // else the container's (runc's initConfig order; a shim's process.json without
            // rlimits would otherwise leave the shim's own nofile limit in the container).
            if own.oom_score_adj.is_some() {
                plan.oom_score_adj = own.oom_score_adj;
            }
            if plan.rlimits.is_empty() {
                plan.rlimits = rlimit_steps(&own.rlimits).map_err(|e| e.to_string())?;
            }
            // The file's AppArmor profile, else the container's (runc).
            if plan.apparmor.is_none() {
                plan.apparmor =
                    apparmor_attr(own.apparmor_profile, strings).map_err(|e| e.to_string())?;
            }
        }
        plan
    } else {
        let p = cfg
            .process
            .as_ref()
            .ok_or("config.json: process: missing")?;
        let mut plan = ProcessPlan::build(p, strings).map_err(|e| e.to_string())?;
        plan.attrs = exec_attrs(Some(p), None, cfg.linux.as_ref()).map_err(|e| e.to_string())?;
        if req.args.is_empty() {
            return Err("exec needs a command (or --process FILE)".into());
        }
        plan.args.clear();
        for a in &req.args {
            let id = strings
                .push(a)
                .map_err(|_| "arguments too long".to_string())?;
            plan.args
                .push(id)
                .map_err(|_| format!("more than {} arguments", spec::MAX_ARGS))?;
        }
        plan.terminal = req.tty;
        plan
    };
    for e in &req.env {
        if !e.contains('=') {
            return Err(format!("--env \"{e}\": must be NAME=VALUE"));
        }
        let id = strings
            .push(e)
            .map_err(|_| "environment too long".to_string())?;
        plan.set_env(id, strings).map_err(|e| e.to_string())?;
    }
    if let Some(cwd) = &req.cwd {
        if !cwd.starts_with('/') {
            return Err(format!("--cwd \"{cwd}\": must be an absolute path"));
        }
        plan.cwd = strings.push(cwd).map_err(|_| "cwd too long".to_string())?;
    }
    if let Some((uid, gid)) = req.user {
        plan.uid = uid;
        plan.gid = gid.unwrap_or(0);
    }
    for g in &req.additional_gids {
        plan.additional_gids
            .push(*g)
            .map_err(|_| "too many --additional-gids".to_string())?;
    }
    if !req.caps.is_empty() {
        let mut add = 0u64;
        for name in &req.caps {
            let cap = spec::caps::from_name(name)
                .ok_or_else(|| format!("--cap: unknown capability \"{name}\""))?;
            add |= 1 << cap;
        }
        plan.caps.bounding |= add;
        plan.caps.effective |= add;
        plan.caps.permitted |= add;
    }
    if req.no_new_privs {
        plan.no_new_privileges = true;
    }
    let mut field = "process.apparmorProfile";
    if let Some(text) = req.apparmor.as_deref().and_then(apparmor::exec_attr) {
        plan.apparmor = Some(
            strings
                .push(&text)
                .map_err(|_| "--apparmor: too long".to_string())?,
        );
        field = "--apparmor";
    }
    super::apparmor::unless_enabled(&mut plan, strings, Path::new("/sys"), field);
    plan.add_home(Path::new(c.state().rootfs), strings)
        .map_err(|e| e.to_string())?;
    // The container's rlimits and OOM score apply to the new process too, with or without
    // --process (it is forked from this `dory exec`, whose own values it would otherwise
    // keep: a shim's OOM score, its nofile limit).
    Ok((plan, (filter, listener)))
}

/// Runs `dory exec`; returns dory's exit code, or the error to report and the exit code
/// to go with it (127/126 when the program was not found or could not be executed).
pub fn exec(c: &Container, req: &ExecRequest<'_>) -> Result<i32, (String, i32)> {
    let fail1 = |m: String| (m, 1);
    // As runc: a created container (its init waiting for `start`) takes execs too. A
    // paused one only with --ignore-paused: the new process freezes on joining the
    // cgroup, and exec (with -d too) waits for it to exec, that is until `resume`.
    let status = c.status();
    match status {
        Status::Running | Status::Created => {}
        Status::Paused if req.ignore_paused => {}
        Status::Paused => {
            return Err(fail1(
                "cannot exec in a paused container (use --ignore-paused to override)".into(),
            ))
        }
        _ => {
            return Err(fail1(format!(
                "cannot exec in a container that is {status}"
            )))
        }
    }
    let mut strings = Box::new(Arena::new());
    let (process, (filter, listener)) = build_process(c, req, &mut strings).map_err(fail1)?;
    // Parsing the process left its stack resident; give it back before the clone.
    sys::trim_stack();
    if process.terminal && req.detach && req.console_socket.is_none() {
        return Err(fail1("--tty with --detach needs --console-socket".into()));
    }
    // The init pinned from its start-time check until its namespaces are open: a pid
    // reused meanwhile (the init killed from inside) must not send us into another
    // process's namespaces.
    let pin = crate::container::state::InitPin::new(&c.state())
        .ok_or_else(|| fail1("the container's init is gone".into()))?;
    let init = pin.pid;

    // The init's namespaces that differ from ours, opened before clone.
    let mut ns_fds: Vec<(NamespaceKind, OwnedFd)> = Vec::new();
    for (file, kind) in NS_FILES {
        let theirs = format!("/proc/{init}/ns/{file}");
        if ns_inode(&theirs) == ns_inode(&format!("/proc/self/ns/{file}")) {
            continue;
        }
        let fd = open(
            theirs.as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| fail1(format!("open {theirs}: {}", e.desc())))?;
        ns_fds.push((*kind, fd));
    }
    let raw_ns: Vec<(NamespaceKind, RawFd)> =
        ns_fds.iter().map(|(k, f)| (*k, f.as_raw_fd())).collect();
    // A container without a mount namespace of its own is chrooted in ours: its process
    // joins that root (entering a mount namespace would have set it).
    let root_fd = if ns_fds.iter().any(|(k, _)| *k == NamespaceKind::Mount) {
        None
    } else {
        let theirs = format!("/proc/{init}/root");
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        Some(
            open(theirs.as_str(), flags, Mode::empty())
                .map_err(|e| fail1(format!("open {theirs}: {}", e.desc())))?,
        )
    };
    let pid_ns = format!("/proc/{init}/ns/pid");
    let enter_pid_ns = ns_inode(&pid_ns) != ns_inode("/proc/self/ns/pid");

    // The cgroup: v1 tasks files (the child moves itself), or the v2 directory.
    let cg = c.cgroup().map_err(|e| fail1(e.to_string()))?;
    let (task_fds, v2_fd) = if req.cgroup.is_empty() {
        super::cgroup_join_fds(&cg)
            .map_err(|(p, e)| fail1(format!("open {}: {}", p.display(), e.desc())))?
    } else {
        super::sub_cgroup::join_fds(&cg, &req.cgroup).map_err(fail1)?
    };
    let task_raw: Vec<RawFd> = task_fds.iter().map(|f| f.as_raw_fd()).collect();

    let sfd = if req.detach {
        None
    } else {
        Some(run::block_signals().map_err(fail1)?)
    };
    let (parent_sock, child_sock) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| fail1(format!("socketpair: {}", e.desc())))?;
    // The host's procfs, checked, for the child's own oom_score_adj.
    let proc_root =
        sys::procfs::open_root().map_err(|e| fail1(format!("open /proc: {}", e.desc())))?;
    let exec_args = sandbox::ExecArgs::new(&strings, &process);
    let ctx = ExecContext {
        strings: &strings,
        process: &process,
        exec_args: &exec_args,
        sync: child_sock.as_fd(),
        ns_fds: &raw_ns,
        cgroup_tasks: &task_raw,
        stdio: req.hook_stdio,
        new_session: req.hook_stdio.is_some(),
        proc: proc_root.as_fd(),
        preserve_fds: req.preserve_fds,
        seccomp: filter.as_deref(),
        chroot: root_fd.as_ref().map(|f| f.as_raw_fd()),
    };

    // execCPUAffinity.initial: this side runs there until the child is in the cgroup; the
    // child inherits it and sets `final` once inside (as runc).
    // Restored after the clone: the caller may be PID 1 running a probe, which must not
    // stay pinned to the container's initial CPUs.
    let own_cpus = RestoreCpus(
        process
            .attrs
            .initial_cpus
            .as_ref()
            .and_then(|_| nix::sched::sched_getaffinity(Pid::from_raw(0)).ok()),
    );
    if let Some(m) = &process.attrs.initial_cpus {
        sys::sched::sched_setaffinity(&m.0).map_err(|e| {
            fail1(format!(
                "process.execCPUAffinity.initial: sched_setaffinity: {}",
                e.desc()
            ))
        })?;
    }
    // A pid namespace applies to children: enter it around the clone.
    let own_pid_ns = if enter_pid_ns {
        let theirs = open(
            pid_ns.as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| fail1(format!("open {pid_ns}: {}", e.desc())))?;
        Some(
            super::ForChildren::enter(theirs.as_fd(), CloneFlags::CLONE_NEWPID)
                .map_err(|e| fail1(format!("setns pid: {}", e.desc())))?,
        )
    } else {
        None
    };
    // Every /proc/<init> path is opened: the pin tells whether they were the init's.
    if !pin.still_there() {
        if let Some(ns) = own_pid_ns {
            ns.restore();
        }
        return Err(fail1("the container's init exited".into()));
    }
    // The child inherits this; it must hold from its first instruction in the container.
    super::hide_from_container()
        .map_err(|e| fail1(format!("prctl PR_SET_DUMPABLE: {}", e.desc())))?;
    let cloned = match v2_fd
        .as_ref()
        .map(|fd| sys::clone3_into_cgroup(0, fd.as_fd()))
    {
        Some(Ok(pid)) => Ok(pid),
        Some(Err(_)) | None => sys::clone_fork(0),
    };
    // The child goes its own way first: the restore below is the parent's alone.
    let cloned = match cloned {
        Ok(0) => sandbox::run_exec_child(&ctx),
        other => other,
    };
    if let Some(ns) = own_pid_ns {
        ns.restore();
    }
    drop(own_cpus);
    let pid = cloned.map_err(|e| fail1(format!("clone: {}", e.desc())))?;
    drop(child_sock);
    drop(ns_fds);
    drop(task_fds);

    // Wait for exec (EOF), a pty master, or a failure record; in slices that pet PID 1's
    // watchdog, and (PID 1: a health probe) no longer than its step timeout.
    let mut master: Option<OwnedFd> = None;
    let deadline = super::waits::deadline(None);
    loop {
        if let Err(e) = super::await_message(parent_sock.as_fd(), deadline) {
            let child = Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(child, None);
            return Err(fail1(e.to_string()));
        }
        let mut msg = [0u8; 16];
        match sys::recv_fd(parent_sock.as_fd(), &mut msg) {
            Ok(None) => break,
            Ok(Some((n, fd))) => {
                if msg.first() == Some(&sandbox::MSG_PTY) {
                    master = fd;
                } else if let (Some(&sandbox::MSG_SECCOMP), Some(fd)) = (msg.first(), fd) {
                    // As runc: the agent gets the container's state and this process's pid.
                    let sent = super::hand_listener(listener.as_ref(), pid, &c.state_json(), fd);
                    if let Err(e) = sent {
                        let child = Pid::from_raw(pid);
                        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                        let _ = waitpid(child, None);
                        return Err(fail1(e.to_string()));
                    }
                } else if let Some(f) = msg.get(..n).and_then(Failure::decode) {
                    let _ = waitpid(Pid::from_raw(pid), None);
                    return Err(describe(&strings, &process, &f));
                }
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(fail1(format!("sync: {}", e.desc()))),
        }
    }
    let master = hand_over_pty(master, req.console_socket).map_err(|e| fail1(e.to_string()))?;
    if let Some(p) = req.pid_file {
        write_pid_file(p, pid).map_err(|e| fail1(format!("--pid-file {}: {e}", p.display())))?;
    }
    match sfd {
        None if req.hook_stdio.is_some() => Ok(pid),
        None => Ok(0),
        Some(sfd) => Ok(run::attach(pid, &sfd, master.as_ref().map(|m| m.as_fd()))),
    }
}

/// The caller's CPU affinity, put back on drop (after an exec's initial CPUs).
struct RestoreCpus(Option<nix::sched::CpuSet>);

impl Drop for RestoreCpus {
    fn drop(&mut self) {
        if let Some(cpus) = &self.0 {
            let _ = nix::sched::sched_setaffinity(Pid::from_raw(0), cpus);
        }
    }
}

fn describe(strings: &Arena, process: &ProcessPlan, f: &Failure) -> (String, i32) {
    let prog = process.args.first().map(|a| strings.text(*a)).unwrap_or("");
    match f.step {
        sandbox::Step::Exec => match f.errno {
            Errno::ENOENT if !prog.contains('/') => (
                format!("exec \"{prog}\": executable file not found in $PATH"),
                127,
            ),
            Errno::ENOENT | Errno::ENOTDIR => {
                (format!("exec \"{prog}\": no such file or directory"), 127)
            }
            e => (format!("exec \"{prog}\": {}", e.desc()), 126),
        },
        sandbox::Step::Cwd => (
            format!("cwd \"{}\": {}", strings.text(process.cwd), f.errno.desc()),
            1,
        ),
        sandbox::Step::Affinity
        | sandbox::Step::Scheduler
        | sandbox::Step::IoPriority
        | sandbox::Step::Personality
        | sandbox::Step::MemoryPolicy => (super::describe_attr_failure(f, &process.attrs), 1),
        sandbox::Step::AppArmor => (
            format!(
                "apparmor profile \"{}\": write /proc/self/attr/apparmor/exec: {}",
                process
                    .apparmor
                    .map(|a| apparmor::profile_of(strings.text(a)))
                    .unwrap_or(""),
                f.errno.desc()
            ),
            1,
        ),
        sandbox::Step::CwdOutsideRoot => (
            format!(
                "cwd \"{}\": not inside the container's root",
                strings.text(process.cwd)
            ),
            1,
        ),
        step => (
            format!("exec setup failed at {step:?}: {}", f.errno.desc()),
            1,
        ),
    }
}
