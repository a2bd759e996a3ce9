//! Talking to a child over its control socket.
//!
//! Two dialects answer `reload`, and the answer tells them apart:
//! - the proxy's runtime API (`stats socket`): `Success=1` or `Success=0`,
//!   then optionally `--` and one warning/error per line;
//! - `lanai vrrp --control` and `lanai network --control`: `ok` (then, for
//!   the network, one `warning: …` per item the kernel refused), or one
//!   `error: FILE:LINE: message` per line.
//!
//! Both read a line and answer; sending the command then shutting down our
//! write side makes both close after the answer, so the reply is "everything
//! until EOF" without knowing how many lines it has.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Longest reply kept (a reload error list is a few lines; this only guards
/// against a runaway peer).
const MAX_REPLY: u64 = 1 << 20;

/// Sends one command line and returns the whole answer.
pub async fn command(path: &Path, cmd: &str, timeout: Duration) -> Result<String, String> {
    let exchange = async {
        let mut stream = UnixStream::connect(path).await?;
        stream.write_all(format!("{cmd}\n").as_bytes()).await?;
        stream.shutdown().await?;
        let mut reply = Vec::new();
        (&mut stream).take(MAX_REPLY).read_to_end(&mut reply).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&reply).into_owned())
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(e)) => Err(format!("control socket {}: {e}", path.display())),
        Err(_) => Err(format!("control socket {}: no answer within {timeout:?}", path.display())),
    }
}

/// Whether something accepts connections on `path` (the proxy opens its
/// runtime socket only after every listener is bound: that is "ready").
pub async fn answers(path: &Path) -> bool {
    UnixStream::connect(path).await.is_ok()
}

/// Reads a `reload` answer: `Ok(warnings)` or `Err(errors)`.
pub fn parse_reload(reply: &str) -> Result<Vec<String>, Vec<String>> {
    let mut lines = reply.lines().map(str::trim_end).filter(|l| !l.is_empty());
    let Some(first) = lines.next() else {
        return Err(vec!["empty answer to reload".to_string()]);
    };
    match first {
        "Success=1" | "Success=0" => {
            let details: Vec<String> = lines.skip_while(|l| *l == "--").map(str::to_string).collect();
            if first == "Success=1" {
                Ok(details)
            } else if details.is_empty() {
                Err(vec!["reload failed (no reason given)".to_string()])
            } else {
                Err(details)
            }
        }
        "ok" => Ok(lines.map(|l| l.strip_prefix("warning: ").unwrap_or(l).to_string()).collect()),
        _ if first.starts_with("error: ") => Err(std::iter::once(first)
            .chain(lines)
            .map(|l| l.strip_prefix("error: ").unwrap_or(l).to_string())
            .collect()),
        _ => Err(vec![format!("unexpected answer to reload: {}", reply.trim())]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_api_answers() {
        assert_eq!(parse_reload("Success=1\n"), Ok(vec![]));
        assert_eq!(
            parse_reload("Success=1\n--\ncfg:3: warning: daemon ignored\n\n"),
            Ok(vec!["cfg:3: warning: daemon ignored".to_string()])
        );
        assert_eq!(
            parse_reload("Success=0\n--\ncfg:13: unknown keyword 'bogus'\ncfg:14: other\n\n"),
            Err(vec!["cfg:13: unknown keyword 'bogus'".to_string(), "cfg:14: other".to_string()])
        );
        assert_eq!(parse_reload("Success=0\n"), Err(vec!["reload failed (no reason given)".to_string()]));
    }

    #[test]
    fn vrrp_control_answers() {
        assert_eq!(parse_reload("ok\n"), Ok(vec![]));
        assert_eq!(
            parse_reload("ok\nwarning: config.rc:1: eth9: interface not found\n"),
            Ok(vec!["config.rc:1: eth9: interface not found".to_string()])
        );
        assert_eq!(
            parse_reload("error: k.conf:2: bad\nerror: k.conf:5: worse\n"),
            Err(vec!["k.conf:2: bad".to_string(), "k.conf:5: worse".to_string()])
        );
    }

    #[test]
    fn anything_else_is_an_error() {
        assert!(parse_reload("").is_err());
        assert_eq!(
            parse_reload("Unknown command.\n"),
            Err(vec!["unexpected answer to reload: Unknown command.".to_string()])
        );
    }
}
