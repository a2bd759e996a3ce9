//! The Services tab's setup editor works on one service's blocks of config.rc:
//! cut them out as text, and put an edited version back in the same place.
//! Pure text operations; the result goes through the normal check/apply.

use super::parse::words;

/// Line ranges (0-based, end exclusive) of every block of `service`. A block
/// runs from its `service` line to the next `service` line.
fn spans(text: &str, service: &str) -> Vec<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let starts: Vec<(usize, Option<&str>)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let w = words(l);
            (w.first() == Some(&"service")).then(|| (i, w.get(1).copied()))
        })
        .collect();
    starts
        .iter()
        .enumerate()
        .filter(|(_, (_, name))| *name == Some(service))
        .map(|(k, (start, _))| (*start, starts.get(k + 1).map_or(lines.len(), |(next, _)| *next)))
        .collect()
}

/// The text of `service`'s blocks (empty when it has none).
pub fn service_blocks(text: &str, service: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    for (start, end) in spans(text, service) {
        for line in &lines[start..end] {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// `text` with `service`'s blocks replaced by `replacement`, which goes where
/// the first of them was (at the end when there was none). `replacement` may
/// only hold blocks of `service`; otherwise the error gives the offending line
/// of `replacement`. On success, also returns the 0-based line where the
/// replacement starts in the result (to map diagnostics back to it).
pub fn replace_service_blocks(
    text: &str,
    service: &str,
    replacement: &str,
) -> Result<(String, usize), (usize, String)> {
    for (i, line) in replacement.lines().enumerate() {
        let w = words(line);
        match (w.first(), w.get(1)) {
            (Some(&"service"), Some(name)) if *name == service => {}
            (Some(&"service"), other) => {
                return Err((
                    i + 1,
                    format!(
                        "this editor holds only 'service {service}' blocks (found 'service {}')",
                        other.unwrap_or(&"")
                    ),
                ))
            }
            (Some(first), _) if i == 0 || replacement.lines().take(i).all(|l| words(l).is_empty()) => {
                return Err((i + 1, format!("'{first}' before 'service {service}'")))
            }
            _ => {}
        }
    }
    let lines: Vec<&str> = text.lines().collect();
    let spans = spans(text, service);
    let kept_before =
        |end: usize| (0..end).filter(|i| !spans.iter().any(|(s, e)| (*s..*e).contains(i))).count();
    let insert_at = spans.first().map_or(lines.len(), |(start, _)| *start);
    let mut out = String::new();
    let mut inserted = false;
    for (i, line) in lines.iter().enumerate() {
        if i == insert_at {
            push_replacement(&mut out, replacement);
            inserted = true;
        }
        if spans.iter().any(|(s, e)| (*s..*e).contains(&i)) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if !inserted {
        push_replacement(&mut out, replacement);
    }
    Ok((out, kept_before(insert_at)))
}

fn push_replacement(out: &mut String, replacement: &str) {
    for line in replacement.lines() {
        out.push_str(line);
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RC: &str = "# config.rc\nservice network eth0\n  ip address 192.0.2.1/24\n\nservice vrrp\n  no autostart\nservice network eth1\n  auto off\n";

    #[test]
    fn cuts_every_block_of_a_service() {
        assert_eq!(
            service_blocks(RC, "network"),
            "service network eth0\n  ip address 192.0.2.1/24\n\nservice network eth1\n  auto off\n"
        );
        assert_eq!(service_blocks(RC, "vrrp"), "service vrrp\n  no autostart\n");
        assert_eq!(service_blocks(RC, "haproxy"), "");
    }

    #[test]
    fn replaces_in_place_or_appends() {
        let (out, at) = replace_service_blocks(RC, "vrrp", "service vrrp\n").unwrap();
        assert_eq!(at, 4);
        assert_eq!(
            out,
            "# config.rc\nservice network eth0\n  ip address 192.0.2.1/24\n\nservice vrrp\nservice network eth1\n  auto off\n"
        );
        let (out, at) = replace_service_blocks(RC, "haproxy", "service haproxy\n  no autostart\n").unwrap();
        assert_eq!(at, 8);
        assert!(out.starts_with(RC) && out.ends_with("service haproxy\n  no autostart\n"), "{out}");
        let (out, at) = replace_service_blocks(RC, "network", "service network eth2\n").unwrap();
        assert_eq!(at, 1);
        assert_eq!(out, "# config.rc\nservice network eth2\nservice vrrp\n  no autostart\n");
        // Removing every block is allowed.
        assert_eq!(replace_service_blocks(RC, "vrrp", "").unwrap().0.matches("vrrp").count(), 0);
    }

    #[test]
    fn refuses_other_services_blocks() {
        let (line, e) = replace_service_blocks(RC, "vrrp", "service vrrp\nservice haproxy\n").unwrap_err();
        assert!(line == 2 && e.contains("service haproxy"), "{e}");
        let (line, _) = replace_service_blocks(RC, "vrrp", "  no autostart\n").unwrap_err();
        assert_eq!(line, 1);
        assert!(replace_service_blocks(RC, "vrrp", "# just a comment\nservice vrrp\n").is_ok());
    }
}
