//! `linux.resources.network` → v1 `net_cls.classid` and `net_prio.ifpriomap`, and
//! `linux.resources.rdma` → `rdma.max` (v1 and v2), as runc's fs and fs2 drivers write
//! them. cgroup v2 has no net_cls or net_prio: there `network` is ignored, as runc does
//! (fs2 has no such controller to write to, and runc neither writes nor refuses it).

use std::fmt::Write as _;

use super::layout::Ctrl;
use super::{Cgroup, Error};
use crate::spec::{Network, Rdma, Resources};

const CLASS_ID: &str = "linux.resources.network.classID";
const PRIORITIES: &str = "linux.resources.network.priorities";
pub(super) const RDMA: &str = "linux.resources.rdma";
/// Longest interface name the kernel takes (IFNAMSIZ 16 with its NUL).
const MAX_IFNAME: usize = 15;
/// Longest RDMA device name (IB_DEVICE_NAME_MAX 64 with its NUL).
pub(super) const MAX_RDMA_NAME: usize = 63;
/// `"<name> hca_handle=<u32> hca_object=<u32>"`.
const RDMA_LINE: usize = MAX_RDMA_NAME + 48;

/// Whether v1 needs the net_cls hierarchy (a classID of 0 is "not set", as runc).
pub(super) fn wants_net_cls(n: &Network<'_>) -> bool {
    n.class_id.is_some_and(|c| c != 0)
}

/// Pure checks: interface and device names the kernel could take.
pub(super) fn check(res: &Resources<'_>) -> Result<(), Error> {
    if let Some(n) = &res.network {
        for (i, p) in n.priorities.iter().enumerate() {
            plain_name(p.name, MAX_IFNAME, &format!("{PRIORITIES}[{i}].name"))?;
        }
    }
    for (name, r) in &res.rdma {
        let field = format!("{RDMA}[\"{name}\"]");
        plain_name(name, MAX_RDMA_NAME, &field)?;
        if r.hca_handles.is_none() && r.hca_objects.is_none() {
            return Err(Error::Invalid {
                field,
                why: "needs hcaHandles or hcaObjects",
            });
        }
    }
    Ok(())
}

/// A name written into a space-separated cgroup file: 1 to `max` bytes, no whitespace,
/// no `/`, no JSON escape.
fn plain_name(name: &str, max: usize, field: &str) -> Result<(), Error> {
    let why = if name.is_empty() {
        "must not be empty"
    } else if name.len() > max && max == MAX_IFNAME {
        "is longer than 15 bytes (IFNAMSIZ limit)"
    } else if name.len() > max {
        "is longer than 63 bytes (IB_DEVICE_NAME_MAX limit)"
    } else if name.contains(|c: char| c.is_whitespace() || c == '/' || c == '\\') {
        "must not contain whitespace, '/' or a JSON escape"
    } else {
        return Ok(());
    };
    Err(Error::Invalid {
        field: field.to_owned(),
        why,
    })
}

/// The `rdma.max` line for one device: `"mlx5_0 hca_handle=2 hca_object=2000"`.
pub(super) fn rdma_line(name: &str, r: &Rdma) -> Option<heapless::String<RDMA_LINE>> {
    let mut line = heapless::String::new();
    line.push_str(name).ok()?;
    if let Some(h) = r.hca_handles {
        write!(line, " hca_handle={h}").ok()?;
    }
    if let Some(o) = r.hca_objects {
        write!(line, " hca_object={o}").ok()?;
    }
    Some(line)
}

impl Cgroup {
    /// v1 only: cgroup v2 has neither controller (see the module doc).
    pub(super) fn apply_network(&self, n: &Network<'_>) -> Result<(), Error> {
        if self.v2 {
            return Ok(());
        }
        if let Some(c) = n.class_id.filter(|&c| c != 0) {
            let dir = self.dir_for(Ctrl::NetCls, CLASS_ID)?;
            self.put(CLASS_ID, dir, "net_cls.classid", format_args!("{c}"))?;
        }
        if !n.priorities.is_empty() {
            let dir = self.dir_for(Ctrl::NetPrio, PRIORITIES)?;
            for (i, p) in n.priorities.iter().enumerate() {
                let field = format!("{PRIORITIES}[{i}]");
                let (name, prio) = (p.name, p.priority);
                self.put(
                    &field,
                    dir,
                    "net_prio.ifpriomap",
                    format_args!("{name} {prio}"),
                )?;
            }
        }
        Ok(())
    }

    pub(super) fn apply_rdma(&self, res: &Resources<'_>) -> Result<(), Error> {
        if res.rdma.is_empty() {
            return Ok(());
        }
        let dir = self.dir_for(Ctrl::Rdma, RDMA)?;
        for (name, r) in &res.rdma {
            let field = format!("{RDMA}[\"{name}\"]");
            let line = rdma_line(name, r).ok_or(Error::Invalid {
                field: field.clone(),
                why: "device name too long",
            })?;
            self.put_bytes(&field, dir, "rdma.max", line.as_bytes())?;
        }
        Ok(())
    }
}
