//! Checks on a parsed [`Spec`] that the JSON shape cannot express; each error names the
//! field. Escapes were checked by the scanner; names compared against tables are compared
//! as written, so a name containing an escape is simply unknown.

use crate::spec::caps;
use crate::spec::error::{ErrorKind, FieldPath, Quoted, SpecError};
use crate::spec::model::*;
use crate::spec::names::{rlimit_resource, NamespaceKind, ROOTFS_PROPAGATION};
use crate::spec::pseudofs;
use crate::spec::unescape::{unescape_into, unescaped_len};

/// Longest sysctl name accepted, in bytes (the kernel's are below 100).
const MAX_SYSCTL_NAME: usize = 256;
/// Longest mount destination checked, in bytes (the kernel's PATH_MAX).
pub const MAX_DESTINATION_BYTES: usize = 4096;
/// Longest path accepted anywhere in the config, in bytes (PATH_MAX).
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest single argument or environment string execve(2) takes, in bytes: the kernel's
/// `MAX_ARG_STRLEN` (32 pages of 4 KiB) counts the NUL. A longer one fails the exec with
/// E2BIG after the container exists; refused up front instead.
pub const MAX_ARG_BYTES: usize = 32 * 4096 - 1;
/// Longest AppArmor profile name written to `/proc/self/attr/apparmor/exec` (the kernel
/// takes one page there).
pub const MAX_APPARMOR_PROFILE: usize = 4096 - "exec ".len();
/// Longest hostname and domainname (the kernel's `__NEW_UTS_LEN`).
pub const MAX_UTS_NAME_BYTES: usize = 64;
/// Longest hook timeout, in seconds (a day). runc takes any int and multiplies it into a
/// Go duration, which wraps; dory refuses what it cannot wait for exactly.
pub const MAX_HOOK_TIMEOUT_SECS: i64 = 86_400;
/// An id mapping covers `containerID .. containerID + size` and `hostID .. hostID + size`:
/// both ends must fit the kernel's 32-bit ids (`u32::MAX + 1`).
pub const ID_RANGE_END: i128 = 1 << 32;
/// Largest device major and minor the kernel encodes (12 and 20 bits, `MAJOR`/`MINOR`);
/// larger numbers would be silently cut to another device.
pub const MAX_DEVICE_MAJOR: i64 = (1 << 12) - 1;
pub const MAX_DEVICE_MINOR: i64 = (1 << 20) - 1;

fn at(args: core::fmt::Arguments<'_>, kind: ErrorKind) -> SpecError {
    SpecError::field(FieldPath::from_fmt(args), kind)
}

fn quoted(s: &str) -> Quoted {
    Quoted::of(s)
}

/// `path` must be absolute.
fn absolute(value: &str, args: core::fmt::Arguments<'_>) -> Result<(), SpecError> {
    if value.starts_with('/') {
        Ok(())
    } else {
        Err(at(args, ErrorKind::NotAbsolute(quoted(value))))
    }
}

/// `value` (as written), unescaped, is at most `limit` bytes: refused here, by name, rather
/// than by the kernel (ENAMETOOLONG, EINVAL) after processes and mounts exist.
fn at_most(value: &str, limit: usize, args: core::fmt::Arguments<'_>) -> Result<(), SpecError> {
    // The scanner checked every escape; a failure here counts as too long.
    let len = unescaped_len(value).unwrap_or(usize::MAX);
    if len > limit {
        return Err(at(args, ErrorKind::TooLong { len, limit }));
    }
    Ok(())
}

/// Whether the lexical path `path` climbs above `/` (`/../etc`, `/tmp/../..`): inside a
/// rootfs that would name something outside it.
fn climbs_above_root(path: &str) -> bool {
    let mut depth: usize = 0;
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if depth == 0 => return true,
            ".." => depth -= 1,
            _ => depth += 1,
        }
    }
    false
}

/// A path inside the container (a mask, a read-only path): absolute, at most
/// [`MAX_PATH_BYTES`], not climbing above `/` once unescaped.
fn container_path(value: &str, args: core::fmt::Arguments<'_>) -> Result<(), SpecError> {
    absolute(value, args)?;
    at_most(value, MAX_PATH_BYTES, args)?;
    let mut buf = [0u8; MAX_PATH_BYTES];
    let text = unescape_into(value, &mut buf)
        .ok()
        .and_then(|n| buf.get(..n))
        .and_then(|b| core::str::from_utf8(b).ok());
    if text.is_some_and(climbs_above_root) {
        return Err(at(
            args,
            ErrorKind::PathRefused {
                path: quoted(value),
                why: CLIMBS,
            },
        ));
    }
    Ok(())
}

/// Why a path with too many `..` is refused.
const CLIMBS: &str = "climbs above the container's root with \"..\" (not allowed)";

/// Refuses a non-empty security label dory cannot apply.
fn no_label(value: Option<&str>, what: &'static str, msg: &'static str) -> Result<(), SpecError> {
    match value {
        Some(v) if !v.is_empty() => Err(at(format_args!("{what}"), ErrorKind::Unsupported(msg))),
        _ => Ok(()),
    }
}

/// Validates everything `dory create`/`run` rely on.
pub fn validate(spec: &Spec<'_>) -> Result<(), SpecError> {
    if !spec.oci_version.starts_with("1.") {
        return Err(at(
            format_args!("ociVersion"),
            ErrorKind::UnsupportedVersion(quoted(spec.oci_version)),
        ));
    }
    match &spec.root {
        None => return Err(at(format_args!("root"), ErrorKind::Missing)),
        Some(root) if root.path.is_empty() => {
            return Err(at(format_args!("root.path"), ErrorKind::Empty));
        }
        Some(root) => at_most(root.path, MAX_PATH_BYTES, format_args!("root.path"))?,
    }
    let Some(process) = &spec.process else {
        return Err(at(
            format_args!("process"),
            ErrorKind::Invalid("missing (required to run a container)"),
        ));
    };
    validate_process(process)?;
    // runc resolves a relative destination against the rootfs with a warning; dory
    // refuses it, as the OCI spec says destinations are absolute.
    for (i, m) in spec.mounts.iter().enumerate() {
        absolute(m.destination, format_args!("mounts[{i}].destination"))?;
        validate_destination(i, m)?;
        if let Some(source) = m.source {
            at_most(source, MAX_PATH_BYTES, format_args!("mounts[{i}].source"))?;
        }
        id_map_ranges(format_args!("mounts[{i}].uidMappings"), &m.uid_mappings)?;
        id_map_ranges(format_args!("mounts[{i}].gidMappings"), &m.gid_mappings)?;
    }
    if let Some(hooks) = &spec.hooks {
        validate_hooks(hooks)?;
    }
    let linux = spec.linux.as_ref();
    let has_ns = |kind: NamespaceKind| linux.is_some_and(|l| has_namespace(l, kind));
    for (field, value) in [("hostname", spec.hostname), ("domainname", spec.domainname)] {
        if let Some(v) = value {
            at_most(v, MAX_UTS_NAME_BYTES, format_args!("{field}"))?;
        }
        if value.is_some_and(|v| !v.is_empty()) && !has_ns(NamespaceKind::Uts) {
            return Err(at(
                format_args!("{field}"),
                ErrorKind::Invalid("needs a \"uts\" entry in linux.namespaces"),
            ));
        }
    }
    if let Some(linux) = linux {
        validate_linux(linux)?;
    }
    Ok(())
}

/// Each mapping of `list` (the field `field`) has a size, and both of its ranges end
/// within the 32-bit ids (the kernel refuses the write later, after processes exist).
fn id_map_ranges(field: core::fmt::Arguments<'_>, list: &[IdMapping]) -> Result<(), SpecError> {
    for (i, m) in list.iter().enumerate() {
        if m.size == 0 {
            return Err(at(
                format_args!("{field}[{i}].size"),
                ErrorKind::Invalid("must be greater than zero"),
            ));
        }
        for (what, start) in [
            ("containerID + size = ", m.container_id),
            ("hostID + size = ", m.host_id),
        ] {
            let end = i128::from(start) + i128::from(m.size);
            if end > ID_RANGE_END {
                return Err(at(
                    format_args!("{field}[{i}]"),
                    ErrorKind::AboveLimit {
                        what,
                        value: end,
                        limit: ID_RANGE_END,
                    },
                ));
            }
        }
    }
    Ok(())
}

/// Refuses a mount inside /proc or /sys (see [`pseudofs`]); the destination is checked
/// unescaped, so `\/` or `\u002e` cannot smuggle a path past the check.
fn validate_destination(i: usize, m: &Mount<'_>) -> Result<(), SpecError> {
    let mut buf = [0u8; MAX_DESTINATION_BYTES];
    let dest = unescape_into(m.destination, &mut buf)
        .ok()
        .and_then(|n| buf.get(..n))
        .and_then(|b| core::str::from_utf8(b).ok());
    let Some(dest) = dest else {
        return Err(at(
            format_args!("mounts[{i}].destination"),
            ErrorKind::Invalid("longer than 4096 bytes (limit) or not valid text"),
        ));
    };
    if climbs_above_root(dest) {
        return Err(at(
            format_args!("mounts[{i}].destination"),
            ErrorKind::PathRefused {
                path: quoted(m.destination),
                why: CLIMBS,
            },
        ));
    }
    let bind = m.kind == Some("bind") || m.options.iter().any(|o| matches!(*o, "bind" | "rbind"));
    match pseudofs::refusal(dest, m.kind, bind, m.source) {
        None => Ok(()),
        Some(why) => Err(at(
            format_args!("mounts[{i}].destination"),
            ErrorKind::PathRefused {
                path: quoted(m.destination),
                why,
            },
        )),
    }
}

fn validate_process(p: &Process<'_>) -> Result<(), SpecError> {
    match p.args.first() {
        None => return Err(at(format_args!("process.args"), ErrorKind::Empty)),
        Some(&"") => return Err(at(format_args!("process.args[0]"), ErrorKind::Empty)),
        Some(_) => {}
    }
    absolute(p.cwd, format_args!("process.cwd"))?;
    at_most(p.cwd, MAX_PATH_BYTES, format_args!("process.cwd"))?;
    for (i, a) in p.args.iter().enumerate() {
        at_most(a, MAX_ARG_BYTES, format_args!("process.args[{i}]"))?;
    }
    for (i, e) in p.env.iter().enumerate() {
        at_most(e, MAX_ARG_BYTES, format_args!("process.env[{i}]"))?;
        match e.find('=') {
            Some(n) if n > 0 => {}
            _ => {
                return Err(at(
                    format_args!("process.env[{i}]"),
                    ErrorKind::Invalid("must be NAME=VALUE with a non-empty NAME"),
                ))
            }
        }
    }
    if let Some(umask) = p.user.umask {
        if umask > 0o777 {
            return Err(at(
                format_args!("process.user.umask"),
                ErrorKind::Invalid("must be at most 0777 (511)"),
            ));
        }
    }
    if let Some(adj) = p.oom_score_adj {
        if !(-1000..=1000).contains(&adj) {
            return Err(at(
                format_args!("process.oomScoreAdj"),
                ErrorKind::Invalid("must be from -1000 to 1000"),
            ));
        }
    }
    if let Some(c) = &p.capabilities {
        let sets: [(&str, &[&str]); 5] = [
            ("bounding", &c.bounding),
            ("effective", &c.effective),
            ("inheritable", &c.inheritable),
            ("permitted", &c.permitted),
            ("ambient", &c.ambient),
        ];
        for (set, names) in sets {
            for (i, name) in names.iter().enumerate() {
                if caps::from_name(name).is_none() {
                    return Err(at(
                        format_args!("process.capabilities.{set}[{i}]"),
                        ErrorKind::UnknownName {
                            what: "capability",
                            name: quoted(name),
                        },
                    ));
                }
            }
        }
    }
    for (i, r) in p.rlimits.iter().enumerate() {
        if rlimit_resource(r.kind).is_none() {
            return Err(at(
                format_args!("process.rlimits[{i}].type"),
                ErrorKind::UnknownName {
                    what: "rlimit",
                    name: quoted(r.kind),
                },
            ));
        }
        if p.rlimits.iter().take(i).any(|o| o.kind == r.kind) {
            return Err(at(
                format_args!("process.rlimits[{i}].type"),
                ErrorKind::DuplicateName {
                    what: "rlimit",
                    name: quoted(r.kind),
                },
            ));
        }
        if r.soft > r.hard {
            return Err(at(
                format_args!("process.rlimits[{i}]"),
                ErrorKind::SoftAboveHard {
                    soft: r.soft,
                    hard: r.hard,
                },
            ));
        }
    }
    if let Some(profile) = p.apparmor_profile {
        at_most(
            profile,
            MAX_APPARMOR_PROFILE,
            format_args!("process.apparmorProfile"),
        )?;
    }
    no_label(
        p.selinux_label,
        "process.selinuxLabel",
        "SELinux labels are not supported",
    )?;
    Ok(())
}

fn validate_hooks(h: &Hooks<'_>) -> Result<(), SpecError> {
    let lists: [(&str, &[Hook<'_>]); 6] = [
        ("prestart", &h.prestart),
        ("createRuntime", &h.create_runtime),
        ("createContainer", &h.create_container),
        ("startContainer", &h.start_container),
        ("poststart", &h.poststart),
        ("poststop", &h.poststop),
    ];
    for (list, hooks) in lists {
        for (i, hook) in hooks.iter().enumerate() {
            absolute(hook.path, format_args!("hooks.{list}[{i}].path"))?;
            if hook.timeout.is_some_and(|t| t <= 0) {
                return Err(at(
                    format_args!("hooks.{list}[{i}].timeout"),
                    ErrorKind::Invalid("must be greater than zero"),
                ));
            }
            if let Some(t) = hook.timeout.filter(|t| *t > MAX_HOOK_TIMEOUT_SECS) {
                return Err(at(
                    format_args!("hooks.{list}[{i}].timeout"),
                    ErrorKind::AboveLimit {
                        what: "",
                        value: t.into(),
                        limit: MAX_HOOK_TIMEOUT_SECS.into(),
                    },
                ));
            }
        }
    }
    Ok(())
}

/// Whether `linux.namespaces` lists `kind` (new or joined by path).
fn has_namespace(l: &Linux<'_>, kind: NamespaceKind) -> bool {
    l.namespaces
        .iter()
        .any(|n| NamespaceKind::from_name(n.kind) == Some(kind))
}

/// The namespace a sysctl belongs to, with the error when the container lacks it; None
/// for a sysctl of the whole machine.
fn sysctl_namespace(name: &str) -> Option<(NamespaceKind, &'static str)> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&name) || name.starts_with("fs.mqueue.") {
        Some((
            NamespaceKind::Ipc,
            "needs an \"ipc\" entry in linux.namespaces",
        ))
    } else if name.starts_with("net.") {
        Some((
            NamespaceKind::Network,
            "needs a \"network\" entry in linux.namespaces",
        ))
    } else if name == "kernel.domainname" || name == "kernel.hostname" {
        Some((
            NamespaceKind::Uts,
            "needs a \"uts\" entry in linux.namespaces",
        ))
    } else {
        None
    }
}

fn validate_linux(l: &Linux<'_>) -> Result<(), SpecError> {
    if let Some(seccomp) = &l.seccomp {
        // Compiling checks every name, errno, argument and the program size.
        crate::seccomp::check(seccomp).map_err(crate::seccomp::SeccompError::into_spec_error)?;
    }
    let mut user_ns: Option<&Namespace<'_>> = None;
    let mut time_ns: Option<&Namespace<'_>> = None;
    for (i, ns) in l.namespaces.iter().enumerate() {
        let Some(kind) = NamespaceKind::from_name(ns.kind) else {
            return Err(at(
                format_args!("linux.namespaces[{i}].type"),
                ErrorKind::UnknownName {
                    what: "namespace type",
                    name: quoted(ns.kind),
                },
            ));
        };
        if l.namespaces.iter().take(i).any(|o| o.kind == ns.kind) {
            return Err(at(
                format_args!("linux.namespaces[{i}].type"),
                ErrorKind::DuplicateName {
                    what: "namespace type",
                    name: quoted(ns.kind),
                },
            ));
        }
        if let Some(path) = ns.path {
            absolute(path, format_args!("linux.namespaces[{i}].path"))?;
        }
        match kind {
            NamespaceKind::User => user_ns = Some(ns),
            NamespaceKind::Time => time_ns = Some(ns),
            _ => {}
        }
    }
    let maps: [(&str, &[IdMapping]); 2] = [
        ("uidMappings", &l.uid_mappings),
        ("gidMappings", &l.gid_mappings),
    ];
    for (field, list) in maps {
        match user_ns {
            None if !list.is_empty() => {
                return Err(at(
                    format_args!("linux.{field}"),
                    ErrorKind::Invalid("given without a \"user\" entry in linux.namespaces"),
                ))
            }
            Some(ns) if ns.path.is_none() && list.is_empty() => {
                return Err(at(
                    format_args!("linux.{field}"),
                    ErrorKind::Invalid("required when a new user namespace is created"),
                ))
            }
            Some(ns) if ns.path.is_some() && !list.is_empty() => {
                return Err(at(
                    format_args!("linux.{field}"),
                    ErrorKind::Invalid("cannot be applied to a user namespace joined by path"),
                ))
            }
            _ => {}
        }
        id_map_ranges(format_args!("linux.{field}"), list)?;
    }
    if !l.time_offsets.is_empty() {
        match time_ns {
            Some(ns) if ns.path.is_none() => {}
            _ => {
                return Err(at(
                    format_args!("linux.timeOffsets"),
                    ErrorKind::Invalid("needs a new \"time\" namespace in linux.namespaces"),
                ))
            }
        }
        for (clock, off) in l.time_offsets.iter() {
            if *clock != "monotonic" && *clock != "boottime" {
                return Err(at(
                    format_args!("linux.timeOffsets[\"{clock}\"]"),
                    ErrorKind::UnknownName {
                        what: "clock",
                        name: quoted(clock),
                    },
                ));
            }
            if off.nanosecs >= 1_000_000_000 {
                return Err(at(
                    format_args!("linux.timeOffsets[\"{clock}\"].nanosecs"),
                    ErrorKind::Invalid("must be below 1000000000"),
                ));
            }
        }
    }
    for (i, d) in l.devices.iter().enumerate() {
        absolute(d.path, format_args!("linux.devices[{i}].path"))?;
        match d.kind {
            "c" | "b" | "u" => {
                if d.major.is_none() || d.minor.is_none() {
                    return Err(at(
                        format_args!("linux.devices[{i}]"),
                        ErrorKind::Invalid("major and minor are required for c, b and u devices"),
                    ));
                }
                for (name, v, limit) in [
                    ("major", d.major, MAX_DEVICE_MAJOR),
                    ("minor", d.minor, MAX_DEVICE_MINOR),
                ] {
                    match v {
                        Some(n) if n < 0 => {
                            return Err(at(
                                format_args!("linux.devices[{i}].{name}"),
                                ErrorKind::Invalid("must not be negative"),
                            ))
                        }
                        Some(n) if n > limit => {
                            return Err(at(
                                format_args!("linux.devices[{i}].{name}"),
                                ErrorKind::AboveLimit {
                                    what: "",
                                    value: n.into(),
                                    limit: limit.into(),
                                },
                            ))
                        }
                        _ => {}
                    }
                }
            }
            "p" => {}
            other => {
                return Err(at(
                    format_args!("linux.devices[{i}].type"),
                    ErrorKind::UnknownName {
                        what: "device type (c, b, u or p)",
                        name: quoted(other),
                    },
                ))
            }
        }
    }
    if let Some(r) = &l.resources {
        memory_limits(r)?;
        for (i, rule) in r.devices.iter().enumerate() {
            if let Some(kind) = rule.kind {
                if !matches!(kind, "a" | "c" | "b") {
                    return Err(at(
                        format_args!("linux.resources.devices[{i}].type"),
                        ErrorKind::UnknownName {
                            what: "device rule type (a, c or b)",
                            name: quoted(kind),
                        },
                    ));
                }
            }
            if let Some(access) = rule.access {
                let mut seen = [false; 3];
                for c in access.chars() {
                    let slot = match c {
                        'r' => seen.get_mut(0),
                        'w' => seen.get_mut(1),
                        'm' => seen.get_mut(2),
                        _ => None,
                    };
                    match slot {
                        Some(s) if !*s => *s = true,
                        _ => {
                            return Err(at(
                                format_args!("linux.resources.devices[{i}].access"),
                                ErrorKind::Invalid("must be made of r, w and m, each at most once"),
                            ))
                        }
                    }
                }
            }
        }
    }
    if let Some(p) = l.rootfs_propagation {
        if !ROOTFS_PROPAGATION.contains(&p) {
            return Err(at(
                format_args!("linux.rootfsPropagation"),
                ErrorKind::UnknownName {
                    what: "propagation",
                    name: quoted(p),
                },
            ));
        }
    }
    let paths: [(&str, &[&str]); 2] = [
        ("maskedPaths", &l.masked_paths),
        ("readonlyPaths", &l.readonly_paths),
    ];
    for (field, list) in paths {
        for (i, p) in list.iter().enumerate() {
            container_path(p, format_args!("linux.{field}[{i}]"))?;
        }
    }
    for (key, _) in l.sysctl.iter() {
        // Checked unescaped: `\/` or `\u002e` must not smuggle a path past the check.
        let mut buf = [0u8; MAX_SYSCTL_NAME];
        let name = unescape_into(key, &mut buf)
            .ok()
            .and_then(|n| buf.get(..n))
            .and_then(|b| core::str::from_utf8(b).ok());
        let Some(name) = name else {
            return Err(at(
                format_args!("linux.sysctl[\"{key}\"]"),
                ErrorKind::Invalid("sysctl name is too long"),
            ));
        };
        if name.is_empty() || name.contains('/') || name.contains("..") {
            return Err(at(
                format_args!("linux.sysctl[\"{key}\"]"),
                ErrorKind::Invalid("a sysctl name must not be empty or contain '/' or \"..\""),
            ));
        }
        // As runc: only sysctls that live in a namespace the container has of its own;
        // any other would be written to the host's kernel.
        let problem = match sysctl_namespace(name) {
            Some((kind, _)) if has_namespace(l, kind) => None,
            Some((_, need)) => Some(need),
            None => Some("not in a kernel namespace: it would change the host (only ipc, net and uts sysctls are allowed)"),
        };
        if let Some(msg) = problem {
            return Err(at(
                format_args!("linux.sysctl[\"{key}\"]"),
                ErrorKind::Invalid(msg),
            ));
        }
    }
    no_label(
        l.mount_label,
        "linux.mountLabel",
        "SELinux mount labels are not supported",
    )?;
    net_devices(l)
}

/// Memory limits are byte counts, or -1 for unlimited (as runc and the kernel read them);
/// any other negative number the kernel would refuse only once the cgroup exists.
fn memory_limits(r: &Resources<'_>) -> Result<(), SpecError> {
    let Some(m) = &r.memory else { return Ok(()) };
    for (name, value) in [
        ("limit", m.limit),
        ("reservation", m.reservation),
        ("swap", m.swap),
    ] {
        if value.is_some_and(|v| v < -1) {
            return Err(at(
                format_args!("linux.resources.memory.{name}"),
                ErrorKind::Invalid("must be -1 (unlimited) or a byte count of at least 0"),
            ));
        }
    }
    Ok(())
}

/// Longest network interface name (IFNAMSIZ 16 with its NUL).
pub const MAX_IFNAME: usize = 15;

/// `linux.netDevices`: a network namespace to move into (runc: "unable to move network
/// devices without a NET namespace"), and names the kernel's `dev_valid_name` takes, each
/// name in the container once.
fn net_devices(l: &Linux<'_>) -> Result<(), SpecError> {
    if l.net_devices.is_empty() {
        return Ok(());
    }
    if !has_namespace(l, NamespaceKind::Network) {
        return Err(at(
            format_args!("linux.netDevices"),
            ErrorKind::Invalid("needs a \"network\" entry in linux.namespaces"),
        ));
    }
    for (i, (host, dev)) in l.net_devices.iter().enumerate() {
        if_name(host, format_args!("linux.netDevices[\"{host}\"]"))?;
        let name = dev.name.unwrap_or(host);
        if let Some(n) = dev.name {
            if_name(n, format_args!("linux.netDevices[\"{host}\"].name"))?;
        }
        let taken = l
            .net_devices
            .iter()
            .take(i)
            .any(|(h, d)| d.name.unwrap_or(h) == name);
        if taken {
            return Err(at(
                format_args!("linux.netDevices[\"{host}\"].name"),
                ErrorKind::DuplicateName {
                    what: "interface name in the container",
                    name: quoted(name),
                },
            ));
        }
    }
    Ok(())
}

fn if_name(name: &str, field: core::fmt::Arguments<'_>) -> Result<(), SpecError> {
    if name.len() > MAX_IFNAME {
        return Err(at(
            field,
            ErrorKind::AboveLimit {
                what: "interface name length ",
                value: name.len() as i128,
                limit: MAX_IFNAME as i128,
            },
        ));
    }
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(|c: char| c.is_whitespace() || matches!(c, '/' | ':' | '\\'));
    if bad {
        return Err(at(
            field,
            ErrorKind::Invalid(
                "not an interface name: empty, \".\", \"..\", or has whitespace, '/', ':' or a JSON escape",
            ),
        ));
    }
    Ok(())
}
