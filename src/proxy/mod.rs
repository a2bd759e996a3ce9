//! The data plane: `lanai proxy -f haproxy.cfg`.

pub mod log;
pub mod proxy_protocol;
pub mod relay;
pub mod state;
pub mod tls;

#[cfg(test)]
pub(crate) mod testpeers;
