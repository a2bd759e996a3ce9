//! Hand-built configuration models for unit tests (the parser is written
//! elsewhere; tests must not depend on it).

use std::net::SocketAddr;
use std::time::Duration;

use crate::conf::haproxy::*;

pub fn proxy(name: &str, frontend: bool, backend: bool) -> Proxy {
    let mut p = Proxy::new(name, 1, Capabilities { frontend, backend });
    p.mode = Mode::Http;
    p
}

pub fn server(name: &str, id: u32, addr: SocketAddr, check: Option<ServerCheck>) -> Server {
    Server {
        line: 1,
        name: name.to_string(),
        host: None,
        addr,
        id,
        weight: 1,
        backup: false,
        disabled: false,
        maxconn: None,
        cookie: None,
        check,
        tls: None,
        send_proxy: None,
    }
}

/// Fast checks for tests: `inter` ms between checks, rise/fall as given.
pub fn fast_check(inter_ms: u64, rise: u32, fall: u32) -> ServerCheck {
    let inter = Duration::from_millis(inter_ms);
    ServerCheck { inter, fastinter: inter, downinter: inter, rise, fall, port: None, addr: None, ssl: false }
}

/// frontend `www` → backend `app` (srv1 checked, srv2 not, bk backup) + a
/// `stats` listen section.
#[allow(dead_code)] // used by the stats and runtime tests
pub fn sample_config() -> Config {
    let mut www = proxy("www", true, false);
    www.default_backend = Some("app".into());
    www.binds.push(Bind {
        line: 1,
        addr: "127.0.0.1:8080".parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080))),
        tls: None,
        accept_proxy: false,
        name: None,
        v4v6: false,
        v6only: false,
    });
    let mut app = proxy("app", false, true);
    let a = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
    app.servers.push(server("srv1", 1, a(18081), Some(ServerCheck::default())));
    app.servers.push(server("srv2", 2, a(18082), None));
    let mut bk = server("bk", 3, a(18083), None);
    bk.backup = true;
    app.servers.push(bk);
    let mut stats = proxy("stats", true, true);
    stats.stats = Some(StatsPage { uri: "/stats".into(), ..StatsPage::default() });
    Config { global: Global::default(), proxies: vec![www, app, stats] }
}
