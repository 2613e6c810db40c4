//! The shape of config.json as the scanner checks it, mirroring `model.rs` field by field.
//!
//! Each model field appears here with its JSON type, its capacity (lists and maps) and
//! whether serde requires it. The scanner uses this to report wrong types, overflowing
//! lists, missing and duplicated fields with their path before serde-json-core (whose
//! errors carry no position) sees the document. Keep it in step with `model.rs`; the
//! fixture tests parse real configs through both.
//!
//! Fields of the OCI spec that dory does not implement are listed here on purpose, as
//! `Unsupported` (refused when given a non-empty value, never silently dropped) or as
//! `Any` with a comment saying why ignoring them is right. Keys the OCI spec does not
//! define are ignored, as the spec requires of runtimes.

use crate::spec::model::*;

/// JSON integer types of the model, with the range serde will accept.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Int {
    U16,
    U32,
    I32,
    U64,
    I64,
}

impl Int {
    pub(crate) fn range(self) -> (i128, i128) {
        match self {
            Int::U16 => (0, u16::MAX.into()),
            Int::U32 => (0, u32::MAX.into()),
            Int::I32 => (i32::MIN.into(), i32::MAX.into()),
            Int::U64 => (0, u64::MAX.into()),
            Int::I64 => (i64::MIN.into(), i64::MAX.into()),
        }
    }
}

/// The expected JSON type of a value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ty {
    Str,
    Bool,
    Int(Int),
    /// An object with known fields (a model struct).
    Obj(&'static [Field]),
    /// An array of values of one type, with its capacity.
    Arr(&'static Ty, usize),
    /// An object with free string keys (a `LinearMap`), with its capacity.
    Map(&'static Ty, usize),
    /// Anything; syntax-checked only (`IgnoredAny` in the model, or deliberately ignored).
    Any,
    /// Not implemented: refused unless null or an empty object/array. The text says so.
    Unsupported(&'static str),
}

impl Ty {
    /// How the type is named in messages: "expected <this>".
    pub(crate) fn expected(&self) -> &'static str {
        match self {
            Ty::Str => "a string",
            Ty::Bool => "true or false",
            Ty::Int(_) => "an integer",
            Ty::Obj(_) | Ty::Map(..) => "an object",
            Ty::Arr(..) => "an array",
            Ty::Any | Ty::Unsupported(_) => "a value",
        }
    }
}

/// How serde treats a missing or null field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presence {
    /// Plain field: must be present and not null.
    Required,
    /// `Option<T>`: may be missing or null.
    Optional,
    /// `#[serde(default)]`: may be missing, but not null.
    Defaulted,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub(crate) name: &'static str,
    pub(crate) ty: Ty,
    pub(crate) presence: Presence,
}

const fn req(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        presence: Presence::Required,
    }
}

const fn opt(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        presence: Presence::Optional,
    }
}

const fn def(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        presence: Presence::Defaulted,
    }
}

const STR: Ty = Ty::Str;
const BOOL: Ty = Ty::Bool;
const U16: Ty = Ty::Int(Int::U16);
const U32: Ty = Ty::Int(Int::U32);
const I32: Ty = Ty::Int(Int::I32);
const U64: Ty = Ty::Int(Int::U64);
const I64: Ty = Ty::Int(Int::I64);

/// A list of strings with capacity `n`.
const fn strings(n: usize) -> Ty {
    Ty::Arr(&STR, n)
}

const CONSOLE_SIZE: Ty = Ty::Obj(&[req("height", U16), req("width", U16)]);

const USER: Ty = Ty::Obj(&[
    req("uid", U32),
    req("gid", U32),
    opt("umask", U32),
    def("additionalGids", Ty::Arr(&U32, MAX_ADDITIONAL_GIDS)),
    // Windows only; parsed and ignored.
    opt("username", STR),
]);

const CAPABILITIES: Ty = Ty::Obj(&[
    def("bounding", strings(MAX_CAPS)),
    def("effective", strings(MAX_CAPS)),
    def("inheritable", strings(MAX_CAPS)),
    def("permitted", strings(MAX_CAPS)),
    def("ambient", strings(MAX_CAPS)),
]);

const RLIMIT: Ty = Ty::Obj(&[req("type", STR), req("hard", U64), req("soft", U64)]);

const IO_PRIORITY: Ty = Ty::Obj(&[req("class", STR), req("priority", I64)]);

const SCHEDULER: Ty = Ty::Obj(&[
    req("policy", STR),
    def("nice", I32),
    def("priority", I32),
    def("flags", strings(MAX_SCHED_FLAGS)),
    def("runtime", U64),
    def("deadline", U64),
    def("period", U64),
]);

const CPU_AFFINITY: Ty = Ty::Obj(&[opt("initial", STR), opt("final", STR)]);

const PERSONALITY: Ty = Ty::Obj(&[req("domain", STR), def("flags", strings(MAX_ATTR_FLAGS))]);

const MEMORY_POLICY: Ty = Ty::Obj(&[
    req("mode", STR),
    opt("nodes", STR),
    def("flags", strings(MAX_ATTR_FLAGS)),
]);

const PROCESS: Ty = Ty::Obj(&[
    def("terminal", BOOL),
    opt("consoleSize", CONSOLE_SIZE),
    req("user", USER),
    def("args", strings(MAX_ARGS)),
    def("env", strings(MAX_ENV)),
    req("cwd", STR),
    opt("capabilities", CAPABILITIES),
    def("rlimits", Ty::Arr(&RLIMIT, MAX_RLIMITS)),
    def("noNewPrivileges", BOOL),
    opt("apparmorProfile", STR),
    opt("oomScoreAdj", I32),
    opt("selinuxLabel", STR),
    // Windows only: the command line as one string. A Linux runtime uses `args`.
    opt("commandLine", Ty::Any),
    opt("ioPriority", IO_PRIORITY),
    opt("scheduler", SCHEDULER),
    opt("execCPUAffinity", CPU_AFFINITY),
]);

const ROOT: Ty = Ty::Obj(&[req("path", STR), def("readonly", BOOL)]);

const MOUNT: Ty = Ty::Obj(&[
    req("destination", STR),
    opt("type", STR),
    opt("source", STR),
    def("options", strings(MAX_MOUNT_OPTIONS)),
    def("uidMappings", Ty::Arr(&ID_MAPPING, MAX_ID_MAPPINGS)),
    def("gidMappings", Ty::Arr(&ID_MAPPING, MAX_ID_MAPPINGS)),
]);

const HOOK: Ty = Ty::Obj(&[
    req("path", STR),
    def("args", strings(MAX_HOOK_ARGS)),
    def("env", strings(MAX_HOOK_ENV)),
    opt("timeout", I64),
]);

const HOOK_LIST: Ty = Ty::Arr(&HOOK, MAX_HOOKS);

const HOOKS: Ty = Ty::Obj(&[
    def("prestart", HOOK_LIST),
    def("createRuntime", HOOK_LIST),
    def("createContainer", HOOK_LIST),
    def("startContainer", HOOK_LIST),
    def("poststart", HOOK_LIST),
    def("poststop", HOOK_LIST),
]);

const NAMESPACE: Ty = Ty::Obj(&[req("type", STR), opt("path", STR)]);

const ID_MAPPING: Ty = Ty::Obj(&[
    req("containerID", U32),
    req("hostID", U32),
    req("size", U32),
]);

const DEVICE: Ty = Ty::Obj(&[
    req("type", STR),
    req("path", STR),
    opt("major", I64),
    opt("minor", I64),
    opt("fileMode", U32),
    opt("uid", U32),
    opt("gid", U32),
]);

const TIME_OFFSET: Ty = Ty::Obj(&[def("secs", I64), def("nanosecs", U32)]);

const DEVICE_RULE: Ty = Ty::Obj(&[
    req("allow", BOOL),
    opt("type", STR),
    opt("major", I64),
    opt("minor", I64),
    opt("access", STR),
]);

const MEMORY: Ty = Ty::Obj(&[
    opt("limit", I64),
    opt("reservation", I64),
    opt("swap", I64),
    opt("kernel", I64),
    opt("kernelTCP", I64),
    opt("swappiness", U64),
    opt("disableOOMKiller", BOOL),
    opt("useHierarchy", BOOL),
    opt("checkBeforeUpdate", BOOL),
]);

const CPU: Ty = Ty::Obj(&[
    opt("shares", U64),
    opt("quota", I64),
    opt("burst", U64),
    opt("period", U64),
    opt("realtimeRuntime", I64),
    opt("realtimePeriod", U64),
    opt("cpus", STR),
    opt("mems", STR),
    opt("idle", I64),
]);

const PIDS: Ty = Ty::Obj(&[req("limit", I64)]);

const HUGEPAGE_LIMIT: Ty = Ty::Obj(&[req("pageSize", STR), req("limit", U64)]);

const WEIGHT_DEVICE: Ty = Ty::Obj(&[
    req("major", I64),
    req("minor", I64),
    opt("weight", U16),
    opt("leafWeight", U16),
]);

const THROTTLE_DEVICE: Ty = Ty::Obj(&[req("major", I64), req("minor", I64), req("rate", U64)]);

const THROTTLE_LIST: Ty = Ty::Arr(&THROTTLE_DEVICE, MAX_BLKIO_DEVICES);

const BLOCK_IO: Ty = Ty::Obj(&[
    opt("weight", U16),
    opt("leafWeight", U16),
    def("weightDevice", Ty::Arr(&WEIGHT_DEVICE, MAX_BLKIO_DEVICES)),
    def("throttleReadBpsDevice", THROTTLE_LIST),
    def("throttleWriteBpsDevice", THROTTLE_LIST),
    def("throttleReadIOPSDevice", THROTTLE_LIST),
    def("throttleWriteIOPSDevice", THROTTLE_LIST),
]);

const INTERFACE_PRIORITY: Ty = Ty::Obj(&[req("name", STR), req("priority", U32)]);

const NETWORK: Ty = Ty::Obj(&[
    opt("classID", U32),
    def(
        "priorities",
        Ty::Arr(&INTERFACE_PRIORITY, MAX_NET_PRIORITIES),
    ),
]);

const RDMA: Ty = Ty::Obj(&[opt("hcaHandles", U32), opt("hcaObjects", U32)]);

const NET_DEVICE: Ty = Ty::Obj(&[opt("name", STR)]);

const RESOURCES: Ty = Ty::Obj(&[
    def("devices", Ty::Arr(&DEVICE_RULE, MAX_DEVICE_RULES)),
    opt("memory", MEMORY),
    opt("cpu", CPU),
    opt("pids", PIDS),
    opt("blockIO", BLOCK_IO),
    def(
        "hugepageLimits",
        Ty::Arr(&HUGEPAGE_LIMIT, MAX_HUGEPAGE_LIMITS),
    ),
    opt("network", NETWORK),
    def("rdma", Ty::Map(&RDMA, MAX_RDMA_DEVICES)),
    def("unified", Ty::Map(&STR, MAX_UNIFIED)),
]);

const SECCOMP_ARG: Ty = Ty::Obj(&[
    req("index", U32),
    req("value", U64),
    def("valueTwo", U64),
    req("op", STR),
]);

const SECCOMP_RULE: Ty = Ty::Obj(&[
    req("names", strings(MAX_SYSCALL_NAMES)),
    req("action", STR),
    opt("errnoRet", U32),
    def("args", Ty::Arr(&SECCOMP_ARG, MAX_ARGS_PER_RULE)),
]);

const SECCOMP: Ty = Ty::Obj(&[
    req("defaultAction", STR),
    opt("defaultErrnoRet", U32),
    def("architectures", strings(MAX_SECCOMP_ARCHES)),
    def("flags", strings(MAX_SECCOMP_FLAGS)),
    opt("listenerPath", STR),
    opt("listenerMetadata", STR),
    def("syscalls", Ty::Arr(&SECCOMP_RULE, MAX_SECCOMP_RULES)),
]);

const LINUX: Ty = Ty::Obj(&[
    def("namespaces", Ty::Arr(&NAMESPACE, MAX_NAMESPACES)),
    def("uidMappings", Ty::Arr(&ID_MAPPING, MAX_ID_MAPPINGS)),
    def("gidMappings", Ty::Arr(&ID_MAPPING, MAX_ID_MAPPINGS)),
    def("devices", Ty::Arr(&DEVICE, MAX_DEVICES)),
    opt("cgroupsPath", STR),
    opt("resources", RESOURCES),
    opt("rootfsPropagation", STR),
    def("maskedPaths", strings(MAX_PATHS)),
    def("readonlyPaths", strings(MAX_PATHS)),
    def("sysctl", Ty::Map(&STR, MAX_SYSCTLS)),
    opt("mountLabel", STR),
    opt("seccomp", SECCOMP),
    def("timeOffsets", Ty::Map(&TIME_OFFSET, MAX_TIME_OFFSETS)),
    opt("intelRdt", Ty::Unsupported("Intel RDT is not supported")),
    opt("personality", PERSONALITY),
    def("netDevices", Ty::Map(&NET_DEVICE, MAX_NET_DEVICES)),
    opt("memoryPolicy", MEMORY_POLICY),
]);

/// The whole document.
pub(crate) const SPEC: Ty = Ty::Obj(&[
    req("ociVersion", STR),
    opt("process", PROCESS),
    opt("root", ROOT),
    opt("hostname", STR),
    opt("domainname", STR),
    def("mounts", Ty::Arr(&MOUNT, MAX_MOUNTS)),
    opt("hooks", HOOKS),
    def("annotations", Ty::Map(&STR, MAX_ANNOTATIONS)),
    opt("linux", LINUX),
    // Other platforms' sections: they do not apply on Linux (runc ignores them too).
    opt("solaris", Ty::Any),
    opt("windows", Ty::Any),
    opt("vm", Ty::Any),
    opt("zos", Ty::Any),
]);

/// The largest capacity of any map, for the scanner's duplicate-key check.
pub(crate) const MAX_MAP_ENTRIES: usize = max(
    max(
        max(MAX_ANNOTATIONS, MAX_SYSCTLS),
        max(MAX_UNIFIED, MAX_TIME_OFFSETS),
    ),
    max(MAX_RDMA_DEVICES, MAX_NET_DEVICES),
);

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every object has at most 64 fields (the scanner's `seen` bit set) and no name
    /// twice.
    #[test]
    fn objects_fit_the_seen_mask() {
        fn walk(ty: &Ty) {
            match ty {
                Ty::Obj(fields) => {
                    assert!(fields.len() <= 64);
                    for (i, f) in fields.iter().enumerate() {
                        assert!(fields[..i].iter().all(|g| g.name != f.name), "{}", f.name);
                        walk(&f.ty);
                    }
                }
                Ty::Arr(t, _) | Ty::Map(t, _) => walk(t),
                _ => {}
            }
        }
        walk(&SPEC);
    }
}
