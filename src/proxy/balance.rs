//! Server selection: HAProxy's `balance` algorithms over a backend's servers.
//!
//! The balancer sees servers as `Candidate`s (live state + configured options)
//! and returns an index. Weights are read live from `ServerState`, so
//! `set weight` on the runtime API applies at once (except `static-rr`, whose
//! weights are fixed at load time as in HAProxy). Hash-based algorithms use
//! HAProxy's default map-based hashing with the sdbm function, so a given key
//! lands on the same server as it would with HAProxy and the same weights.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use crate::conf::haproxy::Balance;
use crate::proxy::state::ServerState;

/// What the balancer needs to know about one server.
pub struct Candidate<'a> {
    pub state: &'a Arc<ServerState>,
    /// Weight from the configuration (used by `static-rr` and as hash map weight).
    pub config_weight: u32,
    pub backup: bool,
    pub maxconn: Option<u32>,
    /// Server id (`id` or position), orders `first`.
    pub id: u32,
}

impl Candidate<'_> {
    fn has_room(&self) -> bool {
        match self.maxconn {
            Some(max) if max > 0 => self.state.counters.current() < u64::from(max),
            _ => true,
        }
    }

    fn eligible(&self) -> bool {
        self.state.is_usable() && self.has_room()
    }
}

/// The key a hash-based algorithm balances on, computed by the caller from the
/// request (or connection) according to `Balance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    None,
    Hash(u32),
}

/// Mutable per-backend state of the algorithm (round-robin positions).
#[derive(Debug)]
pub struct Balancer {
    algo: Balance,
    allbackups: bool,
    rr: Mutex<RoundRobin>,
}

#[derive(Debug, Default)]
struct RoundRobin {
    /// HAProxy's server map for static-rr and hashing, with the (index, weight)
    /// list it was built from: rebuilt only when usable servers or weights change.
    map: Vec<usize>,
    map_key: Vec<(usize, u32)>,
    /// Smooth weighted round-robin "current weight" per server index.
    current: Vec<i64>,
    /// Next start position for tie-breaking in leastconn / random.
    cursor: usize,
}

impl Balancer {
    pub fn new(algo: Balance, allbackups: bool) -> Self {
        Balancer { algo, allbackups, rr: Mutex::new(RoundRobin::default()) }
    }

    pub fn algo(&self) -> &Balance {
        &self.algo
    }

    /// Picks a server for new traffic; `None` when none is usable. Active servers
    /// are used while any is usable; else backups (the first one only unless
    /// `option allbackups`).
    pub fn pick(&self, servers: &[Candidate<'_>], key: Key) -> Option<usize> {
        self.pick_excluding(servers, key, None)
    }

    /// As `pick`, avoiding `exclude` when another server is usable (redispatch).
    pub fn pick_excluding(
        &self,
        servers: &[Candidate<'_>],
        key: Key,
        exclude: Option<usize>,
    ) -> Option<usize> {
        let usable = |i: usize, c: &Candidate<'_>| c.eligible() && Some(i) != exclude;
        let mut pool: Vec<usize> =
            servers.iter().enumerate().filter(|(i, c)| !c.backup && usable(*i, c)).map(|(i, _)| i).collect();
        if pool.is_empty() {
            pool = servers
                .iter()
                .enumerate()
                .filter(|(i, c)| c.backup && usable(*i, c))
                .map(|(i, _)| i)
                .collect();
            if !self.allbackups {
                // HAProxy uses the first usable backup (lowest id) only.
                if let Some(first) = pool.iter().copied().min_by_key(|&i| servers[i].id) {
                    pool = vec![first];
                }
            }
        }
        if pool.is_empty() {
            return match exclude {
                // Nothing else: the excluded server is still better than nothing.
                Some(i) if servers.get(i).is_some_and(Candidate::eligible) => Some(i),
                _ => None,
            };
        }
        let chosen = match (&self.algo, key) {
            (Balance::First, _) => pool.iter().copied().min_by_key(|&i| servers[i].id),
            (Balance::LeastConn, _) => self.least_conn(servers, &pool),
            (Balance::Random { draws }, _) => self.random(servers, &pool, *draws),
            (Balance::StaticRr, _) => {
                let map = self.map(servers, &pool);
                let mut rr = self.rr.lock().unwrap_or_else(|e| e.into_inner());
                rr.cursor = rr.cursor.wrapping_add(1);
                map.get((rr.cursor - 1) % map.len().max(1)).copied()
            }
            (
                Balance::Source | Balance::Uri { .. } | Balance::UrlParam(_) | Balance::Hdr(_),
                Key::Hash(h),
            ) => {
                let map = self.map(servers, &pool);
                map.get(h as usize % map.len().max(1)).copied()
            }
            // Round-robin, and hash algorithms with no key (HAProxy falls back to RR).
            _ => self.smooth_rr(servers, &pool, |c| c.state.weight()),
        };
        chosen
    }

    /// Smooth weighted round-robin: every pick adds each server's weight to its
    /// current value, picks the highest and subtracts the total. Spreads a
    /// server's turns evenly (weights 3,1 give a a b a, not a a a b).
    fn smooth_rr(
        &self,
        servers: &[Candidate<'_>],
        pool: &[usize],
        weight: impl Fn(&Candidate<'_>) -> u32,
    ) -> Option<usize> {
        let mut rr = self.rr.lock().unwrap_or_else(|e| e.into_inner());
        if rr.current.len() != servers.len() {
            rr.current = vec![0; servers.len()];
        }
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for &i in pool {
            let w = i64::from(weight(&servers[i]).max(1));
            total += w;
            rr.current[i] += w;
            if best.is_none_or(|b| rr.current[i] > rr.current[b]) {
                best = Some(i);
            }
        }
        if let Some(b) = best {
            rr.current[b] -= total;
        }
        best
    }

    fn map(&self, servers: &[Candidate<'_>], pool: &[usize]) -> Vec<usize> {
        let key: Vec<(usize, u32)> = pool.iter().map(|&i| (i, servers[i].state.weight().max(1))).collect();
        let mut rr = self.rr.lock().unwrap_or_else(|e| e.into_inner());
        if rr.map_key != key {
            rr.map = build_map(&key);
            rr.map_key = key;
        }
        rr.map.clone()
    }

    /// Fewest current sessions relative to weight; ties rotate.
    fn least_conn(&self, servers: &[Candidate<'_>], pool: &[usize]) -> Option<usize> {
        let mut rr = self.rr.lock().unwrap_or_else(|e| e.into_inner());
        let start = rr.cursor;
        rr.cursor = rr.cursor.wrapping_add(1);
        let n = pool.len();
        (0..n).map(|k| pool[(start + k) % n]).min_by(|&a, &b| {
            let load = |i: usize| {
                let c = &servers[i];
                // cur/weight compared without division: a_cur*b_w vs b_cur*a_w.
                (c.state.counters.cur_sessions.load(Ordering::Relaxed), u64::from(c.state.weight().max(1)))
            };
            let (ac, aw) = load(a);
            let (bc, bw) = load(b);
            (u128::from(ac) * u128::from(bw)).cmp(&(u128::from(bc) * u128::from(aw)))
        })
    }

    /// `random [draws]`: draw `draws` weighted-random servers, keep the least loaded.
    fn random(&self, servers: &[Candidate<'_>], pool: &[usize], draws: u32) -> Option<usize> {
        let total: u64 = pool.iter().map(|&i| u64::from(servers[i].state.weight().max(1))).sum();
        let mut best: Option<usize> = None;
        for _ in 0..draws.max(1) {
            let mut r = rand::random_range(0..total.max(1));
            let mut pick = pool[0];
            for &i in pool {
                let w = u64::from(servers[i].state.weight().max(1));
                if r < w {
                    pick = i;
                    break;
                }
                r -= w;
            }
            let load = |i: usize| servers[i].state.counters.current();
            if best.is_none_or(|b| load(pick) < load(b)) {
                best = Some(pick);
            }
        }
        best
    }
}

/// HAProxy's server map: `total weight` slots filled in an interleaved order.
/// Each slot goes to the server whose accumulated score, divided by the total,
/// is highest (first server on ties); its score then drops by the total.
fn build_map(weights: &[(usize, u32)]) -> Vec<usize> {
    let total: i64 = weights.iter().map(|&(_, w)| i64::from(w)).sum();
    let mut score = vec![0i64; weights.len()];
    let mut map = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best: Option<(usize, i64)> = None;
        for (k, &(_, w)) in weights.iter().enumerate() {
            score[k] += i64::from(w);
            let v = (score[k] + total) / total;
            if best.is_none_or(|(_, max)| v > max) {
                best = Some((k, v));
            }
        }
        if let Some((k, _)) = best {
            score[k] -= total;
            map.push(weights[k].0);
        }
    }
    map
}

/// The sdbm hash HAProxy uses by default for `balance uri|hdr|url_param`.
pub fn sdbm(data: &[u8]) -> u32 {
    data.iter().fold(0u32, |h, &c| u32::from(c).wrapping_add(h << 6).wrapping_add(h << 16).wrapping_sub(h))
}

/// HAProxy's hash for `balance source`: the address bytes, summed the way
/// HAProxy's `gen_hash`-less source balancing does (a plain 32-bit fold).
pub fn source_hash(ip: std::net::IpAddr) -> u32 {
    match ip {
        std::net::IpAddr::V4(v4) => u32::from_be_bytes(v4.octets()),
        std::net::IpAddr::V6(v6) => {
            // XOR of the four 32-bit words, as HAProxy folds IPv6 sources.
            v6.octets().chunks_exact(4).fold(0u32, |h, w| h ^ u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
        }
    }
}

/// Key for `balance uri [whole] [len N] [depth N]`.
pub fn uri_key(uri: &str, whole: bool, len: Option<usize>, depth: Option<usize>) -> u32 {
    let mut s = if whole { uri } else { uri.split('?').next().unwrap_or(uri) };
    if let Some(depth) = depth {
        // Keep up to `depth` directory levels ('/' separated).
        let mut seen = 0;
        for (pos, ch) in s.char_indices() {
            if ch == '/' {
                seen += 1;
                if seen > depth {
                    s = &s[..pos];
                    break;
                }
            }
        }
    }
    let bytes = s.as_bytes();
    let bytes = match len {
        Some(n) if n < bytes.len() => &bytes[..n],
        _ => bytes,
    };
    sdbm(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::state::{Admin, Health};

    fn states(weights: &[u32]) -> Vec<Arc<ServerState>> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Arc::new(ServerState::new("be", &format!("s{i}"), w, true)))
            .collect()
    }

    fn candidates<'a>(st: &'a [Arc<ServerState>], backup: &[bool]) -> Vec<Candidate<'a>> {
        st.iter()
            .enumerate()
            .map(|(i, s)| Candidate {
                state: s,
                config_weight: s.weight(),
                backup: backup.get(i).copied().unwrap_or(false),
                maxconn: None,
                id: i as u32 + 1,
            })
            .collect()
    }

    fn sequence(b: &Balancer, c: &[Candidate<'_>], n: usize) -> Vec<usize> {
        (0..n).filter_map(|_| b.pick(c, Key::None)).collect()
    }

    #[test]
    fn roundrobin_equal_weights_rotates() {
        let st = states(&[1, 1, 1]);
        let c = candidates(&st, &[]);
        let b = Balancer::new(Balance::RoundRobin, false);
        assert_eq!(sequence(&b, &c, 6), vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn roundrobin_respects_weights_and_spreads() {
        let st = states(&[3, 1]);
        let c = candidates(&st, &[]);
        let b = Balancer::new(Balance::RoundRobin, false);
        let seq = sequence(&b, &c, 8);
        assert_eq!(seq.iter().filter(|&&i| i == 0).count(), 6);
        assert_eq!(seq, vec![0, 0, 1, 0, 0, 0, 1, 0]);
    }

    #[test]
    fn roundrobin_follows_runtime_weight_change() {
        let st = states(&[1, 1]);
        let c = candidates(&st, &[]);
        let b = Balancer::new(Balance::RoundRobin, false);
        st[1].set_weight(0);
        assert_eq!(sequence(&b, &c, 4), vec![0, 0, 0, 0]);
    }

    #[test]
    fn down_and_maint_servers_are_skipped() {
        let st = states(&[1, 1, 1]);
        let c = candidates(&st, &[]);
        let b = Balancer::new(Balance::RoundRobin, false);
        st[0].set_health(Health::Down);
        st[2].set_admin(Admin::Maint);
        assert_eq!(sequence(&b, &c, 3), vec![1, 1, 1]);
    }

    #[test]
    fn backups_only_when_no_active_and_first_only() {
        let st = states(&[1, 1, 1]);
        let c = candidates(&st, &[false, true, true]);
        let b = Balancer::new(Balance::RoundRobin, false);
        assert_eq!(sequence(&b, &c, 2), vec![0, 0]);
        st[0].set_health(Health::Down);
        assert_eq!(sequence(&b, &c, 3), vec![1, 1, 1]);
        let all = Balancer::new(Balance::RoundRobin, true);
        assert_eq!(sequence(&all, &c, 4), vec![1, 2, 1, 2]);
    }

    #[test]
    fn nothing_usable_gives_none() {
        let st = states(&[1]);
        let c = candidates(&st, &[]);
        st[0].set_health(Health::Down);
        assert_eq!(Balancer::new(Balance::RoundRobin, false).pick(&c, Key::None), None);
    }

    #[test]
    fn leastconn_prefers_idle_server() {
        let st = states(&[1, 1]);
        let c = candidates(&st, &[]);
        let _busy = st[0].counters.open_session();
        let b = Balancer::new(Balance::LeastConn, false);
        assert_eq!(sequence(&b, &c, 3), vec![1, 1, 1]);
    }

    #[test]
    fn first_fills_lowest_id_up_to_maxconn() {
        let st = states(&[1, 1]);
        let mut c = candidates(&st, &[]);
        for cand in &mut c {
            cand.maxconn = Some(1);
        }
        let b = Balancer::new(Balance::First, false);
        assert_eq!(b.pick(&c, Key::None), Some(0));
        let _g = st[0].counters.open_session();
        assert_eq!(b.pick(&c, Key::None), Some(1));
    }

    #[test]
    fn hash_is_stable_and_weighted() {
        let st = states(&[1, 1, 2]);
        let c = candidates(&st, &[]);
        let b = Balancer::new(Balance::Source, false);
        let k = Key::Hash(source_hash("10.0.0.7".parse().unwrap()));
        let first = b.pick(&c, k);
        for _ in 0..5 {
            assert_eq!(b.pick(&c, k), first);
        }
        // The map for weights 1,1,2 interleaves: s0 s2 s1 s2 (HAProxy's order).
        assert_eq!(build_map(&[(0, 1), (1, 1), (2, 2)]), vec![0, 2, 1, 2]);
        assert_eq!(b.pick(&c, Key::Hash(0)), Some(0));
        assert_eq!(b.pick(&c, Key::Hash(5)), Some(2));
    }

    #[test]
    fn redispatch_avoids_excluded_server() {
        let st = states(&[1, 1]);
        let c = candidates(&st, &[]);
        let b = Balancer::new(Balance::Source, false);
        let k = Key::Hash(0);
        assert_eq!(b.pick_excluding(&c, k, Some(0)), Some(1));
        st[1].set_health(Health::Down);
        assert_eq!(b.pick_excluding(&c, k, Some(0)), Some(0));
    }

    #[test]
    fn sdbm_matches_reference_values() {
        assert_eq!(sdbm(b""), 0);
        assert_eq!(sdbm(b"a"), 97);
        // h = c + (h<<6) + (h<<16) - h for "ab": 98 + 97*64 + 97*65536 - 97
        assert_eq!(sdbm(b"ab"), 98 + 97 * 64 + 97 * 65536 - 97);
    }

    #[test]
    fn uri_key_honours_depth_and_len() {
        assert_eq!(uri_key("/a/b/c?x=1", false, None, Some(2)), sdbm(b"/a/b"));
        assert_eq!(uri_key("/a/b/c?x=1", true, None, None), sdbm(b"/a/b/c?x=1"));
        assert_eq!(uri_key("/abcdef", false, Some(3), None), sdbm(b"/ab"));
    }
}
