//! `linux.resources` → cgroup files, for v1 and v2. Only fields that are set are written.
//!
//! `blockIO` is in `blkio.rs`, `network` and `rdma` in `net_rdma.rs`.
//!
//! Not applied: `memory.kernel` (deprecated; runc ignores it too),
//! `memory.useHierarchy` (always on in current kernels) and `memory.checkBeforeUpdate`.

use std::fmt;

use nix::errno::Errno;

use super::devices_bpf;
use super::layout::Ctrl;
use super::{Cgroup, Error};
use crate::spec::{Cpu, DeviceRule, Memory, Resources};

/// runc's default device allow list, appended after the spec's rules on v1.
const DEFAULT_DEVICE_RULES: [&str; 11] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",    // /dev/null
    "c 1:5 rwm",    // /dev/zero
    "c 1:7 rwm",    // /dev/full
    "c 1:8 rwm",    // /dev/random
    "c 1:9 rwm",    // /dev/urandom
    "c 5:0 rwm",    // /dev/tty
    "c 5:2 rwm",    // /dev/ptmx
    "c 10:200 rwm", // /dev/net/tun
    "c 136:* rwm",  // /dev/pts/*
];

/// Checks what needs no file system: fields this cgroup version cannot honour and values
/// that are malformed. `create` calls it before any mkdir.
pub(super) fn check(res: &Resources<'_>, v2: bool) -> Result<(), Error> {
    let unsupported = |field: &str, why| {
        Err(Error::Unsupported {
            field: field.to_owned(),
            why,
        })
    };
    let invalid = |field: &str, why| {
        Err(Error::Invalid {
            field: field.to_owned(),
            why,
        })
    };
    if let Some(m) = &res.memory {
        if v2 {
            if m.disable_oom_killer == Some(true) {
                return unsupported(
                    "linux.resources.memory.disableOOMKiller",
                    "cgroup v2 cannot disable the OOM killer",
                );
            }
            v2_swap(m)?;
        }
    }
    if let Some(c) = &res.cpu {
        if v2 && (c.realtime_runtime.is_some() || c.realtime_period.is_some()) {
            return unsupported(
                "linux.resources.cpu.realtimeRuntime",
                "realtime CPU limits require cgroup v1",
            );
        }
        for (field, v) in [
            ("linux.resources.cpu.cpus", c.cpus),
            ("linux.resources.cpu.mems", c.mems),
        ] {
            if v.is_some_and(|s| s.contains('\\')) {
                return invalid(field, "JSON escapes are not supported here");
            }
        }
    }
    for r in &res.devices {
        device_rule(r)?;
    }
    for h in &res.hugepage_limits {
        if h.page_size.is_empty() || h.page_size.contains(['/', '\\', '.']) {
            return invalid(
                "linux.resources.hugepageLimits.pageSize",
                "must be a size such as \"2MB\"",
            );
        }
    }
    if let Some(b) = &res.block_io {
        super::blkio::check(b, v2)?;
    }
    super::net_rdma::check(res)?;
    if !res.unified.is_empty() {
        if !v2 {
            return unsupported("linux.resources.unified", "requires cgroup v2");
        }
        for (k, v) in &res.unified {
            if k.is_empty() || k.starts_with('.') || k.contains(['/', '\\']) || !k.contains('.') {
                return invalid(
                    "linux.resources.unified",
                    "keys must be cgroup file names such as \"memory.high\"",
                );
            }
            if v.contains('\\') {
                return invalid(
                    "linux.resources.unified",
                    "JSON escapes are not supported in values",
                );
            }
        }
    }
    Ok(())
}

/// v2 `memory.swap.max` from the spec's v1 meaning of `swap` (memory + swap), as runc:
/// `None`: leave alone; `Some(-1)`: "max"; otherwise `swap - limit`.
fn v2_swap(m: &Memory) -> Result<Option<i64>, Error> {
    const FIELD: &str = "linux.resources.memory.swap";
    let invalid = |why| Error::Invalid {
        field: FIELD.to_owned(),
        why,
    };
    let limit = m.limit.unwrap_or(0);
    match m.swap {
        // An unlimited memory with no swap set means unlimited swap too (v1 compatibility).
        None | Some(0) if limit == -1 => Ok(Some(-1)),
        None | Some(0) => Ok(None),
        Some(s) if s < 0 => Ok(Some(-1)),
        Some(_) if limit <= 0 => Err(invalid("a swap limit needs a memory limit")),
        Some(s) if s < limit => Err(invalid(
            "memory+swap (swap) must be at least the memory limit",
        )),
        Some(s) => Ok(Some(s - limit)),
    }
}

/// A device rule as the v1 devices files take it: `"a"` or `"c 1:3 rwm"`.
struct Rule<'a> {
    kind: &'a str,
    major: Option<i64>,
    minor: Option<i64>,
    access: &'a str,
}

impl fmt::Display for Rule<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == "a" {
            return f.write_str("a");
        }
        f.write_str(self.kind)?;
        f.write_str(" ")?;
        num_or_star(f, self.major)?;
        f.write_str(":")?;
        num_or_star(f, self.minor)?;
        f.write_str(" ")?;
        f.write_str(self.access)
    }
}

fn num_or_star(f: &mut fmt::Formatter<'_>, n: Option<i64>) -> fmt::Result {
    match n {
        Some(n) if n >= 0 => write!(f, "{n}"),
        _ => f.write_str("*"),
    }
}

fn device_rule<'a>(r: &DeviceRule<'a>) -> Result<Rule<'a>, Error> {
    let kind = r.kind.unwrap_or("a");
    if !matches!(kind, "a" | "b" | "c") {
        return Err(Error::Invalid {
            field: "linux.resources.devices.type".to_owned(),
            why: "must be \"a\", \"b\" or \"c\"",
        });
    }
    let access = r.access.unwrap_or("rwm");
    if access.is_empty() || !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
        return Err(Error::Invalid {
            field: "linux.resources.devices.access".to_owned(),
            why: "must be letters of \"rwm\"",
        });
    }
    Ok(Rule {
        kind,
        major: r.major,
        minor: r.minor,
        access,
    })
}

/// `"+cpu +memory …"`: the v2 controllers `res` needs (empty: none).
pub(super) fn v2_controllers(res: &Resources<'_>) -> String {
    let mut out = String::new();
    let mut add = |name: &str| {
        if !out.split(' ').any(|w| w.strip_prefix('+') == Some(name)) {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push('+');
            out.push_str(name);
        }
    };
    if let Some(c) = &res.cpu {
        if c.shares.is_some_and(|s| s != 0)
            || c.quota.is_some_and(|q| q != 0)
            || c.period.is_some_and(|p| p != 0)
            || c.burst.is_some()
            || c.idle.is_some()
        {
            add("cpu");
        }
        if c.cpus.is_some_and(|s| !s.is_empty()) || c.mems.is_some_and(|s| !s.is_empty()) {
            add("cpuset");
        }
    }
    if let Some(m) = &res.memory {
        if m.limit.is_some() || m.reservation.is_some() || m.swap.is_some() {
            add("memory");
        }
    }
    if res.pids.is_some() {
        add("pids");
    }
    if !res.hugepage_limits.is_empty() {
        add("hugetlb");
    }
    if res.block_io.as_ref().is_some_and(super::blkio::is_set) {
        add("io");
    }
    if !res.rdma.is_empty() {
        add("rdma");
    }
    for (k, _) in &res.unified {
        match k.split('.').next() {
            Some("cgroup") | None => {}
            Some(c) => add(c),
        }
    }
    out
}

impl Cgroup {
    /// Writes the files for every set field of `res`; `devices`: also the v1 device rules
    /// (at create, not at update).
    pub(super) fn apply(&self, res: &Resources<'_>, devices: bool) -> Result<(), Error> {
        if let Some(m) = &res.memory {
            self.apply_memory(m)?;
        }
        if let Some(c) = &res.cpu {
            self.apply_cpu(c)?;
        }
        if let Some(p) = &res.pids {
            const FIELD: &str = "linux.resources.pids.limit";
            let dir = self.dir_for(Ctrl::Pids, FIELD)?;
            if p.limit > 0 {
                self.put(FIELD, dir, "pids.max", format_args!("{}", p.limit))?;
            } else {
                self.put(FIELD, dir, "pids.max", format_args!("max"))?;
            }
        }
        if let Some(b) = &res.block_io {
            self.apply_block_io(b)?;
        }
        if let Some(n) = &res.network {
            self.apply_network(n)?;
        }
        self.apply_rdma(res)?;
        for h in &res.hugepage_limits {
            const FIELD: &str = "linux.resources.hugepageLimits";
            let dir = self.dir_for(Ctrl::Hugetlb, FIELD)?;
            let suffix = if self.v2 { "max" } else { "limit_in_bytes" };
            let file = format!("hugetlb.{}.{suffix}", h.page_size);
            self.put(FIELD, dir, &file, format_args!("{}", h.limit))?;
        }
        if self.v2 {
            // Checked in `check`: `unified` is only accepted on v2.
            let dir = self.v2_leaf()?;
            for (k, v) in &res.unified {
                let field = format!("linux.resources.unified.{k}");
                self.put_bytes(&field, dir, k, v.as_bytes())?;
            }
            if devices {
                self.apply_devices_v2(res)?;
            }
        } else if devices {
            self.apply_devices_v1(res)?;
        }
        Ok(())
    }

    fn apply_memory(&self, m: &Memory) -> Result<(), Error> {
        const LIMIT: &str = "linux.resources.memory.limit";
        const SWAP: &str = "linux.resources.memory.swap";
        const RESERVATION: &str = "linux.resources.memory.reservation";
        let dir = self.dir_for(Ctrl::Memory, "linux.resources.memory")?;
        if self.v2 {
            if let Some(l) = m.limit {
                self.put_limit(LIMIT, dir, "memory.max", l)?;
            }
            if let Some(s) = v2_swap(m)? {
                self.put_limit(SWAP, dir, "memory.swap.max", s)?;
            }
            if let Some(r) = m.reservation {
                self.put_limit(RESERVATION, dir, "memory.low", r)?;
            }
            // swappiness: v2 has no per-cgroup knob; runc ignores it there too.
            return Ok(());
        }
        // v1: memory.memsw.limit_in_bytes (memory + swap) must stay >= memory.limit_in_bytes,
        // so raising both above the current memsw needs memsw first. Try the limit first
        // (right for a new cgroup) and swap the order on EINVAL.
        let memsw = |this: &Self, s| {
            this.put(
                SWAP,
                dir,
                "memory.memsw.limit_in_bytes",
                format_args!("{s}"),
            )
        };
        let limit =
            |this: &Self, l| this.put(LIMIT, dir, "memory.limit_in_bytes", format_args!("{l}"));
        match (m.limit, m.swap) {
            (Some(l), Some(s)) => match limit(self, l) {
                Err(Error::Write {
                    errno: Errno::EINVAL,
                    ..
                }) => {
                    memsw(self, s)?;
                    limit(self, l)?;
                }
                other => {
                    other?;
                    memsw(self, s)?;
                }
            },
            (Some(l), None) => limit(self, l)?,
            (None, Some(s)) => memsw(self, s)?,
            (None, None) => {}
        }
        if let Some(r) = m.reservation {
            self.put(
                RESERVATION,
                dir,
                "memory.soft_limit_in_bytes",
                format_args!("{r}"),
            )?;
        }
        if let Some(t) = m.kernel_tcp {
            self.put(
                "linux.resources.memory.kernelTCP",
                dir,
                "memory.kmem.tcp.limit_in_bytes",
                format_args!("{t}"),
            )?;
        }
        if let Some(s) = m.swappiness {
            self.put(
                "linux.resources.memory.swappiness",
                dir,
                "memory.swappiness",
                format_args!("{s}"),
            )?;
        }
        if m.disable_oom_killer == Some(true) {
            self.put(
                "linux.resources.memory.disableOOMKiller",
                dir,
                "memory.oom_control",
                format_args!("1"),
            )?;
        }
        Ok(())
    }

    /// v2 limit files take "max" for unlimited (the spec's -1).
    fn put_limit(
        &self,
        field: &str,
        dir: &std::path::Path,
        file: &str,
        v: i64,
    ) -> Result<(), Error> {
        if v < 0 {
            self.put(field, dir, file, format_args!("max"))
        } else {
            self.put(field, dir, file, format_args!("{v}"))
        }
    }

    fn apply_cpu(&self, c: &Cpu<'_>) -> Result<(), Error> {
        const SHARES: &str = "linux.resources.cpu.shares";
        const QUOTA: &str = "linux.resources.cpu.quota";
        const PERIOD: &str = "linux.resources.cpu.period";
        // 0 means "not set" for shares, quota and period (runc's reading).
        let shares = c.shares.filter(|&s| s != 0);
        let quota = c.quota.filter(|&q| q != 0);
        let period = c.period.filter(|&p| p != 0);
        let needs_cpu = shares.is_some()
            || quota.is_some()
            || period.is_some()
            || c.burst.is_some()
            || c.idle.is_some()
            || c.realtime_period.is_some()
            || c.realtime_runtime.is_some();
        if needs_cpu {
            let dir = self.dir_for(Ctrl::Cpu, "linux.resources.cpu")?;
            if self.v2 {
                if let Some(s) = shares {
                    self.put(
                        SHARES,
                        dir,
                        "cpu.weight",
                        format_args!("{}", shares_to_weight(s)),
                    )?;
                }
                if quota.is_some() || period.is_some() {
                    let field = if quota.is_some() { QUOTA } else { PERIOD };
                    match (quota.filter(|&q| q > 0), period) {
                        (Some(q), Some(p)) => {
                            self.put(field, dir, "cpu.max", format_args!("{q} {p}"))?
                        }
                        (Some(q), None) => self.put(field, dir, "cpu.max", format_args!("{q}"))?,
                        (None, Some(p)) => {
                            self.put(field, dir, "cpu.max", format_args!("max {p}"))?
                        }
                        (None, None) => self.put(field, dir, "cpu.max", format_args!("max"))?,
                    }
                }
                if let Some(b) = c.burst {
                    self.put(
                        "linux.resources.cpu.burst",
                        dir,
                        "cpu.max.burst",
                        format_args!("{b}"),
                    )?;
                }
            } else {
                if let Some(s) = shares {
                    self.put(SHARES, dir, "cpu.shares", format_args!("{s}"))?;
                }
                // The period first: the kernel checks the quota against it.
                if let Some(p) = period {
                    self.put(PERIOD, dir, "cpu.cfs_period_us", format_args!("{p}"))?;
                }
                if let Some(q) = quota {
                    self.put(QUOTA, dir, "cpu.cfs_quota_us", format_args!("{q}"))?;
                }
                if let Some(b) = c.burst {
                    self.put(
                        "linux.resources.cpu.burst",
                        dir,
                        "cpu.cfs_burst_us",
                        format_args!("{b}"),
                    )?;
                }
                if let Some(p) = c.realtime_period {
                    self.put(
                        "linux.resources.cpu.realtimePeriod",
                        dir,
                        "cpu.rt_period_us",
                        format_args!("{p}"),
                    )?;
                }
                if let Some(r) = c.realtime_runtime {
                    self.put(
                        "linux.resources.cpu.realtimeRuntime",
                        dir,
                        "cpu.rt_runtime_us",
                        format_args!("{r}"),
                    )?;
                }
            }
            if let Some(i) = c.idle {
                self.put(
                    "linux.resources.cpu.idle",
                    dir,
                    "cpu.idle",
                    format_args!("{i}"),
                )?;
            }
        }
        for (field, file, v) in [
            ("linux.resources.cpu.cpus", "cpuset.cpus", c.cpus),
            ("linux.resources.cpu.mems", "cpuset.mems", c.mems),
        ] {
            if let Some(v) = v.filter(|s| !s.is_empty()) {
                let dir = self.dir_for(Ctrl::Cpuset, field)?;
                self.put_bytes(field, dir, file, v.as_bytes())?;
            }
        }
        Ok(())
    }

    /// v1: the spec's rules in order, then runc's default allow list.
    fn apply_devices_v1(&self, res: &Resources<'_>) -> Result<(), Error> {
        const FIELD: &str = "linux.resources.devices";
        let dir = match self.dir_for(Ctrl::Devices, FIELD) {
            Ok(d) => d,
            // No devices hierarchy: nothing to restrict unless the spec asked for rules.
            Err(e) if res.devices.is_empty() => {
                let _ = e;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        for r in &res.devices {
            let file = if r.allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            self.put(FIELD, dir, file, format_args!("{}", device_rule(r)?))?;
        }
        for rule in DEFAULT_DEVICE_RULES {
            self.put_bytes(
                "linux.resources.devices (default allow list)",
                dir,
                "devices.allow",
                rule.as_bytes(),
            )?;
        }
        Ok(())
    }
}

impl Cgroup {
    /// v2 has no devices files: the same rules (the spec's, then runc's defaults) become a
    /// BPF_CGROUP_DEVICE program attached to the container's cgroup.
    fn apply_devices_v2(&self, res: &Resources<'_>) -> Result<(), Error> {
        const FIELD: &str = "linux.resources.devices";
        let dir = self.v2_leaf()?;
        let mut rules = Vec::with_capacity(res.devices.len() + DEFAULT_DEVICE_RULES.len());
        for r in &res.devices {
            let rule = device_rule(r)?;
            rules.push(devices_bpf::DeviceRule {
                allow: r.allow,
                kind: rule.kind.chars().next().unwrap_or('a'),
                major: r.major,
                minor: r.minor,
                access: rule.access,
            });
        }
        for text in DEFAULT_DEVICE_RULES {
            // "c 1:3 rwm": type, major:minor ('*' = any), access.
            let mut words = text.split(' ');
            let (kind, numbers, access) = (words.next(), words.next(), words.next());
            let (major, minor) = numbers
                .and_then(|n| n.split_once(':'))
                .unwrap_or(("*", "*"));
            rules.push(devices_bpf::DeviceRule {
                allow: true,
                kind: kind.and_then(|k| k.chars().next()).unwrap_or('a'),
                major: major.parse().ok(),
                minor: minor.parse().ok(),
                access: access.unwrap_or("rwm"),
            });
        }
        let program = devices_bpf::program(&rules);
        let path = dir.to_path_buf();
        let fail = |errno| Error::Write {
            field: FIELD.to_owned(),
            path: path.join("(BPF_CGROUP_DEVICE program)"),
            errno,
        };
        if let Some(root) = &self.fake {
            let line = format!("{} instructions", program.len());
            return super::journal(root, &path.join("devices.bpf"), line.as_bytes())
                .map_err(|e| fail(super::error::errno_of(&e)));
        }
        let cgroup = nix::fcntl::open(
            dir,
            nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(fail)?;
        let prog = crate::sys::bpf::load_device_program(&program).map_err(fail)?;
        crate::sys::bpf::attach_device_program(
            std::os::fd::AsFd::as_fd(&cgroup),
            std::os::fd::AsFd::as_fd(&prog),
        )
        .map_err(fail)
    }
}

/// cgroup v1 `cpu.shares` [2, 262144] → v2 `cpu.weight` [1, 10000], runc's formula.
pub(super) fn shares_to_weight(shares: u64) -> u64 {
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}
