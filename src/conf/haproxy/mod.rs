//! haproxy.cfg: the typed model and its parser.

pub mod model;
mod parse;

pub use model::*;
pub use parse::{check_files, parse};
