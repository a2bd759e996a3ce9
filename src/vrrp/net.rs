//! Raw VRRP socket under tokio, and interface lookups.
//!
//! One socket per instance: raw IPv4 protocol 112 with `IP_HDRINCL` (we build the
//! IP header so the v3 pseudo-header source is exactly what goes on the wire),
//! bound to the interface, member of 224.0.0.18 there, multicast loop off.

use std::io::{self, IoSliceMut, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use nix::sys::socket::{self as nixsock, sockopt, ControlMessageOwned, MsgFlags, SockaddrIn6};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::packet::{self, DecodeError, Received, IPPROTO_VRRP, MCAST_GROUP, MCAST_GROUP6, VRRP_TTL};

pub struct VrrpSocket {
    fd: AsyncFd<Socket>,
    /// IPv6 sockets deliver the VRRP payload only; addresses come from recvmsg.
    v6: Option<u32>,
}

impl VrrpSocket {
    pub fn open(ifname: &str, ifindex: u32) -> io::Result<VrrpSocket> {
        let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(i32::from(IPPROTO_VRRP))))?;
        s.set_header_included_v4(true)?;
        // Only adverts that arrived on our interface (keepalived does the same).
        s.bind_device(Some(ifname.as_bytes()))?;
        s.join_multicast_v4_n(&MCAST_GROUP, &InterfaceIndexOrAddress::Index(ifindex))?;
        s.set_multicast_loop_v4(false)?;
        s.set_nonblocking(true)?;
        // SAFETY: the Socket owns its descriptor and the AsyncFd owns the Socket,
        // so the fd stays open and unchanged for the AsyncFd's whole life.
        let fd = unsafe { AsyncFd::register_with_interest(s, tokio::io::Interest::READABLE) }?;
        Ok(VrrpSocket { fd, v6: None })
    }

    /// IPv6 (VRRPv3 only): the kernel builds the IPv6 header and computes and
    /// verifies the checksum (IPV6_CHECKSUM at offset 6, as keepalived sets it).
    /// Bound to our link-local address so the source is deterministic.
    pub fn open6(ifname: &str, ifindex: u32, src: Ipv6Addr) -> io::Result<VrrpSocket> {
        let s = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::from(i32::from(IPPROTO_VRRP))))?;
        s.bind_device(Some(ifname.as_bytes()))?;
        // The link-local address may still be tentative (DAD) at startup.
        s.set_freebind_v6(true)?;
        s.bind(&SockAddr::from(SocketAddrV6::new(src, 0, 0, ifindex)))?;
        s.join_multicast_v6(&MCAST_GROUP6, ifindex)?;
        s.set_multicast_loop_v6(false)?;
        s.set_multicast_hops_v6(u32::from(VRRP_TTL))?;
        s.set_unicast_hops_v6(u32::from(VRRP_TTL))?;
        s.set_multicast_if_v6(ifindex)?;
        let off: libc::c_int = 6;
        // SAFETY: setsockopt with a c_int option value of the right size.
        let r = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::IPPROTO_IPV6,
                libc::IPV6_CHECKSUM,
                (&raw const off).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        nixsock::setsockopt(&s, sockopt::Ipv6RecvPacketInfo, &true)?;
        nixsock::setsockopt(&s, sockopt::Ipv6RecvHopLimit, &true)?;
        s.set_nonblocking(true)?;
        // SAFETY: as in `open`.
        let fd = unsafe { AsyncFd::register_with_interest(s, tokio::io::Interest::READABLE) }?;
        Ok(VrrpSocket { fd, v6: Some(ifindex) })
    }

    /// Receives and decodes one advert. Outer error: the socket failed; inner:
    /// the datagram was not a valid advert.
    pub async fn recv_advert(&self, buf: &mut [u8]) -> io::Result<Result<Received, DecodeError>> {
        if self.v6.is_none() {
            let n = self.recv(buf).await?;
            return Ok(packet::decode_ipv4(&buf[..n]));
        }
        loop {
            let mut g = self.fd.readable().await?;
            let r = g.try_io(|s| {
                let mut iov = [IoSliceMut::new(buf)];
                let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int);
                let m = nixsock::recvmsg::<SockaddrIn6>(
                    s.get_ref().as_raw_fd(),
                    &mut iov,
                    Some(&mut cmsg),
                    MsgFlags::empty(),
                )?;
                let (mut dst, mut hops) = (Ipv6Addr::UNSPECIFIED, 0u8);
                if let Ok(cms) = m.cmsgs() {
                    for c in cms {
                        match c {
                            ControlMessageOwned::Ipv6PacketInfo(pi) => {
                                dst = Ipv6Addr::from(pi.ipi6_addr.s6_addr)
                            }
                            ControlMessageOwned::Ipv6HopLimit(h) => hops = h.clamp(0, 255) as u8,
                            _ => {}
                        }
                    }
                }
                let src = m.address.map(|a| a.ip()).unwrap_or(Ipv6Addr::UNSPECIFIED);
                Ok((m.bytes, src, dst, hops))
            });
            match r {
                Ok(Ok((n, src, dst, hops))) => {
                    return Ok(packet::decode_vrrp6(&buf[..n.min(buf.len())], src, dst, hops));
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends one advert: a whole IPv4 datagram, or an IPv6 payload.
    pub fn send_to(&self, pkt: &[u8], dst: IpAddr) -> io::Result<()> {
        match (dst, self.v6) {
            (IpAddr::V4(d), _) => self.send(pkt, d),
            (IpAddr::V6(d), Some(idx)) => {
                let addr = SockAddr::from(SocketAddrV6::new(d, 0, 0, idx));
                self.fd.get_ref().send_to(pkt, &addr).map(|_| ())
            }
            (IpAddr::V6(_), None) => {
                Err(io::Error::new(io::ErrorKind::InvalidInput, "IPv6 on an IPv4 socket"))
            }
        }
    }

    /// Receives one whole IPv4 datagram (header included, as raw sockets do).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut g = self.fd.readable().await?;
            match g.try_io(|s| s.get_ref().read(buf)) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends a complete IPv4 datagram. Non-blocking: a full socket buffer drops
    /// the advert (the next one follows within an interval), which we report.
    pub fn send(&self, pkt: &[u8], dst: Ipv4Addr) -> io::Result<()> {
        let addr = SockAddr::from(SocketAddrV4::new(dst, 0));
        self.fd.get_ref().send_to(pkt, &addr).map(|_| ())
    }
}

/// What the edge needs to know about an interface.
#[derive(Debug, Clone, Default)]
pub struct IfInfo {
    pub index: u32,
    pub mac: Option<[u8; 6]>,
    /// IPv4 addresses in kernel order (the first is the primary).
    pub addrs: Vec<Ipv4Addr>,
    /// IPv6 link-local addresses.
    pub ll6: Vec<Ipv6Addr>,
    /// Administratively up and with carrier.
    pub running: bool,
}

pub fn if_info(name: &str) -> Option<IfInfo> {
    let index = nix::net::if_::if_nametoindex(name).ok()?;
    let mut info = IfInfo { index, ..IfInfo::default() };
    let Ok(list) = nix::ifaddrs::getifaddrs() else { return Some(info) };
    for ifa in list {
        if ifa.interface_name != name {
            continue;
        }
        let f = ifa.flags;
        use nix::net::if_::InterfaceFlags as F;
        if f.contains(F::IFF_UP) && f.contains(F::IFF_RUNNING) {
            info.running = true;
        }
        let Some(a) = ifa.address else { continue };
        if let Some(sin) = a.as_sockaddr_in() {
            info.addrs.push(sin.ip());
        } else if let Some(sin6) = a.as_sockaddr_in6() {
            if sin6.ip().segments()[0] & 0xffc0 == 0xfe80 {
                info.ll6.push(sin6.ip());
            }
        } else if let Some(ll) = a.as_link_addr() {
            info.mac = ll.addr();
        }
    }
    Some(info)
}
