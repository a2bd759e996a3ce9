//! Typed model of config.rc: one block per `service NAME [instance]`.

use std::net::IpAddr;

/// The whole file: its service blocks in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcConfig {
    pub blocks: Vec<ServiceBlock>,
}

/// One `service NAME [instance]` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceBlock {
    pub service: String,
    pub instance: Option<String>,
    /// Line of the `service` keyword.
    pub line: usize,
    /// False when the block says `no autostart`.
    pub autostart: bool,
    /// Set for `service network IF` blocks.
    pub network: Option<Interface>,
}

/// What `service network IF` asks of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub line: usize,
    pub kind: InterfaceKind,
    /// `auto on` (default) configures it when the network service starts;
    /// `auto off` keeps the block for later without touching the interface.
    pub auto: bool,
    pub mtu: Option<u32>,
    pub addresses: Vec<Address>,
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterfaceKind {
    /// An interface that exists already (a NIC, `lo`, a veth).
    Existing,
    /// `PARENT.ID`: an 802.1Q VLAN created on PARENT.
    Vlan { parent: String, id: u16 },
    /// `type dummy`: created by the service (a home for local addresses).
    Dummy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Address {
    Static(Cidr),
    /// `ip address dhcp`: IPv4 lease from a DHCP client.
    Dhcp,
}

/// An address or network with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) =
            s.split_once('/').ok_or_else(|| format!("'{s}' needs a prefix length (ADDR/LEN)"))?;
        let addr: IpAddr = addr.parse().map_err(|_| format!("'{addr}' is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("'{prefix}' is not a prefix length (0-{max})"))?;
        Ok(Cidr { addr, prefix })
    }

    /// The network part only (host bits cleared): what a route names.
    pub fn network(&self) -> Cidr {
        let addr = match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        };
        Cidr { addr, prefix: self.prefix }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

// As "ADDR/LEN" text: the network service's state file and `show` output.
impl serde::Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        let s = String::deserialize(d)?;
        Cidr::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// `ip route DEST GATEWAY` (`default` is 0.0.0.0/0 or ::/0 by the gateway's family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Route {
    pub destination: Cidr,
    pub gateway: IpAddr,
}

impl RcConfig {
    /// Whether `service` starts at boot: false only when one of its blocks
    /// says `no autostart`.
    pub fn autostart(&self, service: &str) -> bool {
        self.blocks.iter().filter(|b| b.service == service).all(|b| b.autostart)
    }

    /// The interfaces the network service manages, in file order.
    pub fn interfaces(&self) -> impl Iterator<Item = &Interface> {
        self.blocks.iter().filter_map(|b| b.network.as_ref())
    }
}
