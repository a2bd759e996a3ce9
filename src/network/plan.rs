//! Reconciliation, pure: (what the config asks, what this daemon applied
//! before) -> ordered actions. Only what the daemon recorded as its own
//! (`Applied`) is ever removed, so addresses and routes put there by an
//! operator, DHCP or other software are never touched.
//!
//! Order: every removal first (routes, DHCP clients, addresses, then links,
//! children before parents), then every addition (links, parents first; mtu
//! and link up; addresses; routes; DHCP clients). Removing first lets an
//! address or route move from one interface to another in one reload.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::conf::rc::{Address, Cidr, Interface, InterfaceKind, Route};

/// A link the daemon creates (and so deletes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Created {
    Vlan { parent: String, id: u16 },
    Dummy,
}

/// What one `auto on` interface block asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub name: String,
    /// Line of its `service network` block (for error messages).
    pub line: usize,
    pub created: Option<Created>,
    pub mtu: Option<u32>,
    pub addresses: Vec<Cidr>,
    pub routes: Vec<Route>,
    pub dhcp: bool,
}

impl Desired {
    pub fn from_interface(i: &Interface) -> Desired {
        Desired {
            name: i.name.clone(),
            line: i.line,
            created: match &i.kind {
                InterfaceKind::Existing => None,
                InterfaceKind::Vlan { parent, id } => Some(Created::Vlan { parent: parent.clone(), id: *id }),
                InterfaceKind::Dummy => Some(Created::Dummy),
            },
            mtu: i.mtu,
            addresses: i
                .addresses
                .iter()
                .filter_map(|a| match a {
                    Address::Static(c) => Some(*c),
                    Address::Dhcp => None,
                })
                .collect(),
            routes: i.routes.clone(),
            dhcp: i.addresses.contains(&Address::Dhcp),
        }
    }
}

/// The `auto on` interfaces of a config, in file order (`auto off` blocks
/// are kept for later and touch nothing).
pub fn desired<'a>(ifaces: impl Iterator<Item = &'a Interface>) -> Vec<Desired> {
    ifaces.filter(|i| i.auto).map(Desired::from_interface).collect()
}

/// What the daemon itself put on one interface.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedIface {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<Created>,
    #[serde(default)]
    pub addresses: Vec<Cidr>,
    #[serde(default)]
    pub routes: Vec<Route>,
    /// A DHCP client runs (or ran, before a crash) for this interface.
    #[serde(default)]
    pub dhcp: bool,
}

impl AppliedIface {
    fn is_empty(&self) -> bool {
        self.created.is_none() && self.addresses.is_empty() && self.routes.is_empty() && !self.dhcp
    }
}

/// Everything the daemon applied, by interface name (also its state file).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub interfaces: BTreeMap<String, AppliedIface>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    DelRoute {
        iface: String,
        route: Route,
    },
    StopDhcp {
        iface: String,
    },
    DelAddress {
        iface: String,
        cidr: Cidr,
    },
    DeleteLink {
        iface: String,
    },
    CreateLink {
        iface: String,
        kind: Created,
    },
    /// Always planned for a desired mtu: the executor skips it when already so.
    SetMtu {
        iface: String,
        mtu: u32,
    },
    /// Always planned: the executor skips it when the link is up already.
    SetUp {
        iface: String,
    },
    AddAddress {
        iface: String,
        cidr: Cidr,
    },
    AddRoute {
        iface: String,
        route: Route,
    },
    StartDhcp {
        iface: String,
    },
}

impl Action {
    pub fn iface(&self) -> &str {
        match self {
            Action::DelRoute { iface, .. }
            | Action::StopDhcp { iface }
            | Action::DelAddress { iface, .. }
            | Action::DeleteLink { iface }
            | Action::CreateLink { iface, .. }
            | Action::SetMtu { iface, .. }
            | Action::SetUp { iface }
            | Action::AddAddress { iface, .. }
            | Action::AddRoute { iface, .. }
            | Action::StartDhcp { iface } => iface,
        }
    }

    /// Position in the global order (see the module doc).
    fn phase(&self) -> u8 {
        match self {
            Action::DelRoute { .. } => 0,
            Action::StopDhcp { .. } => 1,
            Action::DelAddress { .. } => 2,
            Action::DeleteLink { .. } => 3,
            Action::CreateLink { .. } => 4,
            Action::SetMtu { .. } => 5,
            Action::SetUp { .. } => 6,
            Action::AddAddress { .. } => 7,
            Action::AddRoute { .. } => 8,
            Action::StartDhcp { .. } => 9,
        }
    }
}

/// VLAN nesting depth (`eth0.100.200` sits on `eth0.100`).
fn depth(name: &str) -> usize {
    name.matches('.').count()
}

/// The actions that take `applied` to `desired`.
pub fn plan(desired: &[Desired], applied: &Applied) -> Vec<Action> {
    let mut out = vec![];
    let none = AppliedIface::default();
    let wanted = |name: &str| desired.iter().find(|d| d.name == name);
    // Links we created that are no longer wanted as the same kind go, with all
    // on them; they are then treated as fresh.
    let recreate = |name: &str, a: &AppliedIface| {
        a.created.is_some() && wanted(name).is_none_or(|d| d.created != a.created)
    };
    for (name, a) in &applied.interfaces {
        let gone = recreate(name, a);
        let d = wanted(name).filter(|_| !gone);
        let iface = || name.clone();
        for route in &a.routes {
            if !d.is_some_and(|d| d.routes.contains(route)) {
                out.push(Action::DelRoute { iface: iface(), route: *route });
            }
        }
        if a.dhcp && !d.is_some_and(|d| d.dhcp) {
            out.push(Action::StopDhcp { iface: iface() });
        }
        for cidr in &a.addresses {
            if !d.is_some_and(|d| d.addresses.contains(cidr)) {
                out.push(Action::DelAddress { iface: iface(), cidr: *cidr });
            }
        }
        if gone {
            out.push(Action::DeleteLink { iface: iface() });
        }
    }
    for d in desired {
        let a = match applied.interfaces.get(&d.name) {
            Some(a) if !recreate(&d.name, a) => a,
            _ => &none,
        };
        let iface = || d.name.clone();
        if let Some(kind) = &d.created {
            if a.created.as_ref() != Some(kind) {
                out.push(Action::CreateLink { iface: iface(), kind: kind.clone() });
            }
        }
        if let Some(mtu) = d.mtu {
            out.push(Action::SetMtu { iface: iface(), mtu });
        }
        out.push(Action::SetUp { iface: iface() });
        for cidr in &d.addresses {
            if !a.addresses.contains(cidr) {
                out.push(Action::AddAddress { iface: iface(), cidr: *cidr });
            }
        }
        for route in &d.routes {
            if !a.routes.contains(route) {
                out.push(Action::AddRoute { iface: iface(), route: *route });
            }
        }
        if d.dhcp && !a.dhcp {
            out.push(Action::StartDhcp { iface: iface() });
        }
    }
    // Stable: file order within a phase, links by VLAN depth (parents are
    // created first and deleted last).
    out.sort_by_key(|a| {
        let d = depth(a.iface());
        match a {
            Action::DeleteLink { .. } => (a.phase(), usize::MAX - d),
            Action::CreateLink { .. } | Action::SetMtu { .. } | Action::SetUp { .. } => (a.phase(), d),
            _ => (a.phase(), 0),
        }
    });
    out
}

/// Records in `applied` what a successful action changed. Call it only for
/// actions that did something (an address that was already there is not ours).
pub fn record(applied: &mut Applied, action: &Action) {
    let name = action.iface().to_string();
    if let Action::DeleteLink { .. } = action {
        // The kernel removed everything that was on it.
        applied.interfaces.remove(&name);
        return;
    }
    let a = applied.interfaces.entry(name.clone()).or_default();
    match action {
        Action::CreateLink { kind, .. } => a.created = Some(kind.clone()),
        Action::AddAddress { cidr, .. } if !a.addresses.contains(cidr) => a.addresses.push(*cidr),
        Action::DelAddress { cidr, .. } => a.addresses.retain(|c| c != cidr),
        Action::AddRoute { route, .. } if !a.routes.contains(route) => a.routes.push(*route),
        Action::DelRoute { route, .. } => a.routes.retain(|r| r != route),
        Action::StartDhcp { .. } => a.dhcp = true,
        Action::StopDhcp { .. } => a.dhcp = false,
        _ => {}
    }
    if a.is_empty() {
        applied.interfaces.remove(&name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conf::rc;

    fn desired_of(text: &str) -> Vec<Desired> {
        let (cfg, diags) = rc::parse("config.rc", text);
        let cfg = cfg.unwrap_or_else(|| panic!("{diags:?}"));
        desired(cfg.interfaces())
    }

    fn cidr(s: &str) -> Cidr {
        Cidr::parse(s).unwrap()
    }

    fn route(dst: &str, gw: &str) -> Route {
        Route { destination: cidr(dst), gateway: gw.parse().unwrap() }
    }

    /// Applies every action's effect (as if all succeeded).
    fn run(desired: &[Desired], applied: &Applied) -> Applied {
        let mut a = applied.clone();
        for act in plan(desired, applied) {
            record(&mut a, &act);
        }
        a
    }

    /// The plan minus the always-planned (idempotent) link settings.
    fn changes(d: &[Desired], a: &Applied) -> Vec<Action> {
        plan(d, a)
            .into_iter()
            .filter(|a| !matches!(a, Action::SetMtu { .. } | Action::SetUp { .. }))
            .collect()
    }

    const FULL: &str = "service network veth0.100\n mtu 1400\n ip address 10.1.0.1/24\n\
service network veth0\n ip address 10.0.0.1/24\n ip address 2001:db8::1/64\n\
 ip route 10.9.0.0/16 10.0.0.254\n ip address dhcp\n\
service network dummy0\n type dummy\n ip address 192.0.2.1/32\n\
service network off0\n auto off\n ip address 10.7.0.1/24\nservice haproxy\n";

    #[test]
    fn from_scratch_links_then_addresses_then_routes() {
        let d = desired_of(FULL);
        assert_eq!(d.len(), 3, "auto off is not desired");
        let p = plan(&d, &Applied::default());
        let pos = |f: &dyn Fn(&Action) -> bool| p.iter().position(f).unwrap();
        // Parent (depth 0) settings before the VLAN's even though the VLAN comes first in the file.
        assert_eq!(p[0], Action::CreateLink { iface: "dummy0".into(), kind: Created::Dummy });
        assert_eq!(
            p[1],
            Action::CreateLink {
                iface: "veth0.100".into(),
                kind: Created::Vlan { parent: "veth0".into(), id: 100 }
            }
        );
        assert_eq!(p[2], Action::SetMtu { iface: "veth0.100".into(), mtu: 1400 });
        let up_parent = pos(&|a| *a == Action::SetUp { iface: "veth0".into() });
        let up_vlan = pos(&|a| *a == Action::SetUp { iface: "veth0.100".into() });
        assert!(up_parent < up_vlan);
        let last_addr = p.iter().rposition(|a| matches!(a, Action::AddAddress { .. })).unwrap();
        let route = pos(&|a| matches!(a, Action::AddRoute { .. }));
        let dhcp = pos(&|a| matches!(a, Action::StartDhcp { .. }));
        assert!(up_vlan < last_addr && last_addr < route && route < dhcp);
        assert_eq!(p.iter().filter(|a| matches!(a, Action::AddAddress { .. })).count(), 4);
    }

    #[test]
    fn applying_the_plan_converges() {
        let d = desired_of(FULL);
        let a = run(&d, &Applied::default());
        assert!(changes(&d, &a).is_empty(), "{:?}", changes(&d, &a));
        assert_eq!(a.interfaces["veth0"].routes, vec![route("10.9.0.0/16", "10.0.0.254")]);
        assert!(a.interfaces["veth0"].dhcp);
        assert_eq!(a.interfaces["dummy0"].created, Some(Created::Dummy));
        // And the state survives its JSON file.
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Applied>(&json).unwrap(), a);
    }

    #[test]
    fn reload_removes_exactly_what_went_in_reverse_order() {
        let a = run(&desired_of(FULL), &Applied::default());
        let smaller = "service network veth0\n ip address 10.0.0.1/24\n ip address 10.0.0.2/24\n";
        let d = desired_of(smaller);
        let p = changes(&d, &a);
        assert_eq!(
            p,
            vec![
                Action::DelRoute { iface: "veth0".into(), route: route("10.9.0.0/16", "10.0.0.254") },
                Action::StopDhcp { iface: "veth0".into() },
                Action::DelAddress { iface: "dummy0".into(), cidr: cidr("192.0.2.1/32") },
                Action::DelAddress { iface: "veth0".into(), cidr: cidr("2001:db8::1/64") },
                Action::DelAddress { iface: "veth0.100".into(), cidr: cidr("10.1.0.1/24") },
                Action::DeleteLink { iface: "veth0.100".into() },
                Action::DeleteLink { iface: "dummy0".into() },
                Action::AddAddress { iface: "veth0".into(), cidr: cidr("10.0.0.2/24") },
            ]
        );
        let a2 = run(&d, &a);
        assert_eq!(a2.interfaces.keys().collect::<Vec<_>>(), vec!["veth0"]);
        assert!(changes(&d, &a2).is_empty());
    }

    #[test]
    fn stop_is_planning_nothing() {
        let a = run(&desired_of(FULL), &Applied::default());
        let p = plan(&[], &a);
        assert!(p.iter().all(|a| a.phase() <= 3), "only removals: {p:?}");
        assert_eq!(run(&[], &a), Applied::default());
    }

    #[test]
    fn only_recorded_items_are_removed() {
        // The address exists (operator's) but was never recorded: a config
        // without it plans nothing for it.
        let mut a = Applied::default();
        a.interfaces.insert(
            "eth0".into(),
            AppliedIface { addresses: vec![cidr("10.0.0.1/24")], ..Default::default() },
        );
        let d = desired_of("service network eth0\n ip address 10.0.0.1/24\n");
        assert!(changes(&d, &a).is_empty());
        let p = changes(&desired_of("service network eth0\n"), &a);
        assert_eq!(p, vec![Action::DelAddress { iface: "eth0".into(), cidr: cidr("10.0.0.1/24") }]);
        // auto off: the block stays in the file but what we added goes.
        let p = changes(&desired_of("service network eth0\n auto off\n ip address 10.0.0.1/24\n"), &a);
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn kind_change_recreates_the_link() {
        let a = run(
            &desired_of("service network x0\n type dummy\n ip address 10.0.0.1/24\n"),
            &Applied::default(),
        );
        let d = desired_of("service network x0\n ip address 10.0.0.1/24\n");
        let p = changes(&d, &a);
        assert_eq!(
            p,
            vec![
                Action::DelAddress { iface: "x0".into(), cidr: cidr("10.0.0.1/24") },
                Action::DeleteLink { iface: "x0".into() },
                Action::AddAddress { iface: "x0".into(), cidr: cidr("10.0.0.1/24") },
            ]
        );
    }

    #[test]
    fn mtu_and_up_always_planned_for_desired() {
        let d = desired_of("service network eth0\n mtu 9000\n");
        let a = run(&d, &Applied::default());
        assert_eq!(a, Applied::default(), "mtu and link up are not recorded");
        assert_eq!(
            plan(&d, &a),
            vec![Action::SetMtu { iface: "eth0".into(), mtu: 9000 }, Action::SetUp { iface: "eth0".into() }]
        );
    }
}
