//! The child side, after clone: one ordered function that applies the plan and execs.
//!
//! Nothing here allocates: every string is in the plan's arena, paths that must be built
//! are built in stack buffers. A failed step is reported to the parent as a fixed-size
//! [`Failure`] record over the sync socket, then the child exits.

mod copyup;
mod fs;

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sched::CloneFlags;
use nix::unistd::{Gid, Uid};

use crate::plan::attrs::BitMask;
use crate::plan::{apparmor, Arena, FinalCpus, Plan, ProcessAttrs, ProcessPlan};
use crate::spec::NamespaceKind;
use crate::sys;

pub use fs::{detached_bind, RootSwitch, StackPath, NO_PIVOT_DETACH, PIVOT_REFUSED};

/// Declares [`Step`] and its list once, so the wire decoding cannot miss a variant.
macro_rules! steps {
    ($($name:ident),* $(,)?) => {
        /// The step a child failed at, in setup order; the parent turns it into a message.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u16)]
        pub enum Step {
            $($name),*
        }

        impl Step {
            const ALL: &'static [Step] = &[$(Step::$name),*];
        }
    };
}

steps! {
    WaitParent,
    JoinCgroup,
    JoinNamespace,
    UnshareCgroup,
    Loopback,
    RootPropagation,
    BindRootfs,
    OpenRootfs,
    MountDestination,
    Mount,
    MountCgroup,
    Device,
    DevSymlink,
    Hooks,
    OomScoreAdj,
    PivotRoot,
    Console,
    Stdio,
    Sysctl,
    MaskPath,
    MaskNotNullDevice,
    ReadonlyPath,
    ReadonlyRoot,
    Hostname,
    Domainname,
    Rlimit,
    AppArmor,
    Affinity,
    Scheduler,
    IoPriority,
    Personality,
    MemoryPolicy,
    Seccomp,
    Groups,
    SetUser,
    Capabilities,
    NoNewPrivileges,
    Cwd,
    CwdOutsideRoot,
    CloseFds,
    ExecFifo,
    Exec,
}

impl Step {
    pub fn from_u16(v: u16) -> Option<Step> {
        Step::ALL.iter().copied().find(|s| *s as u16 == v)
    }
}

/// A failed step: which, at which index of its list, and the errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub step: Step,
    pub index: u16,
    pub errno: Errno,
}

/// Message tags on the sync socket.
pub const MSG_GO: u8 = b'G';
pub const MSG_FAILURE: u8 = b'E';
pub const MSG_PTY: u8 = b'P';
pub const MSG_READY: u8 = b'R';
pub const MSG_HOOKS: u8 = b'H';
/// The seccomp listener fd (SCM_RIGHTS), for the parent to send to `listenerPath`.
pub const MSG_SECCOMP: u8 = b'S';

impl Failure {
    pub const WIRE_LEN: usize = 9;

    pub fn encode(&self) -> [u8; Self::WIRE_LEN] {
        let mut out = [0u8; Self::WIRE_LEN];
        let s = (self.step as u16).to_le_bytes();
        let i = self.index.to_le_bytes();
        let e = (self.errno as i32).to_le_bytes();
        let parts = [MSG_FAILURE, s[0], s[1], i[0], i[1], e[0], e[1], e[2], e[3]];
        out.copy_from_slice(&parts);
        out
    }

    pub fn decode(b: &[u8]) -> Option<Failure> {
        match *b {
            [MSG_FAILURE, s0, s1, i0, i1, e0, e1, e2, e3] => Some(Failure {
                step: Step::from_u16(u16::from_le_bytes([s0, s1]))?,
                index: u16::from_le_bytes([i0, i1]),
                errno: Errno::from_raw(i32::from_le_bytes([e0, e1, e2, e3])),
            }),
            _ => None,
        }
    }
}

/// What the child gets besides the plan: fds opened by the parent before clone.
pub struct ChildContext<'p> {
    pub plan: &'p Plan,
    /// `plan.process`'s argv and envp, ready for execve.
    pub exec_args: &'p ExecArgs<'p>,
    /// The child's end of the sync socket (close-on-exec).
    pub sync: BorrowedFd<'p>,
    /// Namespaces to join, opened by the parent (same order as `plan.joins`).
    pub join_fds: &'p [(NamespaceKind, RawFd)],
    /// The host's procfs root, opened and verified by the parent (`sys::procfs`): every
    /// write to /proc and every reopen through `/proc/self/fd` goes through it, never
    /// through a /proc the container could have shaped.
    pub proc: BorrowedFd<'p>,
    /// fds to install as 0, 1, 2 (when not using a terminal and not inheriting).
    pub stdio: Option<[RawFd; 3]>,
    /// cgroup v1 `tasks` files, opened for writing: the child moves itself in.
    pub cgroup_tasks: &'p [RawFd],
    /// Wait for the parent's "go" (it writes id maps or places us in the cgroup).
    pub wait_for_parent: bool,
    pub start: StartGate,
    /// Stop before pivot_root while the parent runs the prestart, createRuntime and
    /// createContainer hooks.
    pub hooks_before_pivot: bool,
    /// pivot_root, or `--no-pivot`'s MS_MOVE + chroot (always, or where pivot_root is
    /// refused: `unsafeNoPivot`), or chroot alone without a mount namespace.
    pub root_switch: RootSwitch,
}

/// How the process finally starts: at once (`run`), or after `dory start` (`create`).
#[derive(Clone, Copy)]
pub struct StartGate {
    /// O_PATH fd of the state directory's exec.fifo: report ready, then block opening it
    /// for writing until `dory start` opens it for reading.
    pub exec_fifo: Option<RawFd>,
    /// fds 3 .. 3+N stay open across exec (`--preserve-fds`).
    pub preserve_fds: u32,
    /// The verified host procfs root the fifo is reopened through (a container's init).
    pub proc: Option<RawFd>,
}

/// What the child of `dory exec` gets: the process plan and the running container's
/// namespaces and cgroup, opened by the parent.
pub struct ExecContext<'p> {
    pub strings: &'p Arena,
    pub process: &'p ProcessPlan,
    /// `process`'s argv and envp, ready for execve.
    pub exec_args: &'p ExecArgs<'p>,
    pub sync: BorrowedFd<'p>,
    /// Namespaces of the container's init (the pid namespace is entered by the parent).
    pub ns_fds: &'p [(NamespaceKind, RawFd)],
    pub cgroup_tasks: &'p [RawFd],
    pub stdio: Option<[RawFd; 3]>,
    pub preserve_fds: u32,
    /// The container's seccomp filter (an exec'd process gets it too, as in runc).
    pub seccomp: Option<&'p crate::seccomp::Program>,
    /// Start a new session (a hook: no controlling terminal of the caller's).
    pub new_session: bool,
    /// The host's procfs root, verified by the parent (for `oom_score_adj`).
    pub proc: BorrowedFd<'p>,
    /// The init's root (`/proc/<pid>/root`) when the container has no mount namespace of
    /// its own: chrooted into after the namespaces are joined.
    pub chroot: Option<RawFd>,
}

type StepResult = Result<(), Failure>;

fn fail(step: Step, index: usize, errno: Errno) -> Failure {
    Failure {
        step,
        index: u16::try_from(index).unwrap_or(u16::MAX),
        errno,
    }
}

fn at(step: Step) -> impl Fn(Errno) -> Failure {
    move |e| fail(step, 0, e)
}

/// Runs in the cloned child: applies the plan in order and execs. Never returns.
pub fn run_child(ctx: &ChildContext<'_>) -> ! {
    let failure = match setup_and_exec(ctx) {
        Ok(never) => match never {},
        Err(f) => f,
    };
    let _ = nix::unistd::write(ctx.sync, &failure.encode());
    sys::exit_now(1)
}

enum Never {}

/// The container's setup, in the order it must happen.
fn setup_and_exec(ctx: &ChildContext<'_>) -> Result<Never, Failure> {
    let plan = ctx.plan;
    // Into the cgroup first, so everything after is accounted to it. Writing "0" to v1
    // `tasks` moves this single-threaded process without the kernel's global migration
    // lock (an RCU wait of ~10 ms when the parent writes our pid to cgroup.procs).
    for (i, fd) in ctx.cgroup_tasks.iter().enumerate() {
        nix::unistd::write(sys::borrow_fd(*fd), b"0").map_err(|e| fail(Step::JoinCgroup, i, e))?;
    }
    // The parent writes id maps (or places us in the cgroup) before we go on.
    if ctx.wait_for_parent {
        wait_for_parent(ctx.sync)?;
    }
    // In a new user namespace we start unmapped (as the overflow id): become its root, so
    // files we create (device nodes, mount points) get mapped owners.
    if plan.clone_flags & libc::CLONE_NEWUSER != 0 {
        let root_gid = Gid::from_raw(0);
        let root_uid = Uid::from_raw(0);
        nix::unistd::setresgid(root_gid, root_gid, root_gid).map_err(at(Step::SetUser))?;
        nix::unistd::setresuid(root_uid, root_uid, root_uid).map_err(at(Step::SetUser))?;
    }
    // Joined namespaces before anything else, user first, so later steps act inside them.
    join_namespaces(ctx.join_fds)?;
    // Now that we are in our cgroup, a new cgroup namespace is rooted there.
    if plan.new_cgroup_ns {
        nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).map_err(at(Step::UnshareCgroup))?;
    }
    // A new network namespace starts with lo down: bring it up, as runc does.
    if plan.clone_flags & libc::CLONE_NEWNET != 0 {
        sys::interface_up("lo").map_err(at(Step::Loopback))?;
    }
    // Without a mount namespace of our own these are the host's mounts: none is touched.
    let own_mounts = ctx.root_switch != RootSwitch::Chroot;
    let unbindable = plan.rootfs_propagation & libc::MS_UNBINDABLE != 0;
    if own_mounts {
        prepare_root(plan, unbindable)?;
    }
    let rootfs = plan.strings.get(plan.rootfs);
    let root = nix::fcntl::open(
        rootfs,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(at(Step::OpenRootfs))?;
    // Config mounts, each destination resolved inside the rootfs.
    fs::mount_all(plan, root.as_fd(), ctx.proc)?;
    // Device nodes go into the fresh /dev the mounts made.
    if plan.creates_dev {
        fs::create_devices(plan, root.as_fd(), ctx.proc)?;
    }
    // A missing working directory is made while we are still root and the rootfs writable
    // (as runc). Best effort: whatever stays wrong, chdir reports with the field's name.
    let _ = fs::create_cwd(root.as_fd(), plan.strings.get(plan.process.cwd));
    // The OOM score through the host's /proc, before it is out of reach. In a new user
    // namespace the parent writes it: our /proc files belong to the host's root while we
    // are not dumpable.
    let own_oom_score = plan.clone_flags & libc::CLONE_NEWUSER == 0;
    if let Some(score) = plan.process.oom_score_adj.filter(|_| own_oom_score) {
        write_oom_score(ctx.proc, score)?;
    }
    // Hooks see the container's namespaces before the root switch (runtime-spec order).
    if ctx.hooks_before_pivot {
        nix::unistd::write(ctx.sync, &[MSG_HOOKS]).map_err(at(Step::Hooks))?;
        wait_for_parent(ctx.sync)?;
    }
    // Switch the root: pivot_root detaches the old one so nothing of the host stays
    // reachable; --no-pivot and no mount namespace chroot (see `RootSwitch`).
    fs::pivot(plan, ctx.root_switch)?;
    drop(root);
    // From here paths are the container's: each is resolved once, inside this root.
    let root = open_root().map_err(at(Step::PivotRoot))?;
    // The terminal is opened from the container's own devpts, after the pivot.
    setup_stdio(ctx, root.as_fd())?;
    // sysctls before /proc/sys becomes read-only; through the verified host procfs (the
    // values land in our namespaces: the kernel picks them by the writer's namespaces).
    for (i, (path, value)) in plan.sysctls.iter().enumerate() {
        write_sysctl(
            ctx.proc,
            plan.strings.get(*path),
            plan.strings.bytes(*value),
        )
        .map_err(|e| fail(Step::Sysctl, i, e))?;
    }
    for (i, p) in plan.masked_paths.iter().enumerate() {
        fs::mask_path(root.as_fd(), plan.strings.get(*p), i)?;
    }
    for (i, p) in plan.readonly_paths.iter().enumerate() {
        fs::readonly_path(root.as_fd(), plan.strings.get(*p), ctx.proc)
            .map_err(|e| fail(Step::ReadonlyPath, i, e))?;
    }
    if plan.rootfs_readonly {
        fs::remount_readonly(root.as_fd(), ctx.proc).map_err(at(Step::ReadonlyRoot))?;
    }
    // The new root gets the propagation asked for (it was bound under a private parent,
    // or kept private to be bound at all), once the masks no longer bind from it.
    if own_mounts && (plan.rootfs_parent_mount.is_some() || unbindable) {
        mount(
            None::<&CStr>,
            c"/",
            None::<&CStr>,
            MsFlags::from_bits_retain(plan.rootfs_propagation),
            None::<&CStr>,
        )
        .map_err(at(Step::RootPropagation))?;
    }
    if let Some(h) = plan.hostname {
        nix::unistd::sethostname(plan.strings.text(h)).map_err(at(Step::Hostname))?;
    }
    if let Some(d) = plan.domainname {
        sys::setdomainname(plan.strings.bytes(d)).map_err(at(Step::Domainname))?;
    }
    drop(root);
    apply_process(
        &plan.strings,
        &plan.process,
        ctx.exec_args,
        ctx.sync,
        ctx.proc,
        StartGate {
            proc: Some(ctx.proc.as_raw_fd()),
            ..ctx.start
        },
        plan.seccomp.as_deref(),
    )
}

/// Mount propagation first, so no mount below leaks to the host; then the rootfs bound
/// onto itself, as pivot_root (and MS_MOVE) need it to be a mount point.
fn prepare_root(plan: &Plan, unbindable: bool) -> StepResult {
    // An unbindable tree could not be bound onto itself for pivot_root: it is private
    // until after the pivot.
    let before_pivot = if unbindable {
        libc::MS_PRIVATE | libc::MS_REC
    } else {
        plan.rootfs_propagation
    };
    mount(
        None::<&CStr>,
        c"/",
        None::<&CStr>,
        MsFlags::from_bits_retain(before_pivot),
        None::<&CStr>,
    )
    .map_err(at(Step::RootPropagation))?;
    // pivot_root(2) refuses a new root whose parent mount is shared: with shared
    // propagation, the mount holding the rootfs goes private here (as runc does).
    if let Some(parent) = plan.rootfs_parent_mount {
        mount(
            None::<&CStr>,
            plan.strings.get(parent),
            None::<&CStr>,
            MsFlags::MS_PRIVATE,
            None::<&CStr>,
        )
        .map_err(at(Step::RootPropagation))?;
    }
    let rootfs = plan.strings.get(plan.rootfs);
    mount(
        Some(rootfs),
        rootfs,
        None::<&CStr>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&CStr>,
    )
    .map_err(at(Step::BindRootfs))
}

/// Writes our own `oom_score_adj` through the verified procfs root.
fn write_oom_score(proc: BorrowedFd<'_>, score: i32) -> StepResult {
    let mut v = StackPath::new();
    let text = if score < 0 {
        v.push(b"-")
            .and_then(|v| v.push_num(u64::from(score.unsigned_abs())))
    } else {
        v.push_num(u64::from(score.unsigned_abs()))
    };
    text.map_err(at(Step::OomScoreAdj))?;
    let bytes = v.as_cstr().map(|c| c.to_bytes()).unwrap_or_default();
    let own = sys::procfs::own_dir(proc).map_err(at(Step::OomScoreAdj))?;
    sys::procfs::write(own.as_fd(), c"oom_score_adj", bytes).map_err(at(Step::OomScoreAdj))
}

/// The process's root directory (`/`) as an `O_PATH` fd.
fn open_root() -> Result<std::os::fd::OwnedFd, Errno> {
    nix::fcntl::open(
        c"/",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
}

/// Writes a sysctl: `path` is `/proc/sys/...` as planned, opened beneath the verified
/// procfs root with no symlink and no mount crossed.
fn write_sysctl(proc: BorrowedFd<'_>, path: &CStr, value: &[u8]) -> Result<(), Errno> {
    let rel = path
        .to_bytes_with_nul()
        .strip_prefix(b"/proc/")
        .ok_or(Errno::EINVAL)?;
    let rel = CStr::from_bytes_with_nul(rel).map_err(|_| Errno::EINVAL)?;
    sys::procfs::write(proc, rel, value)
}

/// Runs in the child of `dory exec`: joins the container and execs. Never returns.
pub fn run_exec_child(ctx: &ExecContext<'_>) -> ! {
    let failure = match exec_setup(ctx) {
        Ok(never) => match never {},
        Err(f) => f,
    };
    let _ = nix::unistd::write(ctx.sync, &failure.encode());
    sys::exit_now(1)
}

fn exec_setup(ctx: &ExecContext<'_>) -> Result<Never, Failure> {
    // The OOM score first, while we are still the host's root (in a user namespace our
    // /proc files would no longer be ours to write).
    if let Some(score) = ctx.process.oom_score_adj {
        write_oom_score(ctx.proc, score)?;
    }
    // Same order as a container's init: cgroup, namespaces (user first), then the process.
    for (i, fd) in ctx.cgroup_tasks.iter().enumerate() {
        nix::unistd::write(sys::borrow_fd(*fd), b"0").map_err(|e| fail(Step::JoinCgroup, i, e))?;
    }
    join_namespaces(ctx.ns_fds)?;
    // Entering the mount namespace set our root and cwd to the container's root; without
    // one the container's root is a chroot in ours.
    if let Some(root) = ctx.chroot {
        nix::unistd::fchdir(sys::borrow_fd(root)).map_err(at(Step::PivotRoot))?;
        nix::unistd::chroot(c".").map_err(at(Step::PivotRoot))?;
    }
    nix::unistd::chdir(c"/").map_err(at(Step::Cwd))?;
    if ctx.new_session {
        nix::unistd::setsid().map_err(at(Step::Stdio))?;
    }
    if ctx.process.terminal {
        let root = open_root().map_err(at(Step::Console))?;
        console(ctx.sync, root.as_fd(), false)?;
    } else if let Some([i, o, e]) = ctx.stdio {
        install_stdio(i, o, e)?;
    }
    let start = StartGate {
        exec_fifo: None,
        preserve_fds: ctx.preserve_fds,
        proc: None,
    };
    apply_process(
        ctx.strings,
        ctx.process,
        ctx.exec_args,
        ctx.sync,
        ctx.proc,
        start,
        ctx.seccomp,
    )
}

fn wait_for_parent(sync: BorrowedFd<'_>) -> StepResult {
    let mut b = [0u8; 1];
    loop {
        match nix::unistd::read(sync, &mut b) {
            Ok(1) if b == [MSG_GO] => return Ok(()),
            Ok(_) => return Err(fail(Step::WaitParent, 0, Errno::EPIPE)),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(fail(Step::WaitParent, 0, e)),
        }
    }
}

fn join_namespaces(fds: &[(NamespaceKind, RawFd)]) -> StepResult {
    let user_first = fds.iter().filter(|(k, _)| *k == NamespaceKind::User);
    let others = fds
        .iter()
        .filter(|(k, _)| *k != NamespaceKind::User && *k != NamespaceKind::Pid);
    for (i, (kind, fd)) in user_first.chain(others).enumerate() {
        // The parent opened these fds before clone; they stay open until exec.
        let fd = sys::borrow_fd(*fd);
        nix::sched::setns(fd, CloneFlags::from_bits_retain(kind.clone_flag()))
            .map_err(|e| fail(Step::JoinNamespace, i, e))?;
    }
    Ok(())
}

fn setup_stdio(ctx: &ChildContext<'_>, root: BorrowedFd<'_>) -> StepResult {
    if ctx.plan.process.terminal {
        // `console` makes us a session leader with the pty as controlling terminal.
        console(ctx.sync, root, ctx.plan.creates_dev)?;
    } else {
        // The init leads a session of its own with or without a terminal, as under runc
        // and crun: no job control signal of the caller's session reaches it.
        nix::unistd::setsid().map_err(at(Step::Stdio))?;
        if let Some([i, o, e]) = ctx.stdio {
            install_stdio(i, o, e)?;
        }
    }
    Ok(())
}

/// A pty from the container's devpts: the master goes to the parent, the slave becomes
/// our controlling terminal and stdio.
fn console(sync: BorrowedFd<'_>, root: BorrowedFd<'_>, bind_console: bool) -> StepResult {
    let (master, slave) = fs::open_console(root, bind_console).map_err(at(Step::Console))?;
    sys::send_fd(sync, &[MSG_PTY], master.as_fd()).map_err(at(Step::Console))?;
    drop(master);
    nix::unistd::setsid().map_err(at(Step::Console))?;
    sys::set_controlling_tty(slave.as_fd()).map_err(at(Step::Console))?;
    install_stdio(slave.as_raw_fd(), slave.as_raw_fd(), slave.as_raw_fd())
}

fn install_stdio(i: RawFd, o: RawFd, e: RawFd) -> StepResult {
    for (src, dst) in [(i, 0), (o, 1), (e, 2)] {
        if src != dst {
            sys::dup2(src, dst).map_err(|x| fail(Step::Stdio, dst as usize, x))?;
        }
    }
    Ok(())
}

/// User, limits, capabilities and exec: the last steps, in the kernel's required order.
fn apply_process(
    strings: &Arena,
    p: &ProcessPlan,
    exec_args: &ExecArgs<'_>,
    sync: BorrowedFd<'_>,
    proc: BorrowedFd<'_>,
    start: StartGate,
    filter: Option<&crate::seccomp::Program>,
) -> Result<Never, Failure> {
    // The AppArmor profile for the exec, first (as runc, before the user, capabilities and
    // seccomp change): through the host's verified procfs, never the container's /proc,
    // which the image or a mount could shape into another file.
    if let Some(attr) = p.apparmor {
        sys::procfs::write_own_attr(proc, &apparmor::ATTR_FILES, strings.bytes(attr))
            .map_err(at(Step::AppArmor))?;
    }
    for (i, r) in p.rlimits.iter().enumerate() {
        sys::setrlimit(r.resource, r.soft, r.hard).map_err(|e| fail(Step::Rlimit, i, e))?;
    }
    if let Some(m) = p.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(m));
    }
    apply_attrs(&p.attrs)?;
    // The working directory while we are still root (as runc: root may enter a directory
    // only the user can), checked, and every fd closed on exec: all before a filter that
    // need not allow chdir, getcwd or close_range. Retried as the user if root could not.
    let cwd_later = nix::unistd::chdir(strings.get(p.cwd)).is_err();
    if !cwd_later {
        check_cwd()?;
    }
    // Only 0, 1, 2 (and preserved fds) survive exec; the sync socket closes on exec,
    // telling the parent it worked.
    sys::cloexec_from(3u32.saturating_add(start.preserve_fds)).map_err(at(Step::CloseFds))?;
    // Without no_new_privs the kernel loads a filter only for CAP_SYS_ADMIN: load it now,
    // before capabilities go (runc's order); the steps below must then pass the filter.
    let late_filter = match filter {
        Some(f) if !p.no_new_privileges => {
            load_filter(f, sync)?;
            None
        }
        other => other,
    };
    // The bounding set can only shrink while we still hold CAP_SETPCAP (as root).
    {
        let caps = p.caps;
        for cap in 0..64u64 {
            if caps.bounding & (1 << cap) == 0 {
                match sys::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0) {
                    Ok(_) | Err(Errno::EINVAL) => {}
                    Err(e) => return Err(fail(Step::Capabilities, cap as usize, e)),
                }
            }
        }
    }
    let mut gids: heapless::Vec<Gid, { crate::spec::MAX_ADDITIONAL_GIDS }> = heapless::Vec::new();
    for g in &p.additional_gids {
        // Same capacity as the plan's list: cannot overflow.
        let _ = gids.push(Gid::from_raw(*g));
    }
    nix::unistd::setgroups(&gids).map_err(at(Step::Groups))?;
    // Keep permitted capabilities across the uid change; capset sets them exactly below.
    sys::prctl(libc::PR_SET_KEEPCAPS, 1, 0).map_err(at(Step::SetUser))?;
    let gid = Gid::from_raw(p.gid);
    nix::unistd::setresgid(gid, gid, gid).map_err(at(Step::SetUser))?;
    let uid = Uid::from_raw(p.uid);
    nix::unistd::setresuid(uid, uid, uid).map_err(at(Step::SetUser))?;
    sys::prctl(libc::PR_SET_KEEPCAPS, 0, 0).map_err(at(Step::SetUser))?;
    {
        let caps = p.caps;
        sys::capset(sys::CapSets {
            effective: caps.effective,
            permitted: caps.permitted,
            inheritable: caps.inheritable,
        })
        .map_err(at(Step::Capabilities))?;
        // The kernel raises an ambient capability only if it is permitted and
        // inheritable; like runc, others are skipped rather than failing the container.
        for cap in 0..64u64 {
            if caps.ambient & (1 << cap) != 0 && caps.inheritable & caps.permitted & (1 << cap) != 0
            {
                sys::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                    cap as libc::c_ulong,
                )
                .map_err(|e| fail(Step::Capabilities, cap as usize, e))?;
            }
        }
    }
    if p.no_new_privileges {
        sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0).map_err(at(Step::NoNewPrivileges))?;
    }
    if cwd_later {
        nix::unistd::chdir(strings.get(p.cwd)).map_err(at(Step::Cwd))?;
        check_cwd()?;
    }
    // A listener travels over the sync socket, which `create`'s parent closes once we
    // report ready: with one, the filter goes on before the start gate (where runc
    // loads every no_new_privs filter).
    let late_filter = match late_filter {
        Some(f) if f.has_listener() => {
            load_filter(f, sync)?;
            None
        }
        other => other,
    };
    if let Some(fifo) = start.exec_fifo {
        // As runc: a program that cannot be found or run fails `create`, where the
        // caller still hears about it, not the exec after `start`.
        probe(strings, p).map_err(|e| fail(Step::Exec, 0, e))?;
        let proc = start
            .proc
            .ok_or_else(|| fail(Step::ExecFifo, 0, Errno::EBADF))?;
        wait_for_start(sync, sys::borrow_fd(proc), fifo)?;
    }
    sys::reset_signals();
    // With no_new_privs the filter goes on last, so it judges only the program's calls.
    if let Some(f) = late_filter {
        load_filter(f, sync)?;
    }
    Err(fail(Step::Exec, 0, exec(strings, p, exec_args)))
}

/// Loads the seccomp filter. Its listener, if any, goes to the parent at once (which
/// sends it to the agent) and our copy is closed: a notified call can only be answered
/// once the agent has it, and it must not stay open in the container's program.
fn load_filter(f: &crate::seccomp::Program, sync: BorrowedFd<'_>) -> StepResult {
    let listener =
        sys::seccomp::install_filter(f.as_slice(), f.flags()).map_err(at(Step::Seccomp))?;
    if let Some(fd) = listener {
        sys::send_fd(sync, &[MSG_SECCOMP], fd.as_fd()).map_err(at(Step::Seccomp))?;
    }
    Ok(())
}

/// The attributes the kernel keeps across execve, in runc's order: we are in the
/// container's cgroup (its cpuset bounds the affinity), still hold every capability (a
/// real-time policy or I/O class needs CAP_SYS_NICE) and no seccomp filter is loaded yet.
/// The affinity goes first: a SCHED_DEADLINE task may not narrow it afterwards.
fn apply_attrs(a: &ProcessAttrs) -> StepResult {
    match a.final_cpus {
        FinalCpus::Keep => {}
        // Best effort, as runc (which only warns): dory's own affinity is not inherited.
        FinalCpus::Reset => {
            let _ = sys::sched::sched_setaffinity(&BitMask::ALL.0);
        }
        FinalCpus::Set(m) => sys::sched::sched_setaffinity(&m.0).map_err(at(Step::Affinity))?,
    }
    if let Some(s) = &a.scheduler {
        sys::sched::sched_setattr(s).map_err(at(Step::Scheduler))?;
    }
    if let Some(v) = a.io_priority {
        sys::sched::ioprio_set(v).map_err(at(Step::IoPriority))?;
    }
    if let Some(p) = a.personality {
        sys::sched::personality(p).map_err(at(Step::Personality))?;
    }
    if let Some(m) = &a.memory_policy {
        sys::sched::set_mempolicy(m.mode, &m.nodes.0).map_err(at(Step::MemoryPolicy))?;
    }
    Ok(())
}

/// Until exec we still hold fds of the host (a cgroup directory, the verified procfs, the
/// parent's files): a cwd through /proc/self/fd/N would leave the container outside its
/// root (CVE-2024-21626). The kernel tells us when the cwd is not under our root.
fn check_cwd() -> StepResult {
    sys::cwd_is_under_root().map_err(at(Step::CwdOutsideRoot))
}

/// `create`: tell the parent we are ready, then block until `dory start` opens the fifo.
fn wait_for_start(sync: BorrowedFd<'_>, proc: BorrowedFd<'_>, fifo: RawFd) -> StepResult {
    // Through the verified host procfs: the container's /proc could redirect the reopen
    // to any file it likes (and "0" be written there). Its checks run before READY, so
    // that a seccomp filter refusing them fails `create` with the errno (after READY the
    // caller is gone and `start` would only find a stopped container).
    let fds = sys::procfs::fd_dir(proc).map_err(at(Step::ExecFifo))?;
    nix::unistd::write(sync, &[MSG_READY]).map_err(at(Step::ExecFifo))?;
    let fd =
        sys::procfs::reopen_in(fds.as_fd(), fifo, libc::O_WRONLY).map_err(at(Step::ExecFifo))?;
    nix::unistd::write(&fd, b"0").map_err(at(Step::ExecFifo))?;
    Ok(())
}

/// Whether `path` is a regular file we may execute (what execve would check first).
fn executable(path: &CStr) -> Result<(), Errno> {
    let st = nix::sys::stat::stat(path)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(Errno::EACCES);
    }
    nix::unistd::access(path, nix::unistd::AccessFlags::X_OK)
}

/// Finds args[0] as `exec` would, without executing it.
fn probe(strings: &Arena, p: &ProcessPlan) -> Result<(), Errno> {
    let prog = p
        .args
        .first()
        .map(|a| strings.get(*a))
        .ok_or(Errno::ENOENT)?;
    search_path(strings, p, prog, executable)
}

/// Tries `attempt` on args[0] (with a slash) or on each `PATH` candidate; ENOENT unless
/// some candidate existed but failed otherwise. Returns at the first success.
fn search_path(
    strings: &Arena,
    p: &ProcessPlan,
    prog: &CStr,
    attempt: impl Fn(&CStr) -> Result<(), Errno>,
) -> Result<(), Errno> {
    if prog.to_bytes().contains(&b'/') {
        return attempt(prog);
    }
    let path_var = p
        .path_var
        .map(|v| strings.bytes(v))
        .unwrap_or(b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let mut result = Err(Errno::ENOENT);
    for dir in path_var.split(|b| *b == b':') {
        let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
        let mut buf = StackPath::new();
        if buf
            .push(dir)
            .and_then(|b| b.push(b"/"))
            .and_then(|b| b.push(prog.to_bytes()))
            .is_err()
        {
            continue;
        }
        let Some(candidate) = buf.as_cstr() else {
            continue;
        };
        match attempt(candidate) {
            Ok(()) => return Ok(()),
            Err(Errno::ENOENT | Errno::ENOTDIR) => {}
            Err(e) => result = Err(e),
        }
    }
    result
}

/// The process's argv and envp as execve takes them: pointers into the plan's strings,
/// built by the parent before clone (the child allocates nothing).
pub struct ExecArgs<'s> {
    argv: sys::CStrArray<'s>,
    envp: sys::CStrArray<'s>,
}

impl<'s> ExecArgs<'s> {
    pub fn new(strings: &'s Arena, p: &ProcessPlan) -> Self {
        ExecArgs {
            argv: sys::CStrArray::new(p.args.iter().map(|a| strings.get(*a))),
            envp: sys::CStrArray::new(p.env.iter().map(|e| strings.get(*e))),
        }
    }
}

/// execve of args[0], searched in the container's PATH when it has no slash.
fn exec(strings: &Arena, p: &ProcessPlan, args: &ExecArgs<'_>) -> Errno {
    let Some(prog) = p.args.first().map(|a| strings.get(*a)) else {
        return Errno::ENOENT;
    };
    // execve returns only on failure: its errno is the attempt's error.
    let run = |path: &CStr| Err(sys::execve(path, &args.argv, &args.envp));
    match search_path(strings, p, prog, run) {
        Ok(()) => Errno::ENOENT,
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_round_trips_over_the_wire() {
        for (n, &step) in Step::ALL.iter().enumerate() {
            let f = Failure {
                step,
                index: n as u16,
                errno: Errno::EACCES,
            };
            assert_eq!(Failure::decode(&f.encode()), Some(f));
        }
        assert_eq!(Failure::decode(b"E\xff\xff\0\0\0\0\0\0"), None);
        assert_eq!(Failure::decode(b"short"), None);
    }
}
