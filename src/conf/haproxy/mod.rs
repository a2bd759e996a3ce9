//! haproxy.cfg: the typed model and its parser.

mod acl;
mod backend;
mod bind;
mod files;
mod global;
mod lexer;
pub mod model;
mod parse;
#[cfg(test)]
mod parse_tests;
mod proxy;
mod rules;
mod server;
mod time;
mod tls;

pub use files::check_files;
pub use model::*;
pub use parse::parse;
