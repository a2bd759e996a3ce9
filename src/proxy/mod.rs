//! The data plane: `lanai proxy -f haproxy.cfg`.

pub mod health;
pub mod runtime;
pub mod state;
pub mod stats;

#[cfg(test)]
pub(crate) mod testutil;
