//! Typed model of the keepalived.conf subset Lanai runs (see the parser for the
//! accepted keywords). Defaults are keepalived 2.2's.

use std::net::IpAddr;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct KeepalivedConfig {
    pub global: GlobalDefs,
    pub scripts: Vec<VrrpScript>,
    pub instances: Vec<VrrpInstance>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct GlobalDefs {
    pub router_id: Option<String>,
    /// Default `version` of instances (keepalived: 2).
    pub vrrp_version: Option<u8>,
    pub vrrp_garp_master_delay: Option<Duration>,
    pub vrrp_garp_master_repeat: Option<u32>,
    pub enable_script_security: bool,
    pub script_user: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VrrpScript {
    pub name: String,
    pub line: usize,
    pub script: String,
    pub interval: Duration,
    pub timeout: Option<Duration>,
    pub weight: i32,
    pub fall: u32,
    pub rise: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialState {
    Master,
    Backup,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    pub addr: IpAddr,
    pub prefix: u8,
    pub dev: Option<String>,
    pub label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackScript {
    pub name: String,
    /// Overrides the script's own weight when given.
    pub weight: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInterface {
    pub name: String,
    pub weight: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VrrpInstance {
    pub name: String,
    pub line: usize,
    pub state: InitialState,
    pub interface: String,
    pub virtual_router_id: u8,
    pub priority: u8,
    /// Advertisement interval in centiseconds.
    pub advert_int_cs: u16,
    pub version: u8,
    /// `auth_type PASS` password (v2 only; at most 8 bytes are used).
    pub auth_pass: Option<String>,
    /// All of one family (an instance is IPv4 or IPv6, as in keepalived).
    pub virtual_ipaddress: Vec<Vip>,
    pub unicast_src_ip: Option<IpAddr>,
    pub unicast_peer: Vec<IpAddr>,
    pub nopreempt: bool,
    pub preempt_delay: Duration,
    pub track_script: Vec<TrackScript>,
    pub track_interface: Vec<TrackInterface>,
    pub garp_master_delay: Duration,
    pub garp_master_repeat: u32,
    pub notify_master: Option<String>,
    pub notify_backup: Option<String>,
    pub notify_fault: Option<String>,
    pub notify_stop: Option<String>,
    pub notify: Option<String>,
}
