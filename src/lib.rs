//! Lanai: a load-balancer appliance. One binary with several roles (see
//! ARCHITECTURE.md): the data plane (`proxy`), VRRP (`vrrp`), the network
//! settings of config.rc (`network`), and the appliance that supervises them
//! (`appliance`, `web`, `store`).

pub mod appliance;
pub mod conf;
pub mod network;
pub mod proxy;
pub mod store;
pub mod vrrp;
pub mod web;
