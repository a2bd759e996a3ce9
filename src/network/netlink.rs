//! rtnetlink spoken by hand over a NETLINK_ROUTE socket (links, addresses,
//! routes), in the style of `vrrp::addr`: a dozen message types do not justify
//! a netlink crate stack on the appliance.
//!
//! Every request asks for an ack; the kernel's errno (and its extended-ack
//! text when it gives one) becomes a message naming the interface, address or
//! route concerned. "Already so" answers (EEXIST on add, ESRCH/EADDRNOTAVAIL on
//! delete) are `Change::Unchanged`, not errors: the caller decides whether the
//! object is its own.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::conf::rc::{Cidr, Route};

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
/// In an error reply: the original request is not echoed (NETLINK_CAP_ACK).
const NLM_F_CAPPED: u16 = 0x100;
/// In an error reply: extended-ack attributes follow.
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;
const SOL_NETLINK: libc::c_int = 270;
const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;

pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_SETLINK: u16 = 19;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
pub const RTM_GETADDR: u16 = 22;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_DELROUTE: u16 = 25;

const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINK: u16 = 5;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const IFLA_VLAN_ID: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_TABLE: u16 = 15;
const IFF_UP: u32 = 0x1;
/// IPv6 addresses are usable at once, not after duplicate address detection.
const IFA_F_NODAD: u8 = 0x02;
const RT_TABLE_MAIN: u8 = 254;
const RTN_UNICAST: u8 = 1;

/// `rtm_protocol` of every route Lanai adds (static and DHCP), so that they
/// are recognisable (`ip route show proto 76`) and our deletes never match
/// an identical route someone else added. 76 = 'L', unassigned in rt_protos.
pub const RTPROT_LANAI: u8 = 76;

/// What a request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Done,
    /// Already as asked (the object existed, or was already gone).
    Unchanged,
}

/// A link as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub flags: u32,
    pub mtu: u32,
}

impl Link {
    pub fn up(&self) -> bool {
        self.flags & IFF_UP != 0
    }
}

/// What the kernel answered to a request.
#[derive(Debug)]
struct NlError {
    errno: i32,
    /// Extended ack text ("Nexthop has invalid gateway"...).
    ext: Option<String>,
}

impl std::fmt::Display for NlError {
    /// The kernel's own words first when it gave some: "Nexthop has invalid
    /// gateway (Invalid argument)".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = io::Error::from_raw_os_error(self.errno).to_string();
        let text = text.split(" (os error").next().unwrap_or_default();
        match &self.ext {
            Some(e) => write!(f, "{e} ({text})"),
            None => write!(f, "{text}"),
        }
    }
}

impl From<io::Error> for NlError {
    fn from(e: io::Error) -> Self {
        let ext = e.raw_os_error().is_none().then(|| e.to_string());
        NlError { errno: e.raw_os_error().unwrap_or(libc::EIO), ext }
    }
}

// ---- encoding ----

/// Appends one attribute (4-byte aligned).
fn rtattr(buf: &mut Vec<u8>, ty: u16, data: &[u8]) {
    buf.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(data);
    while buf.len() % 4 != 0 {
        buf.push(0);
    }
}

/// Appends a nested attribute holding what `fill` appends.
fn nested(buf: &mut Vec<u8>, ty: u16, fill: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&[0, 0]);
    buf.extend_from_slice(&ty.to_ne_bytes());
    fill(buf);
    let len = (buf.len() - start) as u16;
    buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
}

fn cstr(s: &str) -> Vec<u8> {
    let mut b = s.as_bytes().to_vec();
    b.push(0);
    b
}

fn octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn family(a: IpAddr) -> u8 {
    if a.is_ipv4() {
        libc::AF_INET as u8
    } else {
        libc::AF_INET6 as u8
    }
}

/// A message: header (length and seq filled by `finish`) then `body`.
fn message(ty: u16, flags: u16) -> Vec<u8> {
    let mut m = vec![0u8; NLMSG_HDRLEN];
    m[4..6].copy_from_slice(&ty.to_ne_bytes());
    m[6..8].copy_from_slice(&flags.to_ne_bytes());
    m
}

fn finish(mut m: Vec<u8>, seq: u32) -> Vec<u8> {
    let len = m.len() as u32;
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    m
}

/// struct ifinfomsg.
fn ifinfomsg(m: &mut Vec<u8>, index: u32, flags: u32, change: u32) {
    m.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
    m.extend_from_slice(&index.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&change.to_ne_bytes());
}

/// RTM_GETLINK by name.
pub fn get_link_request(name: &str) -> Vec<u8> {
    let mut m = message(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK);
    ifinfomsg(&mut m, 0, 0, 0);
    rtattr(&mut m, IFLA_IFNAME, &cstr(name));
    m
}

/// Kind of link created by Lanai.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewLink {
    Vlan { parent: u32, id: u16 },
    Dummy,
}

/// RTM_NEWLINK creating a VLAN or dummy link (fails with EEXIST if the name is taken).
pub fn new_link_request(name: &str, kind: NewLink) -> Vec<u8> {
    let mut m = message(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
    ifinfomsg(&mut m, 0, 0, 0);
    rtattr(&mut m, IFLA_IFNAME, &cstr(name));
    match kind {
        NewLink::Vlan { parent, id } => {
            rtattr(&mut m, IFLA_LINK, &parent.to_ne_bytes());
            nested(&mut m, IFLA_LINKINFO, |b| {
                rtattr(b, IFLA_INFO_KIND, b"vlan");
                nested(b, IFLA_INFO_DATA, |b| rtattr(b, IFLA_VLAN_ID, &id.to_ne_bytes()));
            });
        }
        NewLink::Dummy => nested(&mut m, IFLA_LINKINFO, |b| rtattr(b, IFLA_INFO_KIND, b"dummy")),
    }
    m
}

pub fn del_link_request(index: u32) -> Vec<u8> {
    let mut m = message(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK);
    ifinfomsg(&mut m, index, 0, 0);
    m
}

/// RTM_SETLINK: admin state (when `up` is given) and/or mtu.
pub fn set_link_request(index: u32, up: Option<bool>, mtu: Option<u32>) -> Vec<u8> {
    let mut m = message(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK);
    let (flags, change) = match up {
        Some(true) => (IFF_UP, IFF_UP),
        Some(false) => (0, IFF_UP),
        None => (0, 0),
    };
    ifinfomsg(&mut m, index, flags, change);
    if let Some(mtu) = mtu {
        rtattr(&mut m, IFLA_MTU, &mtu.to_ne_bytes());
    }
    m
}

/// RTM_NEWADDR/RTM_DELADDR for one address.
pub fn addr_request(add: bool, index: u32, cidr: Cidr) -> Vec<u8> {
    let mut m = if add {
        message(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)
    } else {
        message(RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK)
    };
    let flags = if cidr.addr.is_ipv6() { IFA_F_NODAD } else { 0 };
    m.extend_from_slice(&[family(cidr.addr), cidr.prefix, flags, 0]);
    m.extend_from_slice(&index.to_ne_bytes());
    let o = octets(cidr.addr);
    rtattr(&mut m, IFA_LOCAL, &o);
    rtattr(&mut m, IFA_ADDRESS, &o);
    if let IpAddr::V4(a) = cidr.addr {
        if add && cidr.prefix < 31 {
            // Broadcast as `ip addr add ... brd +` sets it.
            let host = u32::MAX.checked_shr(u32::from(cidr.prefix)).unwrap_or(0);
            rtattr(&mut m, IFA_BROADCAST, &(u32::from(a) | host).to_be_bytes());
        }
    }
    m
}

/// RTM_GETADDR dump (every family, every link: the kernel filters poorly).
pub fn get_addrs_request() -> Vec<u8> {
    let mut m = message(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP);
    m.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0, 0, 0, 0, 0]);
    m
}

/// RTM_NEWROUTE/RTM_DELROUTE in the main table, protocol `RTPROT_LANAI`.
pub fn route_request(add: bool, index: u32, route: &Route) -> Vec<u8> {
    let mut m = if add {
        message(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)
    } else {
        message(RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK)
    };
    let dst = route.destination;
    // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
    m.extend_from_slice(&[family(dst.addr), dst.prefix, 0, 0, RT_TABLE_MAIN, RTPROT_LANAI, 0, RTN_UNICAST]);
    m.extend_from_slice(&0u32.to_ne_bytes());
    if dst.prefix > 0 {
        rtattr(&mut m, RTA_DST, &octets(dst.addr));
    }
    rtattr(&mut m, RTA_GATEWAY, &octets(route.gateway));
    rtattr(&mut m, RTA_OIF, &index.to_ne_bytes());
    rtattr(&mut m, RTA_TABLE, &u32::from(RT_TABLE_MAIN).to_ne_bytes());
    m
}

// ---- decoding ----

fn u16_at(b: &[u8], off: usize) -> u16 {
    b.get(off..off + 2).map(|s| u16::from_ne_bytes([s[0], s[1]])).unwrap_or(0)
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4).map(|s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]])).unwrap_or(0)
}

/// Attributes in `b`: (type without flag bits, payload).
fn attrs(b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = vec![];
    let mut off = 0;
    while off + 4 <= b.len() {
        let len = usize::from(u16_at(b, off));
        if len < 4 || off + len > b.len() {
            break;
        }
        out.push((u16_at(b, off + 2) & 0x3fff, &b[off + 4..off + len]));
        off += (len + 3) & !3;
    }
    out
}

/// One message of a reply: type, flags, seq, payload.
struct Msg<'a> {
    ty: u16,
    flags: u16,
    seq: u32,
    payload: &'a [u8],
}

fn split(b: &[u8]) -> io::Result<Vec<Msg<'_>>> {
    let mut out = vec![];
    let mut off = 0;
    while off + NLMSG_HDRLEN <= b.len() {
        let len = u32_at(b, off) as usize;
        if len < NLMSG_HDRLEN || off + len > b.len() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "malformed netlink reply"));
        }
        out.push(Msg {
            ty: u16_at(b, off + 4),
            flags: u16_at(b, off + 6),
            seq: u32_at(b, off + 8),
            payload: &b[off + NLMSG_HDRLEN..off + len],
        });
        off += (len + 3) & !3;
    }
    Ok(out)
}

/// An NLMSG_ERROR payload: errno (0 = ack) and the extended-ack message.
fn parse_error(flags: u16, p: &[u8]) -> NlError {
    let errno = -(u32_at(p, 0) as i32);
    let mut ext = None;
    if flags & NLM_F_ACK_TLVS != 0 {
        // After the errno comes the original request: its header only when capped.
        let orig = if flags & NLM_F_CAPPED != 0 { NLMSG_HDRLEN } else { u32_at(p, 4) as usize };
        if let Some(tlvs) = p.get(4 + orig..) {
            ext = attrs(tlvs)
                .into_iter()
                .find(|(t, _)| *t == NLMSGERR_ATTR_MSG)
                .map(|(_, v)| String::from_utf8_lossy(v).trim_end_matches('\0').to_string());
        }
    }
    NlError { errno, ext }
}

/// An RTM_NEWLINK payload.
pub fn parse_link(p: &[u8]) -> Option<(String, Link)> {
    if p.len() < 16 {
        return None;
    }
    let index = u32_at(p, 4);
    let flags = u32_at(p, 8);
    let mut name = None;
    let mut mtu = 0;
    for (t, v) in attrs(&p[16..]) {
        match t {
            IFLA_IFNAME => name = Some(String::from_utf8_lossy(v).trim_end_matches('\0').to_string()),
            IFLA_MTU => mtu = u32_at(v, 0),
            _ => {}
        }
    }
    Some((name?, Link { index, flags, mtu }))
}

/// An RTM_NEWADDR payload: link index and address.
pub fn parse_addr(p: &[u8]) -> Option<(u32, Cidr)> {
    if p.len() < 8 {
        return None;
    }
    let (fam, prefix, index) = (p[0], p[1], u32_at(p, 4));
    let mut address = None;
    let mut local = None;
    for (t, v) in attrs(&p[8..]) {
        let ip = match (i32::from(fam), v.len()) {
            (libc::AF_INET, 4) => IpAddr::from(<[u8; 4]>::try_from(v).ok()?),
            (libc::AF_INET6, 16) => IpAddr::from(<[u8; 16]>::try_from(v).ok()?),
            _ => continue,
        };
        match t {
            IFA_ADDRESS => address = Some(ip),
            IFA_LOCAL => local = Some(ip),
            _ => {}
        }
    }
    // IFA_LOCAL is the address itself; IFA_ADDRESS the peer on point-to-point links.
    Some((index, Cidr { addr: local.or(address)?, prefix }))
}

// ---- the socket ----

pub struct Netlink {
    sock: Socket,
    seq: u32,
}

impl Netlink {
    pub fn open() -> io::Result<Netlink> {
        let sock = Socket::new(
            Domain::from(libc::AF_NETLINK),
            Type::RAW,
            Some(Protocol::from(libc::NETLINK_ROUTE)),
        )?;
        sock.set_read_timeout(Some(Duration::from_secs(5)))?;
        for opt in [NETLINK_CAP_ACK, NETLINK_EXT_ACK] {
            let one: libc::c_int = 1;
            // SAFETY: setsockopt with a c_int value of the right size on our own fd.
            // Failure (old kernels) only loses the extended error text.
            unsafe {
                libc::setsockopt(
                    std::os::fd::AsRawFd::as_raw_fd(&sock),
                    SOL_NETLINK,
                    opt,
                    (&raw const one).cast(),
                    std::mem::size_of::<libc::c_int>() as u32,
                );
            }
        }
        let seq = std::process::id().wrapping_mul(7919);
        Ok(Netlink { sock, seq })
    }

    /// Sends one request; returns the payloads of its reply messages, until
    /// the ack (or NLMSG_DONE for a dump).
    fn transact(&mut self, req: Vec<u8>) -> Result<Vec<(u16, Vec<u8>)>, NlError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        // Unconnected netlink socket: send() goes to the kernel (port id 0).
        self.sock.send(&finish(req, seq))?;
        let mut out = vec![];
        let mut buf = vec![std::mem::MaybeUninit::<u8>::uninit(); 64 * 1024];
        loop {
            let n = self.sock.recv(&mut buf)?;
            // SAFETY: recv initialised the first n bytes.
            let b: Vec<u8> = buf[..n].iter().map(|x| unsafe { x.assume_init() }).collect();
            for m in split(&b)? {
                if m.seq != seq {
                    continue; // a late answer to an earlier, timed-out request
                }
                match m.ty {
                    NLMSG_ERROR => {
                        let e = parse_error(m.flags, m.payload);
                        return if e.errno == 0 { Ok(out) } else { Err(e) };
                    }
                    NLMSG_DONE => return Ok(out),
                    ty => out.push((ty, m.payload.to_vec())),
                }
            }
        }
    }

    /// A link by name; `None` when there is none.
    pub fn link(&mut self, name: &str) -> Result<Option<Link>, String> {
        match self.transact(get_link_request(name)) {
            Ok(msgs) => Ok(msgs
                .iter()
                .filter(|(t, _)| *t == RTM_NEWLINK)
                .find_map(|(_, p)| parse_link(p))
                .map(|(_, l)| l)),
            Err(e) if e.errno == libc::ENODEV => Ok(None),
            Err(e) => Err(format!("{name}: cannot look up the interface: {e}")),
        }
    }

    pub fn create_link(&mut self, name: &str, kind: NewLink) -> Result<Change, String> {
        let what = match kind {
            NewLink::Vlan { .. } => "vlan",
            NewLink::Dummy => "dummy",
        };
        match self.transact(new_link_request(name, kind)) {
            Ok(_) => Ok(Change::Done),
            Err(e) if e.errno == libc::EEXIST => Ok(Change::Unchanged),
            Err(e) if e.errno == libc::EOPNOTSUPP => Err(format!(
                "{name}: cannot create {what} interface: the kernel does not support {what} links"
            )),
            Err(e) => Err(format!("{name}: cannot create {what} interface: {e}")),
        }
    }

    pub fn delete_link(&mut self, name: &str, index: u32) -> Result<Change, String> {
        match self.transact(del_link_request(index)) {
            Ok(_) => Ok(Change::Done),
            Err(e) if e.errno == libc::ENODEV => Ok(Change::Unchanged),
            Err(e) => Err(format!("{name}: cannot delete the interface: {e}")),
        }
    }

    pub fn set_up(&mut self, name: &str, index: u32, up: bool) -> Result<(), String> {
        self.transact(set_link_request(index, Some(up), None))
            .map(drop)
            .map_err(|e| format!("{name}: cannot set the link {}: {e}", if up { "up" } else { "down" }))
    }

    pub fn set_mtu(&mut self, name: &str, index: u32, mtu: u32) -> Result<(), String> {
        self.transact(set_link_request(index, None, Some(mtu)))
            .map(drop)
            .map_err(|e| format!("{name}: cannot set mtu {mtu}: {e}"))
    }

    pub fn add_address(&mut self, name: &str, index: u32, cidr: Cidr) -> Result<Change, String> {
        match self.transact(addr_request(true, index, cidr)) {
            Ok(_) => Ok(Change::Done),
            Err(e) if e.errno == libc::EEXIST => Ok(Change::Unchanged),
            Err(e) => Err(format!("{name}: cannot add address {cidr}: {e}")),
        }
    }

    pub fn del_address(&mut self, name: &str, index: u32, cidr: Cidr) -> Result<Change, String> {
        match self.transact(addr_request(false, index, cidr)) {
            Ok(_) => Ok(Change::Done),
            Err(e) if e.errno == libc::EADDRNOTAVAIL || e.errno == libc::ENODEV => Ok(Change::Unchanged),
            Err(e) => Err(format!("{name}: cannot remove address {cidr}: {e}")),
        }
    }

    /// Addresses on link `index`.
    pub fn addresses(&mut self, name: &str, index: u32) -> Result<Vec<Cidr>, String> {
        let msgs =
            self.transact(get_addrs_request()).map_err(|e| format!("{name}: cannot list addresses: {e}"))?;
        Ok(msgs
            .iter()
            .filter(|(t, _)| *t == RTM_NEWADDR)
            .filter_map(|(_, p)| parse_addr(p))
            .filter(|(i, _)| *i == index)
            .map(|(_, c)| c)
            .collect())
    }

    /// Removing a primary IPv4 address also removes the other addresses of
    /// its subnet (secondaries), ours or not, unless the interface promotes
    /// secondaries. Turn that on (the default of systemd-based systems) when
    /// such addresses exist, so that removing ours leaves theirs. (A sysctl,
    /// the one thing here not done through netlink.)
    pub fn keep_secondaries(&mut self, name: &str, index: u32, cidr: Cidr) {
        if cidr.addr.is_ipv6() {
            return;
        }
        let others = self.addresses(name, index).unwrap_or_default().into_iter().any(|c| {
            c != cidr && c.addr.is_ipv4() && c.prefix == cidr.prefix && c.network() == cidr.network()
        });
        if !others {
            return;
        }
        let path = format!("/proc/sys/net/ipv4/conf/{name}/promote_secondaries");
        if std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == "1") {
            return;
        }
        let others = "the other addresses of its subnet";
        match std::fs::write(&path, "1") {
            Ok(()) => {
                tracing::info!("{name}: promote_secondaries on, so that removing {cidr} keeps {others}")
            }
            Err(e) => tracing::warn!(
                "{name}: cannot turn promote_secondaries on ({e}): removing {cidr} also removes {others}"
            ),
        }
    }

    pub fn add_route(&mut self, name: &str, index: u32, route: &Route) -> Result<Change, String> {
        match self.transact(route_request(true, index, route)) {
            Ok(_) => Ok(Change::Done),
            Err(e) if e.errno == libc::EEXIST => Ok(Change::Unchanged),
            Err(e) if e.errno == libc::ENETUNREACH => Err(format!(
                "{name}: cannot add route {} via {}: gateway unreachable (no address of its network?) ({e})",
                route.destination, route.gateway
            )),
            Err(e) => {
                Err(format!("{name}: cannot add route {} via {}: {e}", route.destination, route.gateway))
            }
        }
    }

    pub fn del_route(&mut self, name: &str, index: u32, route: &Route) -> Result<Change, String> {
        match self.transact(route_request(false, index, route)) {
            Ok(_) => Ok(Change::Done),
            Err(e) if e.errno == libc::ESRCH || e.errno == libc::ENODEV => Ok(Change::Unchanged),
            Err(e) => {
                Err(format!("{name}: cannot remove route {} via {}: {e}", route.destination, route.gateway))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(m: &[u8]) -> (usize, u16, u16) {
        (u32_at(m, 0) as usize, u16_at(m, 4), u16_at(m, 6))
    }

    #[test]
    fn vlan_request_nests_kind_and_id() {
        let m = finish(new_link_request("veth0.100", NewLink::Vlan { parent: 7, id: 100 }), 1);
        let (len, ty, flags) = header(&m);
        assert_eq!((len, ty), (m.len(), RTM_NEWLINK));
        assert_eq!(flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        let a = attrs(&m[32..]);
        assert_eq!(a[0], (IFLA_IFNAME, &b"veth0.100\0"[..]));
        assert_eq!(a[1], (IFLA_LINK, &7u32.to_ne_bytes()[..]));
        assert_eq!(a[2].0, IFLA_LINKINFO);
        let info = attrs(a[2].1);
        assert_eq!(info[0], (IFLA_INFO_KIND, &b"vlan"[..]));
        assert_eq!(info[1].0, IFLA_INFO_DATA);
        assert_eq!(attrs(info[1].1), vec![(IFLA_VLAN_ID, &100u16.to_ne_bytes()[..])]);
        let d = new_link_request("dummy0", NewLink::Dummy);
        let a = attrs(&d[32..]);
        assert_eq!(attrs(a[1].1), vec![(IFLA_INFO_KIND, &b"dummy"[..])]);
    }

    #[test]
    fn setlink_up_and_mtu() {
        let m = set_link_request(3, Some(true), Some(1400));
        assert_eq!(u16_at(&m, 4), RTM_SETLINK);
        assert_eq!((u32_at(&m, 20), u32_at(&m, 24), u32_at(&m, 28)), (3, IFF_UP, IFF_UP));
        assert_eq!(attrs(&m[32..]), vec![(IFLA_MTU, &1400u32.to_ne_bytes()[..])]);
        let m = set_link_request(3, None, Some(9000));
        assert_eq!((u32_at(&m, 24), u32_at(&m, 28)), (0, 0));
        let m = del_link_request(9);
        assert_eq!((u16_at(&m, 4), u32_at(&m, 20)), (RTM_DELLINK, 9));
    }

    #[test]
    fn address_requests() {
        let m = addr_request(true, 4, Cidr::parse("192.0.2.1/24").unwrap());
        assert_eq!(u16_at(&m, 4), RTM_NEWADDR);
        assert_eq!(&m[16..20], &[libc::AF_INET as u8, 24, 0, 0]);
        assert_eq!(u32_at(&m, 20), 4);
        let a = attrs(&m[24..]);
        assert_eq!(a[0], (IFA_LOCAL, &[192, 0, 2, 1][..]));
        assert_eq!(a[2], (IFA_BROADCAST, &[192, 0, 2, 255][..]));
        let m = addr_request(false, 4, Cidr::parse("2001:db8::1/64").unwrap());
        assert_eq!(u16_at(&m, 4), RTM_DELADDR);
        assert_eq!(&m[16..19], &[libc::AF_INET6 as u8, 64, IFA_F_NODAD]);
        assert_eq!(attrs(&m[24..]).len(), 2);
        // What the kernel sends back decodes to the same address.
        assert_eq!(parse_addr(&m[16..]), Some((4, Cidr::parse("2001:db8::1/64").unwrap())));
    }

    #[test]
    fn route_requests_carry_our_protocol() {
        let r = Route {
            destination: Cidr::parse("10.20.0.0/16").unwrap(),
            gateway: "10.0.0.254".parse().unwrap(),
        };
        let m = route_request(true, 5, &r);
        assert_eq!(u16_at(&m, 4), RTM_NEWROUTE);
        assert_eq!(&m[16..24], &[libc::AF_INET as u8, 16, 0, 0, RT_TABLE_MAIN, RTPROT_LANAI, 0, RTN_UNICAST]);
        let a = attrs(&m[28..]);
        assert_eq!(a[0], (RTA_DST, &[10, 20, 0, 0][..]));
        assert_eq!(a[1], (RTA_GATEWAY, &[10, 0, 0, 254][..]));
        assert_eq!(a[2], (RTA_OIF, &5u32.to_ne_bytes()[..]));
        // A default route has no RTA_DST.
        let d = Route { destination: Cidr::parse("::/0").unwrap(), gateway: "2001:db8::fe".parse().unwrap() };
        let m = route_request(false, 5, &d);
        assert_eq!(u16_at(&m, 4), RTM_DELROUTE);
        assert_eq!(m[17], 0);
        assert_eq!(attrs(&m[28..])[0].0, RTA_GATEWAY);
    }

    #[test]
    fn error_reply_with_extended_ack() {
        // errno -EINVAL, capped original header, then NLMSGERR_ATTR_MSG.
        let mut p = (-libc::EINVAL).to_ne_bytes().to_vec();
        p.extend_from_slice(&[0u8; 16]);
        rtattr(&mut p, NLMSGERR_ATTR_MSG, b"Nexthop has invalid gateway\0");
        let e = parse_error(NLM_F_CAPPED | NLM_F_ACK_TLVS, &p);
        assert_eq!(e.errno, libc::EINVAL);
        assert_eq!(e.ext.as_deref(), Some("Nexthop has invalid gateway"));
        assert_eq!(e.to_string(), "Nexthop has invalid gateway (Invalid argument)");
        let ack = parse_error(NLM_F_CAPPED, &0i32.to_ne_bytes());
        assert_eq!((ack.errno, ack.ext), (0, None));
    }

    #[test]
    fn link_reply_decodes() {
        let mut p = vec![];
        ifinfomsg(&mut p, 12, IFF_UP | 0x40, 0);
        rtattr(&mut p, IFLA_IFNAME, b"eth0\0");
        rtattr(&mut p, IFLA_MTU, &1500u32.to_ne_bytes());
        let (name, link) = parse_link(&p).unwrap();
        assert_eq!(name, "eth0");
        assert_eq!(link, Link { index: 12, flags: IFF_UP | 0x40, mtu: 1500 });
        assert!(link.up());
        assert!(parse_link(&p[..10]).is_none());
    }
}
