//! `server` and `default-server` lines, and the addresses they carry.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use super::model::*;
use super::time::{parse_number, parse_time};

/// `HOST:PORT` split, with placeholders and unsupported forms refused.
fn split_host_port(text: &str) -> Result<(&str, Option<&str>), String> {
    if text.contains('<') || text.contains('>') {
        return Err(format!("'{text}' is a placeholder, not an address: replace it with IP:PORT"));
    }
    if let Some((family, _)) = text.split_once('@') {
        return Err(format!("address family prefix '{family}@' in '{text}' is not supported"));
    }
    if text.starts_with('/') {
        return Err(format!("Unix socket address '{text}' is not supported"));
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| format!("missing ']' in address '{text}'"))?;
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(format!("unexpected '{after}' after ']' in address '{text}'")),
            },
        };
    }
    // As in HAProxy, the last colon starts the port, even after an IPv6 address.
    match text.rsplit_once(':') {
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((text, None)),
    }
}

fn parse_port(port: &str, whole: &str) -> Result<u16, String> {
    if port.contains('-') {
        return Err(format!("port ranges are not supported in '{whole}'"));
    }
    if port.starts_with('+') {
        return Err(format!("port offsets are not supported in '{whole}'"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("invalid port '{port}' in '{whole}'")),
    }
}

/// A `bind` (or legacy `listen NAME ADDR`) address list: `*:80`, `:80`,
/// `1.2.3.4:80`, `[::]:443`, `a:80,b:81`.
pub(super) fn parse_bind_addrs(text: &str) -> Result<Vec<SocketAddr>, String> {
    let mut addrs = Vec::new();
    for one in text.split(',') {
        let (host, port) = split_host_port(one)?;
        let port = port.ok_or_else(|| format!("missing port in bind address '{one}'"))?;
        let port = parse_port(port, one)?;
        let ip = match host {
            "" | "*" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            _ => host.parse::<IpAddr>().map_err(|_| {
                format!("bind address '{one}' must be an IP address (host names are not resolved)")
            })?,
        };
        addrs.push(SocketAddr::new(ip, port));
    }
    Ok(addrs)
}

/// A server address: an IP or a host name (kept for resolution at load time),
/// and a port. The placeholder IP `0.0.0.0` stands for an unresolved name.
pub(super) fn parse_server_addr(text: &str) -> Result<(SocketAddr, Option<String>), String> {
    let (host, port) = split_host_port(text)?;
    let port = port.ok_or_else(|| {
        format!(
            "missing port in server address '{text}' (Lanai does not reuse the client's destination port)"
        )
    })?;
    let port = parse_port(port, text)?;
    if host.is_empty() || host == "*" {
        return Err(format!("missing host in server address '{text}'"));
    }
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok((SocketAddr::new(ip, port), None)),
        Err(_) => {
            let valid = host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
            if !valid {
                return Err(format!("invalid host name '{host}' in server address '{text}'"));
            }
            Ok((SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port), Some(host.to_string())))
        }
    }
}

/// Resolves `path` against a `ca-base`/`crt-base` directory when relative.
pub(super) fn resolve_path(base: Option<&Path>, path: &str) -> PathBuf {
    match base {
        Some(base) if !path.starts_with('/') => base.join(path),
        _ => PathBuf::from(path),
    }
}

/// Options of a `server` or `default-server` line. `default-server` fills one
/// of these; each `server` starts from a copy of it.
#[derive(Debug, Clone, Default)]
pub(super) struct ServerOpts {
    pub check: bool,
    pub check_params: ServerCheck,
    pub check_ssl: bool,
    pub weight: Option<u32>,
    pub backup: bool,
    pub disabled: bool,
    pub maxconn: Option<u32>,
    pub cookie: Option<String>,
    pub id: Option<u32>,
    pub ssl: bool,
    pub verify: Option<Verify>,
    pub ca_file: Option<PathBuf>,
    pub crt: Option<PathBuf>,
    pub sni: Option<ServerSni>,
    pub alpn: Vec<String>,
    pub send_proxy: Option<ProxyProtocolVersion>,
}

/// Paths the options resolve against.
pub(super) struct Bases<'a> {
    pub ca: Option<&'a Path>,
    pub crt: Option<&'a Path>,
}

/// Options only a `server` line (not `default-server`) may carry.
const SERVER_ONLY: [&str; 1] = ["id"];

/// Known keywords that Lanai does not implement, for a precise message.
const UNSUPPORTED: [&str; 16] = [
    "slowstart",
    "track",
    "agent-check",
    "agent-port",
    "agent-inter",
    "observe",
    "on-error",
    "on-marked-down",
    "on-marked-up",
    "resolvers",
    "init-addr",
    "redir",
    "source",
    "verifyhost",
    "namespace",
    "proto",
];

/// Parses the options after `server NAME ADDR` (or `default-server`).
pub(super) fn parse_server_options(
    words: &[String],
    opts: &mut ServerOpts,
    is_default: bool,
    bases: &Bases<'_>,
) -> Result<(), String> {
    let mut i = 0;
    while i < words.len() {
        let keyword = words[i].as_str();
        let mut arg = || -> Result<&str, String> {
            i += 1;
            words.get(i).map(String::as_str).ok_or_else(|| format!("'{keyword}' expects an argument"))
        };
        let check_time = |t: &str| match parse_time(t) {
            Ok(time) if time.is_zero() => Err(format!("invalid value 0 for argument '{keyword}'")),
            Ok(time) => Ok(time),
            Err(e) => Err(format!("'{keyword}': {e}")),
        };
        if is_default && SERVER_ONLY.contains(&keyword) {
            return Err(format!("'{keyword}' is not allowed on 'default-server' lines"));
        }
        match keyword {
            "check" => opts.check = true,
            "no-check" => opts.check = false,
            "inter" => opts.check_params.inter = check_time(arg()?)?,
            "fastinter" => opts.check_params.fastinter = check_time(arg()?)?,
            "downinter" => opts.check_params.downinter = check_time(arg()?)?,
            "rise" => opts.check_params.rise = positive(keyword, arg()?)?,
            "fall" => opts.check_params.fall = positive(keyword, arg()?)?,
            "port" => {
                let text = arg()?;
                opts.check_params.port = Some(parse_port(text, text).map_err(|e| format!("'port': {e}"))?);
            }
            "addr" => {
                let text = arg()?;
                opts.check_params.addr =
                    Some(text.parse().map_err(|_| format!("'addr' expects an IP address, got '{text}'"))?);
            }
            "weight" => {
                let weight: u32 = parse_number(keyword, arg()?)?;
                if weight > 256 {
                    return Err(format!("weight of server is out of range 0-256: {weight}"));
                }
                opts.weight = Some(weight);
            }
            "backup" => opts.backup = true,
            "no-backup" => opts.backup = false,
            "disabled" => opts.disabled = true,
            "enabled" => opts.disabled = false,
            "maxconn" => opts.maxconn = Some(parse_number(keyword, arg()?)?),
            "cookie" => opts.cookie = Some(arg()?.to_string()),
            "id" => {
                let id: u32 = parse_number(keyword, arg()?)?;
                if id == 0 {
                    return Err("server 'id' must be a positive integer".into());
                }
                opts.id = Some(id);
            }
            "ssl" => opts.ssl = true,
            "no-ssl" => opts.ssl = false,
            "check-ssl" => opts.check_ssl = true,
            "no-check-ssl" => opts.check_ssl = false,
            "verify" => {
                opts.verify = Some(match arg()? {
                    "none" => Verify::None,
                    "required" => Verify::Required,
                    other => return Err(format!("'verify' expects 'none' or 'required', got '{other}'")),
                })
            }
            "ca-file" => opts.ca_file = Some(resolve_path(bases.ca, arg()?)),
            "crt" => opts.crt = Some(resolve_path(bases.crt, arg()?)),
            "sni" => {
                let expr = arg()?;
                opts.sni = Some(if expr == "req.hdr(host)" || expr == "hdr(host)" {
                    ServerSni::RequestHost
                } else if let Some(literal) = expr.strip_prefix("str(").and_then(|r| r.strip_suffix(')')) {
                    ServerSni::Literal(literal.to_string())
                } else {
                    return Err(format!(
                        "'sni {expr}' is not supported: use 'sni req.hdr(host)' or 'sni str(NAME)'"
                    ));
                })
            }
            "alpn" => opts.alpn = arg()?.split(',').map(String::from).collect(),
            "send-proxy" => opts.send_proxy = Some(ProxyProtocolVersion::V1),
            "send-proxy-v2" => opts.send_proxy = Some(ProxyProtocolVersion::V2),
            "no-send-proxy" | "no-send-proxy-v2" => opts.send_proxy = None,
            "no-sslv3" | "no-tlsv10" | "no-tlsv11" => {}
            "ssl-min-ver" | "ssl-max-ver" => {
                // rustls always offers 1.2 and 1.3; only a floor of 1.2 is a no-op.
                let version = arg()?;
                if keyword == "ssl-min-ver" && version == "TLSv1.2" {
                } else {
                    super::tls::parse_version(keyword, version)?;
                    return Err(format!("'{keyword} {version}' is not supported on server lines"));
                }
            }
            _ if UNSUPPORTED.contains(&keyword) => {
                return Err(format!("server option '{keyword}' is not supported"));
            }
            _ => return Err(format!("unknown server option '{keyword}'")),
        }
        i += 1;
    }
    Ok(())
}

fn positive(keyword: &str, text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("'{keyword}' expects a strictly positive integer, got '{text}'")),
    }
}

/// Everything about a server line but its name and address, as the server
/// with `default-server` folded in.
pub(super) struct ServerParts {
    pub name: String,
    pub addr: SocketAddr,
    pub host: Option<String>,
    pub position: u32,
    pub line: usize,
    /// `ssl-server-verify` from the global section (HAProxy's default: required).
    pub default_verify: Verify,
}

/// Builds the model `Server` from its options. Errors like HAProxy's own when
/// TLS verification is on without a CA file.
pub(super) fn build_server(parts: ServerParts, opts: ServerOpts, backend: &str) -> Result<Server, String> {
    let tls = if opts.ssl {
        let verify = opts.verify.unwrap_or(parts.default_verify);
        if verify == Verify::Required && opts.ca_file.is_none() {
            return Err(format!(
                "'server {backend}/{}' : verify is enabled by default but no CA file specified. If you're running on a LAN where you're certain to trust the server's certificate, please set an explicit 'verify none' statement on the 'server' line",
                parts.name
            ));
        }
        Some(ServerTls { verify, ca_file: opts.ca_file, crt: opts.crt, sni: opts.sni, alpn: opts.alpn })
    } else {
        None
    };
    let check = opts.check.then_some(ServerCheck { ssl: opts.check_ssl || opts.ssl, ..opts.check_params });
    Ok(Server {
        line: parts.line,
        name: parts.name,
        host: parts.host,
        addr: parts.addr,
        id: opts.id.unwrap_or(parts.position),
        weight: opts.weight.unwrap_or(1),
        backup: opts.backup,
        disabled: opts.disabled,
        maxconn: opts.maxconn,
        cookie: opts.cookie,
        check,
        tls,
        send_proxy: opts.send_proxy,
    })
}

/// Is `word` an option keyword (used to explain `server NAME check` with no address)?
pub(super) fn is_server_keyword(word: &str) -> bool {
    let words = [word.to_string()];
    let bases = Bases { ca: None, crt: None };
    match parse_server_options(&words, &mut ServerOpts::default(), false, &bases) {
        Ok(()) => true,
        // Options that need an argument fail differently from unknown words.
        Err(e) => !e.starts_with("unknown server option"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_addresses() {
        assert_eq!(parse_bind_addrs("*:80"), Ok(vec!["0.0.0.0:80".parse().expect("addr")]));
        assert_eq!(parse_bind_addrs(":80"), Ok(vec!["0.0.0.0:80".parse().expect("addr")]));
        assert_eq!(parse_bind_addrs("[::]:443"), Ok(vec!["[::]:443".parse().expect("addr")]));
        assert_eq!(parse_bind_addrs(":::443"), Ok(vec!["[::]:443".parse().expect("addr")]));
        assert_eq!(
            parse_bind_addrs("1.2.3.4:80,5.6.7.8:81"),
            Ok(vec!["1.2.3.4:80".parse().expect("addr"), "5.6.7.8:81".parse().expect("addr")])
        );
        assert!(parse_bind_addrs("1.2.3.4").unwrap_err().contains("missing port"));
        assert!(parse_bind_addrs("ipv6@:80").unwrap_err().contains("'ipv6@'"));
        assert!(parse_bind_addrs(":80-90").unwrap_err().contains("ranges"));
        assert!(parse_bind_addrs("www.example.com:80").is_err());
    }

    #[test]
    fn server_addresses() {
        assert_eq!(parse_server_addr("10.0.0.1:80"), Ok(("10.0.0.1:80".parse().expect("addr"), None)));
        assert_eq!(
            parse_server_addr("db.local:5432"),
            Ok(("0.0.0.0:5432".parse().expect("addr"), Some("db.local".to_string())))
        );
        let err = parse_server_addr("<srv1_ip>:<srv1_port>").unwrap_err();
        assert!(err.contains("placeholder"), "{err}");
        assert!(parse_server_addr("10.0.0.1").unwrap_err().contains("missing port"));
        assert!(
            is_server_keyword("check") && is_server_keyword("inter") && !is_server_keyword("10.0.0.1:80")
        );
        assert_eq!(parse_server_addr("::1:80"), Ok(("[::1]:80".parse().expect("addr"), None)));
    }

    #[test]
    fn options_and_defaults() {
        let words: Vec<String> = "check inter 10s fall 5 weight 20 backup cookie s1 send-proxy-v2"
            .split(' ')
            .map(String::from)
            .collect();
        let mut opts = ServerOpts::default();
        parse_server_options(&words, &mut opts, false, &Bases { ca: None, crt: None }).expect("valid");
        let parts = ServerParts {
            name: "s1".into(),
            addr: "127.0.0.1:80".parse().expect("addr"),
            host: None,
            position: 3,
            line: 7,
            default_verify: Verify::Required,
        };
        let server = build_server(parts, opts, "app").expect("valid");
        assert_eq!(server.id, 3);
        assert_eq!(server.weight, 20);
        let check = server.check.expect("check on");
        assert_eq!(check.inter, std::time::Duration::from_secs(10));
        assert_eq!(check.fall, 5);
        assert_eq!(check.rise, 2);
        assert_eq!(server.send_proxy, Some(ProxyProtocolVersion::V2));
    }

    #[test]
    fn option_errors() {
        let bases = Bases { ca: Some(Path::new("/ca")), crt: None };
        let run = |text: &str| {
            let words: Vec<String> = text.split(' ').map(String::from).collect();
            parse_server_options(&words, &mut ServerOpts::default(), false, &bases)
        };
        assert!(run("weight 300").unwrap_err().contains("0-256"));
        assert!(run("slowstart 10s").unwrap_err().contains("'slowstart' is not supported"));
        assert!(run("frob").unwrap_err().contains("unknown server option 'frob'"));
        assert!(run("inter").unwrap_err().contains("expects an argument"));
        assert!(run("sni ssl_fc_sni").is_err());
        let mut opts = ServerOpts::default();
        let words: Vec<String> = ["ssl", "ca-file", "ca.pem"].map(String::from).to_vec();
        parse_server_options(&words, &mut opts, false, &bases).expect("valid");
        assert_eq!(opts.ca_file, Some(PathBuf::from("/ca/ca.pem")));
    }
}
