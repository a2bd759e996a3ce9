//! VRRP (RFC 3768 v2, RFC 5798 v3 over IPv4 and IPv6) that interoperates with
//! keepalived 2.2.
//!
//! `packet` is the codec, `fsm` the sans-IO state machine; the rest is the I/O
//! edge: raw sockets (`net`), VIPs and gratuitous ARP (`addr`), tracking (`track`)
//! and the daemon with its control socket (`daemon`).

pub mod addr;
pub mod daemon;
pub mod fsm;
pub mod net;
pub mod packet;
pub mod track;

pub use daemon::run;
