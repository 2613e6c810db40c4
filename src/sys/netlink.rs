//! A bounded rtnetlink client for `linux.netDevices`: requests built in a fixed buffer (no
//! allocation), sent on a fresh `NETLINK_ROUTE` socket (which belongs to the calling
//! thread's network namespace), acks and address dumps read into fixed buffers. See
//! rtnetlink(7) and netlink(7).

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType};

/// Room for the headers (32 bytes) and two 16-byte address attributes (40).
const REQUEST_CAP: usize = 96;
/// Room for one read of the kernel's answer: an ack, or a part of an address dump.
const REPLY_CAP: usize = 8192;
/// `sizeof(struct nlmsghdr)`, `sizeof(struct ifinfomsg)`, `sizeof(struct ifaddrmsg)`.
const NLMSG_HDR: usize = 16;
const IFINFO: usize = 16;
const IFADDR: usize = 8;
/// Permanent global addresses copied per device; more is an error, never a truncation.
pub const MAX_ADDRS: usize = 16;

/// `if_nametoindex(3)`: the index of the interface `name` in the calling thread's
/// network namespace; `ENODEV` when there is none.
pub fn index_of(name: &CStr) -> Result<u32, Errno> {
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(Errno::ENODEV);
    }
    Ok(index)
}

/// One rtnetlink request: header, fixed body, attributes.
pub struct Request {
    buf: [u8; REQUEST_CAP],
    len: usize,
}

impl Request {
    fn new(kind: u16, flags: libc::c_int, body: &[u8]) -> Result<Request, Errno> {
        let mut r = Request {
            buf: [0; REQUEST_CAP],
            len: NLMSG_HDR,
        };
        let flags = u16::try_from(flags | libc::NLM_F_REQUEST).map_err(|_| Errno::EINVAL)?;
        r.put_at(4, &kind.to_ne_bytes())?;
        r.put_at(6, &flags.to_ne_bytes())?;
        r.put_at(8, &1u32.to_ne_bytes())?; // sequence number
        r.push(body)?;
        Ok(r)
    }

    /// `RTM_NEWLINK` for interface `index` (acked).
    pub fn link(index: u32) -> Result<Request, Errno> {
        let index = i32::try_from(index).map_err(|_| Errno::EINVAL)?;
        // ifi_family AF_UNSPEC, pad, ifi_type, then index; flags and change stay 0.
        let mut info = [0u8; IFINFO];
        copy_into(&mut info, 4, &index.to_ne_bytes())?;
        Request::new(libc::RTM_NEWLINK, libc::NLM_F_ACK, &info)
    }

    /// `RTM_NEWADDR` adding `a` to interface `index` (acked; an existing one is EEXIST).
    pub fn add_addr(index: u32, a: &Addr) -> Result<Request, Errno> {
        let flags = libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL;
        let mut r = Request::new(libc::RTM_NEWADDR, flags, &ifaddr(a.family, a.prefix, index))?;
        let bytes = a.bytes().ok_or(Errno::EINVAL)?;
        if i32::from(a.family) == libc::AF_INET {
            // IPv4 names the address itself in IFA_LOCAL (IFA_ADDRESS is a peer's).
            r.attr(libc::IFA_LOCAL, bytes)?;
        }
        r.attr(libc::IFA_ADDRESS, bytes)?;
        Ok(r)
    }

    /// `RTM_NEWROUTE`: the IPv4 default route through `gateway` on interface `index`
    /// (main table, acked; an existing default route is EEXIST).
    pub fn default_route_v4(index: u32, gateway: [u8; 4]) -> Result<Request, Errno> {
        let flags = libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL;
        // struct rtmsg: family, dst_len 0 (default), src_len, tos, table, protocol,
        // scope, type; then 4 bytes of flags (0).
        let family = u8::try_from(libc::AF_INET).map_err(|_| Errno::EINVAL)?;
        let rtmsg = [
            family,
            0,
            0,
            0,
            libc::RT_TABLE_MAIN,
            libc::RTPROT_BOOT,
            libc::RT_SCOPE_UNIVERSE,
            libc::RTN_UNICAST,
            0,
            0,
            0,
            0,
        ];
        let mut r = Request::new(libc::RTM_NEWROUTE, flags, &rtmsg)?;
        r.attr(libc::RTA_GATEWAY, &gateway)?;
        r.attr(libc::RTA_OIF, &index.to_ne_bytes())?;
        Ok(r)
    }

    /// `IFLA_NET_NS_FD`: move the interface into the network namespace `fd`.
    pub fn netns_fd(mut self, fd: BorrowedFd<'_>) -> Result<Request, Errno> {
        let fd = u32::try_from(fd.as_raw_fd()).map_err(|_| Errno::EBADF)?;
        self.attr(libc::IFLA_NET_NS_FD, &fd.to_ne_bytes())?;
        Ok(self)
    }

    /// `IFLA_IFNAME`: the interface's (new) name, NUL-terminated.
    pub fn name(mut self, name: &CStr) -> Result<Request, Errno> {
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
        copy_into(&mut self.buf, self.len, bytes)?;
        self.len += bytes.len();
        Ok(())
    }

    fn put_at(&mut self, at: usize, bytes: &[u8]) -> Result<(), Errno> {
        copy_into(&mut self.buf, at, bytes)
    }

    /// The finished message (its length written into the header).
    pub fn bytes(&mut self) -> Result<&[u8], Errno> {
        let len = u32::try_from(self.len).map_err(|_| Errno::EMSGSIZE)?;
        self.put_at(0, &len.to_ne_bytes())?;
        self.buf.get(..self.len).ok_or(Errno::EMSGSIZE)
    }

    /// Sends the request and waits for its ack: Ok, or the errno the kernel put in it.
    pub fn send(mut self) -> Result<(), Errno> {
        let sock = route_socket()?;
        send_all(&sock, self.bytes()?)?;
        let mut reply = [0u8; REPLY_CAP];
        let n = recv(&sock, &mut reply)?;
        let mut msgs = Messages(reply.get(..n).ok_or(Errno::EPROTO)?);
        match msgs.next() {
            Some((kind, body)) if i32::from(kind) == libc::NLMSG_ERROR => ack_errno(body),
            _ => Err(Errno::EPROTO),
        }
    }
}

fn copy_into(buf: &mut [u8], at: usize, bytes: &[u8]) -> Result<(), Errno> {
    let end = at.checked_add(bytes.len()).ok_or(Errno::EMSGSIZE)?;
    buf.get_mut(at..end)
        .ok_or(Errno::EMSGSIZE)?
        .copy_from_slice(bytes);
    Ok(())
}

/// `struct ifaddrmsg`: family, prefix length, flags 0, scope universe, index.
fn ifaddr(family: u8, prefix: u8, index: u32) -> [u8; IFADDR] {
    let i = index.to_ne_bytes();
    [
        family,
        prefix,
        0,
        libc::RT_SCOPE_UNIVERSE,
        i[0],
        i[1],
        i[2],
        i[3],
    ]
}

fn route_socket() -> Result<OwnedFd, Errno> {
    socket::socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )
}

fn send_all(sock: &OwnedFd, msg: &[u8]) -> Result<(), Errno> {
    let sent = socket::send(sock.as_raw_fd(), msg, MsgFlags::empty())?;
    if sent != msg.len() {
        return Err(Errno::EMSGSIZE);
    }
    Ok(())
}

fn recv(sock: &OwnedFd, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        match socket::recv(sock.as_raw_fd(), buf, MsgFlags::empty()) {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// The `(type, payload)` of each netlink message in one read.
struct Messages<'a>(&'a [u8]);

impl<'a> Iterator for Messages<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let len = u32::from_ne_bytes(self.0.get(0..4)?.try_into().ok()?);
        let len = usize::try_from(len).ok()?;
        let kind = u16::from_ne_bytes(self.0.get(4..6)?.try_into().ok()?);
        let body = self.0.get(NLMSG_HDR..len)?;
        // Messages are aligned to 4 bytes.
        self.0 = self.0.get(len.next_multiple_of(4)..).unwrap_or_default();
        Some((kind, body))
    }
}

/// The result an `NLMSG_ERROR` payload carries (0: success).
fn ack_errno(body: &[u8]) -> Result<(), Errno> {
    let code = body
        .get(0..4)
        .and_then(|b| b.try_into().ok())
        .map(i32::from_ne_bytes)
        .ok_or(Errno::EPROTO)?;
    match code {
        0 => Ok(()),
        c => Err(Errno::from_raw(c.saturating_neg())),
    }
}

/// An IPv4 or IPv6 address with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addr {
    pub family: u8,
    pub prefix: u8,
    addr: [u8; 16],
}

impl Addr {
    /// An IPv4 address with its prefix length.
    pub fn v4(octets: [u8; 4], prefix: u8) -> Addr {
        let mut addr = [0u8; 16];
        for (d, s) in addr.iter_mut().zip(octets) {
            *d = s;
        }
        Addr {
            family: libc::AF_INET as u8,
            prefix,
            addr,
        }
    }

    fn bytes(&self) -> Option<&[u8]> {
        match i32::from(self.family) {
            libc::AF_INET => self.addr.get(..4),
            libc::AF_INET6 => Some(&self.addr),
            _ => None,
        }
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ip: std::net::IpAddr = match (self.bytes(), i32::from(self.family)) {
            (Some(b), libc::AF_INET) => <[u8; 4]>::try_from(b).map_err(|_| std::fmt::Error)?.into(),
            _ => self.addr.into(),
        };
        write!(f, "{ip}/{}", self.prefix)
    }
}

/// The permanent addresses of global scope on interface `index` (what runc 1.3 copies
/// into the container: dynamic and link/host-scoped ones belong to where they were made).
pub fn permanent_global_addrs(index: u32) -> Result<heapless::Vec<Addr, MAX_ADDRS>, Errno> {
    let sock = route_socket()?;
    let mut req = Request::new(libc::RTM_GETADDR, libc::NLM_F_DUMP, &ifaddr(0, 0, 0))?;
    send_all(&sock, req.bytes()?)?;
    let mut out = heapless::Vec::new();
    let mut reply = [0u8; REPLY_CAP];
    loop {
        let n = recv(&sock, &mut reply)?;
        for (kind, body) in Messages(reply.get(..n).ok_or(Errno::EPROTO)?) {
            match i32::from(kind) {
                libc::NLMSG_DONE => return Ok(out),
                libc::NLMSG_ERROR => ack_errno(body)?,
                _ if kind == libc::RTM_NEWADDR => {
                    if let Some(a) = parse_addr(body, index) {
                        out.push(a).map_err(|_| Errno::EOVERFLOW)?;
                    }
                }
                _ => {}
            }
        }
    }
}

/// An `RTM_NEWADDR` payload for `index` that is permanent and global, else None.
fn parse_addr(body: &[u8], index: u32) -> Option<Addr> {
    let (&family, &prefix, &flags, &scope) =
        (body.first()?, body.get(1)?, body.get(2)?, body.get(3)?);
    let at = u32::from_ne_bytes(body.get(4..8)?.try_into().ok()?);
    let mut flags = u32::from(flags);
    let mut local = None;
    let mut address = None;
    let mut rest = body.get(IFADDR..)?;
    while let Some(len) = rest.get(0..2).and_then(|b| b.try_into().ok()) {
        let len = usize::from(u16::from_ne_bytes(len));
        let kind = u16::from_ne_bytes(rest.get(2..4)?.try_into().ok()?);
        let data = rest.get(4..len)?;
        match kind {
            libc::IFA_LOCAL => local = Some(data),
            libc::IFA_ADDRESS => address = Some(data),
            // The full flags (the header has only the low 8 bits).
            libc::IFA_FLAGS => flags = u32::from_ne_bytes(data.get(..4)?.try_into().ok()?),
            _ => {}
        }
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    let keep = at == index && scope == libc::RT_SCOPE_UNIVERSE;
    if !keep || flags & libc::IFA_F_PERMANENT == 0 {
        return None;
    }
    let data = local.or(address)?;
    let mut addr = [0u8; 16];
    addr.get_mut(..data.len())?.copy_from_slice(data);
    Some(Addr {
        family,
        prefix,
        addr,
    })
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn a_move_and_rename_request_is_laid_out_as_rtnetlink_wants() {
        let fd: OwnedFd = std::fs::File::open("/").unwrap().into();
        let mut r = Request::link(7)
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
        let raw = fd.as_raw_fd();
        assert_eq!(i32::from_ne_bytes(b[36..40].try_into().unwrap()), raw);
        assert_eq!(u16::from_ne_bytes(b[40..42].try_into().unwrap()), 9);
        assert_eq!(u16::from_ne_bytes(b[42..44].try_into().unwrap()), 3);
        assert_eq!(&b[44..52], b"ctr0\0\0\0\0");
    }

    #[test]
    fn a_name_that_does_not_fit_is_an_error_not_a_truncation() {
        let long = c"a-very-long-interface-name-that-overflows-the-request-buffer-of-96-bytes";
        let r = Request::link(1).and_then(|r| r.name(long));
        assert_eq!(r.err(), Some(Errno::EMSGSIZE));
    }

    #[test]
    fn acks_carry_the_errno() {
        assert_eq!(ack_errno(&0i32.to_ne_bytes()), Ok(()));
        assert_eq!(ack_errno(&(-17i32).to_ne_bytes()), Err(Errno::EEXIST));
        assert_eq!(ack_errno(&[]), Err(Errno::EPROTO));
    }

    /// An RTM_NEWADDR payload: ifaddrmsg + IFA_ADDRESS (+ IFA_LOCAL for IPv4).
    fn addr_msg(family: u8, prefix: u8, flags: u8, scope: u8, index: u32, a: &[u8]) -> Vec<u8> {
        let mut m = vec![family, prefix, flags, scope];
        m.extend_from_slice(&index.to_ne_bytes());
        for kind in [libc::IFA_ADDRESS, libc::IFA_LOCAL] {
            m.extend_from_slice(&u16::try_from(4 + a.len()).unwrap().to_ne_bytes());
            m.extend_from_slice(&kind.to_ne_bytes());
            m.extend_from_slice(a);
        }
        m
    }

    #[test]
    fn only_permanent_global_addresses_of_the_device_are_kept() {
        let perm = u8::try_from(libc::IFA_F_PERMANENT).unwrap();
        let v4 = [10, 200, 0, 1];
        let a = parse_addr(&addr_msg(2, 24, perm, 0, 5, &v4), 5).unwrap();
        assert_eq!(a.to_string(), "10.200.0.1/24");
        let v6 = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
        let a = parse_addr(&addr_msg(10, 64, perm, 0, 5, &v6), 5).unwrap();
        assert_eq!(a.to_string(), "fd00::7/64");
        // Another device, a dynamic address, a link-scoped one: not copied.
        assert_eq!(parse_addr(&addr_msg(2, 24, perm, 0, 6, &v4), 5), None);
        assert_eq!(parse_addr(&addr_msg(2, 24, 0, 0, 5, &v4), 5), None);
        assert_eq!(parse_addr(&addr_msg(10, 64, perm, 253, 5, &v6), 5), None);
        assert_eq!(parse_addr(&[2, 24], 5), None);
    }

    #[test]
    fn an_address_request_names_the_address_for_its_family() {
        let perm = u8::try_from(libc::IFA_F_PERMANENT).unwrap();
        let a = parse_addr(&addr_msg(2, 24, perm, 0, 5, &[10, 0, 0, 1]), 5).unwrap();
        let mut r = Request::add_addr(9, &a).unwrap();
        let b = r.bytes().unwrap().to_vec();
        // nlmsghdr + ifaddrmsg(8) + IFA_LOCAL(8) + IFA_ADDRESS(8).
        assert_eq!(b.len(), 40);
        assert_eq!(u16::from_ne_bytes(b[4..6].try_into().unwrap()), 20);
        assert_eq!(&b[16..20], &[2, 24, 0, 0]);
        assert_eq!(u32::from_ne_bytes(b[20..24].try_into().unwrap()), 9);
        assert_eq!(&b[24..32], &[8, 0, 2, 0, 10, 0, 0, 1]);
        assert_eq!(&b[32..40], &[8, 0, 1, 0, 10, 0, 0, 1]);
    }
}
