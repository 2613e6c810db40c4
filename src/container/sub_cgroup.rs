//! `exec --cgroup PATH | CTRL[,CTRL…]:PATH` (runc 1.1+): the new process goes into an
//! existing sub-cgroup of the container's cgroup instead of the container's own.
//!
//! Parsing is pure (unit-tested); opening walks down from the container's cgroup
//! directory with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV)`, so a
//! path the container made cannot lead the process out of its cgroup.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, openat, OFlag};
use nix::sys::stat::Mode;

use crate::cgroup::{Cgroup, Layout};
use crate::sys;

/// Most `--cgroup` flags one exec takes (a v1 host has about a dozen hierarchies).
pub const MAX_EXEC_CGROUPS: usize = 16;

/// The sub-cgroups an exec asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SubCgroups {
    /// `--cgroup PATH`: the same sub-path in every hierarchy (the only form on v2).
    all: Option<String>,
    /// `--cgroup CTRL:PATH` (v1): the hierarchy carrying `CTRL` uses PATH.
    by_controller: Vec<(String, String)>,
}

/// A sub-path: relative to the container's cgroup, `/`, `.` and empty components
/// dropped, `..` refused (it would leave the container's cgroup).
fn clean(arg: &str, path: &str) -> Result<String, String> {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if c == ".." {
            return Err(format!(
                "--cgroup \"{arg}\": \"..\" would leave the container's cgroup"
            ));
        }
        out.push(c);
    }
    Ok(out.join("/"))
}

impl SubCgroups {
    /// Parses the `--cgroup` values as runc does: one `PATH` alone, or any number of
    /// `CTRL[,CTRL…]:PATH`, each controller named once.
    pub fn parse<'a>(args: impl Iterator<Item = &'a str>) -> Result<SubCgroups, String> {
        let mut subs = SubCgroups::default();
        for (i, arg) in args.enumerate() {
            if i >= MAX_EXEC_CGROUPS {
                return Err(format!(
                    "--cgroup: more than {MAX_EXEC_CGROUPS} given (limit {MAX_EXEC_CGROUPS})"
                ));
            }
            match arg.split_once(':') {
                None if subs.all.is_none() && subs.by_controller.is_empty() && i == 0 => {
                    subs.all = Some(clean(arg, arg)?);
                }
                None => {
                    return Err(format!(
                        "--cgroup \"{arg}\": a PATH without CONTROLLER: must be the only --cgroup"
                    ))
                }
                Some((_, path)) if path.contains(':') => {
                    return Err(format!("--cgroup \"{arg}\": want [CONTROLLER[,…]:]PATH"))
                }
                Some((ctrls, path)) => subs.add_controllers(arg, ctrls, path)?,
            }
        }
        Ok(subs)
    }

    fn add_controllers(&mut self, arg: &str, ctrls: &str, path: &str) -> Result<(), String> {
        if self.all.is_some() {
            return Err(format!(
                "--cgroup \"{arg}\": a PATH without CONTROLLER: must be the only --cgroup"
            ));
        }
        let path = clean(arg, path)?;
        for ctrl in ctrls.split(',') {
            if ctrl.is_empty() {
                return Err(format!("--cgroup \"{arg}\": empty controller name"));
            }
            if self.by_controller.iter().any(|(c, _)| c == ctrl) {
                return Err(format!("--cgroup: controller {ctrl} given more than once"));
            }
            self.by_controller.push((ctrl.to_owned(), path.clone()));
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_none() && self.by_controller.is_empty()
    }

    /// The sub-path in the hierarchy mounted with `controllers` (`"cpu,cpuacct"`; `""`
    /// on v2); `""` is the container's cgroup itself.
    fn for_hierarchy(&self, controllers: &str) -> Result<&str, String> {
        if let Some(all) = &self.all {
            return Ok(all);
        }
        let mut found: Option<&str> = None;
        for (ctrl, path) in &self.by_controller {
            if controllers.split(',').any(|c| c == ctrl) {
                if found.is_some_and(|f| f != path) {
                    return Err(format!(
                        "--cgroup: controllers of the one hierarchy {controllers} given different paths"
                    ));
                }
                found = Some(path);
            }
        }
        Ok(found.unwrap_or(""))
    }

    /// Refuses a controller no hierarchy carries, and any controller on v2 (one tree).
    fn check(&self, hierarchies: &[&str], v2: bool) -> Result<(), String> {
        for (ctrl, _) in &self.by_controller {
            if v2 {
                return Err(format!(
                    "--cgroup {ctrl}:…: cgroup v2 has one hierarchy, give PATH alone"
                ));
            }
            if !hierarchies.iter().any(|h| h.split(',').any(|c| c == ctrl)) {
                return Err(format!("--cgroup: unknown controller {ctrl}"));
            }
        }
        Ok(())
    }
}

/// Like `super::cgroup_join_fds`, for the sub-cgroups `subs` of `cg`: the v1 `tasks`
/// files the child writes "0" to, or the v2 directory for clone3. Each must exist.
pub fn join_fds(cg: &Cgroup, subs: &SubCgroups) -> Result<(Vec<OwnedFd>, Option<OwnedFd>), String> {
    let layout = Layout::detect().map_err(|e| format!("cgroup: {e}"))?;
    let hierarchies: Vec<(&str, &Path)> = layout.v1_hierarchies().collect();
    let names: Vec<&str> = hierarchies.iter().map(|(c, _)| *c).collect();
    let v2 = cg.v2_dir().is_some();
    subs.check(&names, v2)?;
    let mut tasks = Vec::new();
    for dir in cg.host_dirs() {
        let controllers = if v2 {
            ""
        } else {
            hierarchies
                .iter()
                .filter(|(_, mount)| dir.starts_with(mount))
                .max_by_key(|(_, mount)| mount.as_os_str().len())
                .map(|(c, _)| *c)
                .ok_or_else(|| format!("cgroup: no hierarchy holds {}", dir.display()))?
        };
        let sub = open_sub(&dir, subs.for_hierarchy(controllers)?)?;
        if v2 {
            return Ok((tasks, Some(sub)));
        }
        let fail =
            |e: nix::errno::Errno| format!("--cgroup: {}/tasks: {}", dir.display(), e.desc());
        let fd = openat(
            sub.as_fd(),
            "tasks",
            OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::empty(),
        )
        .map_err(fail)?;
        crate::cgroup::on_cgroupfs(&fd).map_err(|_| fail(nix::errno::Errno::EXDEV))?;
        tasks.push(fd);
    }
    Ok((tasks, None))
}

/// `dir/sub` (a directory that must exist), reached beneath `dir` without symlinks or
/// mount crossings, checked to be on a cgroup filesystem.
fn open_sub(dir: &Path, sub: &str) -> Result<OwnedFd, String> {
    let shown = format!("--cgroup: {}/{sub}", dir.display());
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
    let base = open(dir, flags, Mode::empty()).map_err(|e| format!("{shown}: {}", e.desc()))?;
    let fd = if sub.is_empty() {
        base
    } else {
        let rel = CString::new(sub).map_err(|_| format!("{shown}: contains NUL"))?;
        let resolve = libc::RESOLVE_BENEATH
            | libc::RESOLVE_NO_SYMLINKS
            | libc::RESOLVE_NO_MAGICLINKS
            | libc::RESOLVE_NO_XDEV;
        sys::openat2(base.as_fd(), &rel, flags.bits(), resolve)
            .map_err(|e| format!("{shown}: {}", e.desc()))?
    };
    crate::cgroup::on_cgroupfs(&fd).map_err(|_| format!("{shown}: not a cgroup directory"))?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<SubCgroups, String> {
        SubCgroups::parse(args.iter().copied())
    }

    #[test]
    fn one_path_for_every_hierarchy() {
        let s = parse(&["/a//b/./c/"]).unwrap();
        assert_eq!(s.for_hierarchy("cpu,cpuacct").unwrap(), "a/b/c");
        assert_eq!(s.for_hierarchy("").unwrap(), "a/b/c");
        assert!(s.check(&[], true).is_ok());
        assert!(parse(&[]).unwrap().is_empty());
        assert_eq!(parse(&["/"]).unwrap().for_hierarchy("pids").unwrap(), "");
    }

    #[test]
    fn per_controller_paths() {
        let s = parse(&["cpu,memory:x", "pids:y"]).unwrap();
        assert_eq!(s.for_hierarchy("cpu,cpuacct").unwrap(), "x");
        assert_eq!(s.for_hierarchy("memory").unwrap(), "x");
        assert_eq!(s.for_hierarchy("pids").unwrap(), "y");
        assert_eq!(s.for_hierarchy("freezer").unwrap(), "");
        assert!(s.check(&["cpu,cpuacct", "memory", "pids"], false).is_ok());
        assert_eq!(
            s.check(&["cpu,cpuacct", "pids"], false).unwrap_err(),
            "--cgroup: unknown controller memory"
        );
        assert!(s
            .check(&[], true)
            .unwrap_err()
            .contains("cgroup v2 has one hierarchy"));
        let two = parse(&["cpu:a", "cpuacct:b"]).unwrap();
        assert!(two.for_hierarchy("cpu,cpuacct").is_err());
    }

    #[test]
    fn refused_forms() {
        assert!(parse(&["a/../../b"]).unwrap_err().contains("\"..\""));
        assert!(parse(&["cpu:.."]).unwrap_err().contains("\"..\""));
        assert!(parse(&["a", "b"]).unwrap_err().contains("must be the only"));
        assert!(parse(&["cpu:a", "b"])
            .unwrap_err()
            .contains("must be the only"));
        assert!(parse(&["a", "cpu:b"])
            .unwrap_err()
            .contains("must be the only"));
        assert!(parse(&["cpu:a:b"])
            .unwrap_err()
            .contains("want [CONTROLLER"));
        assert!(parse(&[",cpu:a"]).unwrap_err().contains("empty controller"));
        assert!(parse(&["cpu:a", "cpu:b"])
            .unwrap_err()
            .contains("more than once"));
        let many: Vec<String> = (0..=MAX_EXEC_CGROUPS).map(|i| format!("c{i}:x")).collect();
        assert_eq!(
            SubCgroups::parse(many.iter().map(String::as_str)).unwrap_err(),
            "--cgroup: more than 16 given (limit 16)"
        );
    }
}
