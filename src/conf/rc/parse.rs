//! config.rc parser. A line `service NAME [instance]` opens a block; every
//! following line (indented or not) until the next `service` belongs to it.
//! `#` starts a comment. Unknown services and directives are errors naming them.

use super::model::*;
use crate::conf::Diagnostic;

/// Services whose blocks this appliance understands.
pub const SERVICES: [&str; 3] = ["network", "haproxy", "vrrp"];

/// The words of one line, comments removed.
pub(crate) fn words(line: &str) -> Vec<&str> {
    let code = match line.find('#') {
        Some(i) => &line[..i],
        None => line,
    };
    code.split_whitespace().collect()
}

/// Parses config.rc text (named `file` in diagnostics). The model is `None`
/// when there is any error.
pub fn parse(file: &str, text: &str) -> (Option<RcConfig>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let mut config = RcConfig::default();
    let mut current: Option<ServiceBlock> = None;
    for (index, line) in text.lines().enumerate() {
        let lineno = index + 1;
        let w = words(line);
        if w.is_empty() {
            continue;
        }
        if w[0] == "service" {
            if let Some(block) = current.take() {
                config.blocks.push(block);
            }
            current = open_block(file, lineno, &w[1..], &config, &mut diags);
            continue;
        }
        match current.as_mut() {
            Some(block) => directive(file, lineno, block, &w, &mut diags),
            None => diags.push(Diagnostic::error(
                file,
                lineno,
                format!("'{}' outside of a 'service' block", w[0]),
            )),
        }
    }
    if let Some(block) = current.take() {
        config.blocks.push(block);
    }
    if diags.iter().any(Diagnostic::is_error) {
        (None, diags)
    } else {
        (Some(config), diags)
    }
}

fn open_block(
    file: &str,
    line: usize,
    args: &[&str],
    config: &RcConfig,
    diags: &mut Vec<Diagnostic>,
) -> Option<ServiceBlock> {
    let Some(&service) = args.first() else {
        diags.push(Diagnostic::error(file, line, "'service' needs a service name"));
        return None;
    };
    if !SERVICES.contains(&service) {
        diags.push(Diagnostic::error(
            file,
            line,
            format!("unsupported service '{service}' (this appliance runs: {})", SERVICES.join(", ")),
        ));
        return None;
    }
    if args.len() > 2 {
        diags.push(Diagnostic::error(
            file,
            line,
            format!("unexpected '{}' after 'service {service}'", args[2]),
        ));
        return None;
    }
    let instance = args.get(1).map(|s| s.to_string());
    let network = if service == "network" {
        let Some(name) = instance.as_deref() else {
            diags.push(Diagnostic::error(file, line, "'service network' needs an interface name"));
            return None;
        };
        match interface(name, line) {
            Ok(iface) => Some(iface),
            Err(message) => {
                diags.push(Diagnostic::error(file, line, message));
                return None;
            }
        }
    } else {
        if let Some(instance) = &instance {
            diags.push(Diagnostic::error(
                file,
                line,
                format!("'service {service}' takes no instance name (got '{instance}')"),
            ));
            return None;
        }
        None
    };
    if config.blocks.iter().any(|b| b.service == service && b.instance == instance) {
        let name = [Some(service), instance.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" ");
        diags.push(Diagnostic::error(file, line, format!("'service {name}' is defined twice")));
        return None;
    }
    Some(ServiceBlock { service: service.to_string(), instance, line, autostart: true, network })
}

fn interface(name: &str, line: usize) -> Result<Interface, String> {
    if name.is_empty() || name.len() > 15 || name.contains(['/', ':']) || name == "." || name == ".." {
        return Err(format!("'{name}' is not a valid interface name (at most 15 characters, no '/' or ':')"));
    }
    let kind = match name.rsplit_once('.') {
        Some((parent, id)) if !parent.is_empty() => {
            let id: u16 = id
                .parse()
                .ok()
                .filter(|id| (1..=4094).contains(id))
                .ok_or_else(|| format!("'{name}': VLAN id '{id}' must be 1-4094"))?;
            InterfaceKind::Vlan { parent: parent.to_string(), id }
        }
        _ => InterfaceKind::Existing,
    };
    Ok(Interface {
        name: name.to_string(),
        line,
        kind,
        auto: true,
        mtu: None,
        addresses: vec![],
        routes: vec![],
    })
}

fn directive(file: &str, line: usize, block: &mut ServiceBlock, w: &[&str], diags: &mut Vec<Diagnostic>) {
    let mut err = |m: String| diags.push(Diagnostic::error(file, line, m));
    match w {
        ["no", "autostart"] => block.autostart = false,
        ["autostart"] => block.autostart = true,
        ["no", "autostart", extra, ..] | ["autostart", extra, ..] => {
            err(format!("unexpected '{extra}' after 'autostart'"))
        }
        _ => match block.network.as_mut() {
            Some(iface) => {
                if let Err(m) = network_directive(iface, w) {
                    err(m)
                }
            }
            None => err(format!("unknown keyword '{}' in 'service {}'", w[0], block.service)),
        },
    }
}

fn network_directive(iface: &mut Interface, w: &[&str]) -> Result<(), String> {
    match w {
        ["auto", "on"] => iface.auto = true,
        ["auto", "off"] => iface.auto = false,
        ["auto", ..] => return Err("'auto' takes 'on' or 'off'".into()),
        ["mtu", n] => {
            let mtu: u32 = n
                .parse()
                .ok()
                .filter(|m| (68..=65535).contains(m))
                .ok_or_else(|| format!("'mtu {n}': 68-65535"))?;
            iface.mtu = Some(mtu);
        }
        ["type", "dummy"] => match iface.kind {
            InterfaceKind::Existing => iface.kind = InterfaceKind::Dummy,
            _ => return Err(format!("'type dummy' does not apply to the VLAN '{}'", iface.name)),
        },
        ["type", "vlan"] => {
            if !matches!(iface.kind, InterfaceKind::Vlan { .. }) {
                return Err(format!("'type vlan' needs an interface named PARENT.ID (got '{}')", iface.name));
            }
        }
        ["type", other] => {
            return Err(format!("unsupported interface type '{other}' (supported: dummy, vlan)"))
        }
        ["ip", "address", "dhcp"] => {
            if iface.addresses.contains(&Address::Dhcp) {
                return Err("'ip address dhcp' given twice".into());
            }
            iface.addresses.push(Address::Dhcp);
        }
        ["ip", "address", a] => {
            let cidr = Cidr::parse(a)?;
            if iface.addresses.contains(&Address::Static(cidr)) {
                return Err(format!("address {cidr} given twice"));
            }
            iface.addresses.push(Address::Static(cidr));
        }
        ["ip", "route", dest, gw] => {
            let gateway: std::net::IpAddr =
                gw.parse().map_err(|_| format!("'{gw}' is not a gateway address"))?;
            let destination = if *dest == "default" {
                let any = if gateway.is_ipv4() { "0.0.0.0/0" } else { "::/0" };
                Cidr::parse(any)?
            } else {
                Cidr::parse(dest)?
            };
            if destination.addr.is_ipv4() != gateway.is_ipv4() {
                return Err(format!("route {dest} and gateway {gw} are of different address families"));
            }
            if destination.network() != destination {
                return Err(format!(
                    "route destination {dest} has host bits set (did you mean {}?)",
                    destination.network()
                ));
            }
            let route = Route { destination, gateway };
            if iface.routes.contains(&route) {
                return Err(format!("route {dest} via {gw} given twice"));
            }
            iface.routes.push(route);
        }
        ["ip", "address", ..] => return Err("'ip address' takes ADDR/LEN or 'dhcp'".into()),
        ["ip", "route", ..] => return Err("'ip route' takes DEST|default GATEWAY".into()),
        ["ip", other, ..] => return Err(format!("unknown keyword 'ip {other}' in 'service network'")),
        [kw, ..] => return Err(format!("unknown keyword '{kw}' in 'service network'")),
        [] => {}
    }
    Ok(())
}
