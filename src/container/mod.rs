//! The parent side of a container's life: launch (one clone), state, signals, cleanup.
//!
//! `dory run` and PID 1 (`init`) both start containers through [`launch`].

mod apparmor;
pub mod exec;
pub mod hooks;
mod idmap;
pub mod lifecycle;
pub mod netdev;
mod root_switch;
pub mod run;
pub mod seccomp_agent;
pub mod state;
pub mod sub_cgroup;
pub mod waits;

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::cgroup::{self, Cgroup, Layout};
use crate::plan::{Plan, PlanError};
use crate::sandbox::{self, ChildContext, Failure, Step};
use crate::spec::{self, NamespaceKind, SpecError};
use crate::sys;

/// The fifo `create` leaves in the state directory until `start`.
pub const EXEC_FIFO: &str = "exec.fifo";

/// Where the container's stdio comes from.
pub enum Stdio {
    /// The container inherits dory's fds 0, 1, 2.
    Inherit,
    /// These three fds become the container's 0, 1, 2.
    Fds {
        stdin: OwnedFd,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
}

/// What `launch` needs to start one container.
pub struct LaunchOptions<'a> {
    /// Container id (validated: no `/`, not empty, at most 1024 bytes).
    pub id: &'a str,
    /// Bundle directory holding config.json.
    pub bundle: &'a Path,
    /// State root, `/run/dory` unless `--root` says otherwise.
    pub state_root: &'a Path,
    /// Stdio for the container's init when `process.terminal` is false. With a terminal
    /// the container gets a pty whose master is returned in [`Started::pty_master`].
    pub stdio: Stdio,
    /// `create`: stop before exec until `dory start`; state "created".
    pub create: bool,
    /// fds 3 .. 3+N are passed to the container (`--preserve-fds`).
    pub preserve_fds: u32,
    /// Send the pty master to this unix socket instead of returning it.
    pub console_socket: Option<&'a Path>,
    /// Write the container's pid here once it is created.
    pub pid_file: Option<&'a Path>,
    /// Where pivot_root is refused (an initramfs root), fall back to MS_MOVE + chroot,
    /// which leaves the host's root mounted under the container (runc's `--no-pivot`).
    pub allow_no_pivot: bool,
    /// `--no-pivot`: always MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
    /// Host files bound read-only (nosuid, nodev) at container paths after the config's
    /// mounts: PID 1 gives a `"ctl": true` container its control socket and client.
    pub extra_ro_binds: &'a [(&'a Path, &'a str)],
    /// Bind sources under `/data/` are opened beneath `/data` with no symlink followed
    /// (PID 1's containers: what lies there, a container wrote).
    pub confine_data_binds: bool,
    /// A board container's `"data": true`: bind sources under `/data/<id>/` that do not
    /// exist yet (a volume on a new /data) are made before planning.
    pub make_data_sources: bool,
}

impl<'a> LaunchOptions<'a> {
    /// Options for a container that starts at once with the given stdio.
    pub fn new(id: &'a str, bundle: &'a Path, state_root: &'a Path, stdio: Stdio) -> Self {
        LaunchOptions {
            id,
            bundle,
            state_root,
            stdio,
            create: false,
            preserve_fds: 0,
            console_socket: None,
            pid_file: None,
            allow_no_pivot: false,
            no_pivot: false,
            extra_ro_binds: &[],
            confine_data_binds: false,
            make_data_sources: false,
        }
    }
}

/// A container whose init process has exec'd the user's program.
pub struct Started {
    /// Host pid of the container's init.
    pub pid: i32,
    /// The pty master when the config asked for a terminal.
    pub pty_master: Option<OwnedFd>,
    /// `process.terminal` of the config.
    pub terminal: bool,
    /// The config has poststart/poststop hooks.
    pub later_hooks: bool,
    /// The config bytes launch read, for those hooks (empty without them).
    pub config: Vec<u8>,
    pub bundle: PathBuf,
    state_dir: PathBuf,
    cgroup: Option<Cgroup>,
    /// The cgroup is dory's default `/dory/<id>`: the shared parent goes with the last one.
    default_cgroup: bool,
}

/// Launch errors, one variant per phase; `Display` names the field or step.
#[derive(Debug)]
pub enum Error {
    Id(String),
    Spec(SpecError),
    Plan(PlanError),
    Exists(String),
    StateDir(PathBuf, std::io::Error),
    PidFile(PathBuf, std::io::Error),
    Cgroup(cgroup::Error),
    Namespace(String, Errno),
    Clone(Errno),
    Parent(&'static str, Errno),
    /// The child failed a setup step (message built from the plan).
    Child(String, Failure),
    /// A prestart, createRuntime or createContainer hook failed.
    Hook(String),
    /// A `linux.netDevices` device could not be moved into the container.
    NetDevice(netdev::Error),
    /// The seccomp listener could not be handed to `listenerPath`.
    SeccompAgent(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Id(m) => f.write_str(m),
            Error::Spec(e) => write!(f, "{e}"),
            Error::Plan(e) => write!(f, "{e}"),
            Error::Exists(id) => write!(f, "container \"{id}\" already exists"),
            Error::StateDir(p, e) => write!(f, "state directory {}: {e}", p.display()),
            Error::PidFile(p, e) => write!(f, "--pid-file {}: {e}", p.display()),
            Error::Cgroup(e) => write!(f, "cgroup: {e}"),
            Error::Namespace(p, e) => write!(f, "linux.namespaces: open {p}: {}", e.desc()),
            Error::Clone(e) => write!(f, "clone: {}", e.desc()),
            Error::Parent(step, e) => write!(f, "{step}: {}", e.desc()),
            Error::Child(m, _) => f.write_str(m),
            Error::Hook(m) | Error::SeccompAgent(m) => f.write_str(m),
            Error::NetDevice(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// The exit status `dory run` uses: 127/126 when the program was not found or could
    /// not be executed (as shells and podman report it), 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Child(_, f) if f.step == Step::Exec => match f.errno {
                Errno::ENOENT | Errno::ENOTDIR => 127,
                _ => 126,
            },
            _ => 1,
        }
    }
}

/// Removes what launch created if it fails midway: the child, the cgroup and the state
/// directory.
struct Undo {
    state_dir: Option<PathBuf>,
    cgroup: Option<Cgroup>,
    /// The cloned init, killed and reaped first: its cgroup cannot go while it lives.
    child: Option<i32>,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(pid) = self.child.take() {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
        }
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.remove();
        }
        if let Some(d) = self.state_dir.take() {
            state::remove_dir(&d);
        }
    }
}

/// Reads the bundle's config, creates the state entry and cgroup, clones the container's
/// init with the config's namespaces and returns once it has exec'd the user's program.
/// The caller reaps `Started::pid` and then calls [`Started::destroy`].
pub fn launch(opts: LaunchOptions<'_>) -> Result<Started, Error> {
    state::validate_id(opts.id).map_err(Error::Id)?;
    // Absolute and clean ("./b/" → "/cwd/b"), as runc records it in the state.
    let bundle: PathBuf = std::path::absolute(opts.bundle)
        .map_err(|e| Error::StateDir(opts.bundle.into(), e))?
        .components()
        .collect();
    // Parse and plan first: bad input fails before anything is created.
    let mut buf = vec![0u8; spec::MAX_CONFIG_BYTES];
    let bytes = spec::read_config(&bundle, &mut buf).map_err(Error::Spec)?;
    let spec = spec::parse(bytes).map_err(Error::Spec)?;
    let id = opts.id;
    let launched = launch_parsed(opts, &bundle, bytes, &spec);
    if let Err(Error::Hook(_)) = &launched {
        // runtime-spec: a failed prestart, createRuntime, createContainer (or, for `run`,
        // startContainer) hook stops the container, which is destroyed (Undo did that),
        // and the poststop hooks run, as runc runs them from its destroy.
        let st = hooks::state_json(id, "stopped", 0, &bundle.to_string_lossy(), &spec);
        let phase = hooks::Phase::Poststop;
        if let Err(e) = hooks::run(phase.of(&spec), phase, &st, None) {
            crate::cli::log::warning(format_args!("{e}"));
        }
    }
    launched
}

/// `dory spec --check`: reads, validates and plans the bundle's config as `create` would
/// (the rootfs must exist; mount sources are only looked at when the container starts),
/// and creates nothing. For bundles made on one machine to run on another (a board's).
pub fn check_bundle(bundle: &Path) -> Result<(), Error> {
    let mut buf = vec![0u8; spec::MAX_CONFIG_BYTES];
    let bytes = spec::read_config(bundle, &mut buf).map_err(Error::Spec)?;
    let spec = spec::parse(bytes).map_err(Error::Spec)?;
    Plan::build_with(
        &spec,
        bytes.len(),
        bundle,
        crate::plan::BindSources::Unchecked,
    )
    .map_err(Error::Plan)?;
    seccomp_listener(&spec).map_err(Error::Spec)?;
    Ok(())
}

/// The kernel calls dory cannot do without (`close_range`, Linux 5.9; the fd-based mount
/// API and `openat2` are older), and on a kernel without `mount_setattr` (before 5.12)
/// the mounts that need it: recursive attributes and idmapped mounts, refused naming the
/// mount. Everything else falls back at run time (`mount(2)` remounts, an fd walk).
fn kernel_can_run(plan: &Plan) -> Result<(), Error> {
    sys::close_range_available().map_err(|e| {
        Error::Parent(
            "this kernel lacks close_range: dory needs Linux 5.9 or later (tested on 5.10)",
            e,
        )
    })?;
    if sys::mount_api::has_set_attr() {
        return Ok(());
    }
    for (i, m) in plan.mounts.iter().enumerate() {
        let what = if m.idmap.is_some() {
            "idmapped mounts need mount_setattr (Linux 5.12); this kernel lacks it"
        } else if m.flags.rec_set != 0 || m.flags.rec_clear != 0 {
            "recursive mount attributes (rro, rnosuid, ...) need mount_setattr (Linux 5.12); \
             this kernel lacks it"
        } else {
            continue;
        };
        return Err(Error::Plan(PlanError {
            field: format!("mounts[{i}].options"),
            message: what.into(),
        }));
    }
    Ok(())
}

/// Makes the bind sources under `/data/<id>/` that are missing (directories, 0755), one
/// component at a time beneath an fd of `/data/<id>`: `mkdirat` never follows a symlink and
/// each component is opened `O_NOFOLLOW`, so a link the container left there stops it.
fn make_data_sources(id: &str, spec: &spec::Spec<'_>) -> Result<(), Error> {
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;
    let prefix = format!("/data/{id}/");
    let dir_flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    for (i, m) in spec.mounts.iter().enumerate() {
        let Some(rest) = m.source.and_then(|s| s.strip_prefix(prefix.as_str())) else {
            continue;
        };
        let fail = |e: nix::Error| {
            Error::Plan(PlanError {
                field: format!("mounts[{i}].source"),
                message: format!("cannot make {prefix}{rest} for the container: {e}"),
            })
        };
        let mut dir = nix::fcntl::open(prefix.as_str(), dir_flags, Mode::empty()).map_err(fail)?;
        for part in rest.split('/').filter(|p| !p.is_empty() && *p != ".") {
            if part == ".." {
                return Err(fail(nix::Error::EINVAL));
            }
            match nix::sys::stat::mkdirat(dir.as_fd(), part, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(nix::Error::EEXIST) => {}
                Err(e) => return Err(fail(e)),
            }
            dir = nix::fcntl::openat(dir.as_fd(), part, dir_flags, Mode::empty()).map_err(fail)?;
        }
    }
    Ok(())
}

/// [`launch`] once the config is parsed: everything up to the container's exec.
fn launch_parsed(
    opts: LaunchOptions<'_>,
    bundle: &Path,
    bytes: &[u8],
    spec: &spec::Spec<'_>,
) -> Result<Started, Error> {
    if opts.make_data_sources {
        make_data_sources(opts.id, spec)?;
    }
    let mut plan = Plan::build(spec, bytes.len(), bundle).map_err(Error::Plan)?;
    plan.confine_data_binds = opts.confine_data_binds;
    // A profile where the host runs no AppArmor is dropped with a warning.
    let p = &mut *plan;
    let field = "config.json: process.apparmorProfile";
    apparmor::unless_enabled(&mut p.process, &p.strings, Path::new("/sys"), field);
    for (source, dest) in opts.extra_ro_binds {
        plan.add_ro_bind(source, dest).map_err(Error::Plan)?;
    }
    let listener = seccomp_listener(spec).map_err(Error::Spec)?;
    // Whatever stack parsing and planning left resident goes back before the child copies
    // it (parsing into inline lists once took ~350 KiB; now a few KiB, more with seccomp).
    sys::trim_stack();
    // Refuse a kernel too old, or a config asking what this one cannot do, before
    // anything exists.
    kernel_can_run(&plan)?;
    // As runc: a console socket is for the pty of a terminal, nothing else would use it.
    if opts.console_socket.is_some() && !plan.process.terminal {
        return Err(Error::Plan(PlanError {
            field: "process.terminal".into(),
            message: "--console-socket needs a terminal (process.terminal is false)".into(),
        }));
    }
    let switch = root_switch::choose(spec, &mut plan, opts.no_pivot, opts.allow_no_pivot)
        .map_err(Error::Plan)?;
    // Idmapped mounts are made here, detached, before anything else exists.
    let _idmapped = idmap::prepare(&mut plan)?;
    let layout = Layout::detect().map_err(Error::Cgroup)?;
    let linux = spec.linux.as_ref();
    let cgroup_path = match linux.and_then(|l| l.cgroups_path).filter(|p| !p.is_empty()) {
        Some(p) => p.to_string(),
        None => format!("{}{}", lifecycle::DEFAULT_CGROUP_PARENT, opts.id),
    };
    if plan.mounts_cgroup() && !layout.is_v2() {
        plan.set_cgroup_v1(layout.v1_hierarchies().map(|(opts, _)| opts))
            .map_err(Error::Plan)?;
    }
    if plan.rootfs_propagation & libc::MS_SHARED != 0 {
        let rootfs = Path::new(plan.strings.text(plan.rootfs));
        if let Some(m) = mount_point_of(rootfs.parent().unwrap_or(rootfs)) {
            plan.set_rootfs_parent_mount(&m).map_err(Error::Plan)?;
        }
    }
    let resources = linux.and_then(|l| l.resources.as_ref());
    // A device that is not there fails before anything is created.
    let net_moves = netdev::plan(linux);
    netdev::check_present(&net_moves).map_err(Error::NetDevice)?;
    let uid_maps = linux.map(|l| &l.uid_mappings[..]).unwrap_or_default();
    let gid_maps = linux.map(|l| &l.gid_mappings[..]).unwrap_or_default();

    // The state directory doubles as the lock on the id.
    let state_dir = match state::create_dir(opts.state_root, opts.id) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::Exists(opts.id.into()))
        }
        Err(e) => return Err(Error::StateDir(state::dir(opts.state_root, opts.id), e)),
    };
    let mut undo = Undo {
        state_dir: Some(state_dir.clone()),
        cgroup: None,
        child: None,
    };
    // Later commands (start, exec, delete) read this copy, never the bundle again.
    state::save_config(&state_dir, bytes).map_err(|e| Error::StateDir(state_dir.clone(), e))?;
    let cgroup = undo
        .cgroup
        .insert(Cgroup::create(&layout, &cgroup_path, resources).map_err(Error::Cgroup)?);
    // The cgroup mount shows the container its own cgroup, wherever it was made.
    if !plan.cgroup_v1.is_empty() {
        plan.set_cgroup_v1_own(&cgroup.v1_paths_below_mount())
            .map_err(Error::Plan)?;
    }
    plan.set_cgroup_host_dirs(&cgroup.host_dirs())
        .map_err(Error::Plan)?;

    // Namespaces to join are opened before clone; the child only calls setns.
    let mut join_fds: heapless::Vec<(NamespaceKind, OwnedFd), { spec::MAX_NAMESPACES }> =
        heapless::Vec::new();
    for j in &plan.joins {
        let path = plan.strings.get(j.path);
        let fd = nix::fcntl::open(
            path,
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| Error::Namespace(plan.strings.text(j.path).into(), e))?;
        let _ = join_fds.push((j.kind, fd));
    }
    let mut raw_joins: heapless::Vec<(NamespaceKind, RawFd), { spec::MAX_NAMESPACES }> =
        heapless::Vec::new();
    for (k, fd) in &join_fds {
        let _ = raw_joins.push((*k, fd.as_raw_fd()));
    }
    // Joining a pid namespace applies to children: the parent enters it around clone.
    let restore_pid_ns = match join_fds.iter().find(|(k, _)| *k == NamespaceKind::Pid) {
        Some((_, fd)) => Some(
            ForChildren::enter(fd.as_fd(), nix::sched::CloneFlags::CLONE_NEWPID)
                .map_err(|e| Error::Namespace("pid".into(), e))?,
        ),
        None => None,
    };

    let (parent_sock, child_sock) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::Parent("socketpair", e))?;
    // The child moves itself into the v1 hierarchies (see sandbox); on pure v2 it is
    // created inside its cgroup.
    let (task_fds, v2_fd) = match undo.cgroup.as_ref() {
        Some(cg) => cgroup_join_fds(cg).map_err(|(_, e)| Error::Parent("open the cgroup", e))?,
        None => (Vec::new(), None),
    };
    let task_raw: Vec<RawFd> = task_fds.iter().map(|f| f.as_raw_fd()).collect();
    // create: the child blocks opening this fifo until `dory start` reads it.
    // `run` with startContainer hooks also stops there: the hooks run before the program.
    let start_hooks = !hooks::Phase::StartContainer.of(spec).is_empty();
    let fifo = if opts.create || start_hooks {
        let path = state_dir.join(EXEC_FIFO);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o622))
            .map_err(|e| Error::Parent("create exec.fifo", e))?;
        // mkfifo's mode passes through the umask: make it 0622 so a non-root init can open it.
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o622))
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))
            .map_err(|e| Error::Parent("chmod exec.fifo", e))?;
        Some(
            nix::fcntl::open(
                &path,
                nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| Error::Parent("open exec.fifo", e))?,
        )
    } else {
        None
    };
    let user_ns = plan.clone_flags & libc::CLONE_NEWUSER != 0;
    let stdio_raw = match &opts.stdio {
        Stdio::Inherit => None,
        Stdio::Fds {
            stdin,
            stdout,
            stderr,
        } => Some([stdin.as_raw_fd(), stdout.as_raw_fd(), stderr.as_raw_fd()]),
    };
    // The host's procfs, checked to be one, for the child's writes and reopens.
    let proc_root = sys::procfs::open_root().map_err(|e| Error::Parent("open /proc", e))?;
    // argv and envp as execve takes them, so the child needs no arrays of its own.
    let exec_args = sandbox::ExecArgs::new(&plan.strings, &plan.process);
    let mut ctx = ChildContext {
        plan: &plan,
        exec_args: &exec_args,
        sync: child_sock.as_fd(),
        join_fds: &raw_joins,
        proc: proc_root.as_fd(),
        stdio: stdio_raw,
        cgroup_tasks: &task_raw,
        // The child waits while the parent moves netDevices into its namespace.
        wait_for_parent: user_ns || !net_moves.is_empty(),
        start: sandbox::StartGate {
            exec_fifo: fifo.as_ref().map(|f| f.as_raw_fd()),
            preserve_fds: opts.preserve_fds,
            proc: None,
        },
        hooks_before_pivot: [
            hooks::Phase::Prestart,
            hooks::Phase::CreateRuntime,
            hooks::Phase::CreateContainer,
        ]
        .iter()
        .any(|p| !p.of(spec).is_empty()),
        root_switch: switch,
    };

    // A new time namespace gets its offsets before any process is in it: the parent
    // unshares it for its children, writes the offsets, and returns to its own after clone.
    let mut clone_flags = plan.clone_flags;
    let restore_time_ns = if clone_flags & spec::CLONE_NEWTIME != 0 {
        clone_flags &= !spec::CLONE_NEWTIME;
        let offsets = linux.map(|l| &l.time_offsets);
        Some(enter_time_ns(offsets)?)
    } else {
        None
    };
    // The child inherits this; it must hold from its first instruction in the container.
    hide_from_container().map_err(|e| Error::Parent("prctl PR_SET_DUMPABLE", e))?;
    let mut parent_adds_pid = false;
    let cloned = match v2_fd
        .as_ref()
        .map(|fd| sys::clone3_into_cgroup(clone_flags, fd.as_fd()))
    {
        Some(Ok(0)) => sandbox::run_child(&ctx),
        Some(Ok(pid)) => Ok(pid),
        // No clone3 or CLONE_INTO_CGROUP (old kernel): the parent moves the child in.
        Some(Err(_)) => {
            parent_adds_pid = true;
            ctx.wait_for_parent = true;
            sys::clone_fork(clone_flags)
        }
        None => sys::clone_fork(clone_flags),
    };
    // The child goes its own way first: the restores below are the parent's alone.
    let cloned = match cloned {
        Ok(0) => sandbox::run_child(&ctx),
        other => other,
    };
    for ns in [restore_pid_ns, restore_time_ns].into_iter().flatten() {
        ns.restore();
    }
    let pid = cloned.map_err(Error::Clone)?;
    // From here any failure also kills and reaps the child (Undo).
    undo.child = Some(pid);
    if !net_moves.is_empty() {
        // A joined network namespace directly (the child enters it later), else its new one.
        let joined = join_fds
            .iter()
            .find(|(k, _)| *k == NamespaceKind::Network)
            .map(|(_, fd)| fd.as_fd());
        move_net_devices(&net_moves, pid, joined, proc_root.as_fd())?;
    }
    let wait_for_parent = ctx.wait_for_parent;
    // The child has its own copies; ours would keep the sync socket from reporting EOF.
    drop(child_sock);
    drop(opts.stdio);
    drop(join_fds);
    drop(task_fds);
    drop(fifo);

    let cgroup_to_join = undo.cgroup.as_ref().filter(|_| parent_adds_pid);
    let bundle_text = bundle.to_string_lossy();
    let run_create_hooks = |pid: i32| -> Result<(), Error> {
        let st = hooks::state_json(opts.id, "creating", pid, &bundle_text, spec);
        for phase in [hooks::Phase::Prestart, hooks::Phase::CreateRuntime] {
            hooks::run(phase.of(spec), phase, &st, None).map_err(Error::Hook)?;
        }
        let phase = hooks::Phase::CreateContainer;
        hooks::run(phase.of(spec), phase, &st, Some(pid)).map_err(Error::Hook)
    };
    // The child's seccomp listener goes to the agent with the state hooks see.
    let send_listener = |pid: i32, fd: OwnedFd| -> Result<(), Error> {
        let st = hooks::state_json(opts.id, "creating", pid, &bundle_text, spec);
        hand_listener(listener.as_ref(), pid, &st, fd)
    };
    let side = ParentSide {
        uid_maps,
        gid_maps,
        cgroup: cgroup_to_join,
        send_go: wait_for_parent,
        create_hooks: &run_create_hooks,
        seccomp_listener: &send_listener,
    };
    let result = finish_parent(&plan, pid, &parent_sock, side);
    let pty_master = result.and_then(|m| hand_over_pty(m, opts.console_socket))?;

    let rootfs = plan.strings.text(plan.rootfs);
    let created = state::now_rfc3339();
    let st = state::State {
        id: opts.id,
        pid,
        status: if opts.create { "created" } else { "running" },
        bundle: &bundle_text,
        rootfs,
        created: &created,
        owner: "root",
        start_time: state::process_start_time(pid).unwrap_or(0),
        cgroup: &cgroup_path,
    };
    state::write(&state_dir, &st).map_err(|e| Error::StateDir(state_dir.clone(), e))?;
    if !spec.annotations.is_empty() {
        std::fs::write(
            state_dir.join(state::ANNOTATIONS),
            state::annotations_json(spec),
        )
        .map_err(|e| Error::StateDir(state_dir.clone(), e))?;
    }
    if !opts.create && start_hooks {
        // As with `start`: the hooks run as the container's process (they come from its
        // filesystem), through the container just recorded as created.
        let phase = hooks::Phase::StartContainer;
        let released = lifecycle::Container::load(opts.state_root, opts.id)
            .map_err(|e| Error::Hook(e.to_string()))
            .and_then(|c| {
                hooks::run_start_container(
                    &c,
                    phase.of(spec),
                    &hooks::state_json(opts.id, "created", pid, &bundle_text, spec),
                )
                .map_err(Error::Hook)
            })
            .and_then(|()| {
                release_exec_fifo(&state_dir.join(EXEC_FIFO), &st)
                    .map_err(|e| Error::Hook(e.to_string()))
            });
        released?;
    }
    if let Some(p) = opts.pid_file {
        write_pid_file(p, pid).map_err(|e| Error::PidFile(p.to_path_buf(), e))?;
    }
    let cgroup = undo.cgroup.take();
    undo.state_dir = None;
    undo.child = None;
    Ok(Started {
        pid,
        pty_master,
        terminal: plan.process.terminal,
        later_hooks: hooks::has_later_hooks(spec),
        config: if hooks::has_later_hooks(spec) {
            bytes.to_vec()
        } else {
            Vec::new()
        },
        default_cgroup: cgroup_path.starts_with(lifecycle::DEFAULT_CGROUP_PARENT),
        bundle: bundle.to_path_buf(),
        state_dir,
        cgroup,
    })
}

/// `linux.netDevices`: into the joined network namespace, or the child's new one, before
/// the child goes on (it waits for the parent's "go").
fn move_net_devices(
    moves: &[netdev::Move<'_>],
    pid: i32,
    joined: Option<std::os::fd::BorrowedFd<'_>>,
    proc: std::os::fd::BorrowedFd<'_>,
) -> Result<(), Error> {
    let own = sys::procfs::open_ns(proc, None, c"net")
        .map_err(|e| Error::Parent("open the host's network namespace", e))?;
    if let Some(fd) = joined {
        return netdev::move_all(moves, fd, own.as_fd()).map_err(Error::NetDevice);
    }
    let netns = sys::procfs::open_ns(proc, Some(pid), c"net")
        .map_err(|e| Error::Parent("open the container's network namespace", e))?;
    netdev::move_all(moves, netns.as_fd(), own.as_fd()).map_err(Error::NetDevice)
}

/// What the parent does for the child between clone and exec.
struct ParentSide<'a> {
    uid_maps: &'a [spec::IdMapping],
    gid_maps: &'a [spec::IdMapping],
    /// Move the child into this cgroup (when clone3 could not place it).
    cgroup: Option<&'a Cgroup>,
    /// The child waits for "go" after its id maps / cgroup.
    send_go: bool,
    create_hooks: &'a dyn Fn(i32) -> Result<(), Error>,
    /// Hands the child's seccomp listener fd to the agent.
    seccomp_listener: &'a dyn Fn(i32, OwnedFd) -> Result<(), Error>,
}

/// The parent's half of the handshake: id maps, cgroup, then "go"; hooks when the child
/// asks; returns the pty master if the child sent one, once the child has exec'd (or, for
/// create, is waiting for start).
fn finish_parent(
    plan: &Plan,
    pid: i32,
    sock: &OwnedFd,
    side: ParentSide<'_>,
) -> Result<Option<OwnedFd>, Error> {
    let ParentSide {
        uid_maps,
        gid_maps,
        cgroup,
        send_go,
        create_hooks,
        seccomp_listener,
    } = side;
    if plan.clone_flags & libc::CLONE_NEWUSER != 0 {
        write_id_map(pid, "uid_map", uid_maps)?;
        write_id_map(pid, "gid_map", gid_maps)?;
        // The child cannot: it is not dumpable, so its /proc files are the host root's.
        if let Some(score) = plan.process.oom_score_adj {
            write_proc(Some(pid), "oom_score_adj", score.to_string().as_bytes())
                .map_err(|e| Error::Parent("config.json: process.oomScoreAdj", e))?;
        }
    }
    if let Some(cg) = cgroup {
        cg.add_pid(pid).map_err(Error::Cgroup)?;
    }
    if send_go {
        nix::unistd::write(sock, &[sandbox::MSG_GO])
            .map_err(|e| Error::Parent("signal the container", e))?;
    }
    let mut pty = None;
    let deadline = waits::deadline(None);
    loop {
        await_message(sock.as_fd(), deadline)?;
        let mut msg = [0u8; 16];
        match sys::recv_fd(sock.as_fd(), &mut msg) {
            // EOF: the child's end closed on exec.
            Ok(None) => return Ok(pty),
            Ok(Some((n, fd))) => {
                if msg.first() == Some(&sandbox::MSG_HOOKS) {
                    create_hooks(pid)?;
                    nix::unistd::write(sock, &[sandbox::MSG_GO])
                        .map_err(|e| Error::Parent("signal the container", e))?;
                } else if msg.first() == Some(&sandbox::MSG_READY) {
                    // create: set up and waiting for `dory start`.
                    return Ok(pty);
                } else if msg.first() == Some(&sandbox::MSG_PTY) {
                    pty = fd;
                } else if msg.first() == Some(&sandbox::MSG_SECCOMP) {
                    let fd = fd.ok_or(Error::Parent("container sync", Errno::EPROTO))?;
                    seccomp_listener(pid, fd)?;
                } else if let Some(f) = msg.get(..n).and_then(Failure::decode) {
                    return Err(Error::Child(describe_failure(plan, &f), f));
                } else {
                    return Err(Error::Parent("container sync", Errno::EPROTO));
                }
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::Parent("container sync", e)),
        }
    }
}

/// Waits until the child's end of the handshake has something for us (a message, an fd,
/// or EOF), in slices that let PID 1 pet its watchdog; past `deadline` (PID 1's
/// `stepTimeoutSecs`; the CLI has none, as runc) the setup counts as hung.
pub(super) fn await_message(
    sock: BorrowedFd<'_>,
    deadline: Option<std::time::Instant>,
) -> Result<(), Error> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    loop {
        let mut fds = [PollFd::new(sock, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(n) if n > 0 => return Ok(()),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::Parent("container sync", e)),
        }
        waits::tick();
        if deadline.is_some_and(|d| std::time::Instant::now() > d) {
            return Err(Error::Parent(
                "container sync: the container's setup did not answer within the board's stepTimeoutSecs",
                Errno::ETIMEDOUT,
            ));
        }
    }
}

/// Where the config's seccomp listener goes, when a rule uses SCMP_ACT_NOTIFY.
pub fn seccomp_listener(
    spec: &spec::Spec<'_>,
) -> Result<Option<crate::seccomp::notify::Listener>, SpecError> {
    match spec.linux.as_ref().and_then(|l| l.seccomp.as_ref()) {
        Some(s) => crate::seccomp::notify::Listener::of(s)
            .map_err(crate::seccomp::SeccompError::into_spec_error),
        None => Ok(None),
    }
}

/// Sends a listener fd the child sent, with the ContainerProcessState of process `pid`
/// and the container state `state_json`, to the agent; then closes our copy.
pub fn hand_listener(
    to: Option<&crate::seccomp::notify::Listener>,
    pid: i32,
    state_json: &str,
    fd: OwnedFd,
) -> Result<(), Error> {
    // A listener only comes from a filter with a NOTIFY rule, which has a listenerPath.
    let to = to.ok_or(Error::Parent(
        "seccomp listener without listenerPath",
        Errno::EPROTO,
    ))?;
    let json = seccomp_agent::process_state_json(pid, &to.metadata_json, state_json);
    seccomp_agent::send(to, &json, fd.as_fd()).map_err(Error::SeccompAgent)
}

/// Sends the pty master to `--console-socket` (as runc does, SCM_RIGHTS with the name).
fn hand_over_pty(master: Option<OwnedFd>, socket: Option<&Path>) -> Result<Option<OwnedFd>, Error> {
    let (Some(m), Some(path)) = (master.as_ref(), socket) else {
        return Ok(master);
    };
    let stream = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
        Error::Parent(
            "connect --console-socket",
            Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        )
    })?;
    sys::send_fd(stream.as_fd(), b"/dev/ptmx", m.as_fd())
        .map_err(|e| Error::Parent("send to --console-socket", e))?;
    Ok(None)
}

/// A namespace the parent entered only for the children it is about to clone (pid and
/// time namespaces apply to children); `restore` takes the parent back to its own.
pub struct ForChildren {
    own: OwnedFd,
    flag: nix::sched::CloneFlags,
}

impl ForChildren {
    /// Our own namespace of kind `flag` (pid or time), to come back to.
    fn own(flag: nix::sched::CloneFlags) -> Result<OwnedFd, Errno> {
        let file = if flag == nix::sched::CloneFlags::CLONE_NEWPID {
            c"/proc/self/ns/pid"
        } else {
            c"/proc/self/ns/time"
        };
        nix::fcntl::open(
            file,
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
    }

    /// `setns` into `ns` (a pid or time namespace) for our future children.
    pub fn enter(
        ns: std::os::fd::BorrowedFd<'_>,
        flag: nix::sched::CloneFlags,
    ) -> Result<ForChildren, Errno> {
        let own = Self::own(flag)?;
        nix::sched::setns(ns, flag)?;
        Ok(ForChildren { own, flag })
    }

    /// Back to our own namespace (call in the parent after clone).
    pub fn restore(self) {
        let _ = nix::sched::setns(self.own.as_fd(), self.flag);
    }
}

/// Unshares a time namespace for the children to come and writes its clock offsets.
fn enter_time_ns(
    offsets: Option<&heapless::LinearMap<&str, spec::TimeOffset, { spec::MAX_TIME_OFFSETS }>>,
) -> Result<ForChildren, Error> {
    let flag = nix::sched::CloneFlags::from_bits_retain(spec::CLONE_NEWTIME);
    let own =
        ForChildren::own(flag).map_err(|e| Error::Namespace("/proc/self/ns/time".into(), e))?;
    nix::sched::unshare(flag).map_err(|e| Error::Namespace("time".into(), e))?;
    let back = ForChildren { own, flag };
    let mut text = String::new();
    for (clock, off) in offsets.into_iter().flatten() {
        text.push_str(&format!("{clock} {} {}\n", off.secs, off.nanosecs));
    }
    if !text.is_empty() {
        if let Err(e) = write_proc(None, "timens_offsets", text.as_bytes()) {
            back.restore();
            return Err(Error::Parent("linux.timeOffsets", e));
        }
    }
    Ok(back)
}

/// SIGKILLs every process left in `cg` and waits (bounded) until it is empty.
pub fn kill_cgroup(cg: &Cgroup) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut thawed = false;
    loop {
        let pids = cg.pids().unwrap_or_default();
        if pids.is_empty() || std::time::Instant::now() > deadline {
            return;
        }
        for pid in pids {
            let pid = Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            // A zombie child of ours stays listed until reaped. Only the pids listed here:
            // waitpid(-1) would take the exit status of another child (PID 1: another
            // container's init that ended at the same moment, which would then never be
            // seen to exit).
            let _ = waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG));
        }
        if !thawed {
            // A frozen (paused) process dies of SIGKILL only once thawed (v1 freezer).
            let _ = cg.freeze(false);
            thawed = true;
        }
        waits::tick();
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// The mount point (from /proc/self/mountinfo) of the mount that holds `path`: the
/// longest mount point that is `path` or one of its ancestors.
fn mount_point_of(path: &Path) -> Option<String> {
    let path = std::fs::canonicalize(path).ok()?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(crate::cgroup::unescape_mountinfo)
        .filter(|m| path.starts_with(m))
        .max_by_key(String::len)
}

/// Makes this process, and so the child cloned next, not dumpable (`PR_SET_DUMPABLE` 0).
/// Until it execs, the child runs dory's binary inside the container's pid namespace;
/// not dumpable, it cannot be ptraced there and its `/proc/<pid>/exe` cannot be opened to
/// overwrite the runtime (CVE-2019-5736). exec(2) of the container's program makes that
/// process dumpable again.
pub fn hide_from_container() -> Result<(), Errno> {
    sys::prctl(libc::PR_SET_DUMPABLE, 0, 0).map(drop)
}

/// What the parent opens so a new process lands in `cg`: the v1 `tasks` files it writes
/// "0" to itself, and the v2 directory for clone3 `CLONE_INTO_CGROUP`. Used by launch and
/// exec; an error names the path.
pub fn cgroup_join_fds(cg: &Cgroup) -> Result<(Vec<OwnedFd>, Option<OwnedFd>), (PathBuf, Errno)> {
    use nix::fcntl::OFlag;
    let mut tasks = Vec::new();
    for f in cg.self_join_files() {
        let fd = nix::fcntl::open(
            &f,
            OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| (f.clone(), e))?;
        // The child writes into it from the container's side: it must be cgroupfs.
        crate::cgroup::on_cgroupfs(&fd).map_err(|_| (f.clone(), Errno::EXDEV))?;
        tasks.push(fd);
    }
    let v2 = match cg.v2_dir() {
        Some(d) => Some(
            nix::fcntl::open(
                d,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| (d.to_path_buf(), e))?,
        ),
        None => None,
    };
    Ok((tasks, v2))
}

/// Why a container's init did not take its exec fifo.
#[derive(Debug)]
pub enum FifoError {
    Io(&'static str, Errno),
    InitExited,
    Timeout,
}

impl fmt::Display for FifoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FifoError::Io(what, e) => write!(f, "{what} exec.fifo: {}", e.desc()),
            FifoError::InitExited => f.write_str("container's init exited before start"),
            FifoError::Timeout => f.write_str("start: the container did not take the exec fifo"),
        }
    }
}

/// How long a start waits for the container's init to take the exec fifo.
const START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Lets a container waiting on its exec fifo run its program (what `start` does), then
/// removes the fifo. The open is non-blocking and the init's liveness is checked while
/// waiting, so an init that died cannot hang the caller.
pub fn release_exec_fifo(path: &Path, init: &state::State<'_>) -> Result<(), FifoError> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let fifo = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| FifoError::Io("open", e))?;
    let deadline = std::time::Instant::now() + START_TIMEOUT;
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(100u16));
        let mut b = [0u8; 1];
        match nix::unistd::read(&fifo, &mut b) {
            Ok(1) => break,
            Ok(_) | Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
            Err(e) => return Err(FifoError::Io("read", e)),
        }
        if !state::is_running(init) {
            let _ = std::fs::remove_file(path);
            return Err(FifoError::InitExited);
        }
        if std::time::Instant::now() > deadline {
            return Err(FifoError::Timeout);
        }
    }
    let _ = std::fs::remove_file(path);
    Ok(())
}

/// Writes a pid file atomically (no newline, as runc).
pub fn write_pid_file(path: &Path, pid: i32) -> std::io::Result<()> {
    // A hidden sibling, renamed over the target: readers never see a partial file.
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".dory-tmp");
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, pid.to_string())?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn write_id_map(pid: i32, file: &str, maps: &[spec::IdMapping]) -> Result<(), Error> {
    let mut text = String::new();
    for m in maps {
        text.push_str(&format!("{} {} {}\n", m.container_id, m.host_id, m.size));
    }
    write_proc(Some(pid), file, text.as_bytes()).map_err(|e| {
        Error::Parent(
            if file == "uid_map" {
                "linux.uidMappings"
            } else {
                "linux.gidMappings"
            },
            e,
        )
    })
}

/// Writes `file` of `/proc/<pid>` (or of the caller's own directory) through a verified
/// procfs handle: no symlink, no mount crossed, procfs checked (`sys::procfs`).
fn write_proc(pid: Option<i32>, file: &str, text: &[u8]) -> Result<(), Errno> {
    let root = sys::procfs::open_root()?;
    let dir = match pid {
        Some(pid) => {
            let rel = std::ffi::CString::new(pid.to_string()).map_err(|_| Errno::EINVAL)?;
            sys::procfs::open_beneath(root.as_fd(), &rel, libc::O_PATH | libc::O_DIRECTORY)?
        }
        None => sys::procfs::own_dir(root.as_fd())?,
    };
    let name = std::ffi::CString::new(file).map_err(|_| Errno::EINVAL)?;
    sys::procfs::write(dir.as_fd(), &name, text)
}

/// Turns a child's failure record into a message naming the config field.
pub fn describe_failure(plan: &Plan, f: &Failure) -> String {
    let i = f.index as usize;
    let s = &plan.strings;
    let err = f.errno.desc();
    match f.step {
        Step::Mount | Step::MountDestination | Step::MountCgroup => {
            let dest = plan.mounts.get(i).map(|m| s.text(m.dest)).unwrap_or("?");
            format!("config.json: mounts[{i}] ({dest}): mount: {err}")
        }
        Step::Device => {
            let p = plan.devices.get(i).map(|d| s.text(d.path)).unwrap_or("?");
            format!("config.json: linux.devices: create {p}: {err}")
        }
        Step::MaskPath => {
            let p = plan.masked_paths.get(i).map(|p| s.text(*p)).unwrap_or("?");
            format!("config.json: linux.maskedPaths[{i}] ({p}): {err}")
        }
        Step::MaskNotNullDevice => {
            let p = plan.masked_paths.get(i).map(|p| s.text(*p)).unwrap_or("?");
            format!(
                "config.json: linux.maskedPaths[{i}] ({p}): the container's /dev/null is not \
                 the null device (char 1:3): {err}"
            )
        }
        Step::ReadonlyPath => {
            let p = plan
                .readonly_paths
                .get(i)
                .map(|p| s.text(*p))
                .unwrap_or("?");
            format!("config.json: linux.readonlyPaths[{i}] ({p}): {err}")
        }
        Step::Sysctl => format!("config.json: linux.sysctl[{i}]: {err}"),
        Step::Rlimit => format!("config.json: process.rlimits[{i}]: setrlimit: {err}"),
        Step::AppArmor => format!(
            "config.json: process.apparmorProfile: \"{}\": write /proc/self/attr/apparmor/exec: {err}",
            crate::plan::apparmor::profile_of(plan.strings.text(plan.process.apparmor.unwrap_or_default()))
        ),
        Step::Hostname => format!("config.json: hostname: {err}"),
        Step::Domainname => format!("config.json: domainname: {err}"),
        Step::ReadonlyRoot => format!("config.json: root.readonly: remount: {err}"),
        Step::Cwd => format!(
            "config.json: process.cwd ({}): {err}",
            s.text(plan.process.cwd)
        ),
        Step::CwdOutsideRoot => format!(
            "config.json: process.cwd ({}): not inside the container's root",
            s.text(plan.process.cwd)
        ),
        Step::Groups => format!("config.json: process.user.additionalGids: setgroups: {err}"),
        Step::SetUser => format!("config.json: process.user: {err}"),
        Step::Capabilities => format!("config.json: process.capabilities: {err}"),
        Step::NoNewPrivileges => format!("config.json: process.noNewPrivileges: {err}"),
        Step::JoinNamespace => format!("config.json: linux.namespaces: setns: {err}"),
        Step::Hooks => format!("hooks: {err}"),
        Step::Seccomp => format!("config.json: linux.seccomp: load the filter: {err}"),
        Step::ExecFifo => format!("exec fifo: open through the host's /proc/self/fd: {err}"),
        Step::OomScoreAdj => format!("config.json: process.oomScoreAdj: {err}"),
        Step::JoinCgroup => format!("cgroup: join: {err}"),
        Step::PivotRoot if f.index == sandbox::PIVOT_REFUSED => format!(
            "pivot_root: {err}: the host's root is the initramfs (rootfs), which pivot_root \
             cannot leave; not falling back to MS_MOVE + chroot, which would leave the host's \
             root mounted under the container (opt in, unsafely, with --no-pivot, the \
             board's \"unsafeNoPivot\": true or the kernel option dory.nopivot)"
        ),
        Step::PivotRoot if f.index >= sandbox::NO_PIVOT_DETACH => {
            let n = usize::from(f.index - sandbox::NO_PIVOT_DETACH);
            let p = plan
                .no_pivot_detach
                .get(n)
                .map(|p| s.text(*p))
                .unwrap_or("?");
            format!("--no-pivot: detach the host mount {p} in the container's namespace: {err}")
        }
        Step::Console => format!("config.json: process.terminal: open the console: {err}"),
        Step::Affinity
        | Step::Scheduler
        | Step::IoPriority
        | Step::Personality
        | Step::MemoryPolicy => format!(
            "config.json: {}",
            describe_attr_failure(f, &plan.process.attrs)
        ),
        Step::Exec => {
            let prog = plan.process.args.first().map(|a| s.text(*a)).unwrap_or("");
            match f.errno {
                Errno::ENOENT if !prog.contains('/') => {
                    format!("exec \"{prog}\": executable file not found in $PATH")
                }
                _ => format!("exec \"{prog}\": {err}"),
            }
        }
        other => format!("container setup failed at {other:?}: {err}"),
    }
}

/// A failed process-attribute step (init or exec): the field, the syscall, the errno and,
/// where the kernel's answer is terse, the likely cause.
pub fn describe_attr_failure(f: &Failure, attrs: &crate::plan::ProcessAttrs) -> String {
    use crate::plan::attrs::{SCHED_DEADLINE, SCHED_FIFO, SCHED_RR};
    let err = f.errno.desc();
    let policy = attrs.scheduler.map(|s| s.policy);
    let realtime = policy == Some(SCHED_FIFO) || policy == Some(SCHED_RR);
    let deadline = policy == Some(SCHED_DEADLINE);
    match (f.step, f.errno) {
        (Step::Scheduler, Errno::EPERM) if realtime => format!(
            "process.scheduler: sched_setattr: {err} (with cgroup v1 real-time group \
             scheduling a real-time policy needs a budget in the container's cgroup: set \
             linux.resources.cpu.realtimeRuntime)"
        ),
        (Step::Scheduler, Errno::EPERM) if deadline => format!(
            "process.scheduler: sched_setattr: {err} (SCHED_DEADLINE needs every CPU of \
             the root domain: no narrower cpuset or execCPUAffinity.final; runc: \"can't be \
             used together with AllowedCPUs\")"
        ),
        (Step::Scheduler, _) => format!("process.scheduler: sched_setattr: {err}"),
        (Step::Affinity, _) => format!(
            "process.execCPUAffinity.final: sched_setaffinity: {err} (the CPUs must be online \
             and in the container's cpuset)"
        ),
        (Step::IoPriority, _) => format!("process.ioPriority: ioprio_set: {err}"),
        (Step::Personality, _) => format!("linux.personality: personality: {err}"),
        (Step::MemoryPolicy, Errno::EINVAL) => format!(
            "linux.memoryPolicy: set_mempolicy: {err} (every node must exist and be in the \
             container's cpuset.mems)"
        ),
        (Step::MemoryPolicy, _) => format!("linux.memoryPolicy: set_mempolicy: {err}"),
        (other, _) => format!("setup failed at {other:?}: {err}"),
    }
}

impl Started {
    /// Removes the cgroup and the state entry; call after `pid` has been reaped. Processes
    /// the init left behind (no pid namespace) are killed first, as runc does.
    pub fn destroy(mut self) {
        if let Some(cg) = self.cgroup.take() {
            kill_cgroup(&cg);
            let _ = cg.remove();
            if self.default_cgroup {
                cg.remove_empty_parents(1);
            }
        }
        state::remove_dir(&self.state_dir);
    }
}

#[cfg(test)]
mod kill_tests;
