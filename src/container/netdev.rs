//! `linux.netDevices`: host interfaces moved into the container's network namespace at
//! create, before its process runs (runtime-spec config-linux.md "Network Devices", as
//! runc 1.3 does it): each is moved and renamed in one `RTM_NEWLINK` (`IFLA_NET_NS_FD` +
//! `IFLA_IFNAME`, so a name taken on either side never clashes midway); its permanent
//! global IP addresses, which the kernel drops with the move, are added again inside, and
//! it is set up there.
//!
//! Nothing moves them back at delete, as the spec asks and runc does: when the namespace
//! goes, the kernel returns physical devices to the host's initial namespace and destroys
//! virtual ones (dummy, veth).

use std::ffi::CString;
use std::fmt;
use std::os::fd::BorrowedFd;

use nix::errno::Errno;
use nix::sched::CloneFlags;

use crate::spec::{Linux, MAX_NET_DEVICES};
use crate::sys;
use crate::sys::netlink::{self, Addr, Request, MAX_ADDRS};

/// One device: its name on the host and in the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move<'a> {
    pub host: &'a str,
    pub inside: &'a str,
}

/// The moves `linux.netDevices` asks for, in config order (names checked by
/// `spec::validate`); pure.
pub fn plan<'a>(l: Option<&Linux<'a>>) -> heapless::Vec<Move<'a>, MAX_NET_DEVICES> {
    let mut out = heapless::Vec::new();
    for (host, dev) in l.map(|l| l.net_devices.iter()).into_iter().flatten() {
        let inside = dev.name.unwrap_or(host);
        // Cannot overflow: both are bounded by MAX_NET_DEVICES.
        let _ = out.push(Move { host, inside });
    }
    out
}

/// A device that could not be moved: which, at which step, why.
#[derive(Debug)]
pub struct Error {
    pub host: String,
    pub step: &'static str,
    pub errno: Errno,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match (self.step, self.errno) {
            (FIND, Errno::ENODEV) => "no such interface in the host's network namespace",
            (ADDRS, Errno::EOVERFLOW) => "more than 16 permanent global addresses (limit)",
            (MOVE, Errno::EEXIST) => {
                "the container's network namespace has an interface of that name"
            }
            (_, e) => e.desc(),
        };
        write!(
            f,
            "linux.netDevices[\"{}\"]: {}: {why}",
            self.host, self.step
        )
    }
}

const FIND: &str = "find the interface";
const MOVE: &str = "move it into the container's network namespace";
const ADDRS: &str = "read its addresses";
const ADD: &str = "add its addresses in the container";
const UP: &str = "set it up in the container";
const HOST_NS: &str = "the container's network namespace is the host's";

/// Checks that every host device exists (before anything is created for the container).
pub fn check_present(moves: &[Move<'_>]) -> Result<(), Error> {
    for m in moves {
        index(m)?;
    }
    Ok(())
}

fn index(m: &Move<'_>) -> Result<u32, Error> {
    let err = |errno| Error {
        host: m.host.to_owned(),
        step: FIND,
        errno,
    };
    let host = CString::new(m.host).map_err(|_| err(Errno::EINVAL))?;
    netlink::index_of(&host).map_err(err)
}

/// Moves every device into `netns` and sets it up there. `host_netns` is the caller's
/// own: a config that joins it (by path) must not have the host's devices "moved" onto
/// themselves and renamed.
pub fn move_all(
    moves: &[Move<'_>],
    netns: BorrowedFd<'_>,
    host_netns: BorrowedFd<'_>,
) -> Result<(), Error> {
    let Some(first) = moves.first() else {
        return Ok(());
    };
    let err = |m: &Move<'_>, step, errno| Error {
        host: m.host.to_owned(),
        step,
        errno,
    };
    if same_file(netns, host_netns).map_err(|e| err(first, HOST_NS, e))? {
        return Err(err(first, HOST_NS, Errno::EINVAL));
    }
    let mut addrs: heapless::Vec<Addrs, MAX_NET_DEVICES> = heapless::Vec::new();
    for m in moves {
        let inside = CString::new(m.inside).map_err(|_| err(m, MOVE, Errno::EINVAL))?;
        let index = index(m)?;
        // Read before the move: the kernel drops them on the way.
        let own = netlink::permanent_global_addrs(index).map_err(|e| err(m, ADDRS, e))?;
        addrs
            .push(own)
            .map_err(|_| err(m, MOVE, Errno::EOVERFLOW))?;
        Request::link(index)
            .and_then(|r| r.netns_fd(netns))
            .and_then(|r| r.name(&inside))
            .and_then(Request::send)
            .map_err(|e| err(m, MOVE, e))?;
    }
    set_up_inside(moves, &addrs, netns).map_err(|(m, step, e)| err(m, step, e))
}

/// A device's permanent global addresses.
type Addrs = heapless::Vec<Addr, MAX_ADDRS>;

/// Adds the addresses and sets the devices up, from a thread that joins `netns` (setns
/// changes only the calling thread's namespace; the thread ends with it, and the netlink
/// and ioctl sockets it opens belong to `netns`).
fn set_up_inside<'m, 'a>(
    moves: &'m [Move<'a>],
    addrs: &[Addrs],
    netns: BorrowedFd<'_>,
) -> Result<(), (&'m Move<'a>, &'static str, Errno)> {
    std::thread::scope(|s| {
        let worker = s.spawn(|| {
            let Some(first) = moves.first() else {
                return Ok(());
            };
            nix::sched::setns(netns, CloneFlags::CLONE_NEWNET).map_err(|e| (first, UP, e))?;
            for (m, own) in moves.iter().zip(addrs) {
                let name = CString::new(m.inside).map_err(|_| (m, UP, Errno::EINVAL))?;
                let index = netlink::index_of(&name).map_err(|e| (m, UP, e))?;
                for a in own {
                    Request::add_addr(index, a)
                        .and_then(Request::send)
                        .map_err(|e| (m, ADD, e))?;
                }
                sys::interface_up(m.inside).map_err(|e| (m, UP, e))?;
            }
            Ok(())
        });
        match worker.join() {
            Ok(r) => r,
            Err(_) => moves.first().map_or(Ok(()), |m| Err((m, UP, Errno::EIO))),
        }
    })
}

fn same_file(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> Result<bool, Errno> {
    let (sa, sb) = (nix::sys::stat::fstat(a)?, nix::sys::stat::fstat(b)?);
    Ok(sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux(json: &str) -> Linux<'_> {
        serde_json_core::from_str::<Linux<'_>>(json).unwrap().0
    }

    #[test]
    fn plan_keeps_order_and_defaults_the_name_to_the_hosts() {
        let l = linux(r#"{"netDevices": {"eth1": {"name": "ctr0"}, "dummy3": {}}}"#);
        assert_eq!(
            plan(Some(&l)).as_slice(),
            [
                Move {
                    host: "eth1",
                    inside: "ctr0"
                },
                Move {
                    host: "dummy3",
                    inside: "dummy3"
                },
            ]
        );
        assert!(plan(Some(&linux("{}"))).is_empty());
        assert!(plan(None).is_empty());
    }

    #[test]
    fn errors_name_the_device_and_the_step() {
        let e = Error {
            host: "nope0".into(),
            step: FIND,
            errno: Errno::ENODEV,
        };
        assert_eq!(
            e.to_string(),
            "linux.netDevices[\"nope0\"]: find the interface: no such interface in the host's network namespace"
        );
    }
}
