//! The appliance (`lanai run`): supervisor of the service processes; the
//! store, web console and apply pipeline join it here (see ARCHITECTURE.md).

pub mod supervisor;
