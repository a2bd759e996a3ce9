//! The data plane: `lanai proxy -f haproxy.cfg`.

pub mod health;
pub mod state;

#[cfg(test)]
pub(crate) mod testutil;
