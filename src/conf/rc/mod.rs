//! config.rc: the appliance's own settings as `service NAME [instance]`
//! blocks (ALOHA's format): network interfaces, and per-service options such
//! as `no autostart`.

mod blocks;
mod model;
mod parse;

pub use blocks::{replace_service_blocks, service_blocks};
pub use model::*;
pub use parse::{parse, SERVICES};

#[cfg(test)]
mod tests;
