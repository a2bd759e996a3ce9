//! The appliance (`lanai run`): the store, the supervisor of the service
//! processes, and the one apply/save pipeline every change goes through
//! (console, JSON API, file manager, sync push, boot).

pub mod pipeline;
pub mod power;
pub mod run;
pub mod services;
mod setup;
pub mod supervisor;

pub use pipeline::{Appliance, ApplyError, ServiceInfo};
