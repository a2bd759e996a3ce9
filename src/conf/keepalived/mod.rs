//! keepalived.conf (the subset Lanai's VRRP runs): the typed model and its parser.

pub mod model;
mod parse;

pub use model::*;
pub use parse::{fs_resolver, parse, parse_with, IncludeResolver};
