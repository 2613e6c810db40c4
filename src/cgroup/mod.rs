//! cgroup v1 (one hierarchy per controller group, as on this Debian host) and pure cgroup
//! v2 (the one tree a dory board mounts) behind one small interface.
//!
//! [`Layout`] says which hierarchies exist; [`Cgroup`] is one container's cgroup across all
//! of them. The test seam is the root path injected through [`Layout::fake`]: the same code
//! runs over a fake cgroupfs in a temporary directory.
//!
//! This runs in the parent before and after clone, so std::fs and `PathBuf` are fine; it is
//! still on the start path, so it writes only the files of fields that are set and reads
//! only what it needs (the parent's cpuset on v1, nothing else).

mod apply;
mod blkio;
pub mod devices_bpf;
mod error;
mod layout;
mod net_rdma;
#[cfg(test)]
mod real_host;
#[cfg(test)]
mod tests;

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use error::errno_of;
pub use error::Error;
use layout::{own_path, Ctrl};
pub use layout::{unescape as unescape_mountinfo, Layout};
use nix::errno::Errno;

use crate::spec::Resources;

/// How long `remove` retries `rmdir` on EBUSY (the last task may still be exiting).
const RMDIR_RETRY: Duration = Duration::from_secs(1);
/// How long `freeze` waits for the freezer to settle.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest value formatted for one write (numbers, `"max 100000"`, device rules).
const MAX_VALUE: usize = 64;

/// The container's directory in one hierarchy.
#[derive(Debug)]
struct Dir {
    /// [`Ctrl`] bits of the hierarchy (v1); 0 for cgroup2.
    mask: u32,
    /// The cgroup2 tree (pure v2, or the controller-less unified mount of a hybrid host).
    unified: bool,
    /// The directory itself.
    leaf: PathBuf,
    /// Path components of `leaf` below the mount point (at least 1).
    depth: usize,
    /// How many levels, counted up from `leaf`, `create` made (0: the leaf existed).
    created: usize,
}

/// Resource usage of a cgroup.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub cpu_usage_ns: u64,
    pub memory_usage: u64,
    pub memory_limit: u64,
    pub memory_max_usage: u64,
    pub pids_current: u64,
    /// 0 for "max".
    pub pids_limit: u64,
}

/// One container's cgroup across every hierarchy.
#[derive(Debug)]
pub struct Cgroup {
    dirs: Vec<Dir>,
    /// Pure v2: `dirs` holds the one cgroup2 directory.
    v2: bool,
    /// Root of a fake cgroupfs (tests), see `Layout::fake`.
    fake: Option<PathBuf>,
}

impl Cgroup {
    /// For each v1 hierarchy, in the layout's order, the container's directory below the
    /// hierarchy's mount point ("a/b"): what the container sees as its own cgroup. A
    /// relative `cgroupsPath` sits under the caller's cgroup, which differs per hierarchy.
    pub fn v1_paths_below_mount(&self) -> Vec<String> {
        self.dirs
            .iter()
            .filter(|d| !d.unified)
            .map(|d| {
                let parts: Vec<_> = d.leaf.components().collect();
                let from = parts.len().saturating_sub(d.depth);
                parts
                    .get(from..)
                    .unwrap_or_default()
                    .iter()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect()
    }

    /// The container's directory in each hierarchy, as the host sees it: the v1 ones in
    /// the layout's order, or the one cgroup2 directory on a pure v2 host.
    pub fn host_dirs(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .filter(|d| self.v2 || !d.unified)
            .map(|d| d.leaf.clone())
            .collect()
    }

    /// Creates the cgroup `path` (a `linux.cgroupsPath`: absolute, or relative to the
    /// caller's own cgroup as runc does) in every hierarchy and applies `res`. On any error
    /// every directory it made is removed again.
    pub fn create(
        layout: &Layout,
        path: &str,
        res: Option<&Resources<'_>>,
    ) -> Result<Cgroup, Error> {
        let mut cg = Cgroup::resolve(layout, path)?;
        // Pure checks first: a config this layout cannot honour costs no mkdir.
        if let Some(r) = res {
            apply::check(r, cg.v2)?;
            cg.check_controllers(r)?;
        }
        match cg.create_in_place(res) {
            Ok(()) => Ok(cg),
            Err(e) => {
                cg.remove_created();
                Err(e)
            }
        }
    }

    fn create_in_place(&mut self, res: Option<&Resources<'_>>) -> Result<(), Error> {
        for d in &mut self.dirs {
            d.make()?;
        }
        if !self.v2 {
            // v1 cpuset: a new cgroup starts with empty cpus/mems and no task can join it.
            let (cpus, mems) = res
                .and_then(|r| r.cpu.as_ref())
                .map_or((None, None), |c| (c.cpus, c.mems));
            if let Some(d) = self.dirs.iter().find(|d| d.mask & Ctrl::Cpuset.bit() != 0) {
                self.inherit_cpuset(d, "cpuset.cpus", cpus.is_some_and(|s| !s.is_empty()))?;
                self.inherit_cpuset(d, "cpuset.mems", mems.is_some_and(|s| !s.is_empty()))?;
            }
        }
        if let Some(r) = res {
            if self.v2 {
                self.enable_controllers(r)?;
            }
            self.apply(r, true)?;
        }
        Ok(())
    }

    /// The existing cgroup `path` (for kill --all, ps, pause, delete). `remove` on it
    /// removes only the leaf directories. Errors only for a path `create` would refuse.
    pub fn open(layout: &Layout, path: &str) -> Result<Cgroup, Error> {
        Cgroup::resolve(layout, path)
    }

    /// The v1 `tasks` files through which a single-threaded process moves itself in by
    /// writing "0". Unlike a write of a pid to `cgroup.procs`, moving oneself through
    /// `tasks` skips the kernel's global threadgroup lock, whose RCU grace period costs
    /// 5–15 ms per container start on this kind of host. Empty on pure v2 (there the child
    /// is created inside the cgroup with clone3 `CLONE_INTO_CGROUP`, see `v2_dir`).
    pub fn self_join_files(&self) -> impl Iterator<Item = PathBuf> + '_ {
        self.dirs
            .iter()
            .filter(|d| !d.unified)
            .map(|d| d.leaf.join("tasks"))
    }

    /// Moves `pid` into the cgroup in every hierarchy (`cgroup.procs`).
    pub fn add_pid(&self, pid: i32) -> Result<(), Error> {
        for d in &self.dirs {
            self.put(
                "cgroup.procs (adding the container's process)",
                &d.leaf,
                "cgroup.procs",
                format_args!("{pid}"),
            )?;
        }
        Ok(())
    }

    /// The processes in the cgroup (read from the first hierarchy; all hold the same).
    /// The processes of the cgroup and of every cgroup the container made below it (one
    /// with a cgroup namespace and a writable cgroup mount can move processes there).
    pub fn pids(&self) -> Result<Vec<i32>, Error> {
        let Some(d) = self.dirs.first() else {
            return Ok(Vec::new());
        };
        let mut pids = Vec::new();
        for dir in std::iter::once(d.leaf.clone()).chain(descendants(&d.leaf)) {
            let text = match self.read("cgroup.procs", &dir, "cgroup.procs") {
                Ok(t) => t,
                // A child cgroup removed meanwhile holds nothing.
                Err(_) if dir != d.leaf => continue,
                Err(e) => return Err(e),
            };
            for l in text.lines() {
                pids.push(l.trim().parse::<i32>().map_err(|_| Error::Invalid {
                    field: dir.join("cgroup.procs").display().to_string(),
                    why: "holds a line that is not a pid",
                })?);
            }
        }
        // A process moved between two of the cgroups while they were read shows twice.
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Freezes or thaws every process of the cgroup and waits until the kernel says done:
    /// v1 `freezer.state` (FROZEN/THAWED), v2 `cgroup.freeze` + `frozen` in `cgroup.events`.
    pub fn freeze(&self, frozen: bool) -> Result<(), Error> {
        if self.v2 {
            let d = self.v2_leaf()?;
            self.put(
                "cgroup.freeze",
                d,
                "cgroup.freeze",
                format_args!("{}", u8::from(frozen)),
            )?;
            let want = if frozen { "frozen 1" } else { "frozen 0" };
            return self.wait_for(d, "cgroup.events", want, || Ok(()));
        }
        let d = self.dir_for(Ctrl::Freezer, "freeze")?;
        let state = if frozen { "FROZEN" } else { "THAWED" };
        self.put("freezer.state", d, "freezer.state", format_args!("{state}"))?;
        // A task forking while the cgroup freezes can leave it FREEZING: write again.
        let rewrite = || self.put("freezer.state", d, "freezer.state", format_args!("{state}"));
        let waited = self.wait_for(d, "freezer.state", state, rewrite);
        if waited.is_err() && frozen {
            // Do not leave a half-frozen container behind.
            let _ = self.put("freezer.state", d, "freezer.state", format_args!("THAWED"));
        }
        waited
    }

    /// Usage figures for `dory events --stats` (0 where the kernel offers none).
    pub fn stats(&self) -> Stats {
        let num = |dir: Option<&Path>, file: &str| -> u64 {
            dir.and_then(|d| fs::read_to_string(d.join(file)).ok())
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0)
        };
        let key = |dir: Option<&Path>, file: &str, key: &str| -> u64 {
            dir.and_then(|d| fs::read_to_string(d.join(file)).ok())
                .and_then(|t| {
                    t.lines()
                        .find_map(|l| l.strip_prefix(key).and_then(|v| v.trim().parse().ok()))
                })
                .unwrap_or(0)
        };
        if self.v2 {
            let d = self.v2_leaf().ok();
            return Stats {
                cpu_usage_ns: key(d, "cpu.stat", "usage_usec ").saturating_mul(1000),
                memory_usage: num(d, "memory.current"),
                memory_limit: num(d, "memory.max"),
                memory_max_usage: num(d, "memory.peak"),
                pids_current: num(d, "pids.current"),
                pids_limit: num(d, "pids.max"),
            };
        }
        let mem = self.dir_for(Ctrl::Memory, "stats").ok();
        let pids = self.dir_for(Ctrl::Pids, "stats").ok();
        let cpuacct = self
            .dirs
            .iter()
            .map(|d| d.leaf.as_path())
            .find(|d| d.join("cpuacct.usage").exists());
        Stats {
            cpu_usage_ns: num(cpuacct, "cpuacct.usage"),
            memory_usage: num(mem, "memory.usage_in_bytes"),
            memory_limit: num(mem, "memory.limit_in_bytes"),
            memory_max_usage: num(mem, "memory.max_usage_in_bytes"),
            pids_current: num(pids, "pids.current"),
            pids_limit: num(pids, "pids.max"),
        }
    }

    /// Whether the cgroup is frozen (v1 `freezer.state` FROZEN, v2 `frozen 1`).
    pub fn is_frozen(&self) -> Result<bool, Error> {
        if self.v2 {
            let d = self.v2_leaf()?;
            let text = self.read("cgroup.events", d, "cgroup.events")?;
            return Ok(text.lines().any(|l| l.trim() == "frozen 1"));
        }
        let d = self.dir_for(Ctrl::Freezer, "freeze")?;
        Ok(self.read("freezer.state", d, "freezer.state")?.trim() == "FROZEN")
    }

    /// Polls `dir/file` until one of its lines equals `want`, calling `again` now and then.
    fn wait_for(
        &self,
        dir: &Path,
        file: &str,
        want: &'static str,
        again: impl Fn() -> Result<(), Error>,
    ) -> Result<(), Error> {
        let start = Instant::now();
        let mut pause = Duration::from_micros(100);
        let mut polls = 0u32;
        loop {
            let text = self.read(file, dir, file)?;
            if text.lines().any(|l| l.trim() == want) {
                return Ok(());
            }
            if start.elapsed() > FREEZE_TIMEOUT {
                return Err(Error::FreezeTimeout {
                    path: dir.join(file),
                    want,
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
            polls += 1;
            if polls.is_multiple_of(8) {
                again()?;
            }
        }
    }

    /// Applies new resource limits (`dory update`). Device rules are left as created.
    pub fn update(&self, res: &Resources<'_>) -> Result<(), Error> {
        apply::check(res, self.v2)?;
        self.check_controllers(res)?;
        if self.v2 {
            self.enable_controllers(res)?;
        }
        self.apply(res, false)
    }

    /// Removes the cgroup: in each hierarchy the leaf (retrying briefly on EBUSY), then the
    /// parents `create` made if they are empty. A directory already gone is fine.
    pub fn remove(&self) -> Result<(), Error> {
        let mut first_err = None;
        for d in self.dirs.iter().rev() {
            if let Err(e) = self.remove_dir(d, d.created.max(1), true) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// After `remove`: also removes up to `levels` parent directories that are now empty
    /// (dory's own `/dory` parent, which a later process than `create` cannot know it
    /// made). A parent still in use stays; errors are ignored.
    pub fn remove_empty_parents(&self, levels: usize) {
        for d in &self.dirs {
            let mut dir = d.leaf.as_path();
            for _ in 0..levels.min(d.depth.saturating_sub(1)) {
                let Some(parent) = dir.parent() else { break };
                if fs::remove_dir(parent).is_err() {
                    break;
                }
                dir = parent;
            }
        }
    }

    /// The cgroup2 directory on a pure v2 system (for clone3 `CLONE_INTO_CGROUP`).
    pub fn v2_dir(&self) -> Option<&Path> {
        if self.v2 {
            self.dirs.first().map(|d| d.leaf.as_path())
        } else {
            None
        }
    }

    /// How many processes the OOM killer killed in this cgroup (`oom_kill` in v2
    /// `memory.events`, v1 `memory.oom_control`).
    pub fn memory_events_oom(&self) -> Result<u64, Error> {
        let (dir, file) = if self.v2 {
            (self.v2_leaf()?, "memory.events")
        } else {
            (self.dir_for(Ctrl::Memory, "memory")?, "memory.oom_control")
        };
        let text = self.read(file, dir, file)?;
        let n = text
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|n| n.trim().parse().ok());
        n.ok_or_else(|| Error::Invalid {
            field: dir.join(file).display().to_string(),
            why: "has no oom_kill count",
        })
    }

    // ---- resolution and directories ----

    fn resolve(layout: &Layout, path: &str) -> Result<Cgroup, Error> {
        let relative = !path.starts_with('/');
        if relative && path.split(':').count() == 3 {
            return Err(Error::SystemdPath(path.to_owned()));
        }
        let bad = |why| Error::BadPath {
            path: path.to_owned(),
            why,
        };
        if path.split('/').any(|c| c == "..") {
            return Err(bad("must not contain \"..\""));
        }
        if path.contains('\\') {
            return Err(bad("JSON escapes are not supported in cgroup paths"));
        }
        let own_text = if relative {
            Some(match &layout.own_cgroup {
                Some(t) => t.clone(),
                None => read_proc_self_cgroup()?,
            })
        } else {
            None
        };
        let hierarchies = layout
            .v1
            .iter()
            .map(|h| (h, false))
            // On a hybrid host the controller-less cgroup2 tree is left alone: it limits
            // nothing, and joining it would cost the kernel's migration lock (see
            // `self_join_files`).
            .chain(
                layout
                    .unified
                    .iter()
                    .filter(|_| layout.v1.is_empty())
                    .map(|h| (h, true)),
            );
        let mut dirs = Vec::with_capacity(layout.v1.len() + 1);
        for (h, unified) in hierarchies {
            let mut leaf = h.dir.clone();
            let mut depth = 0;
            if let Some(text) = &own_text {
                let own = own_path(text, &h.controllers).ok_or_else(|| Error::NoOwnCgroup {
                    controllers: h.controllers.clone(),
                })?;
                for c in own.split('/').filter(|c| !c.is_empty() && *c != ".") {
                    leaf.push(c);
                    depth += 1;
                }
            }
            let below = depth;
            for c in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
                leaf.push(c);
                depth += 1;
            }
            if depth == below {
                return Err(bad("names no cgroup below the root (or the caller's own)"));
            }
            dirs.push(Dir {
                mask: h.mask,
                unified,
                leaf,
                depth,
                created: 0,
            });
        }
        Ok(Cgroup {
            dirs,
            v2: layout.is_v2(),
            fake: layout.fake.clone(),
        })
    }

    /// The directory whose files hold `ctrl`'s settings.
    fn dir_for(&self, ctrl: Ctrl, field: &str) -> Result<&Path, Error> {
        if self.v2 {
            return self.v2_leaf();
        }
        self.dirs
            .iter()
            .find(|d| d.mask & ctrl.bit() != 0)
            .map(|d| d.leaf.as_path())
            .ok_or_else(|| Error::NoHierarchy {
                field: field.to_owned(),
                controller: ctrl.name(),
            })
    }

    /// Refuses, before anything is made, a limit whose controller this host lacks (as runc
    /// errors when it cannot set one): blkio, net_cls, net_prio and rdma on v1; io and
    /// rdma in the v2 root's `cgroup.controllers`.
    fn check_controllers(&self, res: &Resources<'_>) -> Result<(), Error> {
        let blkio = res.block_io.as_ref().is_some_and(blkio::is_set);
        let rdma = !res.rdma.is_empty();
        if self.v2 {
            for (wanted, field, name) in
                [(blkio, blkio::FIELD, "io"), (rdma, net_rdma::RDMA, "rdma")]
            {
                if wanted && !self.v2_root_offers(name)? {
                    return Err(Error::NoController {
                        field: field.to_owned(),
                        controller: name,
                    });
                }
            }
            return Ok(());
        }
        let net = res.network.as_ref();
        let needs = [
            (blkio, Ctrl::Blkio, blkio::FIELD),
            (
                net.is_some_and(net_rdma::wants_net_cls),
                Ctrl::NetCls,
                "linux.resources.network.classID",
            ),
            (
                net.is_some_and(|n| !n.priorities.is_empty()),
                Ctrl::NetPrio,
                "linux.resources.network.priorities",
            ),
            (rdma, Ctrl::Rdma, net_rdma::RDMA),
        ];
        for (_, ctrl, field) in needs.into_iter().filter(|n| n.0) {
            self.dir_for(ctrl, field)?;
        }
        Ok(())
    }

    /// Whether the v2 root's `cgroup.controllers` lists `name`.
    fn v2_root_offers(&self, name: &str) -> Result<bool, Error> {
        let d = self
            .dirs
            .iter()
            .find(|d| d.unified)
            .ok_or(Error::NoCgroupFs)?;
        let root = d.leaf.ancestors().nth(d.depth).unwrap_or(&d.leaf);
        let text = self.read("cgroup.controllers", root, "cgroup.controllers")?;
        Ok(text.split_whitespace().any(|c| c == name))
    }

    fn v2_leaf(&self) -> Result<&Path, Error> {
        self.dirs
            .iter()
            .find(|d| d.unified)
            .map(|d| d.leaf.as_path())
            .ok_or(Error::NoCgroupFs)
    }

    /// Gives the levels `create` made in `d` (v1 cpuset) the parent's `file` value: copies
    /// from the deepest pre-existing ancestor that has one. `skip_leaf`: the spec sets it.
    fn inherit_cpuset(&self, d: &Dir, file: &str, skip_leaf: bool) -> Result<(), Error> {
        if d.created == 0 {
            return Ok(());
        }
        const FIELD: &str = "cpuset (inherited from the parent cgroup)";
        // [leaf, parent, …, mount point]
        let chain: Vec<&Path> = d.leaf.ancestors().take(d.depth + 1).collect();
        let mut src = d.created;
        let mut value = String::new();
        while let Some(dir) = chain.get(src) {
            value = self.read(FIELD, dir, file)?;
            if !value.trim().is_empty() {
                break;
            }
            src += 1;
        }
        let value = value.trim();
        if value.is_empty() {
            // Nothing to inherit up to the mount point: leave it to the kernel to refuse
            // tasks (ENOSPC) rather than write empty values into other cgroups.
            return Ok(());
        }
        let last = if skip_leaf { 1 } else { 0 };
        for k in (last..src.min(chain.len())).rev() {
            if let Some(dir) = chain.get(k) {
                self.put_bytes(FIELD, dir, file, value.as_bytes())?;
            }
        }
        Ok(())
    }

    /// v2: enables the controllers `res` needs in `cgroup.subtree_control` of every level
    /// from the mount point down to the leaf's parent (already enabled ones are a no-op).
    fn enable_controllers(&self, res: &Resources<'_>) -> Result<(), Error> {
        let wanted = apply::v2_controllers(res);
        if wanted.is_empty() {
            return Ok(());
        }
        let Some(d) = self.dirs.iter().find(|d| d.unified) else {
            return Ok(());
        };
        let levels: Vec<&Path> = d.leaf.ancestors().skip(1).take(d.depth).collect();
        for dir in levels.iter().rev() {
            self.put_bytes(
                "linux.resources (enabling controllers in cgroup.subtree_control)",
                dir,
                "cgroup.subtree_control",
                wanted.as_bytes(),
            )?;
        }
        Ok(())
    }

    /// Removes what `create` made (after a failed create).
    fn remove_created(&self) {
        for d in self.dirs.iter().rev() {
            if d.created > 0 {
                let _ = self.remove_dir(d, d.created, false);
            }
        }
    }

    /// Removes `levels` directories of `d`, from the leaf up. The leaf is retried on EBUSY
    /// when `retry`; a parent that is not empty (another container's) stays.
    fn remove_dir(&self, d: &Dir, levels: usize, retry: bool) -> Result<(), Error> {
        // Cgroups the container made below its own go first, children before parents.
        for child in descendants(&d.leaf).iter().rev() {
            let _ = self.rmdir(child);
        }
        let mut deadline = None;
        let mut pause = Duration::from_millis(1);
        for (k, dir) in d.leaf.ancestors().take(levels.min(d.depth)).enumerate() {
            loop {
                match self.rmdir(dir) {
                    Ok(()) => break,
                    Err(Errno::ENOENT) => break,
                    Err(Errno::EBUSY) if retry && k == 0 => {
                        let end = *deadline.get_or_insert_with(|| Instant::now() + RMDIR_RETRY);
                        if Instant::now() > end {
                            return Err(Error::Rmdir {
                                path: dir.to_path_buf(),
                                errno: Errno::EBUSY,
                            });
                        }
                        std::thread::sleep(pause);
                        pause = (pause * 2).min(Duration::from_millis(50));
                    }
                    Err(Errno::EBUSY | Errno::ENOTEMPTY) if k > 0 => return Ok(()),
                    Err(errno) => {
                        return Err(Error::Rmdir {
                            path: dir.to_path_buf(),
                            errno,
                        })
                    }
                }
            }
        }
        Ok(())
    }

    fn rmdir(&self, dir: &Path) -> Result<(), Errno> {
        if self.fake.is_some() {
            // A fake cgroup directory holds the files our writes created; a real one's
            // interface files vanish with it.
            if let Ok(entries) = fs::read_dir(dir) {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_file()) {
                        let _ = fs::remove_file(e.path());
                    }
                }
            }
        }
        fs::remove_dir(dir).map_err(|e| errno_of(&e))
    }

    // ---- file access ----

    /// Writes the formatted `value` to `dir/file` in one write; errors name `field`.
    fn put(
        &self,
        field: &str,
        dir: &Path,
        file: &str,
        value: fmt::Arguments<'_>,
    ) -> Result<(), Error> {
        let mut buf: heapless::String<MAX_VALUE> = heapless::String::new();
        if fmt::Write::write_fmt(&mut buf, value).is_err() {
            return Err(Error::Invalid {
                field: field.to_owned(),
                why: "value longer than 64 bytes",
            });
        }
        self.put_bytes(field, dir, file, buf.as_bytes())
    }

    fn put_bytes(&self, field: &str, dir: &Path, file: &str, value: &[u8]) -> Result<(), Error> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = dir.join(file);
        let fail = |e: std::io::Error| Error::Write {
            field: field.to_owned(),
            path: path.clone(),
            errno: errno_of(&e),
        };
        let mut opts = fs::OpenOptions::new();
        opts.write(true);
        if let Some(root) = &self.fake {
            opts.create(true).truncate(true);
            journal(root, &path, value).map_err(fail)?;
        }
        // No O_CREAT on a real cgroupfs: a missing file must say ENOENT. Never a symlink,
        // and the file must be on a cgroup filesystem (what a container sees of its
        // cgroup must not send a limit elsewhere).
        opts.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
        let mut f = opts.open(&path).map_err(fail)?;
        if self.fake.is_none() {
            on_cgroupfs(&f).map_err(fail)?;
        }
        f.write_all(value).map_err(fail)
    }

    fn read(&self, field: &str, dir: &Path, file: &str) -> Result<String, Error> {
        let path = dir.join(file);
        fs::read_to_string(&path).map_err(|e| Error::Read {
            field: field.to_owned(),
            errno: errno_of(&e),
            path,
        })
    }
}

/// `fstatfs(2)`: whether an open file is on a cgroup (v1) or cgroup2 filesystem.
pub fn on_cgroupfs(f: &impl std::os::fd::AsFd) -> std::io::Result<()> {
    use linux_raw_sys::general::{CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC};
    let magic = crate::sys::mount_api::fs_magic(f.as_fd())?;
    if magic == u64::from(CGROUP_SUPER_MAGIC) || magic == u64::from(CGROUP2_SUPER_MAGIC) {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(libc::EXDEV))
    }
}

/// The directories below `dir`, every parent before its children, not following symlinks,
/// at any depth and in any number (an explicit stack, no recursion): a bound would be a
/// place to hide a process (as runc, which walks them all). Each was made by the
/// container, at its own cost.
fn descendants(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.push(e.path());
                todo.push(e.path());
            }
        }
    }
    out
}

impl Dir {
    /// `mkdir -p` of the leaf, counting the levels made; on failure removes them again.
    /// mkdir -p of the leaf. A parent that vanishes midway (another container removing
    /// the shared empty `/dory` parent at that moment) makes it try again.
    fn make(&mut self) -> Result<(), Error> {
        let mut tries = 0;
        loop {
            match self.make_once() {
                Err(Error::Mkdir {
                    errno: Errno::ENOENT,
                    ..
                }) if tries < 3 => tries += 1,
                other => return other,
            }
        }
    }

    fn make_once(&mut self) -> Result<(), Error> {
        let mkdir = |p: &Path| fs::create_dir(p).map_err(|e| errno_of(&e));
        // Fast path: the parent usually exists.
        match mkdir(&self.leaf) {
            Ok(()) => {
                self.created = 1;
                return Ok(());
            }
            Err(Errno::EEXIST) => return Ok(()),
            Err(Errno::ENOENT) if self.depth > 1 => {}
            Err(errno) => {
                return Err(Error::Mkdir {
                    path: self.leaf.clone(),
                    errno,
                })
            }
        }
        let chain: Vec<PathBuf> = self
            .leaf
            .ancestors()
            .take(self.depth)
            .map(Path::to_path_buf)
            .collect();
        let missing = chain.iter().position(|p| p.exists()).unwrap_or(chain.len());
        for k in (0..missing).rev() {
            let Some(p) = chain.get(k) else { continue };
            match mkdir(p) {
                Ok(()) => self.created = missing - k,
                Err(Errno::EEXIST) if k > 0 => {}
                Err(errno) => {
                    // Undo the levels made so far (they are ours and empty).
                    for q in chain.iter().skip(k + 1).take(self.created) {
                        let _ = fs::remove_dir(q);
                    }
                    self.created = 0;
                    return Err(Error::Mkdir {
                        path: p.clone(),
                        errno,
                    });
                }
            }
        }
        Ok(())
    }
}

/// Fake cgroupfs only: appends `path value` to `<root>/writes.log`, the tests' record of
/// every write in order.
fn journal(root: &Path, path: &Path, value: &[u8]) -> std::io::Result<()> {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let mut log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("writes.log"))?;
    let mut line = Vec::with_capacity(rel.as_os_str().len() + value.len() + 2);
    line.extend_from_slice(rel.as_os_str().as_encoded_bytes());
    line.push(b' ');
    line.extend_from_slice(value);
    line.push(b'\n');
    log.write_all(&line)
}

fn read_proc_self_cgroup() -> Result<String, Error> {
    const PATH: &str = "/proc/self/cgroup";
    fs::read_to_string(PATH).map_err(|e| Error::ReadProc {
        path: PATH,
        errno: errno_of(&e),
    })
}
