//! `bind` lines: addresses and their TLS and listener options.

use std::path::PathBuf;

use super::model::*;
use super::server::{parse_bind_addrs, resolve_path};
use super::tls::{apply_version_flag, map_cipher_list, map_tls13_suites, merge_suites, parse_version};

/// What `bind` needs from the global section.
pub(super) struct BindEnv<'a> {
    pub crt_base: Option<&'a std::path::Path>,
    pub ca_base: Option<&'a std::path::Path>,
    pub defaults: &'a TlsDefaults,
}

/// Options that Lanai accepts but cannot honour; they only warn.
const IGNORED: [&str; 4] = ["process", "thread", "tfo", "defer-accept"];

/// Parses `bind ADDR[,ADDR…] [options]` (the words after `bind`) into one
/// `Bind` per address. Warnings go to `warnings`.
pub(super) fn parse_bind(
    words: &[String],
    line: usize,
    env: &BindEnv<'_>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Bind>, String> {
    let (addr_text, options) = words.split_first().ok_or("'bind' expects an address, as in 'bind *:80'")?;
    let addrs = parse_bind_addrs(addr_text)?;
    let mut ssl = false;
    let mut certs: Vec<PathBuf> = Vec::new();
    let mut alpn = Vec::new();
    let mut min_version = None;
    let mut max_version = None;
    let mut tls12: Option<Vec<String>> = None;
    let mut tls13: Option<Vec<String>> = None;
    let mut ca_file = None;
    let mut verify = None;
    let mut accept_proxy = false;
    let mut name = None;
    let mut v4v6 = false;
    let mut v6only = false;
    let mut i = 0;
    while i < options.len() {
        let option = options[i].as_str();
        let mut arg = || -> Result<&str, String> {
            i += 1;
            options.get(i).map(String::as_str).ok_or_else(|| format!("'{option}' expects an argument"))
        };
        match option {
            "ssl" => ssl = true,
            "crt" => certs.push(resolve_path(env.crt_base, arg()?)),
            "alpn" => alpn = arg()?.split(',').map(String::from).collect(),
            "ssl-min-ver" => min_version = Some(parse_version(option, arg()?)?),
            "ssl-max-ver" => max_version = Some(parse_version(option, arg()?)?),
            "ciphers" => {
                let mapped = map_cipher_list(arg()?)?;
                warnings.extend(mapped.warning);
                tls12 = Some(mapped.suites);
            }
            "ciphersuites" => {
                let mapped = map_tls13_suites(arg()?)?;
                warnings.extend(mapped.warning);
                tls13 = Some(mapped.suites);
            }
            "ca-file" => ca_file = Some(resolve_path(env.ca_base, arg()?)),
            "verify" => {
                verify = Some(match arg()? {
                    "none" => Verify::None,
                    "optional" => Verify::Optional,
                    "required" => Verify::Required,
                    other => {
                        return Err(format!("'verify' expects none, optional or required, got '{other}'"))
                    }
                })
            }
            "accept-proxy" => accept_proxy = true,
            "name" => name = Some(arg()?.to_string()),
            "v4v6" => v4v6 = true,
            "v6only" => v6only = true,
            // rustls issues no session tickets unless told to: already the case.
            "no-tls-tickets" => {}
            _ if apply_version_flag(option, &mut min_version, &mut max_version) => {}
            _ if IGNORED.contains(&option) => {
                if option == "process" || option == "thread" {
                    arg()?;
                }
                warnings.push(format!("bind option '{option}' ignored by Lanai"));
            }
            "crt-list"
            | "strict-sni"
            | "npn"
            | "curves"
            | "ecdhe"
            | "crl-file"
            | "transparent"
            | "interface"
            | "namespace"
            | "maxconn"
            | "backlog"
            | "mode"
            | "user"
            | "group"
            | "level"
            | "generate-certificates"
            | "ca-sign-file"
            | "allow-0rtt"
            | "prefer-client-ciphers"
            | "quic-cc-algo"
            | "proto" => {
                return Err(format!("bind option '{option}' is not supported"));
            }
            other => return Err(format!("unknown bind option '{other}'")),
        }
        i += 1;
    }
    let tls = if ssl {
        if certs.is_empty() {
            return Err(format!("no SSL certificate specified for bind '{addr_text}' (use 'crt')"));
        }
        if verify.is_some_and(|v| v != Verify::None) && ca_file.is_none() {
            return Err(format!(
                "verify is enabled on bind '{addr_text}' but no CA file specified (use 'ca-file')"
            ));
        }
        let ciphersuites = if tls12.is_none() && tls13.is_none() {
            env.defaults.ciphersuites.clone()
        } else {
            merge_suites(tls12.as_deref(), tls13.as_deref())
        };
        Some(BindTls {
            certs,
            alpn,
            min_version: min_version.or(env.defaults.min_version),
            max_version: max_version.or(env.defaults.max_version),
            ciphersuites,
            ca_file,
            verify: verify.unwrap_or_default(),
        })
    } else {
        let tls_only = [
            ("crt", !certs.is_empty()),
            ("ca-file", ca_file.is_some()),
            ("alpn", !alpn.is_empty()),
            ("ciphers", tls12.is_some()),
            ("ciphersuites", tls13.is_some()),
            ("verify", verify.is_some()),
        ];
        let ignored: Vec<&str> = tls_only.iter().filter(|(_, set)| *set).map(|(name, _)| *name).collect();
        if !ignored.is_empty() {
            warnings.push(format!("{} ignored on bind '{addr_text}': 'ssl' is not set", ignored.join(", ")));
        }
        None
    };
    Ok(addrs
        .into_iter()
        .map(|addr| Bind { line, addr, tls: tls.clone(), accept_proxy, name: name.clone(), v4v6, v6only })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(text: &str) -> Result<(Vec<Bind>, Vec<String>), String> {
        let words = super::super::lexer::split_line(text).expect("splits");
        let defaults = TlsDefaults { min_version: Some(TlsVersion::Tls12), ..TlsDefaults::default() };
        let env = BindEnv {
            crt_base: Some(std::path::Path::new("/etc/ssl/private")),
            ca_base: None,
            defaults: &defaults,
        };
        let mut warnings = Vec::new();
        parse_bind(&words, 9, &env, &mut warnings).map(|b| (b, warnings))
    }

    #[test]
    fn tls_bind() {
        let (binds, warnings) = bind(
            "192.168.3.135:443 ssl crt site.pem crt /abs/other.pem alpn h2,http/1.1 no-sslv3 name https",
        )
        .expect("valid");
        assert!(warnings.is_empty());
        assert_eq!(binds.len(), 1);
        let tls = binds[0].tls.as_ref().expect("tls");
        assert_eq!(tls.certs, [PathBuf::from("/etc/ssl/private/site.pem"), PathBuf::from("/abs/other.pem")]);
        assert_eq!(tls.alpn, ["h2", "http/1.1"]);
        assert_eq!(tls.min_version, Some(TlsVersion::Tls12), "global default applies");
        assert_eq!(binds[0].name.as_deref(), Some("https"));
    }

    #[test]
    fn bind_errors() {
        assert!(bind(":443 ssl").unwrap_err().contains("no SSL certificate"));
        assert!(bind(":443 ssl crt a.pem ssl-min-ver TLSv1.0")
            .unwrap_err()
            .contains("TLS 1.2 and TLS 1.3 only"));
        assert!(bind(":443 ssl crt a.pem verify required").unwrap_err().contains("no CA file"));
        assert!(bind(":443 frob").unwrap_err().contains("unknown bind option 'frob'"));
        assert!(bind(":443 ssl crt a.pem ciphers DHE-RSA-AES128-SHA").is_err());
    }

    #[test]
    fn bind_lists_and_flags() {
        let (binds, _) = bind(":80,:81 accept-proxy v4v6").expect("valid");
        let (_, warnings) = bind(":80 crt a.pem alpn h2").expect("valid");
        assert_eq!(warnings, ["crt, alpn ignored on bind ':80': 'ssl' is not set"]);
        assert_eq!(binds.len(), 2);
        assert!(binds[1].accept_proxy && binds[1].v4v6 && binds[1].tls.is_none());
        let (binds, warnings) = bind(":443 ssl crt a.pem ciphers ECDHE+AESGCM:DHE+AESGCM").expect("valid");
        assert_eq!(warnings.len(), 1);
        assert_eq!(binds[0].tls.as_ref().expect("tls").ciphersuites.len(), 3 + 4);
    }
}
