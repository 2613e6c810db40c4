//! A bounded rtnetlink client for `linux.netDevices`: one `RTM_NEWLINK` request built in
//! a fixed buffer (no allocation), sent on a fresh `NETLINK_ROUTE` socket, and its ack
//! read back. See rtnetlink(7) and netlink(7).

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType};

/// Room for the headers (32 bytes), a netns fd attribute (8) and a name attribute (20).
const REQUEST_CAP: usize = 64;
/// Room for the kernel's ack: an `nlmsgerr` with the request echoed back.
const ACK_CAP: usize = 512;
/// `sizeof(struct nlmsghdr)` and `sizeof(struct ifinfomsg)`.
const NLMSG_HDR: usize = 16;
const IFINFO: usize = 16;

/// `if_nametoindex(3)`: the index of the interface `name` in the caller's network
/// namespace; `ENODEV` when there is none.
pub fn index_of(name: &CStr) -> Result<u32, Errno> {
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(Errno::ENODEV);
    }
    Ok(index)
}

/// One `RTM_NEWLINK` message: the interface `index`, then attributes.
pub struct LinkRequest {
    buf: [u8; REQUEST_CAP],
    len: usize,
}

impl LinkRequest {
    /// A request for interface `index`; `flags`/`change` as in `struct ifinfomsg`.
    pub fn new(index: u32, flags: u32, change: u32) -> Result<LinkRequest, Errno> {
        let mut r = LinkRequest {
            buf: [0; REQUEST_CAP],
            len: NLMSG_HDR,
        };
        let kind = libc::RTM_NEWLINK.to_ne_bytes();
        let nl_flags = u16::try_from(libc::NLM_F_REQUEST | libc::NLM_F_ACK)
            .map_err(|_| Errno::EINVAL)?
            .to_ne_bytes();
        r.put_at(4, &kind)?;
        r.put_at(6, &nl_flags)?;
        r.put_at(8, &1u32.to_ne_bytes())?; // sequence number
        let index = i32::try_from(index).map_err(|_| Errno::EINVAL)?;
        let mut info = [0u8; IFINFO];
        // ifi_family AF_UNSPEC (0), pad, ifi_type 0, then index, flags, change.
        for (dst, src) in info.iter_mut().skip(4).zip(
            index
                .to_ne_bytes()
                .into_iter()
                .chain(flags.to_ne_bytes())
                .chain(change.to_ne_bytes()),
        ) {
            *dst = src;
        }
        r.push(&info)?;
        Ok(r)
    }

    /// `IFLA_NET_NS_FD`: move the interface into the network namespace `fd`.
    pub fn netns_fd(mut self, fd: BorrowedFd<'_>) -> Result<LinkRequest, Errno> {
        let fd = u32::try_from(fd.as_raw_fd()).map_err(|_| Errno::EBADF)?;
        self.attr(libc::IFLA_NET_NS_FD, &fd.to_ne_bytes())?;
        Ok(self)
    }

    /// `IFLA_IFNAME`: the interface's (new) name, NUL-terminated.
    pub fn name(mut self, name: &CStr) -> Result<LinkRequest, Errno> {
        self.attr(libc::IFLA_IFNAME, name.to_bytes_with_nul())?;
        Ok(self)
    }

    fn attr(&mut self, kind: u16, data: &[u8]) -> Result<(), Errno> {
        let len = u16::try_from(4 + data.len()).map_err(|_| Errno::EMSGSIZE)?;
        self.push(&len.to_ne_bytes())?;
        self.push(&kind.to_ne_bytes())?;
        self.push(data)?;
        // Attributes are aligned to 4 bytes.
        while !self.len.is_multiple_of(4) {
            self.push(&[0])?;
        }
        Ok(())
    }

    fn push(&mut self, bytes: &[u8]) -> Result<(), Errno> {
        let end = self.len.checked_add(bytes.len()).ok_or(Errno::EMSGSIZE)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(Errno::EMSGSIZE)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    fn put_at(&mut self, at: usize, bytes: &[u8]) -> Result<(), Errno> {
        self.buf
            .get_mut(at..at + bytes.len())
            .ok_or(Errno::EMSGSIZE)?
            .copy_from_slice(bytes);
        Ok(())
    }

    /// The finished message (its length written into the header).
    pub fn bytes(&mut self) -> Result<&[u8], Errno> {
        let len = u32::try_from(self.len).map_err(|_| Errno::EMSGSIZE)?;
        self.put_at(0, &len.to_ne_bytes())?;
        self.buf.get(..self.len).ok_or(Errno::EMSGSIZE)
    }

    /// Sends the request to the kernel and waits for its ack: Ok, or the errno it carries.
    pub fn send(mut self) -> Result<(), Errno> {
        let sock: OwnedFd = socket::socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )?;
        let msg = self.bytes()?;
        let sent = socket::send(sock.as_raw_fd(), msg, MsgFlags::empty())?;
        if sent != msg.len() {
            return Err(Errno::EMSGSIZE);
        }
        let mut ack = [0u8; ACK_CAP];
        let n = loop {
            match socket::recv(sock.as_raw_fd(), &mut ack, MsgFlags::empty()) {
                Err(Errno::EINTR) => continue,
                other => break other?,
            }
        };
        ack_errno(ack.get(..n).ok_or(Errno::EPROTO)?)
    }
}

/// The result an `NLMSG_ERROR` ack carries (0: success).
fn ack_errno(ack: &[u8]) -> Result<(), Errno> {
    let field = |at: usize| -> Option<[u8; 4]> { ack.get(at..at + 4)?.try_into().ok() };
    let kind = ack
        .get(4..6)
        .and_then(|b| b.try_into().ok())
        .map(u16::from_ne_bytes);
    if kind != u16::try_from(libc::NLMSG_ERROR).ok() {
        return Err(Errno::EPROTO);
    }
    let code = field(NLMSG_HDR)
        .map(i32::from_ne_bytes)
        .ok_or(Errno::EPROTO)?;
    match code {
        0 => Ok(()),
        c => Err(Errno::from_raw(c.saturating_neg())),
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn a_move_and_rename_request_is_laid_out_as_rtnetlink_wants() {
        let fd = some_fd();
        let mut r = LinkRequest::new(7, 0, 0)
            .and_then(|r| r.netns_fd(fd.as_fd()))
            .and_then(|r| r.name(c"ctr0"))
            .unwrap();
        let b = r.bytes().unwrap().to_vec();
        // nlmsghdr(16) + ifinfomsg(16) + fd attr(8) + name attr(4 + 5, padded to 12).
        assert_eq!(b.len(), 52);
        assert_eq!(u32::from_ne_bytes(b[0..4].try_into().unwrap()), 52);
        assert_eq!(u16::from_ne_bytes(b[4..6].try_into().unwrap()), 16);
        assert_eq!(u16::from_ne_bytes(b[6..8].try_into().unwrap()), 5);
        assert_eq!(i32::from_ne_bytes(b[20..24].try_into().unwrap()), 7);
        assert_eq!(u16::from_ne_bytes(b[32..34].try_into().unwrap()), 8);
        assert_eq!(u16::from_ne_bytes(b[34..36].try_into().unwrap()), 28);
        let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
        assert_eq!(i32::from_ne_bytes(b[36..40].try_into().unwrap()), raw);
        assert_eq!(u16::from_ne_bytes(b[40..42].try_into().unwrap()), 9);
        assert_eq!(u16::from_ne_bytes(b[42..44].try_into().unwrap()), 3);
        assert_eq!(&b[44..52], b"ctr0\0\0\0\0");
    }

    #[test]
    fn a_name_that_does_not_fit_is_an_error_not_a_truncation() {
        let long = c"a-very-long-interface-name-that-overflows-the-request";
        let r = LinkRequest::new(1, 0, 0).and_then(|r| r.name(long));
        assert_eq!(r.err(), Some(Errno::EMSGSIZE));
    }

    #[test]
    fn acks_carry_the_errno() {
        let mut ack = [0u8; 36];
        ack[4..6].copy_from_slice(&2u16.to_ne_bytes());
        assert_eq!(ack_errno(&ack), Ok(()));
        ack[16..20].copy_from_slice(&(-17i32).to_ne_bytes());
        assert_eq!(ack_errno(&ack), Err(Errno::EEXIST));
        ack[4..6].copy_from_slice(&16u16.to_ne_bytes());
        assert_eq!(ack_errno(&ack), Err(Errno::EPROTO));
        assert_eq!(ack_errno(&[]), Err(Errno::EPROTO));
    }

    fn some_fd() -> OwnedFd {
        std::fs::File::open("/").unwrap().into()
    }
}
