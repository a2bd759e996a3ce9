//! Parsing and executing runtime API command lines, with HAProxy 2.6's
//! wording for every reply and error.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::info::{level_name, show_backend, show_info, show_servers_state};
use super::{ReloadRequest, RuntimeContext};
use crate::conf::haproxy::{Balance, Proxy, RuntimeLevel, Server};
use crate::proxy::health::admin::{force_health, set_admin};
use crate::proxy::state::{Admin, Counters, ServerState};
use crate::proxy::stats::{csv_with, CsvOptions, StatsContext};

/// How long `reload` waits for the engine's answer.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// Per-connection CLI state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub level: RuntimeLevel,
    /// `prompt` mode: keep the connection open and print `> ` after each reply.
    pub interactive: bool,
}

/// What to do after a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

/// (command, description) as `help` lists them, and who may run them.
const HELP: &[(&str, &str, RuntimeLevel)] = &[
    ("clear counters [all]", "clear max statistics counters (or all counters)", RuntimeLevel::User),
    (
        "disable server (DEPRECATED)",
        "disable a server for maintenance (use 'set server' instead)",
        RuntimeLevel::User,
    ),
    (
        "enable server  (DEPRECATED)",
        "enable a disabled server (use 'set server' instead)",
        RuntimeLevel::User,
    ),
    ("get weight <bk>/<srv>", "report a server's current weight", RuntimeLevel::User),
    ("operator", "lower the level of the current CLI session to operator", RuntimeLevel::User),
    ("reload", "reload the configuration and report errors", RuntimeLevel::Admin),
    ("set server <bk>/<srv> [opts]", "change a server's state, weight or health", RuntimeLevel::User),
    (
        "set weight <bk>/<srv>  (DEPRECATED)",
        "change a server's weight (use 'set server' instead)",
        RuntimeLevel::User,
    ),
    ("show backend", "list backends in the current running config", RuntimeLevel::User),
    ("show cli level", "display the level of the current CLI session", RuntimeLevel::User),
    ("show info", "report information about the running process", RuntimeLevel::User),
    (
        "show servers state [<backend>]",
        "dump volatile server information (all or for a single backend)",
        RuntimeLevel::User,
    ),
    ("show stat [no-maint|up]*", "report counters for each proxy and server", RuntimeLevel::User),
    ("show version", "show version of the current process", RuntimeLevel::User),
    ("user", "lower the level of the current CLI session to user", RuntimeLevel::User),
    ("help [<command>]", "list matching or all commands", RuntimeLevel::User),
    ("prompt", "toggle interactive mode with prompt", RuntimeLevel::User),
    ("quit", "disconnect", RuntimeLevel::User),
];

fn help_lines(level: RuntimeLevel, filter: impl Fn(&str) -> bool) -> String {
    let mut out = String::new();
    for (cmd, desc, min) in HELP {
        if level >= *min && filter(cmd) {
            // HAProxy pads the command to 40 columns, then `: `.
            out.push_str(&format!("  {cmd:<40}: {desc}\n"));
        }
    }
    out
}

/// HAProxy answers an unknown command with the commands sharing its first
/// word when there are some, else with the whole list.
fn unknown_command(level: RuntimeLevel, words: &[String]) -> String {
    let first = words.first().map(String::as_str).unwrap_or("");
    let related = if first.is_empty() {
        String::new()
    } else {
        help_lines(level, |cmd| cmd.split(' ').next() == Some(first))
    };
    if related.is_empty() {
        format!(
            "Unknown command. Please enter one of the following commands only:\n{}",
            help_lines(level, |_| true)
        )
    } else {
        format!("Unknown command, but maybe one of the following ones is a better match:\n{related}")
    }
}

/// Splits a line into commands on unescaped `;` and each command into words
/// on blanks (`\` escapes the next character, as in HAProxy).
pub fn split_line(line: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    word.push(n);
                    in_word = true;
                }
            }
            ';' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                commands.push(std::mem::take(&mut words));
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    commands.push(words);
    commands
}

/// Runs one input line (possibly several `;`-separated commands) and returns
/// everything to write back.
pub async fn execute_line(ctx: &RuntimeContext, session: &mut Session, line: &str) -> (String, Flow) {
    let mut out = String::new();
    let commands = split_line(line);
    let single_empty = commands.len() == 1 && commands[0].is_empty();
    for words in commands {
        if words.is_empty() && !single_empty {
            continue;
        }
        match execute(ctx, session, &words).await {
            Reply::Quit => return (out, Flow::Quit),
            Reply::Text(text) => {
                out.push_str(&text);
                if !text.is_empty() && !text.ends_with('\n') {
                    out.push('\n');
                }
                // Every reply ends with an empty line.
                out.push('\n');
            }
            Reply::Raw(text) => out.push_str(&text),
        }
    }
    (out, Flow::Continue)
}

/// One command's reply.
enum Reply {
    Text(String),
    /// Printed as is (HAProxy prints a few errors without the blank line).
    Raw(String),
    Quit,
}

fn text(s: impl Into<String>) -> Reply {
    Reply::Text(s.into())
}

const DENIED: &str = "Permission denied";

async fn execute(ctx: &RuntimeContext, session: &mut Session, words: &[String]) -> Reply {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let level = session.level;
    let admin = level >= RuntimeLevel::Admin;
    let stats = ctx.stats();
    match w.as_slice() {
        [] if session.interactive => text(unknown_command(level, words)),
        [] => text(""),
        ["quit"] => Reply::Quit,
        ["prompt", ..] => {
            session.interactive = !session.interactive;
            text("")
        }
        ["help", rest @ ..] => {
            if rest.is_empty() {
                text(format!(
                    "The following commands are valid at this level:\n{}",
                    help_lines(level, |_| true)
                ))
            } else {
                let lines = help_lines(level, |cmd| cmd.starts_with(rest[0]));
                if lines.is_empty() {
                    text(unknown_command(level, words))
                } else {
                    text(format!("The following commands are valid at this level:\n{lines}"))
                }
            }
        }
        ["user"] => {
            session.level = RuntimeLevel::User;
            text("")
        }
        ["operator"] => {
            if level < RuntimeLevel::Operator {
                return text(DENIED);
            }
            session.level = RuntimeLevel::Operator;
            text("")
        }
        ["show", "cli", "level"] => text(format!("{}\n", level_name(level))),
        ["show", "version"] => text(format!("{}\n", stats.version)),
        ["show", "info", ..] => text(show_info(&stats)),
        ["show", "backend"] => text(show_backend(&stats)),
        ["show", "stat", args @ ..] => match stat_options(args, level) {
            // The CSV already ends with its blank line.
            Ok(o) => Reply::Raw(csv_with(&stats, o)),
            Err(e) => text(e),
        },
        ["show", "servers", "state"] => text(show_servers_state(&stats, None).unwrap_or_default()),
        ["show", "servers", "state", be] => match show_servers_state(&stats, Some(be)) {
            Some(s) => text(s),
            None => text("Can't find backend.\n"),
        },
        ["clear", "counters"] if level >= RuntimeLevel::Operator => {
            for_each_counters(&stats, |c| {
                c.max_sessions.store(c.current(), Ordering::Relaxed);
            });
            text("")
        }
        ["clear", "counters", "all"] if admin => {
            for_each_counters(&stats, clear_all);
            text("")
        }
        ["clear", "counters", ..] => text(DENIED),
        ["get", "weight", rest @ ..] => match find_server(&stats, rest.first().copied()) {
            Ok((_, srv, st)) => text(format!("{} (initial {})\n", st.weight(), srv.weight)),
            Err(e) => text(e),
        },
        ["disable", "server", rest @ ..] | ["enable", "server", rest @ ..] | ["set", "weight", rest @ ..]
            if !admin =>
        {
            let _ = rest;
            text(DENIED)
        }
        ["set", "server", ..] | ["reload", ..] if !admin => text(DENIED),
        ["disable", "server", rest @ ..] => match find_server(&stats, rest.first().copied()) {
            Ok((px, srv, st)) => {
                set_admin(&stats, &px, &srv, &st, Admin::Maint, ctx.log.as_ref());
                text("")
            }
            Err(e) => text(e),
        },
        ["enable", "server", rest @ ..] => match find_server(&stats, rest.first().copied()) {
            Ok((px, srv, st)) => {
                if st.admin() == Admin::Maint {
                    set_admin(&stats, &px, &srv, &st, Admin::Ready, ctx.log.as_ref());
                }
                text("")
            }
            Err(e) => text(e),
        },
        ["set", "weight", rest @ ..] => match find_server(&stats, rest.first().copied()) {
            Ok((px, srv, st)) => set_weight(&px, &srv, &st, rest.get(1).copied()),
            Err(e) => text(e),
        },
        ["set", "server", rest @ ..] => set_server(ctx, &stats, rest),
        ["reload"] => reload(ctx).await,
        _ => text(unknown_command(level, words)),
    }
}

/// `show stat [<proxy> <type> <sid>] [up|no-maint]*`: HAProxy's filters,
/// where -1 means "any".
fn stat_options(args: &[&str], level: RuntimeLevel) -> Result<CsvOptions, String> {
    let mut o = CsvOptions { hide_addr: level < RuntimeLevel::Operator, ..CsvOptions::default() };
    let mut rest = args;
    if let [px, kind, sid, tail @ ..] = args {
        if !matches!(*px, "up" | "no-maint" | "typed" | "json" | "desc") {
            let kind: i32 = kind.parse().map_err(|_| "Invalid type.\n".to_string())?;
            let sid: i64 = sid.parse().map_err(|_| "Invalid server id.\n".to_string())?;
            if *px != "-1" {
                o.proxy = Some((*px).to_string());
            }
            o.types = if kind < 0 { 0 } else { (kind & 7) as u8 };
            o.sid = u32::try_from(sid).ok();
            rest = tail;
        }
    }
    for opt in rest {
        match *opt {
            "up" => o.up_only = true,
            "no-maint" => o.no_maint = true,
            other => return Err(format!("Unsupported show stat option '{other}'.\n")),
        }
    }
    Ok(o)
}

fn for_each_counters(stats: &StatsContext, f: impl Fn(&Counters)) {
    for p in &stats.config.proxies {
        f(&stats.frontend_counters(p));
        f(&stats.backend_counters(p));
        for s in &p.servers {
            f(&stats.server_state(p, s).counters);
        }
    }
}

fn clear_all(c: &Counters) {
    let cur = c.current();
    for a in [
        &c.total_sessions,
        &c.bytes_in,
        &c.bytes_out,
        &c.denied_req,
        &c.denied_resp,
        &c.errors_req,
        &c.errors_conn,
        &c.errors_resp,
        &c.retries,
        &c.redispatches,
        &c.http_requests,
    ] {
        a.store(0, Ordering::Relaxed);
    }
    for a in &c.http_responses {
        a.store(0, Ordering::Relaxed);
    }
    c.max_sessions.store(cur, Ordering::Relaxed);
}

/// Resolves `backend/server` with HAProxy's error messages.
fn find_server(stats: &StatsContext, arg: Option<&str>) -> Result<(Proxy, Server, Arc<ServerState>), String> {
    let Some((be, sv)) = arg.and_then(|a| a.split_once('/')) else {
        return Err("Require 'backend/server'.\n".into());
    };
    let Some(proxy) = stats.config.backends().find(|p| p.name == be) else {
        return Err("No such backend.\n".into());
    };
    let Some(server) = proxy.servers.iter().find(|s| s.name == sv) else {
        return Err("No such server.\n".into());
    };
    let st = stats.server_state(proxy, server);
    Ok((proxy.clone(), server.clone(), st))
}

/// `set weight` / `set server … weight`: absolute 0..=256 or a percentage of
/// the configured weight.
fn set_weight(px: &Proxy, srv: &Server, st: &ServerState, arg: Option<&str>) -> Reply {
    let arg = arg.unwrap_or("");
    let (digits, relative) = match arg.strip_suffix('%') {
        Some(d) => (d, true),
        None => (arg, false),
    };
    let Ok(value) = digits.parse::<i64>() else {
        // HAProxy prints this one without the trailing blank line.
        return Reply::Raw("Empty weight string empty or preceded by garbage\n".into());
    };
    let weight = if relative {
        if value < 0 {
            return text("Relative weight must be positive.\n");
        }
        (i64::from(srv.weight) * value / 100).min(256)
    } else {
        if !(0..=256).contains(&value) {
            return text("Absolute weight can only be between 0 and 256 inclusive.\n");
        }
        value
    };
    let weight = u32::try_from(weight).unwrap_or(0);
    // Map-based algorithms cannot change weights on the fly: only on/off.
    if static_weights(&px.balance) && weight != 0 && weight != srv.weight {
        return text("Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n");
    }
    st.set_weight(weight);
    text("")
}

/// HAProxy's algorithms without dynamic weights (map-based hashing, static-rr).
fn static_weights(b: &Balance) -> bool {
    matches!(
        b,
        Balance::StaticRr | Balance::Source | Balance::Uri { .. } | Balance::UrlParam(_) | Balance::Hdr(_)
    )
}

fn set_server(ctx: &RuntimeContext, stats: &StatsContext, rest: &[&str]) -> Reply {
    const USAGE: &str = "usage: set server <backend>/<server> health | state | weight\n";
    let (px, srv, st) = match find_server(stats, rest.first().copied()) {
        Ok(found) => found,
        Err(e) => return text(e),
    };
    let log = ctx.log.as_ref();
    match rest.get(1..).unwrap_or_default() {
        ["state", "ready"] => set_admin(stats, &px, &srv, &st, Admin::Ready, log),
        ["state", "drain"] => set_admin(stats, &px, &srv, &st, Admin::Drain, log),
        ["state", "maint"] => set_admin(stats, &px, &srv, &st, Admin::Maint, log),
        ["state", ..] => return text("'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n"),
        ["weight", rest @ ..] => return set_weight(&px, &srv, &st, rest.first().copied()),
        ["health", "up"] => force_health(stats, &px, &srv, &st, true, log),
        ["health", "down"] => force_health(stats, &px, &srv, &st, false, log),
        ["health", ..] => return text("'set server <srv> health' expects 'up', 'stopping', or 'down'.\n"),
        _ => return text(USAGE),
    }
    text("")
}

/// `reload`: asks the engine, waits for its verdict, prints it in the master
/// CLI's form.
async fn reload(ctx: &RuntimeContext) -> Reply {
    let (tx, rx) = tokio::sync::oneshot::channel();
    if ctx.reload.send(ReloadRequest { reply: tx }).await.is_err() {
        return text("Success=0\n--\nreload is not available\n");
    }
    match tokio::time::timeout(RELOAD_TIMEOUT, rx).await {
        Ok(Ok(Ok(warnings))) => {
            let mut s = String::from("Success=1\n");
            if !warnings.is_empty() {
                s.push_str("--\n");
                for w in warnings {
                    s.push_str(&w);
                    s.push('\n');
                }
            }
            text(s)
        }
        Ok(Ok(Err(errors))) => {
            let mut s = String::from("Success=0\n--\n");
            for e in errors {
                s.push_str(&e);
                s.push('\n');
            }
            text(s)
        }
        Ok(Err(_)) => text("Success=0\n--\nreload was abandoned\n"),
        Err(_) => text("Success=0\n--\nreload timed out\n"),
    }
}
