//! The data plane: `lanai proxy -f haproxy.cfg`.

pub mod state;
