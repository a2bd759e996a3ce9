//! Virtual addresses through rtnetlink, and gratuitous ARP.
//!
//! rtnetlink is spoken by hand (one RTM_NEWADDR/RTM_DELADDR request and its ack):
//! two message types do not justify a netlink crate stack on the appliance.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV6};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_LABEL: u16 = 3;
const IFA_BROADCAST: u16 = 4;

fn rtattr(buf: &mut Vec<u8>, ty: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(data);
    while buf.len() % 4 != 0 {
        buf.push(0);
    }
}

/// IFA_F_NODAD: an IPv6 VIP must be usable at once, not after duplicate
/// address detection (keepalived sets it too).
const IFA_F_NODAD: u8 = 0x02;

/// Builds the RTM_NEWADDR/RTM_DELADDR request (exposed for the unit test).
pub fn addr_request(
    add: bool,
    seq: u32,
    ifindex: u32,
    addr: IpAddr,
    prefix: u8,
    label: Option<&str>,
) -> Vec<u8> {
    let mut m = vec![0u8; 16];
    let (family, octets, flags) = match addr {
        IpAddr::V4(a) => (libc::AF_INET as u8, a.octets().to_vec(), 0),
        IpAddr::V6(a) => (libc::AF_INET6 as u8, a.octets().to_vec(), IFA_F_NODAD),
    };
    // struct ifaddrmsg
    m.push(family);
    m.push(prefix);
    m.push(flags);
    m.push(0); // scope: RT_SCOPE_UNIVERSE
    m.extend_from_slice(&ifindex.to_ne_bytes());
    rtattr(&mut m, IFA_LOCAL, &octets);
    rtattr(&mut m, IFA_ADDRESS, &octets);
    if let IpAddr::V4(a) = addr {
        if add && prefix < 31 {
            // Broadcast as `ip addr add ... brd +` would set it.
            let mask = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
            rtattr(&mut m, IFA_BROADCAST, &(u32::from(a) | mask).to_be_bytes());
        }
        // Labels are an IPv4 notion (`eth0:1`).
        if let Some(l) = label {
            let mut b = l.as_bytes()[..l.len().min(15)].to_vec();
            b.push(0);
            rtattr(&mut m, IFA_LABEL, &b);
        }
    }
    let len = m.len() as u32;
    let (ty, flags) = if add {
        (RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)
    } else {
        (RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK)
    };
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    m[4..6].copy_from_slice(&ty.to_ne_bytes());
    m[6..8].copy_from_slice(&flags.to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    m
}

/// Adds or removes one address. Adding an address that is already there,
/// or removing one that is not, is success: the goal state is what matters.
pub fn change_addr(add: bool, ifindex: u32, addr: IpAddr, prefix: u8, label: Option<&str>) -> io::Result<()> {
    let s =
        Socket::new(Domain::from(libc::AF_NETLINK), Type::RAW, Some(Protocol::from(libc::NETLINK_ROUTE)))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    let seq = std::process::id() ^ u32::from(prefix) ^ 0x5652_5250;
    // Unconnected netlink socket: send() goes to the kernel (port id 0).
    s.send(&addr_request(add, seq, ifindex, addr, prefix, label))?;
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
    loop {
        let n = s.recv(&mut buf)?;
        // SAFETY: recv initialised the first n bytes.
        let b: Vec<u8> = buf[..n].iter().map(|x| unsafe { x.assume_init() }).collect();
        let mut off = 0;
        while off + 16 <= b.len() {
            let len = u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]]) as usize;
            let ty = u16::from_ne_bytes([b[off + 4], b[off + 5]]);
            let mseq = u32::from_ne_bytes([b[off + 8], b[off + 9], b[off + 10], b[off + 11]]);
            if len < 16 || off + len > b.len() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "bad netlink reply"));
            }
            if ty == NLMSG_ERROR && mseq == seq && len >= 20 {
                let err = i32::from_ne_bytes([b[off + 16], b[off + 17], b[off + 18], b[off + 19]]);
                return match -err {
                    0 => Ok(()),
                    libc::EEXIST if add => Ok(()),
                    libc::EADDRNOTAVAIL if !add => Ok(()),
                    e => Err(io::Error::from_raw_os_error(e)),
                };
            }
            off += (len + 3) & !3;
        }
    }
}

/// Ethernet frame of a gratuitous ARP request for `ip`, as keepalived sends it
/// (broadcast, sender = target = the VIP, target MAC broadcast).
pub fn garp_frame(mac: [u8; 6], ip: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x06]);
    f.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ip.octets());
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&ip.octets());
    f
}

/// Sends gratuitous ARPs through an AF_PACKET socket on `ifindex`.
pub fn send_garp(ifindex: u32, mac: [u8; 6], ips: &[Ipv4Addr], repeat: u32) -> io::Result<()> {
    let s = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(i32::from(0x0806u16.to_be()))))?;
    // SAFETY: sockaddr_ll is plain old data; zeroed is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = 0x0806u16.to_be();
    sll.sll_ifindex = ifindex as i32;
    sll.sll_halen = 6;
    sll.sll_addr[..6].copy_from_slice(&[0xff; 6]);
    for _ in 0..repeat {
        for ip in ips {
            let f = garp_frame(mac, *ip);
            // SAFETY: valid fd, buffer and sockaddr_ll of the length we pass.
            let r = unsafe {
                libc::sendto(
                    std::os::fd::AsRawFd::as_raw_fd(&s),
                    f.as_ptr().cast(),
                    f.len(),
                    0,
                    (&raw const sll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// ICMPv6 unsolicited neighbour advertisement for `ip` (RFC 4861 7.2.6): the
/// IPv6 counterpart of a gratuitous ARP. Override flag set, target link-layer
/// address option; the kernel fills the ICMPv6 checksum on raw sockets.
pub fn na_message(mac: [u8; 6], ip: Ipv6Addr) -> Vec<u8> {
    let mut m = vec![136, 0, 0, 0, 0x20, 0, 0, 0];
    m.extend_from_slice(&ip.octets());
    m.extend_from_slice(&[2, 1]);
    m.extend_from_slice(&mac);
    m
}

/// Sends unsolicited neighbour advertisements to all-nodes on `ifindex`.
pub fn send_na(ifindex: u32, mac: [u8; 6], ips: &[Ipv6Addr], repeat: u32) -> io::Result<()> {
    let s = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    // RFC 4861: neighbour discovery messages must carry hop limit 255.
    s.set_multicast_hops_v6(255)?;
    s.set_multicast_if_v6(ifindex)?;
    let dst =
        socket2::SockAddr::from(SocketAddrV6::new(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1), 0, 0, ifindex));
    for _ in 0..repeat {
        for ip in ips {
            s.send_to(&na_message(mac, *ip), &dst)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netlink_request_layout() {
        let m = addr_request(true, 7, 3, Ipv4Addr::new(10, 0, 0, 100).into(), 24, Some("eth0:1"));
        assert_eq!(u32::from_ne_bytes([m[0], m[1], m[2], m[3]]) as usize, m.len());
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), RTM_NEWADDR);
        assert_eq!(m[16], libc::AF_INET as u8);
        assert_eq!(m[17], 24);
        assert_eq!(u32::from_ne_bytes([m[20], m[21], m[22], m[23]]), 3);
        // IFA_LOCAL first
        assert_eq!(&m[28..32], &[10, 0, 0, 100]);
        assert_eq!(m.len() % 4, 0);
        let d = addr_request(false, 7, 3, Ipv4Addr::new(10, 0, 0, 100).into(), 24, None);
        assert_eq!(u16::from_ne_bytes([d[4], d[5]]), RTM_DELADDR);
    }

    #[test]
    fn garp_layout() {
        let f = garp_frame([2, 0, 0, 0, 0, 1], Ipv4Addr::new(10, 0, 0, 100));
        assert_eq!(f.len(), 42);
        assert_eq!(&f[12..14], &[8, 6]);
        assert_eq!(&f[28..32], &[10, 0, 0, 100]);
        assert_eq!(&f[38..42], &[10, 0, 0, 100]);
    }
}
