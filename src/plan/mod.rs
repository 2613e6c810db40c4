//! Pure translation of a validated [`Spec`] into what the child applies: clone flags,
//! mount steps with flags and data, device nodes, capability masks, rlimits and every
//! string as a C string. No syscalls except reading the bundle's metadata; unit-tested
//! without root.

pub mod apparmor;
pub mod arena;
pub mod attrs;
pub mod mounts;

use std::fmt;
use std::path::{Path, PathBuf};

use heapless::Vec;
use libc::{c_int, c_ulong};

pub use arena::{Arena, ArenaError, CStrId};
pub use attrs::{FinalCpus, ProcessAttrs};
pub use mounts::MountKind;
use mounts::{MountFlags, Parsed};

use crate::spec::{self, List, NamespaceKind, Spec};

/// Mount entries (config mounts).
pub const MAX_MOUNT_STEPS: usize = spec::MAX_MOUNTS;
/// Host mount points `--no-pivot` detaches before moving the rootfs onto `/`.
pub const MAX_NO_PIVOT_DETACH: usize = 512;
/// Device nodes: the six defaults plus `linux.devices`.
pub const MAX_DEVICE_NODES: usize = 6 + spec::MAX_DEVICES;
/// cgroup v1 hierarchies mounted inside a container.
pub const MAX_CGROUP_HIERARCHIES: usize = 16;

/// Whether a config mount entry is a bind mount (type `bind`, or a `bind`/`rbind` option).
fn bind_entry(m: &spec::Mount<'_>) -> bool {
    m.kind == Some("bind") || m.options.iter().any(|o| *o == "bind" || *o == "rbind")
}

/// A mount entry's options folded into flags, and its filesystem data (comma-joined).
fn mount_options(
    m: &spec::Mount<'_>,
    field: &str,
) -> Result<(MountFlags, std::vec::Vec<u8>), PlanError> {
    let mut flags = MountFlags::default();
    let mut data: std::vec::Vec<u8> = std::vec::Vec::new();
    for (j, o) in m.options.iter().enumerate() {
        match mounts::apply_option(&mut flags, o) {
            Ok(Parsed::Flag) => {}
            Ok(Parsed::Data(d)) if bind_entry(m) => {
                // As runc 1.2: a bind has no filesystem to take options, and a misspelt
                // flag (`rnoexce`) must not be dropped silently.
                return Err(err(
                    format!("{field}.options[{j}]"),
                    format!(
                        "unknown mount option \"{d}\" (a bind mount takes no filesystem \
                         options)"
                    ),
                ));
            }
            Ok(Parsed::Data(d)) => {
                if !data.is_empty() {
                    data.push(b',');
                }
                data.extend_from_slice(d.as_bytes());
            }
            Err(mounts::OptionError::Unsupported) => {
                return Err(err(
                    format!("{field}.options[{j}]"),
                    format!("unsupported mount option \"{o}\""),
                ))
            }
        }
    }
    Ok((flags, data))
}

/// One config mount, ready for the child.
#[derive(Debug, Clone, Copy)]
pub struct MountStep {
    pub kind: MountKind,
    /// Host path (bind) or the filesystem's source name.
    pub source: CStrId,
    /// Absolute path inside the container.
    pub dest: CStrId,
    pub fstype: CStrId,
    pub flags: MountFlags,
    /// Comma-joined filesystem options, empty for none.
    pub data: CStrId,
    /// The bind source is not a directory: the destination is created as a file.
    pub dest_is_file: bool,
    /// The destination, lexically cleaned, is /proc or /sys or inside them (validated
    /// against the short list allowed there): only such a destination may resolve onto
    /// procfs or sysfs.
    pub names_pseudo_fs: bool,
    /// An idmapped bind mount: the parent makes it (see `prepared`).
    pub idmap: Option<IdmapStep>,
    /// A detached mount the parent already made (`open_tree` with every attribute): the
    /// child only attaches it. Owned by the parent until the child has exec'd.
    pub prepared: Option<std::os::fd::RawFd>,
}

/// The user namespace an idmapped mount takes its mapping from.
#[derive(Debug, Clone, Copy)]
pub struct IdmapStep {
    /// `uid_map` and `gid_map` text ("containerID hostID size" lines).
    pub uid_map: CStrId,
    pub gid_map: CStrId,
    /// `ridmap`: every submount of an `rbind` too.
    pub recursive: bool,
}

/// A device node the child creates in the container's /dev.
#[derive(Debug, Clone, Copy)]
pub struct DeviceNode {
    /// Absolute path inside the container.
    pub path: CStrId,
    /// File type and permission bits for mknod.
    pub mode: u32,
    pub major: u32,
    pub minor: u32,
    pub uid: u32,
    pub gid: u32,
}

/// A namespace to join by path instead of creating.
#[derive(Debug, Clone, Copy)]
pub struct NamespaceJoin {
    pub kind: NamespaceKind,
    pub path: CStrId,
}

/// The five capability sets as bit masks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapMasks {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

#[derive(Debug, Clone, Copy)]
pub struct RlimitStep {
    pub resource: c_int,
    pub soft: u64,
    pub hard: u64,
}

/// Everything the container's process needs at exec time.
pub struct ProcessPlan {
    pub args: List<CStrId, { spec::MAX_ARGS }>,
    pub env: List<CStrId, { spec::MAX_ENV }>,
    /// `PATH` from `env`, searched when `args[0]` has no slash.
    pub path_var: Option<CStrId>,
    pub cwd: CStrId,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: List<u32, { spec::MAX_ADDITIONAL_GIDS }>,
    pub umask: Option<u32>,
    /// No `process.capabilities` means no capabilities at all, as with runc.
    pub caps: CapMasks,
    pub no_new_privileges: bool,
    pub rlimits: Vec<RlimitStep, { spec::MAX_RLIMITS }>,
    pub oom_score_adj: Option<i32>,
    /// `exec <profile>` for `/proc/self/attr/apparmor/exec` (see [`apparmor`]); dropped by
    /// the container side where the host has no AppArmor.
    pub apparmor: Option<CStrId>,
    pub terminal: bool,
    pub console_size: Option<(u16, u16)>,
    /// Scheduler, I/O priority, CPU affinity, personality, memory policy.
    pub attrs: ProcessAttrs,
}

impl ProcessPlan {
    /// An empty plan (no args), filled by [`ProcessPlan::build`].
    pub const fn empty() -> ProcessPlan {
        ProcessPlan {
            args: List::new(),
            env: List::new(),
            path_var: None,
            cwd: CStrId::ZERO,
            uid: 0,
            gid: 0,
            additional_gids: List::new(),
            umask: None,
            caps: CapMasks {
                bounding: 0,
                effective: 0,
                permitted: 0,
                inheritable: 0,
                ambient: 0,
            },
            no_new_privileges: false,
            rlimits: Vec::new(),
            oom_score_adj: None,
            apparmor: None,
            terminal: false,
            console_size: None,
            attrs: ProcessAttrs::NONE,
        }
    }

    /// Translates a config's `process` (also `dory exec --process`), strings into `strings`.
    pub fn build(p: &spec::Process<'_>, strings: &mut Arena) -> Result<ProcessPlan, PlanError> {
        let mut out = ProcessPlan::empty();
        for (i, a) in p.args.iter().enumerate() {
            let id = strings
                .push_json(b"", a)
                .map_err(|e| arena_err(&format!("process.args[{i}]"), e))?;
            out.args
                .push(id)
                .map_err(|_| too_many("process.args", spec::MAX_ARGS))?;
        }
        if out.args.is_empty() {
            return Err(err("process.args", "must not be empty"));
        }
        for (i, e) in p.env.iter().enumerate() {
            let id = strings
                .push_json(b"", e)
                .map_err(|x| arena_err(&format!("process.env[{i}]"), x))?;
            out.push_env(id, strings)?;
        }
        out.cwd = strings
            .push_json(b"", p.cwd)
            .map_err(|e| arena_err("process.cwd", e))?;
        if !strings.bytes(out.cwd).starts_with(b"/") {
            return Err(err("process.cwd", "must be an absolute path"));
        }
        out.uid = p.user.uid;
        out.gid = p.user.gid;
        out.umask = p.user.umask;
        for g in &p.user.additional_gids {
            out.additional_gids
                .push(*g)
                .map_err(|_| too_many("process.user.additionalGids", spec::MAX_ADDITIONAL_GIDS))?;
        }
        out.caps = p
            .capabilities
            .as_ref()
            .map(|c| CapMasks {
                bounding: spec::caps::mask(&c.bounding),
                effective: spec::caps::mask(&c.effective),
                permitted: spec::caps::mask(&c.permitted),
                inheritable: spec::caps::mask(&c.inheritable),
                ambient: spec::caps::mask(&c.ambient),
            })
            .unwrap_or_default();
        out.no_new_privileges = p.no_new_privileges;
        out.rlimits = rlimit_steps(&p.rlimits)?;
        out.oom_score_adj = p.oom_score_adj;
        out.apparmor = apparmor_attr(p.apparmor_profile, strings)?;
        out.terminal = p.terminal;
        out.console_size = p.console_size.as_ref().map(|c| (c.height, c.width));
        out.attrs = ProcessAttrs::of_process(p)?;
        Ok(out)
    }

    /// Sets `HOME` when the environment has none, as runc does: the user's home directory
    /// from the rootfs's /etc/passwd (read inside the rootfs), else `/`.
    pub fn add_home(&mut self, rootfs: &Path, strings: &mut Arena) -> Result<(), PlanError> {
        if self
            .env
            .iter()
            .any(|e| strings.bytes(*e).starts_with(b"HOME="))
        {
            return Ok(());
        }
        let home = passwd_home(rootfs, self.uid).unwrap_or_else(|| "/".to_string());
        let id = strings
            .push_parts(&[b"HOME=", home.as_bytes()])
            .map_err(|e| arena_err("process.env", e))?;
        self.push_env(id, strings)
    }

    /// Sets `KEY=VALUE` (`id`): replaces the entry with the same key, or appends one
    /// (`exec -e`, which overrides the config's value as runc does).
    pub fn set_env(&mut self, id: CStrId, strings: &mut Arena) -> Result<(), PlanError> {
        let entry = strings.bytes(id);
        let key_end = entry.iter().position(|b| *b == b'=').unwrap_or(entry.len());
        let key: std::vec::Vec<u8> = entry.get(..=key_end).unwrap_or(entry).to_vec();
        let same = self
            .env
            .iter()
            .position(|e| strings.bytes(*e).starts_with(&key));
        match same.and_then(|i| self.env.get_mut(i)) {
            Some(slot) => *slot = id,
            None => return self.push_env(id, strings),
        }
        self.note_path(id, strings)
    }

    /// Adds one `NAME=value` entry (already in `strings`); a later `PATH=` wins the lookup.
    pub fn push_env(&mut self, id: CStrId, strings: &mut Arena) -> Result<(), PlanError> {
        self.note_path(id, strings)?;
        self.env
            .push(id)
            .map_err(|_| too_many("process.env", spec::MAX_ENV))
    }

    /// A `PATH=` entry becomes the program lookup's search path.
    fn note_path(&mut self, id: CStrId, strings: &mut Arena) -> Result<(), PlanError> {
        if let Some(v) = strings.bytes(id).strip_prefix(b"PATH=") {
            let v = v.to_vec();
            self.path_var = Some(
                strings
                    .push_parts(&[&v])
                    .map_err(|x| arena_err("process.env", x))?,
            );
        }
        Ok(())
    }
}

/// `process.apparmorProfile` (as written) as the attribute text the process writes.
pub fn apparmor_attr(raw: Option<&str>, strings: &mut Arena) -> Result<Option<CStrId>, PlanError> {
    const FIELD: &str = "process.apparmorProfile";
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let name = strings
        .push_json(b"", raw)
        .map_err(|e| arena_err(FIELD, e))?;
    match apparmor::exec_attr(strings.text(name)) {
        Some(text) => Ok(Some(strings.push(&text).map_err(|e| arena_err(FIELD, e))?)),
        None => Ok(None),
    }
}

/// `process.rlimits` as setrlimit(2) takes them.
pub fn rlimit_steps(
    list: &[spec::Rlimit<'_>],
) -> Result<Vec<RlimitStep, { spec::MAX_RLIMITS }>, PlanError> {
    let mut out = Vec::new();
    for (i, r) in list.iter().enumerate() {
        let resource = spec::rlimit_resource(r.kind).ok_or_else(|| {
            err(
                format!("process.rlimits[{i}].type"),
                format!("unknown rlimit \"{}\"", r.kind),
            )
        })?;
        out.push(RlimitStep {
            resource,
            soft: r.soft,
            hard: r.hard,
        })
        .map_err(|_| too_many("process.rlimits", spec::MAX_RLIMITS))?;
    }
    Ok(out)
}

/// A list of absolute container paths (masked or read-only paths) as C strings.
fn absolute_paths(
    strings: &mut Arena,
    raw: &[&str],
    field: &str,
) -> Result<List<CStrId, { spec::MAX_PATHS }>, PlanError> {
    let mut out = List::new();
    for (i, p) in raw.iter().enumerate() {
        let name = format!("{field}[{i}]");
        let id = strings.push_json(b"", p).map_err(|e| arena_err(&name, e))?;
        if !strings.bytes(id).starts_with(b"/") {
            return Err(err(name, "must be an absolute path"));
        }
        out.push(id).map_err(|_| too_many(field, spec::MAX_PATHS))?;
    }
    Ok(out)
}

/// Compiles `linux.seccomp`, if any, to the BPF program the child loads.
pub fn compile_seccomp(spec: &Spec<'_>) -> Result<Option<Box<crate::seccomp::Program>>, PlanError> {
    match spec.linux.as_ref().and_then(|l| l.seccomp.as_ref()) {
        None => Ok(None),
        Some(s) => crate::seccomp::compile(s)
            .map(|p| Some(Box::new(p)))
            .map_err(|e| {
                let text = e.to_string();
                let (field, message) = text
                    .strip_prefix("config.json: ")
                    .and_then(|t| t.split_once(": "))
                    .map_or(("linux.seccomp".to_string(), text.clone()), |(f, m)| {
                        (f.to_string(), m.to_string())
                    });
                PlanError { field, message }
            }),
    }
}

/// The home directory of `uid` in `<rootfs>/etc/passwd`, resolved inside the rootfs so a
/// symlink in the image cannot make dory read a host file.
fn passwd_home(rootfs: &Path, uid: u32) -> Option<String> {
    use std::io::Read;
    use std::os::fd::AsFd;
    let root = std::fs::File::open(rootfs).ok()?;
    // The image's file: never block on a fifo it planted there, never read a device.
    let fd = crate::sys::openat2_in_root(
        root.as_fd(),
        c"/etc/passwd",
        libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
    )
    .ok()?;
    if nix::sys::stat::fstat(fd.as_fd()).ok()?.st_mode & libc::S_IFMT != libc::S_IFREG {
        return None;
    }
    let mut text = String::new();
    // /etc/passwd of a small image is a few KiB; cap what is read.
    std::fs::File::from(fd)
        .take(1 << 20)
        .read_to_string(&mut text)
        .ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let (_name, _pw, id) = (f.next()?, f.next()?, f.next()?);
        let home = f.nth(2)?;
        (id.parse::<u32>().ok()? == uid && !home.is_empty()).then(|| home.to_string())
    })
}

/// The whole container setup, owned and fixed-size.
pub struct Plan {
    pub strings: Arena,
    /// CLONE_NEW* flags for the namespaces created at clone (cgroup excepted).
    pub clone_flags: c_int,
    /// The cgroup namespace is unshared after the child is in its cgroup, so that the
    /// namespace's root is the container's cgroup.
    pub new_cgroup_ns: bool,
    pub joins: Vec<NamespaceJoin, { spec::MAX_NAMESPACES }>,
    /// Absolute host path of the rootfs.
    pub rootfs: CStrId,
    pub rootfs_readonly: bool,
    /// A board's container (PID 1): bind sources under `/data/` are opened beneath
    /// `/data` without following any symlink (the container can write there).
    pub confine_data_binds: bool,
    pub rootfs_propagation: c_ulong,
    /// With shared root propagation: the host mount holding the rootfs, made private in
    /// the container's namespace so pivot_root(2) accepts the new root.
    pub rootfs_parent_mount: Option<CStrId>,
    pub mounts: List<MountStep, MAX_MOUNT_STEPS>,
    /// `--no-pivot` (or the board's fallback): host mount points detached in the
    /// container's mount namespace before the rootfs moves onto `/`, deepest first.
    pub no_pivot_detach: List<CStrId, MAX_NO_PIVOT_DETACH>,
    /// Whether the config mounts a fresh /dev (then default devices are created).
    pub creates_dev: bool,
    pub devices: List<DeviceNode, MAX_DEVICE_NODES>,
    pub masked_paths: List<CStrId, { spec::MAX_PATHS }>,
    pub readonly_paths: List<CStrId, { spec::MAX_PATHS }>,
    /// (`/proc/sys/...` path, value).
    pub sysctls: List<(CStrId, CStrId), { spec::MAX_SYSCTLS }>,
    pub hostname: Option<CStrId>,
    pub domainname: Option<CStrId>,
    /// cgroup v1 hierarchies to show under a `cgroup` mount: (directory name, options).
    pub cgroup_v1: Vec<(CStrId, CStrId), MAX_CGROUP_HIERARCHIES>,
    /// The container's cgroup path, bound over each v1 hierarchy's mount so the container
    /// sees its own cgroup there (as runc shows it) when it has no cgroup namespace.
    pub cgroup_v1_own: Vec<Option<CStrId>, MAX_CGROUP_HIERARCHIES>,
    /// In a new user namespace, which may not mount cgroupfs: the host directories of the
    /// container's cgroup, bound instead (v1: one per hierarchy; v2: one).
    pub cgroup_host_dirs: Vec<CStrId, MAX_CGROUP_HIERARCHIES>,
    pub process: ProcessPlan,
    /// The compiled `linux.seccomp` filter, loaded by the child just before exec.
    pub seccomp: Option<Box<crate::seccomp::Program>>,
}

/// A config the plan cannot carry out; `Display` names the field.
#[derive(Debug, PartialEq, Eq)]
pub struct PlanError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config.json: {}: {}", self.field, self.message)
    }
}

impl std::error::Error for PlanError {}

fn err(field: impl Into<String>, message: impl Into<String>) -> PlanError {
    PlanError {
        field: field.into(),
        message: message.into(),
    }
}

fn arena_err(field: &str, e: ArenaError) -> PlanError {
    match e {
        ArenaError::Full => err(
            field,
            format!(
                "config strings exceed {} bytes (limit {})",
                arena::ARENA_BYTES,
                arena::ARENA_BYTES
            ),
        ),
        ArenaError::BadString => err(field, "invalid escape or NUL character in string"),
    }
}

fn too_many(field: &str, limit: usize) -> PlanError {
    err(field, format!("more than {limit} entries (limit {limit})"))
}

/// runc's default devices: (name, major, minor).
const DEFAULT_DEVICES: &[(&str, u32, u32)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// Whether planning looks at bind mount sources (they must exist: a file source makes a
/// file mount point). A bundle checked on the machine that builds a board's image has its
/// sources on the board, not there.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BindSources {
    /// Stat each source, as `create` must.
    Stat,
    /// Take each source as a directory, unlooked at (`dory spec --check`).
    Unchecked,
}

impl Plan {
    /// Translates `spec` (already validated by `spec::parse`, from `config_len` bytes) for
    /// the bundle at `bundle`.
    pub fn build(
        spec: &Spec<'_>,
        config_len: usize,
        bundle: &Path,
    ) -> Result<Box<Plan>, PlanError> {
        Plan::build_with(spec, config_len, bundle, BindSources::Stat)
    }

    /// [`Plan::build`], with bind sources looked at or not.
    pub fn build_with(
        spec: &Spec<'_>,
        config_len: usize,
        bundle: &Path,
        sources: BindSources,
    ) -> Result<Box<Plan>, PlanError> {
        let mut plan = Box::new(Plan {
            // The config's strings, unescaped, plus what is derived from them.
            strings: Arena::with_capacity(config_len + 4096),
            clone_flags: 0,
            new_cgroup_ns: false,
            joins: Vec::new(),
            rootfs: CStrId::default(),
            rootfs_readonly: false,
            confine_data_binds: false,
            rootfs_propagation: 0,
            rootfs_parent_mount: None,
            mounts: List::new(),
            no_pivot_detach: List::new(),
            creates_dev: false,
            devices: List::new(),
            masked_paths: List::new(),
            readonly_paths: List::new(),
            sysctls: List::new(),
            hostname: None,
            domainname: None,
            cgroup_v1: Vec::new(),
            cgroup_v1_own: Vec::new(),
            cgroup_host_dirs: Vec::new(),
            process: ProcessPlan::empty(),
            seccomp: None,
        });
        plan.plan_root(spec, bundle)?;
        plan.plan_namespaces(spec)?;
        plan.plan_mounts(spec, bundle, sources)?;
        plan.plan_devices(spec)?;
        plan.plan_paths(spec)?;
        plan.plan_process(spec)?;
        plan.seccomp = compile_seccomp(spec)?;
        let rootfs = std::path::PathBuf::from(plan.strings.text(plan.rootfs));
        plan.process.add_home(&rootfs, &mut plan.strings)?;
        Ok(plan)
    }

    fn plan_root(&mut self, spec: &Spec<'_>, bundle: &Path) -> Result<(), PlanError> {
        let root = spec.root.as_ref().ok_or_else(|| err("root", "missing"))?;
        let mut raw = [0u8; 4096];
        let n = spec::unescape_into(root.path, &mut raw)
            .map_err(|_| err("root.path", "invalid string"))?;
        let rel = std::str::from_utf8(raw.get(..n).unwrap_or_default())
            .map_err(|_| err("root.path", "invalid UTF-8"))?;
        let full = bundle.join(rel);
        // Say where it looked: a relative root.path is taken from the bundle directory.
        let looked = |why: &dyn std::fmt::Display| {
            let base = match Path::new(rel).is_absolute() {
                true => String::new(),
                false => format!(
                    " (\"{rel}\" is relative to the bundle {})",
                    bundle.display()
                ),
            };
            err("root.path", format!("{}: {why}{base}", full.display()))
        };
        let meta = std::fs::metadata(&full).map_err(|e| looked(&spec::io_text(&e)))?;
        if !meta.is_dir() {
            return Err(looked(&"not a directory"));
        }
        let full = std::fs::canonicalize(&full).map_err(|e| looked(&spec::io_text(&e)))?;
        let text = full
            .to_str()
            .ok_or_else(|| err("root.path", "path is not UTF-8"))?;
        self.rootfs = self
            .strings
            .push(text)
            .map_err(|e| arena_err("root.path", e))?;
        self.rootfs_readonly = root.readonly;
        let prop = spec.linux.as_ref().and_then(|l| l.rootfs_propagation);
        self.rootfs_propagation = mounts::rootfs_propagation(prop);
        Ok(())
    }

    fn plan_namespaces(&mut self, spec: &Spec<'_>) -> Result<(), PlanError> {
        let Some(linux) = spec.linux.as_ref() else {
            return Ok(());
        };
        let mut has_uts = false;
        for (i, ns) in linux.namespaces.iter().enumerate() {
            let field = format!("linux.namespaces[{i}]");
            let kind = NamespaceKind::from_name(ns.kind).ok_or_else(|| {
                err(
                    format!("{field}.type"),
                    format!("unknown namespace type \"{}\"", ns.kind),
                )
            })?;
            has_uts |= kind == NamespaceKind::Uts && ns.path.is_none();
            match ns.path {
                Some(path) if !path.is_empty() => {
                    let path = self
                        .strings
                        .push_json(b"", path)
                        .map_err(|e| arena_err(&format!("{field}.path"), e))?;
                    self.joins
                        .push(NamespaceJoin { kind, path })
                        .map_err(|_| too_many("linux.namespaces", spec::MAX_NAMESPACES))?;
                }
                _ if kind == NamespaceKind::Cgroup => self.new_cgroup_ns = true,
                _ => self.clone_flags |= kind.clone_flag(),
            }
        }
        if let Some(h) = spec.hostname.filter(|h| !h.is_empty()) {
            if !has_uts && !self.joins.iter().any(|j| j.kind == NamespaceKind::Uts) {
                return Err(err(
                    "hostname",
                    "setting the hostname needs a uts namespace in linux.namespaces",
                ));
            }
            self.hostname = Some(
                self.strings
                    .push_json(b"", h)
                    .map_err(|e| arena_err("hostname", e))?,
            );
        }
        if let Some(d) = spec.domainname.filter(|d| !d.is_empty()) {
            self.domainname = Some(
                self.strings
                    .push_json(b"", d)
                    .map_err(|e| arena_err("domainname", e))?,
            );
        }
        for (i, (key, value)) in linux.sysctl.iter().enumerate() {
            let field = format!("linux.sysctl[{i}]");
            let mut k = [0u8; 256];
            let n =
                spec::unescape_into(key, &mut k).map_err(|_| err(&field, "invalid sysctl name"))?;
            let mut path = [0u8; 256];
            let key = k.get(..n).unwrap_or_default();
            if key.contains(&b'/') || key.is_empty() {
                return Err(err(&field, "invalid sysctl name"));
            }
            for (d, s) in path.iter_mut().zip(key) {
                *d = if *s == b'.' { b'/' } else { *s };
            }
            let key_path = self
                .strings
                .push_parts(&[b"/proc/sys/", path.get(..n).unwrap_or_default()])
                .map_err(|e| arena_err(&field, e))?;
            let val = self
                .strings
                .push_json(b"", value)
                .map_err(|e| arena_err(&field, e))?;
            self.sysctls
                .push((key_path, val))
                .map_err(|_| too_many("linux.sysctl", spec::MAX_SYSCTLS))?;
        }
        Ok(())
    }

    fn plan_mounts(
        &mut self,
        spec: &Spec<'_>,
        bundle: &Path,
        sources: BindSources,
    ) -> Result<(), PlanError> {
        for (i, m) in spec.mounts.iter().enumerate() {
            let field = format!("mounts[{i}]");
            let (mut flags, data) = mount_options(m, &field)?;
            let fstype = m.kind.unwrap_or("");
            let kind = if flags.bind || fstype == "bind" {
                flags.bind = true;
                flags.flags |= libc::MS_BIND;
                MountKind::Bind
            } else if fstype == "cgroup" || fstype == "cgroup2" {
                if flags.rec_set != 0 || flags.rec_clear != 0 {
                    return Err(err(
                        format!("{field}.options"),
                        "recursive options (rro, rnoexec, ...) are not supported on a cgroup \
                         mount (use ro, noexec, ...)",
                    ));
                }
                MountKind::Cgroup
            } else if fstype.is_empty() {
                return Err(err(
                    format!("{field}.type"),
                    "missing (only bind mounts may omit it)",
                ));
            } else {
                MountKind::Regular
            };
            let dest = self
                .strings
                .push_json(b"", m.destination)
                .map_err(|e| arena_err(&format!("{field}.destination"), e))?;
            if !self.strings.bytes(dest).starts_with(b"/") {
                return Err(err(
                    format!("{field}.destination"),
                    "must be an absolute path",
                ));
            }
            let source_raw = m.source.unwrap_or("");
            let mut dest_is_file = false;
            let source = if kind == MountKind::Bind {
                let mut buf = [0u8; 4096];
                let n = spec::unescape_into(source_raw, &mut buf)
                    .map_err(|_| err(format!("{field}.source"), "invalid string"))?;
                let src = std::str::from_utf8(buf.get(..n).unwrap_or_default())
                    .map_err(|_| err(format!("{field}.source"), "invalid UTF-8"))?;
                if src.is_empty() {
                    return Err(err(
                        format!("{field}.source"),
                        "a bind mount needs a source",
                    ));
                }
                // A relative bind source is relative to the bundle, as in runc.
                let full = bundle.join(src);
                if sources == BindSources::Stat {
                    let meta = std::fs::metadata(&full).map_err(|e| {
                        err(
                            format!("{field}.source"),
                            format!("{}: {e}", full.display()),
                        )
                    })?;
                    dest_is_file = !meta.is_dir();
                }
                let text = full
                    .to_str()
                    .ok_or_else(|| err(format!("{field}.source"), "path is not UTF-8"))?;
                self.strings.push(text)
            } else {
                self.strings.push_json(b"", source_raw)
            }
            .map_err(|e| arena_err(&format!("{field}.source"), e))?;
            let fstype = self
                .strings
                .push_json(b"", fstype)
                .map_err(|e| arena_err(&format!("{field}.type"), e))?;
            let data = self
                .strings
                .push_json(b"", std::str::from_utf8(&data).unwrap_or(""))
                .map_err(|e| arena_err(&format!("{field}.options"), e))?;
            let idmap = self.plan_idmap(spec, m, &field, kind, flags.idmap)?;
            if self.strings.bytes(dest) == b"/dev" && kind != MountKind::Bind {
                self.creates_dev = true;
            }
            self.mounts
                .push(MountStep {
                    kind,
                    source,
                    dest,
                    fstype,
                    flags,
                    data,
                    dest_is_file,
                    names_pseudo_fs: spec::names_pseudo_fs(self.strings.text(dest)),
                    idmap,
                    prepared: None,
                })
                .map_err(|_| too_many("mounts", MAX_MOUNT_STEPS))?;
        }
        Ok(())
    }

    /// One more bind mount after the config's: `source` (a host file or directory) at
    /// `dest`, read-only, nosuid, nodev. Not from the config: for what PID 1 itself hands
    /// a container (its control socket and client).
    pub fn add_ro_bind(&mut self, source: &Path, dest: &str) -> Result<(), PlanError> {
        let field = format!("bind of {} at {dest}", source.display());
        let meta = std::fs::metadata(source)
            .map_err(|e| err(field.clone(), spec::io_text(&e).into_owned()))?;
        if !dest.starts_with('/') || spec::names_pseudo_fs(dest) {
            return Err(err(
                field,
                "the destination must be absolute, outside /proc and /sys",
            ));
        }
        let text = source
            .to_str()
            .ok_or_else(|| err(field.clone(), "path is not UTF-8"))?;
        let mut push = |t: &str| self.strings.push(t).map_err(|e| arena_err(&field, e));
        let (source, dest, empty) = (push(text)?, push(dest)?, push("")?);
        let step = MountStep {
            kind: MountKind::Bind,
            source,
            dest,
            fstype: empty,
            flags: mounts::MountFlags {
                flags: libc::MS_BIND | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
                bind: true,
                ..mounts::MountFlags::default()
            },
            data: empty,
            dest_is_file: !meta.is_dir(),
            names_pseudo_fs: false,
            idmap: None,
            prepared: None,
        };
        self.mounts
            .push(step)
            .map_err(|_| too_many("mounts", MAX_MOUNT_STEPS))
    }

    /// The mapping of an idmapped bind mount (`mounts[i].uidMappings`, `idmap`, `ridmap`).
    fn plan_idmap(
        &mut self,
        spec: &Spec<'_>,
        m: &spec::Mount<'_>,
        field: &str,
        kind: MountKind,
        option: mounts::Idmap,
    ) -> Result<Option<IdmapStep>, PlanError> {
        let linux = spec.linux.as_ref();
        let container = (
            linux.map(|l| &l.uid_mappings[..]).unwrap_or_default(),
            linux.map(|l| &l.gid_mappings[..]).unwrap_or_default(),
        );
        let own = (&m.uid_mappings[..], &m.gid_mappings[..]);
        let maps = mounts::idmap_maps(own, container, option, kind == MountKind::Bind)
            .map_err(|(f, msg)| err(format!("{field}.{f}"), msg))?;
        let Some((uid, gid)) = maps else {
            return Ok(None);
        };
        let mut text = |maps| {
            self.strings
                .push(&mounts::id_map_text(maps))
                .map_err(|e| arena_err(&format!("{field}.uidMappings"), e))
        };
        Ok(Some(IdmapStep {
            uid_map: text(uid)?,
            gid_map: text(gid)?,
            recursive: option == mounts::Idmap::Recursive,
        }))
    }

    fn plan_devices(&mut self, spec: &Spec<'_>) -> Result<(), PlanError> {
        let user_devices = spec
            .linux
            .as_ref()
            .map(|l| &l.devices[..])
            .unwrap_or_default();
        if self.creates_dev {
            for &(path, major, minor) in DEFAULT_DEVICES {
                // A device the config lists itself replaces the default of that path.
                if user_devices.iter().any(|d| d.path == path) {
                    continue;
                }
                let path = self
                    .strings
                    .push(path)
                    .map_err(|e| arena_err("linux.devices", e))?;
                self.devices
                    .push(DeviceNode {
                        path,
                        mode: libc::S_IFCHR | 0o666,
                        major,
                        minor,
                        uid: 0,
                        gid: 0,
                    })
                    .map_err(|_| too_many("linux.devices", MAX_DEVICE_NODES))?;
            }
        }
        for (i, d) in user_devices.iter().enumerate() {
            let field = format!("linux.devices[{i}]");
            let file_type = match d.kind {
                "c" | "u" => libc::S_IFCHR,
                "b" => libc::S_IFBLK,
                "p" => libc::S_IFIFO,
                other => {
                    return Err(err(
                        format!("{field}.type"),
                        format!("unknown device type \"{other}\""),
                    ))
                }
            };
            let number = |v: Option<i64>, name: &str| -> Result<u32, PlanError> {
                match (file_type, v) {
                    (libc::S_IFIFO, _) => Ok(0),
                    (_, Some(n)) => {
                        u32::try_from(n).map_err(|_| err(format!("{field}.{name}"), "out of range"))
                    }
                    (_, None) => Err(err(format!("{field}.{name}"), "missing")),
                }
            };
            let major = number(d.major, "major")?;
            let minor = number(d.minor, "minor")?;
            let path = self
                .strings
                .push_json(b"", d.path)
                .map_err(|e| arena_err(&format!("{field}.path"), e))?;
            // Under /dev, lexically: no "." or ".." component can take it elsewhere.
            let clean = self
                .strings
                .bytes(path)
                .strip_prefix(b"/dev/")
                .is_some_and(|rest| {
                    rest.split(|b| *b == b'/')
                        .all(|c| !c.is_empty() && c != b"." && c != b"..")
                });
            if !clean {
                return Err(err(
                    format!("{field}.path"),
                    "must be a path under /dev without \".\", \"..\" or empty components",
                ));
            }
            self.devices
                .push(DeviceNode {
                    path,
                    mode: file_type | (d.file_mode.unwrap_or(0o666) & 0o7777),
                    major,
                    minor,
                    uid: d.uid.unwrap_or(0),
                    gid: d.gid.unwrap_or(0),
                })
                .map_err(|_| too_many("linux.devices", MAX_DEVICE_NODES))?;
        }
        Ok(())
    }

    fn plan_paths(&mut self, spec: &Spec<'_>) -> Result<(), PlanError> {
        let Some(linux) = spec.linux.as_ref() else {
            return Ok(());
        };
        self.masked_paths =
            absolute_paths(&mut self.strings, &linux.masked_paths, "linux.maskedPaths")?;
        self.readonly_paths = absolute_paths(
            &mut self.strings,
            &linux.readonly_paths,
            "linux.readonlyPaths",
        )?;
        Ok(())
    }

    fn plan_process(&mut self, spec: &Spec<'_>) -> Result<(), PlanError> {
        let p = spec
            .process
            .as_ref()
            .ok_or_else(|| err("process", "missing"))?;
        self.process = ProcessPlan::build(p, &mut self.strings)?;
        self.process.attrs.add_linux(spec.linux.as_ref())?;
        // execCPUAffinity is for exec'd processes only (runtime-spec): the init gets every
        // CPU its cgroup allows, not dory's own affinity (runc's reset).
        self.process.attrs.initial_cpus = None;
        self.process.attrs.final_cpus = FinalCpus::Reset;
        Ok(())
    }

    /// Records the host's cgroup v1 hierarchies for `cgroup` mounts inside the container.
    pub fn set_cgroup_v1<'h>(
        &mut self,
        hierarchies: impl Iterator<Item = &'h str>,
    ) -> Result<(), PlanError> {
        for options in hierarchies {
            // The directory is named like the host's: "cpu,cpuacct"; "name=systemd" → "systemd".
            let dir = options.strip_prefix("name=").unwrap_or(options);
            let dir = self.strings.push(dir).map_err(|e| arena_err("mounts", e))?;
            let opts = self
                .strings
                .push(options)
                .map_err(|e| arena_err("mounts", e))?;
            self.cgroup_v1
                .push((dir, opts))
                .map_err(|_| too_many("cgroup hierarchies", MAX_CGROUP_HIERARCHIES))?;
        }
        Ok(())
    }

    /// Shows the container's own cgroup under each v1 hierarchy of a `cgroup` mount, when
    /// the container has no cgroup namespace: `paths` holds, in the order of
    /// [`Plan::set_cgroup_v1`], each hierarchy's directory below its mount point.
    pub fn set_cgroup_v1_own(&mut self, paths: &[String]) -> Result<(), PlanError> {
        if self.has_cgroup_ns() {
            return Ok(());
        }
        if paths.len() != self.cgroup_v1.len() {
            return Err(err(
                "linux.cgroupsPath",
                "the cgroup hierarchies changed while creating the container",
            ));
        }
        for p in paths {
            // At the hierarchy's root there is nothing to show over it.
            let rel = p.trim_start_matches('/');
            let id = match rel {
                "" => None,
                rel => Some(
                    self.strings
                        .push(rel)
                        .map_err(|e| arena_err("linux.cgroupsPath", e))?,
                ),
            };
            self.cgroup_v1_own
                .push(id)
                .map_err(|_| too_many("cgroup hierarchies", MAX_CGROUP_HIERARCHIES))?;
        }
        Ok(())
    }

    /// Binds the container's cgroup directories (host paths) instead of mounting cgroupfs,
    /// which a new user namespace without a cgroup namespace may not do (as runc).
    pub fn set_cgroup_host_dirs(&mut self, dirs: &[PathBuf]) -> Result<(), PlanError> {
        let own_userns = self.clone_flags & libc::CLONE_NEWUSER != 0;
        if !own_userns || self.has_cgroup_ns() || !self.mounts_cgroup() {
            return Ok(());
        }
        for d in dirs {
            let text = d
                .to_str()
                .ok_or_else(|| err("linux.cgroupsPath", "path is not UTF-8"))?;
            let id = self
                .strings
                .push(text)
                .map_err(|e| arena_err("linux.cgroupsPath", e))?;
            self.cgroup_host_dirs
                .push(id)
                .map_err(|_| too_many("cgroup hierarchies", MAX_CGROUP_HIERARCHIES))?;
        }
        // The bound directories already are the container's own cgroups.
        self.cgroup_v1_own.clear();
        Ok(())
    }

    /// Records the host mount points `--no-pivot` detaches (see `no_pivot_detach`).
    pub fn set_no_pivot_detach(&mut self, points: &[String]) -> Result<(), PlanError> {
        const FIELD: &str = "--no-pivot: host mount points to detach";
        for p in points {
            let id = self.strings.push(p).map_err(|e| arena_err(FIELD, e))?;
            self.no_pivot_detach
                .push(id)
                .map_err(|_| too_many(FIELD, MAX_NO_PIVOT_DETACH))?;
        }
        Ok(())
    }

    /// Records the mount point holding the rootfs (see `rootfs_parent_mount`).
    pub fn set_rootfs_parent_mount(&mut self, mount_point: &str) -> Result<(), PlanError> {
        let id = self
            .strings
            .push(mount_point)
            .map_err(|e| arena_err("linux.rootfsPropagation", e))?;
        self.rootfs_parent_mount = Some(id);
        Ok(())
    }

    /// Whether the container gets a cgroup namespace (new or joined).
    fn has_cgroup_ns(&self) -> bool {
        self.new_cgroup_ns || self.joins.iter().any(|j| j.kind == NamespaceKind::Cgroup)
    }

    /// Whether the config mounts a cgroup filesystem.
    pub fn mounts_cgroup(&self) -> bool {
        self.mounts.iter().any(|m| m.kind == MountKind::Cgroup)
    }
}
