//! Carries out a plan through netlink and the DHCP clients, records what it
//! changed (in memory and in the state file after every change, so that a
//! daemon killed mid-way still knows what it owns), and reports errors per
//! interface without stopping at the first one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tracing::{debug, info, warn};

use super::dhcp::Clients;
use super::netlink::{Change, Link, Netlink, NewLink};
use super::plan::{plan, record, Action, Applied, Created, Desired};
use crate::conf::rc::{Interface, InterfaceKind};

pub struct Applier {
    nl: Netlink,
    pub applied: Applied,
    dhcp: Clients,
    state_path: PathBuf,
    /// Errors of the last reconcile, by interface, as (line, `FILE:LINE: message`).
    errors: BTreeMap<String, Vec<(usize, String)>>,
}

/// The state file: `{control}.state`.
pub fn state_path(control: &Path) -> PathBuf {
    PathBuf::from(format!("{}.state", control.display()))
}

impl Applier {
    /// Opens netlink and loads what a previous instance applied (if it left a
    /// state file: after SIGKILL, or when a removal failed at stop).
    pub fn new(control: &Path) -> Result<Applier, String> {
        let nl = Netlink::open().map_err(|e| format!("cannot open netlink socket: {e}"))?;
        let state_path = state_path(control);
        let applied = match std::fs::read_to_string(&state_path) {
            Ok(s) => match serde_json::from_str::<Applied>(&s) {
                Ok(a) => {
                    if !a.interfaces.is_empty() {
                        info!("state of a previous run found in {}: {s}", state_path.display());
                    }
                    a
                }
                Err(e) => {
                    warn!("ignoring unreadable state file {}: {e}", state_path.display());
                    Applied::default()
                }
            },
            Err(_) => Applied::default(),
        };
        Ok(Applier {
            nl,
            applied,
            dhcp: Clients::new(control.to_path_buf()),
            state_path,
            errors: BTreeMap::new(),
        })
    }

    fn save(&self) {
        let tmp = self.state_path.with_extension("state.tmp");
        let data = serde_json::to_vec(&self.applied).unwrap_or_default();
        if let Err(e) = std::fs::write(&tmp, data).and_then(|_| std::fs::rename(&tmp, &self.state_path)) {
            warn!("cannot write state file {}: {e}", self.state_path.display());
        }
    }

    /// Nothing applied any more: the state file goes too.
    pub fn forget_if_clean(&self) {
        if self.applied.interfaces.is_empty() {
            let _ = std::fs::remove_file(&self.state_path);
        }
    }

    /// Takes the system to `desired`. `lines` gives the config line of each
    /// interface (old and new config) for error messages. Returns every error
    /// as `FILE:LINE: message`.
    pub async fn reconcile(
        &mut self,
        file: &str,
        desired: &[Desired],
        lines: &BTreeMap<String, usize>,
    ) -> Vec<String> {
        self.errors.clear();
        self.refresh();
        // Interfaces that are missing or could not be created: their later
        // additions are skipped (they would only repeat the error).
        let mut failed = BTreeSet::new();
        for act in plan(desired, &self.applied) {
            let iface = act.iface().to_string();
            if failed.contains(&iface) && is_addition(&act) {
                continue;
            }
            match self.execute(&act).await {
                Ok(change) => {
                    if change == Change::Done || !is_addition(&act) {
                        record(&mut self.applied, &act);
                        self.save();
                    }
                }
                Err(e) => {
                    warn!("{e}");
                    // The client is gone even if part of its lease could not be removed.
                    if let Action::StopDhcp { .. } = act {
                        record(&mut self.applied, &act);
                        self.save();
                    }
                    // A bad mtu must not cost the addresses: only a link that
                    // is not there stops the rest.
                    if matches!(act, Action::CreateLink { .. }) || matches!(self.nl.link(&iface), Ok(None)) {
                        failed.insert(iface.clone());
                    }
                    let line = lines.get(&iface).copied().unwrap_or(0);
                    self.errors.entry(iface).or_default().push((line, format!("{file}:{line}: {e}")));
                }
            }
        }
        self.ensure_dhcp();
        let mut all: Vec<(usize, String)> = self.errors.values().flatten().cloned().collect();
        all.sort_by_key(|(line, _)| *line);
        all.into_iter().map(|(_, e)| e).collect()
    }

    /// Forgets what vanished behind our back (an address deleted by hand, a
    /// link deleted with everything on it), so that the plan puts it back.
    fn refresh(&mut self) {
        let mut changed = false;
        let names: Vec<String> = self.applied.interfaces.keys().cloned().collect();
        for name in names {
            let present = match self.nl.link(&name) {
                Ok(Some(l)) => match self.nl.addresses(&name, l.index) {
                    Ok(a) => Some(a),
                    Err(_) => continue,
                },
                Ok(None) => None,
                Err(_) => continue,
            };
            let Some(a) = self.applied.interfaces.get_mut(&name) else { continue };
            let before = a.clone();
            match present {
                Some(addrs) => a.addresses.retain(|c| addrs.contains(c)),
                None => {
                    a.created = None;
                    a.addresses.clear();
                    a.routes.clear();
                }
            }
            if *a != before {
                info!("{name}: some of what lanai applied is gone, it will be put back");
                changed = true;
            }
        }
        if changed {
            self.applied.interfaces.retain(|_, a| *a != Default::default());
            self.save();
        }
    }

    fn link(&mut self, name: &str) -> Result<Option<Link>, String> {
        self.nl.link(name)
    }

    /// The link an addition needs.
    fn need(&mut self, name: &str) -> Result<Link, String> {
        self.link(name)?.ok_or_else(|| format!("{name}: interface not found"))
    }

    async fn execute(&mut self, act: &Action) -> Result<Change, String> {
        let name = act.iface();
        match act {
            Action::DelRoute { route, .. } => {
                let Some(l) = self.link(name)? else { return Ok(Change::Unchanged) };
                let c = self.nl.del_route(name, l.index, route)?;
                if c == Change::Done {
                    info!("{name}: removed route {} via {}", route.destination, route.gateway);
                }
                Ok(c)
            }
            Action::StopDhcp { .. } => {
                let errors = self.dhcp.stop(&mut self.nl, name).await;
                match errors.is_empty() {
                    true => Ok(Change::Done),
                    false => Err(errors.join("; ")),
                }
            }
            Action::DelAddress { cidr, .. } => {
                let Some(l) = self.link(name)? else { return Ok(Change::Unchanged) };
                self.nl.keep_secondaries(name, l.index, *cidr);
                let c = self.nl.del_address(name, l.index, *cidr)?;
                if c == Change::Done {
                    info!("{name}: removed {cidr}");
                }
                Ok(c)
            }
            Action::DeleteLink { .. } => {
                let Some(l) = self.link(name)? else { return Ok(Change::Unchanged) };
                let c = self.nl.delete_link(name, l.index)?;
                if c == Change::Done {
                    info!("{name}: deleted the interface");
                }
                Ok(c)
            }
            Action::CreateLink { kind, .. } => {
                let (new, what) = match kind {
                    Created::Vlan { parent, id } => {
                        let p = self
                            .link(parent)?
                            .ok_or_else(|| format!("{name}: parent interface {parent} not found"))?;
                        (NewLink::Vlan { parent: p.index, id: *id }, format!("VLAN {id} on {parent}"))
                    }
                    Created::Dummy => (NewLink::Dummy, "dummy interface".to_string()),
                };
                let c = self.nl.create_link(name, new)?;
                match c {
                    Change::Done => info!("{name}: created {what}"),
                    Change::Unchanged => {
                        info!("{name}: exists already (not created by lanai, never deleted)")
                    }
                }
                Ok(c)
            }
            Action::SetMtu { mtu, .. } => {
                let l = self.need(name)?;
                if l.mtu == *mtu {
                    return Ok(Change::Unchanged);
                }
                self.nl.set_mtu(name, l.index, *mtu)?;
                info!("{name}: mtu {mtu} (was {})", l.mtu);
                Ok(Change::Done)
            }
            Action::SetUp { .. } => {
                let l = self.need(name)?;
                if l.up() {
                    return Ok(Change::Unchanged);
                }
                self.nl.set_up(name, l.index, true)?;
                info!("{name}: link up");
                Ok(Change::Done)
            }
            Action::AddAddress { cidr, .. } => {
                let l = self.need(name)?;
                let c = self.nl.add_address(name, l.index, *cidr)?;
                match c {
                    Change::Done => info!("{name}: added {cidr}"),
                    Change::Unchanged => debug!("{name}: {cidr} present already (not ours, never removed)"),
                }
                Ok(c)
            }
            Action::AddRoute { route, .. } => {
                let l = self.need(name)?;
                let c = self.nl.add_route(name, l.index, route)?;
                let (d, g) = (route.destination, route.gateway);
                match c {
                    Change::Done => info!("{name}: added route {d} via {g}"),
                    Change::Unchanged => {
                        debug!("{name}: route {d} present already (not ours, never removed)")
                    }
                }
                Ok(c)
            }
            Action::StartDhcp { .. } => {
                self.need(name)?;
                let pid = self.dhcp.start(name)?;
                info!("{name}: started DHCP client (pid {pid})");
                Ok(Change::Done)
            }
        }
    }

    /// Starts a client for every interface that should have one and has none
    /// (after a restart, or when one died: `reap` spaces the retries out).
    pub fn ensure_dhcp(&mut self) {
        let want: Vec<String> = self
            .applied
            .interfaces
            .iter()
            .filter(|(n, a)| a.dhcp && !self.dhcp.running(n))
            .map(|(n, _)| n.clone())
            .collect();
        for name in want {
            match self.dhcp.start(&name) {
                Ok(pid) => info!("{name}: started DHCP client (pid {pid})"),
                Err(e) => warn!("{e}"),
            }
        }
    }

    /// Periodic: restarts DHCP clients that died (at most every 5 s each).
    pub fn tick(&mut self) {
        for name in self.dhcp.reap(std::time::Duration::from_secs(5)) {
            if self.applied.interfaces.get(&name).is_some_and(|a| a.dhcp) {
                match self.dhcp.start(&name) {
                    Ok(pid) => info!("{name}: restarted DHCP client (pid {pid})"),
                    Err(e) => warn!("{e}"),
                }
            }
        }
    }

    /// `show`: every interface of the config (and any we still hold that is
    /// no longer in it) with what we applied, what the kernel has, and errors.
    pub fn show(&mut self, file: &str, config: &[Interface]) -> Value {
        let mut names: Vec<String> = config.iter().map(|i| i.name.clone()).collect();
        for n in self.applied.interfaces.keys().chain(self.errors.keys()) {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        let mut out = vec![];
        for name in names {
            let conf = config.iter().find(|i| i.name == name);
            let applied = self.applied.interfaces.get(&name).cloned().unwrap_or_default();
            let link = self.nl.link(&name).ok().flatten();
            let other: Vec<String> = match &link {
                Some(l) => self
                    .nl
                    .addresses(&name, l.index)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|c| !applied.addresses.contains(c))
                    .map(|c| c.to_string())
                    .collect(),
                None => vec![],
            };
            out.push(json!({
                "name": name,
                "line": conf.map(|c| c.line),
                "kind": conf.map(|c| match c.kind {
                    InterfaceKind::Existing => "existing",
                    InterfaceKind::Vlan { .. } => "vlan",
                    InterfaceKind::Dummy => "dummy",
                }),
                "auto": conf.map(|c| c.auto),
                "present": link.is_some(),
                "index": link.as_ref().map(|l| l.index),
                "up": link.as_ref().map(|l| l.up()),
                "mtu": link.as_ref().map(|l| l.mtu),
                "created": applied.created.is_some(),
                "addresses": applied.addresses,
                "routes": applied.routes,
                "other_addresses": other,
                "dhcp": applied.dhcp.then(|| self.dhcp.status(&name)),
                "errors": self.errors.get(&name).map(|v| v.iter().map(|(_, e)| e).collect::<Vec<_>>()).unwrap_or_default(),
            }));
        }
        json!({ "file": file, "interfaces": out })
    }
}

fn is_addition(a: &Action) -> bool {
    matches!(
        a,
        Action::CreateLink { .. }
            | Action::SetMtu { .. }
            | Action::SetUp { .. }
            | Action::AddAddress { .. }
            | Action::AddRoute { .. }
            | Action::StartDhcp { .. }
    )
}
