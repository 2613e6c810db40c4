//! board.json `"network"`: the board's own interfaces, set up by PID 1 before the first
//! container starts.
//!
//! ```json
//! "network": [
//!   {"interface":"eth0","address":"192.168.1.20/24","gateway":"192.168.1.1",
//!    "dns":["192.168.1.1"],"timeoutSecs":10},
//!   {"interface":"eth1","dhcp":true}]
//! ```
//!
//! - A static interface: dory waits for it to appear (drivers probe after their module
//!   loads; USB Ethernet takes seconds) up to `timeoutSecs` (default 10, at most 60),
//!   adds the IPv4 address, brings the link up, adds the default route through `gateway`
//!   and writes `dns` (at most 3, the resolver's limit) to [`RESOLV_CONF`].
//! - `"dhcp": true`: dory only brings the link up if it is there. The lease is the job of a
//!   DHCP client in a service container on the host network (BusyBox `udhcpc`, the usual
//!   embedded pattern): a client in PID 1 would put a network parser with timers in the
//!   process that must never fail. See the README for the container.
//! - With any `network`, [`RESOLV_CONF`] exists from boot (empty until a static `dns` or a
//!   DHCP client writes it), so containers can bind it read-only at `/etc/resolv.conf`.
//!   Writers rewrite it in place: a bind follows the file, not a name.
//!
//! A failure is reported on the console and the boot carries on: containers that do not
//! need the network still start, and a DHCP client keeps trying on its own.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use heapless::Vec;

use super::board::Error;
use super::console::say;
use crate::sys::netlink::{self, Addr, Request};

/// Interfaces a board may configure.
pub const MAX_INTERFACES: usize = 4;
/// Name servers per interface (glibc's and musl's MAXNS).
pub const MAX_DNS: usize = 3;
/// `timeoutSecs` when not given, and its largest value.
pub const DEFAULT_LINK_TIMEOUT_SECS: u32 = 10;
pub const MAX_LINK_TIMEOUT_SECS: u32 = 60;
/// Where name servers are written, for containers to bind read-only.
pub const RESOLV_DIR: &str = "/run/net";
pub const RESOLV_CONF: &str = "/run/net/resolv.conf";
/// The tmpfs at [`RESOLV_DIR`]: room for resolv.conf and a few files, nothing more.
const RESOLV_TMPFS: &str = "mode=0755,size=64k,nr_inodes=16";
/// Longest interface name (IFNAMSIZ - 1).
const MAX_IFNAME: usize = 15;
/// How often a missing interface is looked for.
const POLL: Duration = Duration::from_millis(20);

/// One interface of `network`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface<'a> {
    pub name: &'a str,
    pub setup: Setup,
    pub timeout_secs: u32,
}

/// How an interface gets its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setup {
    /// Link up only; a DHCP client container does the rest.
    Dhcp,
    Static {
        address: [u8; 4],
        prefix: u8,
        gateway: Option<[u8; 4]>,
        dns: Vec<[u8; 4], MAX_DNS>,
    },
}

/// What board.json gave for one interface, before validation.
pub struct RawInterface<'a> {
    pub interface: &'a str,
    pub address: Option<&'a str>,
    pub gateway: Option<&'a str>,
    pub dns: Option<Vec<&'a str, MAX_DNS>>,
    pub dhcp: Option<bool>,
    pub timeout_secs: Option<u32>,
}

fn invalid(field: String, problem: impl Into<String>) -> Error {
    Error::Invalid {
        field,
        problem: problem.into(),
    }
}

/// A dotted-quad IPv4 address, strictly: four decimal octets, no leading zeros (which
/// some parsers read as octal), no spaces.
pub fn parse_ipv4(s: &str) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = s.split('.');
    for o in out.iter_mut() {
        let p = parts.next()?;
        let ok = !p.is_empty()
            && p.len() <= 3
            && p.bytes().all(|b| b.is_ascii_digit())
            && (p == "0" || !p.starts_with('0'));
        if !ok {
            return None;
        }
        *o = p.parse().ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// `A.B.C.D/N` with N in 1-32.
fn parse_cidr(s: &str) -> Option<([u8; 4], u8)> {
    let (addr, prefix) = s.split_once('/')?;
    let ok = !prefix.is_empty()
        && prefix.len() <= 2
        && prefix.bytes().all(|b| b.is_ascii_digit())
        && !prefix.starts_with('0');
    let prefix: u8 = if ok {
        prefix.parse().ok()?
    } else {
        return None;
    };
    (1..=32)
        .contains(&prefix)
        .then_some((parse_ipv4(addr)?, prefix))
}

fn same_subnet(a: [u8; 4], b: [u8; 4], prefix: u8) -> bool {
    let mask = u32::MAX
        .checked_shl(32u32.saturating_sub(u32::from(prefix)))
        .unwrap_or(0);
    u32::from_be_bytes(a) & mask == u32::from_be_bytes(b) & mask
}

/// The kernel's `dev_valid_name`: 1-15 bytes, not `.` or `..`, no `/`, `:` or space.
fn valid_ifname(name: &str) -> bool {
    (1..=MAX_IFNAME).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':')
}

/// Validates `network[i]`.
pub fn interface<'a>(i: usize, raw: &RawInterface<'a>) -> Result<Interface<'a>, Error> {
    let field = |k: &str| format!("network[{i}].{k}");
    if !valid_ifname(raw.interface) {
        return Err(invalid(
            field("interface"),
            format!(
                "\"{}\" is not an interface name (1-{MAX_IFNAME} printable bytes, no / or :)",
                raw.interface
            ),
        ));
    }
    let timeout_secs = raw.timeout_secs.unwrap_or(DEFAULT_LINK_TIMEOUT_SECS);
    if !(1..=MAX_LINK_TIMEOUT_SECS).contains(&timeout_secs) {
        return Err(invalid(
            field("timeoutSecs"),
            format!("{timeout_secs} is outside 1-{MAX_LINK_TIMEOUT_SECS} (limit)"),
        ));
    }
    let dhcp = raw.dhcp.unwrap_or(false);
    let setup = match (raw.address, dhcp) {
        (Some(_), true) => {
            return Err(invalid(
                field("dhcp"),
                "an interface has either \"address\" or \"dhcp\": true, not both",
            ))
        }
        (None, false) => {
            return Err(invalid(
                field("address"),
                "missing: give \"address\": \"A.B.C.D/N\" or \"dhcp\": true",
            ))
        }
        (None, true) => {
            for (k, given) in [
                ("gateway", raw.gateway.is_some()),
                ("dns", raw.dns.is_some()),
            ] {
                if given {
                    return Err(invalid(
                        field(k),
                        "comes from the DHCP server with \"dhcp\": true (give it with \"address\" only)",
                    ));
                }
            }
            Setup::Dhcp
        }
        (Some(a), false) => static_setup(i, a, raw)?,
    };
    Ok(Interface {
        name: raw.interface,
        setup,
        timeout_secs,
    })
}

fn static_setup(i: usize, address: &str, raw: &RawInterface<'_>) -> Result<Setup, Error> {
    let field = |k: &str| format!("network[{i}].{k}");
    let (address, prefix) = parse_cidr(address).ok_or_else(|| {
        invalid(
            field("address"),
            format!("\"{address}\" is not an IPv4 address with a prefix (A.B.C.D/N, N 1-32)"),
        )
    })?;
    let gateway = match raw.gateway {
        None => None,
        Some(g) => {
            let gw = parse_ipv4(g).ok_or_else(|| {
                invalid(field("gateway"), format!("\"{g}\" is not an IPv4 address"))
            })?;
            if gw == address || !same_subnet(gw, address, prefix) {
                return Err(invalid(
                    field("gateway"),
                    format!("{g} is not another address in the interface's subnet /{prefix}"),
                ));
            }
            Some(gw)
        }
    };
    let mut dns = Vec::new();
    for (j, d) in raw.dns.iter().flatten().enumerate() {
        let ip = parse_ipv4(d).ok_or_else(|| {
            invalid(
                format!("network[{i}].dns[{j}]"),
                format!("\"{d}\" is not an IPv4 address"),
            )
        })?;
        dns.push(ip).map_err(|_| Error::TooMany {
            field: field("dns"),
            limit: MAX_DNS,
            name: "MAX_DNS",
        })?;
    }
    Ok(Setup::Static {
        address,
        prefix,
        gateway,
        dns,
    })
}

/// Validates the whole list: each entry, and each interface named once.
pub fn interfaces<'a>(
    raw: &[RawInterface<'a>],
) -> Result<Vec<Interface<'a>, MAX_INTERFACES>, Error> {
    let mut out: Vec<Interface<'a>, MAX_INTERFACES> = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let itf = interface(i, r)?;
        if out.iter().any(|o| o.name == itf.name) {
            return Err(invalid(
                format!("network[{i}].interface"),
                format!("\"{}\" is configured twice", itf.name),
            ));
        }
        out.push(itf).map_err(|_| Error::TooMany {
            field: "network".into(),
            limit: MAX_INTERFACES,
            name: "MAX_INTERFACES",
        })?;
    }
    Ok(out)
}

/// The resolv.conf text for the static interfaces' name servers, in board order.
pub fn resolv_conf(itfs: &[Interface<'_>]) -> String {
    let mut text = String::new();
    for itf in itfs {
        if let Setup::Static { dns, .. } = &itf.setup {
            for d in dns {
                text.push_str(&format!("nameserver {}\n", Dotted(*d)));
            }
        }
    }
    text
}

/// An IPv4 address for messages.
pub struct Dotted(pub [u8; 4]);

impl core::fmt::Display for Dotted {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

/// Sets up every interface of the board (PID 1, before the first container), then writes
/// [`RESOLV_CONF`] below `root` (`/` in PID 1; the test root with `--boot-root`). Each step
/// is reported; a failure is reported and skipped.
pub fn configure(root: &str, itfs: &[Interface<'_>]) {
    if itfs.is_empty() {
        return;
    }
    // One deadline for all: the longest timeoutSecs, not their sum (four missing
    // interfaces must not hold the boot for four minutes).
    let longest = itfs.iter().map(|i| i.timeout_secs).max().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(u64::from(longest));
    for itf in itfs {
        match configure_one(itf, deadline) {
            Ok(summary) => say!("dory: net: {} {summary}", itf.name),
            Err(e) => say!("dory: net: {}: {e}", itf.name),
        }
    }
    if let Err(e) = write_resolv_conf(root, &resolv_conf(itfs)) {
        say!("dory: net: {RESOLV_CONF}: {e}");
    }
}

fn configure_one(itf: &Interface<'_>, deadline: Instant) -> Result<String, String> {
    let cname = std::ffi::CString::new(itf.name).map_err(|_| "NUL in the name".to_string())?;
    let index = match itf.setup {
        // The client container waits for the link itself; up now if it is there.
        Setup::Dhcp => netlink::index_of(&cname).ok(),
        Setup::Static { .. } => Some(wait_for(&cname, itf.timeout_secs, deadline)?),
    };
    let Some(index) = index else {
        return Ok("not present yet: left to the DHCP client".into());
    };
    let up = |step: &str| {
        crate::sys::interface_up(itf.name).map_err(|e| format!("{step}: link up: {e}"))
    };
    match &itf.setup {
        Setup::Dhcp => {
            up("dhcp")?;
            Ok("up, address by DHCP".into())
        }
        Setup::Static {
            address,
            prefix,
            gateway,
            dns,
        } => {
            // Address first, then up (the prefix route appears with the link), then the
            // default route, which needs that prefix route to reach its gateway.
            let a = Addr::v4(*address, *prefix);
            match Request::add_addr(index, &a).and_then(Request::send) {
                Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                Err(e) => return Err(format!("adding {a}: {e}")),
            }
            up("static")?;
            let mut summary = format!("{a}");
            if let Some(gw) = gateway {
                match Request::default_route_v4(index, *gw).and_then(Request::send) {
                    Ok(()) => summary.push_str(&format!(" via {}", Dotted(*gw))),
                    Err(nix::errno::Errno::EEXIST) => summary.push_str(&format!(
                        " (a default route was already there: none added via {})",
                        Dotted(*gw)
                    )),
                    Err(e) => return Err(format!("default route via {}: {e}", Dotted(*gw))),
                }
            }
            for d in dns {
                summary.push_str(&format!(" dns {}", Dotted(*d)));
            }
            Ok(summary)
        }
    }
}

/// The interface's index once it exists, polling until its own `timeout_secs` or the
/// shared `deadline`, whichever comes first.
fn wait_for(name: &std::ffi::CStr, timeout_secs: u32, deadline: Instant) -> Result<u32, String> {
    let deadline = deadline.min(Instant::now() + Duration::from_secs(u64::from(timeout_secs)));
    loop {
        match netlink::index_of(name) {
            Ok(i) => return Ok(i),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!(
                    "not found after {timeout_secs} s ({e}): is its driver in \"modules\"?"
                ))
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// Writes [`RESOLV_CONF`] (0644) in a fresh [`RESOLV_DIR`] (0755). At boot no container
/// has run yet, so nothing else has written there; a link is refused all the same.
fn write_resolv_conf(root: &str, text: &str) -> std::io::Result<()> {
    let root = root.trim_end_matches('/');
    let dir = format!("{root}{RESOLV_DIR}");
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    // A small tmpfs of its own: the DHCP client's container writes here, and must not be
    // able to fill /run, where dory keeps its state.
    use nix::mount::{mount, MsFlags};
    if let Err(e) = mount(
        Some("tmpfs"),
        dir.as_str(),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(RESOLV_TMPFS),
    ) {
        say!("dory: net: {RESOLV_DIR}: tmpfs: {e}; using /run's");
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(format!("{root}{RESOLV_CONF}"))?;
    f.write_all(text.as_bytes())
}

/// Unmounts [`RESOLV_DIR`]'s tmpfs below `root` at shutdown (nothing if it is not one).
pub fn unmount(root: &str) {
    let dir = format!("{}{RESOLV_DIR}", root.trim_end_matches('/'));
    match nix::mount::umount2(dir.as_str(), nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
        Err(e) => say!("dory: net: unmount {dir}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>(
        name: &'a str,
        address: Option<&'a str>,
        gateway: Option<&'a str>,
        dns: Option<&'a [&'a str]>,
        dhcp: Option<bool>,
    ) -> RawInterface<'a> {
        let dns = dns.map(|d| Vec::from_slice(d).unwrap());
        RawInterface {
            interface: name,
            address,
            gateway,
            dns,
            dhcp,
            timeout_secs: None,
        }
    }

    #[test]
    fn ipv4_addresses_are_strict() {
        assert_eq!(parse_ipv4("10.0.2.15"), Some([10, 0, 2, 15]));
        assert_eq!(parse_ipv4("0.0.0.0"), Some([0, 0, 0, 0]));
        assert_eq!(parse_ipv4("255.255.255.255"), Some([255; 4]));
        for bad in [
            "",
            "10.0.2",
            "10.0.2.15.1",
            "10.0.2.256",
            "010.0.2.15",
            "10.0.2.x",
            " 10.0.2.1",
            "10..2.1",
            "1e1.0.0.1",
            "+1.0.0.1",
            "1000.0.0.1",
        ] {
            assert_eq!(parse_ipv4(bad), None, "{bad}");
        }
        assert_eq!(parse_cidr("10.0.2.15/24"), Some(([10, 0, 2, 15], 24)));
        assert_eq!(parse_cidr("10.0.2.15/32"), Some(([10, 0, 2, 15], 32)));
        for bad in [
            "10.0.2.15",
            "10.0.2.15/0",
            "10.0.2.15/33",
            "10.0.2.15/024",
            "10.0.2.15/",
        ] {
            assert_eq!(parse_cidr(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_static_interface_with_gateway_and_dns() {
        let dns: &[&str] = &["10.0.2.3", "1.1.1.1"];
        let itf = interface(
            0,
            &raw(
                "eth0",
                Some("10.0.2.77/24"),
                Some("10.0.2.2"),
                Some(dns),
                None,
            ),
        )
        .unwrap();
        assert_eq!(itf.timeout_secs, DEFAULT_LINK_TIMEOUT_SECS);
        let Setup::Static {
            address,
            prefix,
            gateway,
            dns,
        } = &itf.setup
        else {
            panic!("not static")
        };
        assert_eq!(
            (*address, *prefix, *gateway),
            ([10, 0, 2, 77], 24, Some([10, 0, 2, 2]))
        );
        assert_eq!(dns.as_slice(), &[[10, 0, 2, 3], [1, 1, 1, 1]]);
        assert_eq!(
            resolv_conf(&[itf]),
            "nameserver 10.0.2.3\nnameserver 1.1.1.1\n"
        );
    }

    #[test]
    fn errors_name_the_field_and_the_rule() {
        let bad_dns: &[&str] = &["1.1.1.1", "dns.example"];
        let cases: &[(RawInterface<'_>, &str)] = &[
            (
                raw("eth0/x", None, None, None, Some(true)),
                "network[0].interface",
            ),
            (
                raw("averyveryverylongname", None, None, None, Some(true)),
                "network[0].interface",
            ),
            (
                raw("eth0", None, None, None, None),
                "network[0].address: missing",
            ),
            (
                raw("eth0", None, None, None, Some(false)),
                "network[0].address: missing",
            ),
            (
                raw("eth0", Some("10.0.0.2/8"), None, None, Some(true)),
                "network[0].dhcp",
            ),
            (
                raw("eth0", None, Some("10.0.0.1"), None, Some(true)),
                "network[0].gateway: comes from the DHCP",
            ),
            (
                raw("eth0", Some("10.0.0.2"), None, None, None),
                "network[0].address: \"10.0.0.2\" is not",
            ),
            (
                raw("eth0", Some("10.0.0.2/8"), Some("11.0.0.1"), None, None),
                "network[0].gateway: 11.0.0.1 is not another address",
            ),
            (
                raw("eth0", Some("10.0.0.2/8"), Some("10.0.0.2"), None, None),
                "network[0].gateway",
            ),
            (
                raw("eth0", Some("10.0.0.2/8"), None, Some(bad_dns), None),
                "network[0].dns[1]: \"dns.example\"",
            ),
        ];
        for (r, want) in cases {
            let e = interface(0, r).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e} (wanted {want})");
        }
        let mut t = raw("eth0", None, None, None, Some(true));
        t.timeout_secs = Some(61);
        let e = interface(0, &t).unwrap_err().to_string();
        assert_eq!(e, "network[0].timeoutSecs: 61 is outside 1-60 (limit)");
        let twice = [
            raw("eth0", None, None, None, Some(true)),
            raw("eth0", Some("10.0.0.2/8"), None, None, None),
        ];
        let e = interfaces(&twice).unwrap_err().to_string();
        assert_eq!(e, "network[1].interface: \"eth0\" is configured twice");
    }

    #[test]
    fn a_dhcp_interface_writes_no_name_servers() {
        let itf = interface(0, &raw("eth0", None, None, None, Some(true))).unwrap();
        assert_eq!(itf.setup, Setup::Dhcp);
        assert_eq!(resolv_conf(&[itf]), "");
    }
}
