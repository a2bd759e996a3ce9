//! Parses the runtime API's `show stat` CSV (header `# pxname,svname,...`)
//! into rows the LB Admin tab shows and whose names it validates.

use serde::Serialize;

/// One line of `show stat`: a frontend, a backend or a server.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct StatRow {
    pub proxy: String,
    pub name: String,
    /// `frontend`, `backend` or `server` (HAProxy's `type` 0, 1, 2).
    pub kind: &'static str,
    pub status: String,
    pub weight: String,
    pub sessions: String,
    pub check: String,
}

impl StatRow {
    /// CSS class for the status colour.
    pub fn colour(&self) -> &'static str {
        let s = self.status.to_ascii_uppercase();
        if s.starts_with("UP") || s == "OPEN" || s == "OPEN " {
            "up"
        } else if s.starts_with("DRAIN") || s.starts_with("NOLB") || s.contains("GOING") {
            "drain"
        } else if s.starts_with("MAINT") {
            "maint"
        } else if s == "NO CHECK" {
            // Unchecked servers are usable: not a failure colour.
            "nocheck"
        } else {
            "down"
        }
    }
}

/// The rows of a `show stat` answer; lines that do not parse are skipped.
pub fn parse(csv: &str) -> Vec<StatRow> {
    let mut lines = csv.lines();
    let Some(header) = lines.by_ref().find(|l| l.starts_with("# ")) else { return Vec::new() };
    let columns: Vec<&str> = header.trim_start_matches("# ").split(',').collect();
    let index = |name: &str| columns.iter().position(|c| *c == name);
    let (Some(px), Some(sv)) = (index("pxname"), index("svname")) else { return Vec::new() };
    let (ty, status, weight, scur, check) =
        (index("type"), index("status"), index("weight"), index("scur"), index("check_status"));
    let field = |fields: &[&str], i: Option<usize>| -> String {
        i.and_then(|i| fields.get(i)).map_or(String::new(), |s| s.to_string())
    };
    lines
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let proxy = fields.get(px)?.to_string();
            let name = fields.get(sv)?.to_string();
            let kind = match (field(&fields, ty).as_str(), name.as_str()) {
                ("0", _) | ("", "FRONTEND") => "frontend",
                ("1", _) | ("", "BACKEND") => "backend",
                ("2", _) | ("", _) => "server",
                _ => return None,
            };
            Some(StatRow {
                proxy,
                name,
                kind,
                status: field(&fields, status),
                weight: field(&fields, weight),
                sessions: field(&fields, scur),
                check: field(&fields, check),
            })
        })
        .collect()
}

/// Whether `backend/server` is a server listed in `rows`.
pub fn has_server(rows: &[StatRow], backend: &str, server: &str) -> bool {
    rows.iter().any(|r| r.kind == "server" && r.proxy == backend && r.name == server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_of_states() {
        let row = |status: &str| StatRow { status: status.into(), ..StatRow::default() };
        assert_eq!(row("no check").colour(), "nocheck");
        assert_eq!(row("UP").colour(), "up");
        assert_eq!(row("DOWN").colour(), "down");
        assert_eq!(row("MAINT").colour(), "maint");
    }

    const SAMPLE: &str = "# pxname,svname,qcur,scur,status,weight,type,check_status\n\
        web,FRONTEND,,3,OPEN,,0,\n\
        app,s1,0,1,UP,1,2,L7OK\n\
        app,s2,0,0,DRAIN,0,2,L4OK\n\
        app,BACKEND,0,1,UP,1,1,\n\n";

    #[test]
    fn parses_rows_by_header_names() {
        let rows = parse(SAMPLE);
        assert_eq!(rows.len(), 4);
        assert_eq!((rows[0].kind, rows[0].status.as_str()), ("frontend", "OPEN"));
        assert_eq!((rows[1].kind, rows[1].name.as_str(), rows[1].check.as_str()), ("server", "s1", "L7OK"));
        assert_eq!(rows[2].colour(), "drain");
        assert_eq!(rows[3].kind, "backend");
        assert!(has_server(&rows, "app", "s2"));
        assert!(!has_server(&rows, "app", "BACKEND"));
        assert!(!has_server(&rows, "web", "s1"));
    }

    #[test]
    fn garbage_gives_nothing() {
        assert!(parse("Unknown command\n").is_empty());
        assert!(parse("").is_empty());
    }
}
