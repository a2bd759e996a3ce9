//! Raw VRRP socket under tokio, and interface lookups.
//!
//! One socket per instance: raw IPv4 protocol 112 with `IP_HDRINCL` (we build the
//! IP header so the v3 pseudo-header source is exactly what goes on the wire),
//! bound to the interface, member of 224.0.0.18 there, multicast loop off.

use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddrV4};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::packet::{IPPROTO_VRRP, MCAST_GROUP};

pub struct VrrpSocket {
    fd: AsyncFd<Socket>,
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
        Ok(VrrpSocket { fd })
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
        } else if let Some(ll) = a.as_link_addr() {
            info.mac = ll.addr();
        }
    }
    Some(info)
}
