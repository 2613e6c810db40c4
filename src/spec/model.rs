//! The config.json model: borrowed, bounded, zero-copy.
//!
//! Strings are `&'a str` slices of the input *as written*: JSON escapes (`\"`, `\u003c`)
//! are still in them. They are undone by [`crate::spec::unescape_into`] when C strings are built
//! for the child (see `plan`). Names compared against fixed tables (capabilities, namespace
//! types, rlimits) are validated as raw text: a name containing a backslash is unknown.
//!
//! Every list has a named capacity. `spec::schema` mirrors these types for the scanner,
//! which reports overflow (and wrong types, missing fields) with the field path and the
//! limit before serde sees the document: change both together.

use heapless::{LinearMap, Vec};
use serde::Deserialize;

pub use crate::spec::bounded::{List, Map};
// `linux.seccomp` lives in its own module; its types and capacities are part of the model.
pub use crate::seccomp::model::*;

// Capacities. Lists and maps that Kubernetes grows with a pod (devices, environment,
// mounts, annotations, hooks, capabilities, paths) are [`List`]s and [`Map`]s: their
// items live on the heap, so memory follows what a config holds and a capacity costs
// nothing until it is used; the small, fixed-shape ones stay inline (`heapless`). Sized
// from the largest configs kubelet and containerd write, measured on this project's test
// host (see the README's Kubernetes section and tests/k8s_sized.rs): a privileged pod
// (containerd 1.6/1.7 adds every device under the host's /dev: 101 here), 100 Services in
// the namespace (kubelet adds 7 variables per Service: 702 in all with PATH and
// HOSTNAME), 100 volumes (112 mounts with containerd's 12 defaults), CRI's 7–10
// annotations plus pod annotations passed through by a RuntimeClass, 41 capabilities per
// set. Each limit leaves several times that.

/// Largest config.json read, in bytes (podman's are ≈11 KB with a seccomp profile). The
/// measured privileged pod with 100 Services and 100 volumes is 100 KiB (114 KiB with a
/// seccomp profile); Kubernetes allows 256 KiB of annotations per object, which a
/// RuntimeClass may pass through whole. Every list at its limit is about 800 KiB.
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;
/// `process.args` (a JVM's command line with its `-D` flags reaches a few hundred).
pub const MAX_ARGS: usize = 1024;
/// `process.env`: 702 for a pod in a namespace with 100 Services (7 per Service; a Service
/// with more ports adds 4 per port), so room for about 580 Services.
pub const MAX_ENV: usize = 4096;
/// The kernel knows 41 capabilities (CAP_LAST_CAP = 40); leave room for new ones.
pub const MAX_CAPS: usize = 64;
/// One per `RLIMIT_*` (the kernel has 16).
pub const MAX_RLIMITS: usize = 16;
/// `process.user.additionalGids`: the pod's supplementalGroups plus the image user's groups
/// (containerd reads them from the image's /etc/group).
pub const MAX_ADDITIONAL_GIDS: usize = 256;
/// `mounts`: 112 for a pod with 100 volumes (containerd adds 12 of its own).
pub const MAX_MOUNTS: usize = 1024;
/// Options of one mount (containerd writes at most 7).
pub const MAX_MOUNT_OPTIONS: usize = 32;
pub const MAX_NAMESPACES: usize = 8;
/// Id mappings (Kubernetes user namespaces write one range).
pub const MAX_ID_MAPPINGS: usize = 8;
/// `linux.maskedPaths` and `linux.readonlyPaths` (containerd: 11 and 6).
pub const MAX_PATHS: usize = 128;
/// `linux.devices`: 101 for a privileged container on the test host (every device under
/// /dev); hosts with many disks, loop devices or consoles have several hundred.
pub const MAX_DEVICES: usize = 1024;
/// `linux.resources.devices`: containerd's 12 defaults plus one rule per device a device
/// plugin adds.
pub const MAX_DEVICE_RULES: usize = MAX_DEVICES + 64;
/// `linux.sysctl` (a pod's securityContext.sysctls; Kubernetes' safe set has 10).
pub const MAX_SYSCTLS: usize = 128;
/// `annotations`: CRI writes 7–10, a RuntimeClass may pass the pod's own through.
pub const MAX_ANNOTATIONS: usize = 1024;
/// Hooks per lifecycle point (CDI specs and NRI plugins add a few each).
pub const MAX_HOOKS: usize = 32;
/// A hook's `args` (nvidia-ctk's create-symlinks takes one `--link` per library).
pub const MAX_HOOK_ARGS: usize = 256;
pub const MAX_HOOK_ENV: usize = 256;
pub const MAX_HUGEPAGE_LIMITS: usize = 8;
/// `linux.resources.unified` (kubelet's memory QoS writes a few keys).
pub const MAX_UNIFIED: usize = 64;
pub const MAX_TIME_OFFSETS: usize = 2;
/// `process.scheduler.flags`: the kernel knows 7 `SCHED_FLAG_*` values.
pub const MAX_SCHED_FLAGS: usize = 8;
/// `linux.personality.flags` and `linux.memoryPolicy.flags` (3 `MPOL_F_*` exist).
pub const MAX_ATTR_FLAGS: usize = 4;
/// Devices per `linux.resources.blockIO` list (weightDevice, each throttle list).
pub const MAX_BLKIO_DEVICES: usize = 16;
/// `linux.resources.network.priorities` entries.
pub const MAX_NET_PRIORITIES: usize = 16;
/// `linux.resources.rdma` entries (one per HCA device).
pub const MAX_RDMA_DEVICES: usize = 8;
/// `linux.netDevices` entries.
pub const MAX_NET_DEVICES: usize = 8;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec<'a> {
    #[serde(borrow)]
    pub oci_version: &'a str,
    #[serde(borrow)]
    pub process: Option<Process<'a>>,
    #[serde(borrow)]
    pub root: Option<Root<'a>>,
    pub hostname: Option<&'a str>,
    pub domainname: Option<&'a str>,
    #[serde(borrow, default)]
    pub mounts: List<Mount<'a>, MAX_MOUNTS>,
    #[serde(borrow)]
    pub hooks: Option<Hooks<'a>>,
    #[serde(borrow, default)]
    pub annotations: Map<'a, &'a str, MAX_ANNOTATIONS>,
    #[serde(borrow)]
    pub linux: Option<Linux<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Process<'a> {
    #[serde(default)]
    pub terminal: bool,
    pub console_size: Option<ConsoleSize>,
    #[serde(borrow)]
    pub user: User<'a>,
    #[serde(borrow, default)]
    pub args: List<&'a str, MAX_ARGS>,
    #[serde(borrow, default)]
    pub env: List<&'a str, MAX_ENV>,
    pub cwd: &'a str,
    #[serde(borrow)]
    pub capabilities: Option<Capabilities<'a>>,
    #[serde(borrow, default)]
    pub rlimits: Vec<Rlimit<'a>, MAX_RLIMITS>,
    #[serde(default)]
    pub no_new_privileges: bool,
    pub apparmor_profile: Option<&'a str>,
    pub oom_score_adj: Option<i32>,
    pub selinux_label: Option<&'a str>,
    #[serde(borrow)]
    pub io_priority: Option<IoPriority<'a>>,
    #[serde(borrow)]
    pub scheduler: Option<Scheduler<'a>>,
    #[serde(borrow, rename = "execCPUAffinity")]
    pub exec_cpu_affinity: Option<CpuAffinity<'a>>,
}

/// `process.ioPriority`: class name as written (`"IOPRIO_CLASS_BE"`), level 0..7.
#[derive(Debug, Deserialize)]
pub struct IoPriority<'a> {
    pub class: &'a str,
    pub priority: i64,
}

/// `process.scheduler` (sched_setattr(2)); names as written, numbers as given.
#[derive(Debug, Deserialize)]
pub struct Scheduler<'a> {
    pub policy: &'a str,
    #[serde(default)]
    pub nice: i32,
    #[serde(default)]
    pub priority: i32,
    #[serde(borrow, default)]
    pub flags: Vec<&'a str, MAX_SCHED_FLAGS>,
    #[serde(default)]
    pub runtime: u64,
    #[serde(default)]
    pub deadline: u64,
    #[serde(default)]
    pub period: u64,
}

/// `process.execCPUAffinity`: CPU lists (`"0-3,7"`) for an exec'd process.
#[derive(Debug, Deserialize)]
pub struct CpuAffinity<'a> {
    pub initial: Option<&'a str>,
    #[serde(rename = "final")]
    pub final_: Option<&'a str>,
}

/// `linux.personality`: `LINUX` or `LINUX32`.
#[derive(Debug, Deserialize)]
pub struct Personality<'a> {
    pub domain: &'a str,
    #[serde(borrow, default)]
    pub flags: Vec<&'a str, MAX_ATTR_FLAGS>,
}

/// `linux.memoryPolicy` (set_mempolicy(2)): mode and flag names, a node list.
#[derive(Debug, Deserialize)]
pub struct MemoryPolicy<'a> {
    pub mode: &'a str,
    pub nodes: Option<&'a str>,
    #[serde(borrow, default)]
    pub flags: Vec<&'a str, MAX_ATTR_FLAGS>,
}

#[derive(Debug, Deserialize)]
pub struct ConsoleSize {
    pub height: u16,
    pub width: u16,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User<'a> {
    pub uid: u32,
    pub gid: u32,
    pub umask: Option<u32>,
    #[serde(default)]
    pub additional_gids: List<u32, MAX_ADDITIONAL_GIDS>,
    /// Windows only; accepted and ignored.
    // Windows only: parsed and ignored on purpose.
    #[allow(dead_code)]
    pub username: Option<&'a str>,
}

/// Capability names as written (`"CAP_KILL"`); numbers come from `spec::caps`.
#[derive(Debug, Default, Deserialize)]
pub struct Capabilities<'a> {
    #[serde(borrow, default)]
    pub bounding: List<&'a str, MAX_CAPS>,
    #[serde(borrow, default)]
    pub effective: List<&'a str, MAX_CAPS>,
    #[serde(borrow, default)]
    pub inheritable: List<&'a str, MAX_CAPS>,
    #[serde(borrow, default)]
    pub permitted: List<&'a str, MAX_CAPS>,
    #[serde(borrow, default)]
    pub ambient: List<&'a str, MAX_CAPS>,
}

#[derive(Debug, Deserialize)]
pub struct Rlimit<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub hard: u64,
    pub soft: u64,
}

#[derive(Debug, Deserialize)]
pub struct Root<'a> {
    pub path: &'a str,
    #[serde(default)]
    pub readonly: bool,
}

#[derive(Debug, Deserialize)]
pub struct Mount<'a> {
    pub destination: &'a str,
    #[serde(rename = "type")]
    pub kind: Option<&'a str>,
    pub source: Option<&'a str>,
    #[serde(borrow, default)]
    pub options: List<&'a str, MAX_MOUNT_OPTIONS>,
    /// An idmapped bind mount: on-disk ids `containerID..` appear as `hostID..`.
    #[serde(default, rename = "uidMappings")]
    pub uid_mappings: List<IdMapping, MAX_ID_MAPPINGS>,
    #[serde(default, rename = "gidMappings")]
    pub gid_mappings: List<IdMapping, MAX_ID_MAPPINGS>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hooks<'a> {
    #[serde(borrow, default)]
    pub prestart: List<Hook<'a>, MAX_HOOKS>,
    #[serde(borrow, default)]
    pub create_runtime: List<Hook<'a>, MAX_HOOKS>,
    #[serde(borrow, default)]
    pub create_container: List<Hook<'a>, MAX_HOOKS>,
    #[serde(borrow, default)]
    pub start_container: List<Hook<'a>, MAX_HOOKS>,
    #[serde(borrow, default)]
    pub poststart: List<Hook<'a>, MAX_HOOKS>,
    #[serde(borrow, default)]
    pub poststop: List<Hook<'a>, MAX_HOOKS>,
}

#[derive(Debug, Deserialize)]
pub struct Hook<'a> {
    pub path: &'a str,
    #[serde(borrow, default)]
    pub args: List<&'a str, MAX_HOOK_ARGS>,
    #[serde(borrow, default)]
    pub env: List<&'a str, MAX_HOOK_ENV>,
    pub timeout: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Linux<'a> {
    #[serde(borrow, default)]
    pub namespaces: Vec<Namespace<'a>, MAX_NAMESPACES>,
    #[serde(default)]
    pub uid_mappings: Vec<IdMapping, MAX_ID_MAPPINGS>,
    #[serde(default)]
    pub gid_mappings: Vec<IdMapping, MAX_ID_MAPPINGS>,
    #[serde(borrow, default)]
    pub devices: List<Device<'a>, MAX_DEVICES>,
    pub cgroups_path: Option<&'a str>,
    #[serde(borrow)]
    pub resources: Option<Resources<'a>>,
    pub rootfs_propagation: Option<&'a str>,
    #[serde(borrow, default)]
    pub masked_paths: List<&'a str, MAX_PATHS>,
    #[serde(borrow, default)]
    pub readonly_paths: List<&'a str, MAX_PATHS>,
    #[serde(borrow, default)]
    pub sysctl: Map<'a, &'a str, MAX_SYSCTLS>,
    pub mount_label: Option<&'a str>,
    /// Syscall names are mapped to this architecture's numbers while parsing; see
    /// `crate::seccomp` (model and compiler).
    #[serde(borrow)]
    pub seccomp: Option<Seccomp<'a>>,
    /// Per clock (`"monotonic"`, `"boottime"`): `{"secs": i64, "nanosecs": u32}`.
    #[serde(borrow, default)]
    pub time_offsets: LinearMap<&'a str, TimeOffset, MAX_TIME_OFFSETS>,
    /// Not supported: the scanner refuses a non-empty value, so this is at most `{}`.
    // Refused by the pre-scan when non-empty; here only so the model mirrors the spec.
    #[allow(dead_code)]
    pub intel_rdt: Option<serde::de::IgnoredAny>,
    #[serde(borrow)]
    pub personality: Option<Personality<'a>>,
    #[serde(borrow)]
    pub memory_policy: Option<MemoryPolicy<'a>>,
    /// Host interface name → how it is named in the container (see `container::netdev`).
    #[serde(borrow, default)]
    pub net_devices: LinearMap<&'a str, NetDevice<'a>, MAX_NET_DEVICES>,
}

#[derive(Debug, Deserialize)]
pub struct Namespace<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub path: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdMapping {
    #[serde(rename = "containerID")]
    pub container_id: u32,
    #[serde(rename = "hostID")]
    pub host_id: u32,
    pub size: u32,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub path: &'a str,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub file_mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct TimeOffset {
    #[serde(default)]
    pub secs: i64,
    #[serde(default)]
    pub nanosecs: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources<'a> {
    #[serde(borrow, default)]
    pub devices: List<DeviceRule<'a>, MAX_DEVICE_RULES>,
    pub memory: Option<Memory>,
    #[serde(borrow)]
    pub cpu: Option<Cpu<'a>>,
    pub pids: Option<Pids>,
    #[serde(rename = "blockIO")]
    pub block_io: Option<BlockIo>,
    #[serde(borrow, default)]
    pub hugepage_limits: Vec<HugepageLimit<'a>, MAX_HUGEPAGE_LIMITS>,
    #[serde(borrow)]
    pub network: Option<Network<'a>>,
    /// Per HCA device name (`"mlx5_0"`).
    #[serde(borrow, default)]
    pub rdma: LinearMap<&'a str, Rdma, MAX_RDMA_DEVICES>,
    #[serde(borrow, default)]
    pub unified: Map<'a, &'a str, MAX_UNIFIED>,
}

#[derive(Debug, Deserialize)]
pub struct DeviceRule<'a> {
    pub allow: bool,
    #[serde(rename = "type")]
    pub kind: Option<&'a str>,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub access: Option<&'a str>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    pub limit: Option<i64>,
    pub reservation: Option<i64>,
    pub swap: Option<i64>,
    // Deprecated kernel memory limit: ignored on purpose, as runc 1.1 does.
    #[allow(dead_code)]
    pub kernel: Option<i64>,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: Option<i64>,
    pub swappiness: Option<u64>,
    #[serde(rename = "disableOOMKiller")]
    pub disable_oom_killer: Option<bool>,
    // Ignored on purpose: the kernel's default hierarchy mode applies.
    #[allow(dead_code)]
    pub use_hierarchy: Option<bool>,
    // Ignored on purpose (`update` writes limits without the pre-check).
    #[allow(dead_code)]
    pub check_before_update: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cpu<'a> {
    pub shares: Option<u64>,
    pub quota: Option<i64>,
    pub burst: Option<u64>,
    pub period: Option<u64>,
    pub realtime_runtime: Option<i64>,
    pub realtime_period: Option<u64>,
    pub cpus: Option<&'a str>,
    pub mems: Option<&'a str>,
    pub idle: Option<i64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Pids {
    pub limit: i64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HugepageLimit<'a> {
    pub page_size: &'a str,
    pub limit: u64,
}

/// `linux.resources.blockIO`: v1 blkio, v2 io. Weights are 10..=1000; 0 means "not set"
/// (as runc reads it).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockIo {
    pub weight: Option<u16>,
    pub leaf_weight: Option<u16>,
    #[serde(default)]
    pub weight_device: List<WeightDevice, MAX_BLKIO_DEVICES>,
    #[serde(default)]
    pub throttle_read_bps_device: List<ThrottleDevice, MAX_BLKIO_DEVICES>,
    #[serde(default)]
    pub throttle_write_bps_device: List<ThrottleDevice, MAX_BLKIO_DEVICES>,
    #[serde(rename = "throttleReadIOPSDevice", default)]
    pub throttle_read_iops_device: List<ThrottleDevice, MAX_BLKIO_DEVICES>,
    #[serde(rename = "throttleWriteIOPSDevice", default)]
    pub throttle_write_iops_device: List<ThrottleDevice, MAX_BLKIO_DEVICES>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightDevice {
    pub major: i64,
    pub minor: i64,
    pub weight: Option<u16>,
    pub leaf_weight: Option<u16>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct ThrottleDevice {
    pub major: i64,
    pub minor: i64,
    pub rate: u64,
}

/// `linux.resources.network`: v1 net_cls and net_prio.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Network<'a> {
    #[serde(rename = "classID")]
    pub class_id: Option<u32>,
    #[serde(borrow, default)]
    pub priorities: Vec<InterfacePriority<'a>, MAX_NET_PRIORITIES>,
}

#[derive(Debug, Deserialize)]
pub struct InterfacePriority<'a> {
    pub name: &'a str,
    pub priority: u32,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rdma {
    pub hca_handles: Option<u32>,
    pub hca_objects: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
pub struct NetDevice<'a> {
    /// The name inside the container; the host's name when absent.
    pub name: Option<&'a str>,
}
