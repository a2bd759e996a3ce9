//! HAProxy-compatible logging: where lines go ([`Logger`]) and what they say
//! ([`format_httplog`], [`format_httplog_clf`], [`format_tcplog`],
//! [`format_connect`]), byte for byte as HAProxy 2.6 writes them, so existing
//! log parsers and dashboards keep working.
//!
//! # Termination state
//!
//! `%ts` (tcplog, 2 characters) and `%tsc` (httplog, 4 characters). The first
//! character says who or what ended the session, the second in which phase;
//! httplog adds the persistence cookie states (always `-` here, as cookie
//! persistence logs are not produced yet). The subset the data plane produces:
//!
//! | 1st | meaning                                                        |
//! |-----|----------------------------------------------------------------|
//! | `-` | normal end                                                     |
//! | `C` | the client aborted (reset, close before the response)          |
//! | `S` | the server aborted or refused (reset, connection refused)      |
//! | `c` | client-side timeout (`timeout client`, or `timeout tunnel`)    |
//! | `s` | server-side timeout (`timeout server` / `timeout connect`)     |
//! | `P` | the proxy ended it: deny, `return`, redirect, invalid response |
//! | `R` | a local resource ran out (sockets, memory)                     |
//! | `I` | internal error (a bug); should never appear                    |
//! | `D` | the server was marked down and the session killed              |
//! | `L` | the proxy answered locally (stats page, `monitor-uri`)         |
//! | `K` | killed by an administrator (runtime API `shutdown session`)    |
//!
//! | 2nd | phase when it ended                                            |
//! |-----|----------------------------------------------------------------|
//! | `-` | normal end                                                     |
//! | `R` | waiting for the complete request from the client               |
//! | `Q` | waiting in a queue for a connection slot                       |
//! | `C` | waiting for the connection to the server                       |
//! | `H` | waiting for the complete response headers from the server      |
//! | `D` | data phase (transfer; every tcp-mode relay ends here)          |
//! | `L` | sending the last data to the client                            |
//! | `T` | tarpitted                                                      |
//!
//! So `----` is a clean HTTP exchange, `cD` a tcp relay closed by the client
//! timeout, `SC--` a refused server connection, `CD--` a client that went away
//! during the transfer, `PR--` a request denied by a rule.
//! [`crate::proxy::relay::RelayEnd::termination_state`] gives the first two
//! characters for a relay.

mod format;
mod sink;
mod time;

pub use format::{
    format_connect, format_httplog, format_httplog_clf, format_tcplog, HttpLogRecord, LogStyle, TcpLogRecord,
};
pub use sink::{Logger, MAX_LINE_LEN};

#[cfg(test)]
mod tests;
