//! The data plane: `lanai proxy -f haproxy.cfg`.

pub mod acl;
pub mod balance;
pub mod clienthello;
pub mod engine;
pub mod fd_limit;
pub mod health;
pub mod http;
pub mod jail;
pub mod log;
pub mod process;
pub mod proxy_protocol;
pub mod relay;
pub mod runtime;
pub mod scheduler;
pub mod state;
pub mod stats;
pub mod tables;
pub mod tcp;
pub mod tls;
pub mod traffic_log;

#[cfg(test)]
pub(crate) mod testpeers;
#[cfg(test)]
pub(crate) mod testutil;
