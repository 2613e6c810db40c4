//! Idmapped bind mounts, made by the parent before clone: a user namespace with the
//! mount's mapping (held by a short-lived child), then `open_tree` + `mount_setattr`
//! (`MOUNT_ATTR_IDMAP`) on the host path. The child attaches the detached mount; it could
//! not make it itself in a user namespace of its own (the kernel wants privilege over the
//! source's filesystem).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;

use super::Error;
use crate::plan::{Plan, PlanError};
use crate::sys;

/// Makes every idmapped mount of `plan` and records its fd in `plan.mounts[i].prepared`;
/// the returned fds must stay open until the child has attached them (they close on its
/// exec and when dropped here).
pub fn prepare(plan: &mut Plan) -> Result<Vec<OwnedFd>, Error> {
    let mut made = Vec::new();
    for i in 0..plan.mounts.len() {
        let Some(m) = plan.mounts.get(i).copied() else {
            continue;
        };
        let Some(idmap) = m.idmap else {
            continue;
        };
        let dest = plan.strings.text(m.dest).to_owned();
        let fail = |what: &'static str| {
            let dest = dest.clone();
            move |e: Errno| {
                Error::Plan(PlanError {
                    field: format!("mounts[{i}]"),
                    message: format!("{dest}: idmapped mount: {what}: {}", e.desc()),
                })
            }
        };
        let userns = mapped_userns(
            plan.strings.text(idmap.uid_map),
            plan.strings.text(idmap.gid_map),
        )
        .map_err(fail("user namespace for uidMappings/gidMappings"))?;
        let tree = crate::sandbox::detached_bind(plan, &m, Some(userns.as_fd())).map_err(fail(
            "open_tree + mount_setattr(MOUNT_ATTR_IDMAP) (does the source's filesystem \
                 support idmapped mounts?)",
        ))?;
        if let Some(step) = plan.mounts.get_mut(i) {
            step.prepared = Some(tree.as_raw_fd());
        }
        made.push(tree);
    }
    Ok(made)
}

/// A user namespace with these `uid_map` and `gid_map` contents, as an fd.
fn mapped_userns(uid_map: &str, gid_map: &str) -> Result<OwnedFd, Errno> {
    let holder = sys::userns::Holder::spawn()?;
    let pid = holder.pid();
    super::write_proc(Some(pid), "uid_map", uid_map.as_bytes())?;
    super::write_proc(Some(pid), "gid_map", gid_map.as_bytes())?;
    // Through the verified procfs; the last component is the kernel's nsfs link.
    let proc = sys::procfs::open_root()?;
    let rel = std::ffi::CString::new(format!("{pid}/ns/user")).map_err(|_| Errno::EINVAL)?;
    let ns = nix::fcntl::openat(
        proc.as_fd(),
        rel.as_c_str(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    if sys::mount_api::fs_magic(ns.as_fd())? != u64::from(linux_raw_sys::general::NSFS_MAGIC) {
        return Err(Errno::EINVAL);
    }
    // The holder ends here: the namespace lives on through `ns` (and the mount).
    drop(holder);
    Ok(ns)
}
