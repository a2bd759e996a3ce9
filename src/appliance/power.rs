//! Reboot from the console. Only offered in the appliance image, where PID 1
//! is busybox init (lanai run is its grandchild, through the respawned
//! `/usr/libexec/lanai/run`): its SIGTERM means "reboot", after its shutdown
//! script has stopped lanai and unmounted /data cleanly. Anywhere else PID 1
//! is someone else's (systemd re-executes itself on SIGTERM), so the button
//! does not appear.

use std::path::Path;

/// Present only in the appliance image (written by image/build.sh).
const IMAGE_MARKER: &str = "/etc/lanai/image.conf";

pub fn reboot_available() -> bool {
    let init_is_busybox = std::fs::read_link("/proc/1/exe")
        .is_ok_and(|exe| exe.file_name().is_some_and(|name| name == "busybox"));
    init_is_busybox && Path::new(IMAGE_MARKER).exists()
}

/// Asks init to reboot, after a short delay so that the HTTP answer leaves first.
pub fn reboot_soon() -> Result<(), String> {
    if !reboot_available() {
        return Err("reboot is only available in the Lanai appliance image (under its busybox init)".into());
    }
    tokio::spawn(async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        tracing::warn!("rebooting on the operator's request");
        if let Err(e) =
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(1), nix::sys::signal::Signal::SIGTERM)
        {
            tracing::error!("reboot: signalling init: {e}");
        }
    });
    Ok(())
}
