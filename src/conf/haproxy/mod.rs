//! haproxy.cfg: the typed model and its parser.
//!
//! HAProxy 2.6 is the reference (`haproxy -c` and `lanai check` agree on the
//! fixtures and crafted configs of `tests/check_vs_haproxy.rs`). Lanai differs
//! on purpose where HAProxy would silently ignore a directive or where rustls
//! cannot do what is asked:
//! - keywords a proxy's side cannot use (`bind` in a backend, `maxconn` in a
//!   backend, `cookie` in a frontend, …) are errors, not ignored warnings;
//! - TLS below 1.2, and cipher lists selecting no suite rustls has, are errors;
//!   DH/RSA-key-exchange/CBC ciphers are dropped from a list with a warning;
//! - `listen NAME ADDR:PORT` (HAProxy 1.x) is still read, with a warning;
//! - host names in `bind`/`log` are refused (servers keep theirs in `Server::host`
//!   for resolution at load time); a server needs an explicit port;
//! - converters, pattern files, maps, stick tables, Lua and other features the
//!   data plane does not implement are errors that name the keyword.
//!
//! Layout: `lexer` (words), `time`, `parse` (sections, cross-checks), `global`,
//! `options` (`option`, `no`, `stats`),
//! `proxy` (proxy keywords, defaults folding), `bind`, `tls` (cipher mapping),
//! `server`, `backend` (balance, cookie, checks), `acl` (ACLs, conditions,
//! log-format strings), `rules` (http/tcp rules), `files` (file checks, I/O).

mod acl;
mod backend;
mod bind;
mod files;
mod global;
mod lexer;
pub mod model;
mod options;
mod parse;
#[cfg(test)]
mod parse_tests;
mod proxy;
mod rules;
mod server;
mod time;
mod tls;

pub use files::{check_files, referenced_files};
pub use model::*;
pub use parse::parse;
