//! The services `lanai run` manages: their file, command line, control
//! socket, configuration format and default text.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::supervisor::ServiceSpec;
use crate::conf::Diagnostic;
use crate::conf::{check_text, ConfigKind};

/// One kind of managed service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceKind {
    /// API name (`/api/services/{name}`).
    pub name: &'static str,
    /// File name in the run directory.
    pub file: &'static str,
    /// `lanai` subcommand that runs it.
    pub role: &'static str,
    pub format: ConfigKind,
    pub default_text: &'static str,
}

/// The data plane: LB Layer7.
pub const HAPROXY: ServiceKind = ServiceKind {
    name: "haproxy",
    file: "haproxy.cfg",
    role: "proxy",
    format: ConfigKind::Haproxy,
    default_text: "# LB Layer7: haproxy.cfg (HAProxy 2.6 syntax, see README.md)\n\
global\n    log stdout format raw local0 info\n\n\
defaults\n    mode http\n    log global\n    option httplog\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n",
};

/// VRRP (keepalived.conf subset).
pub const VRRP: ServiceKind = ServiceKind {
    name: "vrrp",
    file: "keepalived.conf",
    role: "vrrp",
    format: ConfigKind::Keepalived,
    default_text: "! VRRP: keepalived.conf (vrrp_instance, vrrp_script; see README.md)\n",
};

/// The appliance's own settings (config.rc): network interfaces, run by
/// `lanai network`, and the `service NAME` blocks the setup editors change
/// (`no autostart`). Only started under `lanai run --manage-network`.
pub const NETWORK: ServiceKind = ServiceKind {
    name: "network",
    file: "config.rc",
    role: "network",
    format: ConfigKind::Rc,
    default_text: "# config.rc: the appliance's network and service settings (see README.md)\n\
# Interfaces are only configured when lanai runs with --manage-network (the image does).\n\
service network eth0\n    ip address dhcp\n",
};

/// Boot order: the network first, so that the data plane can bind its
/// addresses.
pub const ALL: [ServiceKind; 3] = [NETWORK, HAPROXY, VRRP];

pub fn by_name(name: &str) -> Option<ServiceKind> {
    ALL.into_iter().find(|k| k.name == name)
}

impl ServiceKind {
    pub fn config_path(&self, run_dir: &Path) -> PathBuf {
        run_dir.join(self.file)
    }

    pub fn control_socket(&self, run_dir: &Path) -> PathBuf {
        run_dir.join(format!("{}.sock", self.name))
    }

    /// Validates a text of this service; diagnostics name the file as the
    /// operator knows it (`haproxy.cfg:12: …`).
    pub fn check(&self, text: &str) -> (Vec<Diagnostic>, bool) {
        check_text(self.file, text, self.format)
    }

    pub fn spec(&self, run_dir: &Path, autostart: bool) -> ServiceSpec {
        let config = self.config_path(run_dir);
        let control = self.control_socket(run_dir);
        let args: Vec<OsString> = vec![
            self.role.into(),
            "-f".into(),
            config.clone().into_os_string(),
            "--control".into(),
            control.clone().into_os_string(),
        ];
        ServiceSpec {
            name: self.name.to_string(),
            args,
            config_path: config,
            control_socket: Some(control),
            autostart,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_texts_are_valid() {
        for kind in ALL {
            let (diags, valid) = kind.check(kind.default_text);
            assert!(valid, "{}: {diags:#?}", kind.name);
        }
    }

    #[test]
    fn diagnostics_name_the_service_file() {
        let (diags, valid) = HAPROXY.check("frontend f\n    frobnicate\n");
        assert!(!valid);
        assert!(diags.iter().any(|d| d.file == "haproxy.cfg" && d.line == 2), "{diags:#?}");
    }
}
