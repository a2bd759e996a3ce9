//! Reboot from the console. Only offered when `lanai run` is the child of
//! the image's busybox init (PID 1), whose SIGTERM means "reboot" (its
//! shutdown script then stops lanai and unmounts /data cleanly). Anywhere
//! else PID 1 is someone else's (systemd re-executes itself on SIGTERM), so
//! the button does not appear.

use std::path::Path;

/// Present only in the appliance image (written by image/build.sh).
const IMAGE_MARKER: &str = "/etc/lanai/image.conf";

pub fn reboot_available() -> bool {
    nix::unistd::getppid().as_raw() == 1 && Path::new(IMAGE_MARKER).exists()
}

/// Asks init to reboot, after a short delay so that the HTTP answer leaves first.
pub fn reboot_soon() -> Result<(), String> {
    if !reboot_available() {
        return Err("reboot is only available in the Lanai image (lanai run as a child of its init)".into());
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
