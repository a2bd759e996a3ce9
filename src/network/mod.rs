//! `lanai network`: applies the `service network IF` blocks of config.rc
//! (links, mtu, addresses, routes, DHCP) and undoes exactly what it applied.
//!
//! - `netlink`: rtnetlink requests by hand;
//! - `plan`: pure reconciliation (config + what we applied -> actions);
//! - `apply`: carries a plan out and records what it changed;
//! - `dhcp`: udhcpc children, and the hook they call back (`lanai` itself);
//! - `daemon`: the process, its signals and control socket.

mod apply;
pub mod daemon;
pub mod dhcp;
pub mod netlink;
pub mod plan;

pub use daemon::{default_control_path, run};
