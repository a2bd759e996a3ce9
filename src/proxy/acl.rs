//! ACL evaluation: matches a parsed `Condition` against samples fetched from a
//! request or connection. The data plane supplies samples through `Samples`;
//! this module only knows how to compare them.

use std::borrow::Cow;
use std::net::IpAddr;

use crate::conf::haproxy::{AclMatch, Condition, Fetch, MatchMethod, Pattern};

/// A fetched value. Headers may have several values: a match on any counts.
#[derive(Debug, Clone, PartialEq)]
pub enum Sample<'a> {
    /// The fetch found nothing (header absent, no SNI, …).
    Missing,
    Str(Cow<'a, str>),
    Strs(Vec<Cow<'a, str>>),
    Int(i64),
    Ip(IpAddr),
    Bool(bool),
}

/// Where samples come from: an HTTP request, or a TCP connection's first bytes.
pub trait Samples {
    fn fetch(&self, fetch: &Fetch) -> Sample<'_>;
}

/// Evaluates `cond`; `None` (no condition) is true.
pub fn eval(cond: Option<&Condition>, samples: &dyn Samples) -> bool {
    let Some(cond) = cond else { return true };
    let any = cond.any_of.iter().any(|all| {
        all.iter().all(|term| {
            let hit = term.acl.iter().any(|m| matches(m, samples));
            hit != term.negated
        })
    });
    any != cond.unless
}

/// One ACL line: true when the fetched sample matches any pattern.
pub fn matches(acl: &AclMatch, samples: &dyn Samples) -> bool {
    let sample = samples.fetch(&acl.fetch);
    match acl.method {
        MatchMethod::Found => !matches!(sample, Sample::Missing),
        MatchMethod::Bool => match sample {
            Sample::Bool(b) => b,
            Sample::Int(i) => i != 0,
            Sample::Str(s) => !s.is_empty(),
            Sample::Strs(v) => !v.is_empty(),
            Sample::Ip(_) => true,
            Sample::Missing => false,
        },
        _ => match sample {
            Sample::Missing => false,
            Sample::Str(s) => acl.patterns.iter().any(|p| match_str(acl, &s, p)),
            Sample::Strs(values) => values.iter().any(|s| acl.patterns.iter().any(|p| match_str(acl, s, p))),
            Sample::Int(i) => acl.patterns.iter().any(|p| match_int(i, p)),
            Sample::Ip(ip) => acl.patterns.iter().any(|p| match p {
                Pattern::Net(net) => net.contains(ip),
                Pattern::Str(s) => s.parse::<IpAddr>().is_ok_and(|x| x == ip),
                _ => false,
            }),
            Sample::Bool(b) => b,
        },
    }
}

fn match_int(value: i64, pattern: &Pattern) -> bool {
    match pattern {
        Pattern::IntRange(lo, hi) => (*lo..=*hi).contains(&value),
        Pattern::Str(s) => s.parse::<i64>().is_ok_and(|p| p == value),
        _ => false,
    }
}

fn match_str(acl: &AclMatch, value: &str, pattern: &Pattern) -> bool {
    let pat = match pattern {
        Pattern::Regex(re) => return re.is_match(value),
        Pattern::IntRange(lo, hi) => {
            return match acl.method {
                MatchMethod::Len => (*lo..=*hi).contains(&(value.len() as i64)),
                _ => value.parse::<i64>().is_ok_and(|v| (*lo..=*hi).contains(&v)),
            }
        }
        Pattern::Net(net) => return value.parse::<IpAddr>().is_ok_and(|ip| net.contains(ip)),
        Pattern::Str(p) => p.as_str(),
    };
    let (value, pat): (Cow<'_, str>, Cow<'_, str>) = if acl.ignore_case {
        (Cow::Owned(value.to_ascii_lowercase()), Cow::Owned(pat.to_ascii_lowercase()))
    } else {
        (Cow::Borrowed(value), Cow::Borrowed(pat))
    };
    match acl.method {
        MatchMethod::Beg => value.starts_with(&*pat),
        MatchMethod::End => value.ends_with(&*pat),
        MatchMethod::Sub => value.contains(&*pat),
        MatchMethod::Dom => delimited_match(&value, &pat, &['/', '?', '.', ':']),
        MatchMethod::Dir => delimited_match(&value, &pat, &['/', '?']),
        MatchMethod::Len => pat.parse::<usize>().is_ok_and(|n| value.len() == n),
        MatchMethod::Int => value.parse::<i64>().is_ok_and(|v| pat.parse::<i64>().is_ok_and(|p| p == v)),
        _ => value == pat,
    }
}

/// HAProxy's `dom`/`dir` match: the pattern appears in the value as whole
/// words between delimiters (or the value's ends).
fn delimited_match(value: &str, pat: &str, delims: &[char]) -> bool {
    let pat = pat.trim_matches(|c| delims.contains(&c));
    if pat.is_empty() {
        return false;
    }
    let mut start = 0;
    while let Some(pos) = value[start..].find(pat) {
        let at = start + pos;
        let end = at + pat.len();
        let before_ok = at == 0 || value[..at].ends_with(|c| delims.contains(&c));
        let after_ok = end == value.len() || value[end..].starts_with(|c| delims.contains(&c));
        if before_ok && after_ok {
            return true;
        }
        start = at + 1;
        if start >= value.len() {
            break;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conf::haproxy::{CondTerm, IpNet};

    struct Req {
        path: &'static str,
        host: Option<&'static str>,
        src: IpAddr,
        port: i64,
        tls: bool,
    }

    impl Samples for Req {
        fn fetch(&self, fetch: &Fetch) -> Sample<'_> {
            match fetch {
                Fetch::Path => Sample::Str(self.path.into()),
                Fetch::Hdr { name, .. } if name.eq_ignore_ascii_case("host") => match self.host {
                    Some(h) => Sample::Strs(vec![h.into()]),
                    None => Sample::Missing,
                },
                Fetch::Src => Sample::Ip(self.src),
                Fetch::DstPort => Sample::Int(self.port),
                Fetch::SslFc => Sample::Bool(self.tls),
                _ => Sample::Missing,
            }
        }
    }

    fn req() -> Req {
        Req {
            path: "/api/v1/users",
            host: Some("www.Example.com"),
            src: "10.1.2.3".parse().unwrap(),
            port: 80,
            tls: false,
        }
    }

    fn acl(fetch: Fetch, method: MatchMethod, pats: &[&str]) -> AclMatch {
        AclMatch {
            fetch,
            method,
            patterns: pats.iter().map(|p| Pattern::Str(p.to_string())).collect(),
            ignore_case: false,
        }
    }

    fn term(m: AclMatch, negated: bool) -> CondTerm {
        CondTerm { negated, acl: vec![m], label: String::new() }
    }

    #[test]
    fn string_methods() {
        let r = req();
        assert!(matches(&acl(Fetch::Path, MatchMethod::Beg, &["/static", "/api"]), &r));
        assert!(matches(&acl(Fetch::Path, MatchMethod::End, &["users"]), &r));
        assert!(matches(&acl(Fetch::Path, MatchMethod::Sub, &["v1"]), &r));
        assert!(matches(&acl(Fetch::Path, MatchMethod::Dir, &["v1"]), &r));
        assert!(!matches(&acl(Fetch::Path, MatchMethod::Dir, &["v"]), &r));
        assert!(!matches(&acl(Fetch::Path, MatchMethod::Exact, &["/api"]), &r));
        let host = Fetch::Hdr { name: "host".into(), occurrence: None };
        assert!(matches(&acl(host.clone(), MatchMethod::Dom, &["Example"]), &r));
        assert!(!matches(&acl(host.clone(), MatchMethod::End, &["example.com"]), &r));
        let mut ci = acl(host.clone(), MatchMethod::End, &["example.com"]);
        ci.ignore_case = true;
        assert!(matches(&ci, &r));
        assert!(matches(&acl(host, MatchMethod::Found, &[]), &r));
        assert!(!matches(
            &acl(Fetch::Hdr { name: "x-none".into(), occurrence: None }, MatchMethod::Found, &[]),
            &r
        ));
    }

    #[test]
    fn regex_ip_int_bool() {
        let r = req();
        let re = AclMatch {
            fetch: Fetch::Path,
            method: MatchMethod::Reg,
            patterns: vec![Pattern::Regex(regex::Regex::new("^/api/v[0-9]+/").unwrap())],
            ignore_case: false,
        };
        assert!(matches(&re, &r));
        let net = AclMatch {
            fetch: Fetch::Src,
            method: MatchMethod::Ip,
            patterns: vec![Pattern::Net(IpNet { addr: "10.1.0.0".parse().unwrap(), prefix: 16 })],
            ignore_case: false,
        };
        assert!(matches(&net, &r));
        let port = AclMatch {
            fetch: Fetch::DstPort,
            method: MatchMethod::Int,
            patterns: vec![Pattern::IntRange(1, 1023)],
            ignore_case: false,
        };
        assert!(matches(&port, &r));
        assert!(!matches(&acl(Fetch::SslFc, MatchMethod::Bool, &[]), &r));
    }

    #[test]
    fn condition_and_or_not_unless() {
        let r = req();
        let api = acl(Fetch::Path, MatchMethod::Beg, &["/api"]);
        let tls = acl(Fetch::SslFc, MatchMethod::Bool, &[]);
        // `if api !tls`
        let c = Condition {
            unless: false,
            any_of: vec![vec![term(api.clone(), false), term(tls.clone(), true)]],
        };
        assert!(eval(Some(&c), &r));
        // `if api tls`
        let c = Condition {
            unless: false,
            any_of: vec![vec![term(api.clone(), false), term(tls.clone(), false)]],
        };
        assert!(!eval(Some(&c), &r));
        // `if tls || api`
        let c =
            Condition { unless: false, any_of: vec![vec![term(tls.clone(), false)], vec![term(api, false)]] };
        assert!(eval(Some(&c), &r));
        // `unless tls`
        let c = Condition { unless: true, any_of: vec![vec![term(tls, false)]] };
        assert!(eval(Some(&c), &r));
        assert!(eval(None, &r));
    }
}
