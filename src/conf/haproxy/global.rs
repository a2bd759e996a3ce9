//! The `global` section and `log` lines.

use std::path::PathBuf;

use super::model::*;
use super::parse::GlobalState;
use super::time::{parse_number, parse_time};
use super::tls::{apply_version_flag, map_cipher_list, map_tls13_suites, merge_suites, parse_version};

/// Process directives that do not apply to Lanai: accepted, with a warning.
fn ignored_global(keyword: &str) -> Option<String> {
    let why = match keyword {
        "daemon" => "lanai proxy always runs in the foreground (the appliance supervises it)",
        "master-worker" => "the appliance supervisor is the master process",
        "nbproc" => "Lanai runs one process (use 'nbthread')",
        "cpu-map" => "threads are not pinned to CPUs",
        "maxsslconn" | "maxconnrate" | "maxsessrate" | "maxpipes" => "no such limit in Lanai",
        "ssl-dh-param-file" => "rustls has no DHE cipher suites",
        "spread-checks"
        | "quiet"
        | "log-send-hostname"
        | "log-tag"
        | "server-state-file"
        | "server-state-base"
        | "localpeer"
        | "insecure-fork-wanted"
        | "unix-bind"
        | "uid"
        | "gid"
        | "stats maxconn"
        | "busy-polling"
        | "noepoll"
        | "nosplice"
        | "h1-case-adjust"
        | "ssl-engine"
        | "ssl-mode-async" => "not used by Lanai",
        k if k.starts_with("tune.") => "Lanai has its own tuning",
        _ => return None,
    };
    Some(format!("'{keyword}' ignored: {why}"))
}

pub(super) fn global_keyword(
    state: &mut GlobalState,
    words: &[String],
    line: usize,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let keyword = words[0].as_str();
    let args = &words[1..];
    let one = || -> Result<&str, String> {
        match args {
            [arg] => Ok(arg.as_str()),
            _ => Err(format!("'{keyword}' expects exactly one argument")),
        }
    };
    let global = &mut state.global;
    match keyword {
        "maxconn" => {
            global.maxconn = parse_number(keyword, one()?)?;
            global.maxconn_line = line;
        }
        "ulimit-n" => {
            global.ulimit_n = Some(parse_number(keyword, one()?)?);
            global.ulimit_n_line = line;
        }
        "strict-limits" if args.is_empty() => global.strict_limits = true,
        "no" if args.len() == 1 && args[0] == "strict-limits" => global.strict_limits = false,
        "nbthread" => {
            let n: usize = parse_number(keyword, one()?)?;
            if n == 0 {
                return Err("'nbthread' must be at least 1".into());
            }
            global.nbthread = Some(n);
        }
        "user" => global.user = Some(one()?.to_string()),
        "group" => global.group = Some(one()?.to_string()),
        "chroot" => {
            global.chroot = Some(PathBuf::from(one()?));
            global.chroot_line = line;
        }
        "pidfile" => global.pidfile = Some(PathBuf::from(one()?)),
        "node" => global.node = Some(one()?.to_string()),
        "description" => global.description = Some(args.join(" ")),
        "hard-stop-after" => global.hard_stop_after = Some(parse_time(one()?)?),
        "ca-base" => state.ca_base = Some(PathBuf::from(one()?)),
        "crt-base" => state.crt_base = Some(PathBuf::from(one()?)),
        "log" => match parse_log(args, line)? {
            LogLine::Target(target) => global.logs.push(target),
            LogLine::Global => return Err("'log global' is only valid in a proxy or defaults section".into()),
        },
        "stats" => global_stats(global, args, line, warnings)?,
        "ssl-default-bind-ciphers" | "ssl-default-server-ciphers" => {
            let mapped = map_cipher_list(one()?)?;
            warnings.extend(mapped.warning);
            if keyword.contains("bind") {
                state.bind_tls12 = Some(mapped.suites);
            } else {
                state.server_tls12 = Some(mapped.suites);
            }
            refresh_suites(state);
        }
        "ssl-default-bind-ciphersuites" | "ssl-default-server-ciphersuites" => {
            let mapped = map_tls13_suites(one()?)?;
            warnings.extend(mapped.warning);
            if keyword.contains("bind") {
                state.bind_tls13 = Some(mapped.suites);
            } else {
                state.server_tls13 = Some(mapped.suites);
            }
            refresh_suites(state);
        }
        "ssl-default-bind-options" | "ssl-default-server-options" => {
            let defaults = if keyword.contains("bind") {
                &mut global.ssl_default_bind
            } else {
                &mut global.ssl_default_server
            };
            let mut i = 0;
            while i < args.len() {
                let option = args[i].as_str();
                match option {
                    "ssl-min-ver" | "ssl-max-ver" => {
                        let value = args.get(i + 1).ok_or_else(|| format!("'{option}' expects a version"))?;
                        let version = Some(parse_version(option, value)?);
                        if option == "ssl-min-ver" {
                            defaults.min_version = version;
                        } else {
                            defaults.max_version = version;
                        }
                        i += 1;
                    }
                    // rustls issues no session tickets unless told to: already the case.
                    "no-tls-tickets" | "prefer-client-ciphers" => {}
                    _ if apply_version_flag(option, &mut defaults.min_version, &mut defaults.max_version) => {
                    }
                    other => return Err(format!("unknown option '{other}' in '{keyword}'")),
                }
                i += 1;
            }
        }
        "ssl-server-verify" => {
            state.server_verify = match one()? {
                "none" => Verify::None,
                "required" => Verify::Required,
                other => {
                    return Err(format!("'ssl-server-verify' expects 'none' or 'required', got '{other}'"))
                }
            }
        }
        "lua-load"
        | "lua-prepend-path"
        | "external-check"
        | "set-var"
        | "presetenv"
        | "setenv"
        | "resetenv"
        | "unsetenv"
        | "ssl-load-extra-files"
        | "crt-list" => {
            return Err(format!("'{keyword}' is not supported by Lanai"));
        }
        _ => match ignored_global(keyword) {
            Some(w) => warnings.push(w),
            None => return Err(format!("unknown keyword '{keyword}' in 'global' section")),
        },
    }
    Ok(())
}

/// Keeps the model's default suite lists in step with the TLS 1.2 and 1.3 lists read so far.
fn refresh_suites(state: &mut GlobalState) {
    state.global.ssl_default_bind.ciphersuites = if state.bind_tls12.is_some() || state.bind_tls13.is_some() {
        merge_suites(state.bind_tls12.as_deref(), state.bind_tls13.as_deref())
    } else {
        Vec::new()
    };
    state.global.ssl_default_server.ciphersuites =
        if state.server_tls12.is_some() || state.server_tls13.is_some() {
            merge_suites(state.server_tls12.as_deref(), state.server_tls13.as_deref())
        } else {
            Vec::new()
        };
}

/// `stats socket PATH [mode OCTAL] [level L] [expose-fd listeners]`, `stats timeout T`.
fn global_stats(
    global: &mut Global,
    args: &[String],
    line: usize,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("socket") => {
            let path = args.get(1).ok_or("'stats socket' expects a path")?;
            if path.contains(':') && !path.starts_with('/') {
                return Err(format!("'stats socket {path}': only Unix socket paths are supported"));
            }
            let mut socket =
                StatsSocket { line, path: PathBuf::from(path), mode: None, level: RuntimeLevel::Operator };
            let mut i = 2;
            while i < args.len() {
                let option = args[i].as_str();
                let value = args
                    .get(i + 1)
                    .ok_or_else(|| format!("'stats socket' option '{option}' expects a value"))?;
                match option {
                    "mode" => {
                        socket.mode = Some(
                            u32::from_str_radix(value, 8)
                                .map_err(|_| format!("'mode' expects an octal number, got '{value}'"))?,
                        )
                    }
                    "level" => {
                        socket.level = match value.as_str() {
                            "user" => RuntimeLevel::User,
                            "operator" => RuntimeLevel::Operator,
                            "admin" => RuntimeLevel::Admin,
                            other => {
                                return Err(format!("'level' expects user, operator or admin, got '{other}'"))
                            }
                        }
                    }
                    // Only meaningful for HAProxy's own seamless reloads.
                    "expose-fd" if value == "listeners" => {}
                    "user" | "group" | "uid" | "gid" => {
                        warnings.push(format!("'stats socket' option '{option}' ignored by Lanai"))
                    }
                    other => return Err(format!("unsupported 'stats socket' option '{other}'")),
                }
                i += 2;
            }
            global.stats_sockets.push(socket);
        }
        Some("timeout") => match args {
            [_, value] => global.stats_timeout = parse_time(value)?,
            _ => return Err("'stats timeout' expects a time".into()),
        },
        Some("maxconn") => warnings.push("'stats maxconn' ignored by Lanai".into()),
        Some(other) => return Err(format!("unknown keyword 'stats {other}' in 'global' section")),
        None => return Err("'stats' expects 'socket' or 'timeout'".into()),
    }
    Ok(())
}

/// A `log` line: `global`, or a target.
pub(super) enum LogLine {
    Global,
    Target(LogTarget),
}

fn facility(name: &str) -> Option<Facility> {
    use Facility::*;
    Some(match name {
        "kern" => Kern,
        "user" => User,
        "mail" => Mail,
        "daemon" => Daemon,
        "auth" => Auth,
        "syslog" => Syslog,
        "lpr" => Lpr,
        "news" => News,
        "uucp" => Uucp,
        "cron" => Cron,
        "auth2" => Auth2,
        "ftp" => Ftp,
        "ntp" => Ntp,
        "audit" => Audit,
        "alert" => Alert,
        "cron2" => Cron2,
        "local0" => Local0,
        "local1" => Local1,
        "local2" => Local2,
        "local3" => Local3,
        "local4" => Local4,
        "local5" => Local5,
        "local6" => Local6,
        "local7" => Local7,
        _ => return None,
    })
}

fn level(name: &str) -> Result<Level, String> {
    use Level::*;
    Ok(match name {
        "emerg" => Emerg,
        "alert" => Alert,
        "crit" => Crit,
        "err" => Err,
        "warning" => Warning,
        "notice" => Notice,
        "info" => Info,
        "debug" => Debug,
        other => return std::result::Result::Err(format!("unknown log level '{other}'")),
    })
}

fn log_dest(text: &str) -> Result<LogDest, String> {
    let text = ["udp@", "udp4@", "ipv4@"].iter().find_map(|p| text.strip_prefix(p)).unwrap_or(text);
    match text {
        "stdout" | "fd@1" => return Ok(LogDest::Stdout),
        "stderr" | "fd@2" => return Ok(LogDest::Stderr),
        _ => {}
    }
    if text.starts_with('/') {
        return Ok(LogDest::Unix(PathBuf::from(text)));
    }
    if let Some(prefix) = text.split_once('@').map(|(p, _)| p) {
        return Err(format!("log target '{prefix}@…' is not supported"));
    }
    if let Ok(addr) = text.parse() {
        return Ok(LogDest::Udp(addr));
    }
    let ip_only = text.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = ip_only.parse::<std::net::IpAddr>() {
        return Ok(LogDest::Udp(std::net::SocketAddr::new(ip, 514)));
    }
    Err(format!("log target '{text}' must be stdout, stderr, a Unix socket path or IP[:PORT] (host names are not resolved)"))
}

/// `log global` / `log TARGET [len N] [format F] [sample R:S] FACILITY [LEVEL [MINLEVEL]]`.
pub(super) fn parse_log(args: &[String], line: usize) -> Result<LogLine, String> {
    let (target, mut rest) = match args.split_first() {
        Some((t, _)) if t == "global" => return Ok(LogLine::Global),
        Some((t, rest)) => (t, rest),
        None => return Err("'log' expects 'global' or a target".into()),
    };
    let dest = log_dest(target)?;
    let mut format = LogFormat::default();
    let mut max_len = None;
    while let [option, value, tail @ ..] = rest {
        match option.as_str() {
            "len" => max_len = Some(parse_number::<usize>("len", value)?),
            "format" => {
                format = match value.as_str() {
                    "raw" => LogFormat::Raw,
                    "short" => LogFormat::Short,
                    "rfc3164" => LogFormat::Rfc3164,
                    "rfc5424" => LogFormat::Rfc5424,
                    "iso" | "local" | "timed" | "priority" => {
                        return Err(format!(
                            "log format '{value}' is not supported (use raw, short, rfc3164 or rfc5424)"
                        ))
                    }
                    _ => return Err(format!("unknown log format '{value}'")),
                }
            }
            "sample" => return Err("'log … sample' is not supported".into()),
            _ => break,
        }
        rest = tail;
    }
    let (facility_name, levels) =
        rest.split_first().ok_or("'log' expects a facility, as in 'log /dev/log local0'")?;
    let facility =
        facility(facility_name).ok_or_else(|| format!("unknown log facility '{facility_name}'"))?;
    let max_level = match levels {
        [] => Level::Info,
        [max] | [max, _] => {
            if let [_, min] = levels {
                level(min)?;
            }
            level(max)?
        }
        _ => return Err(format!("unexpected '{}' after log levels", levels[2])),
    };
    Ok(LogLine::Target(LogTarget { line, dest, facility, max_level, format, max_len }))
}
