//! Check results as HAProxy names and describes them (`check_status` in
//! `show stat`, the `reason:` of health log lines).

/// HAProxy's check statuses (the subset our checks can produce).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    /// Could not even create the socket / TLS context.
    SockErr,
    L4Ok,
    L4Tout,
    L4Con,
    L6Ok,
    L6Tout,
    L6Rsp,
    L7Tout,
    L7Rsp,
    L7Ok,
    L7Sts,
}

impl CheckStatus {
    /// The short name shown in `check_status` (`L4CON`, `L7OK`, …).
    pub fn short(self) -> &'static str {
        match self {
            CheckStatus::SockErr => "SOCKERR",
            CheckStatus::L4Ok => "L4OK",
            CheckStatus::L4Tout => "L4TOUT",
            CheckStatus::L4Con => "L4CON",
            CheckStatus::L6Ok => "L6OK",
            CheckStatus::L6Tout => "L6TOUT",
            CheckStatus::L6Rsp => "L6RSP",
            CheckStatus::L7Tout => "L7TOUT",
            CheckStatus::L7Rsp => "L7RSP",
            CheckStatus::L7Ok => "L7OK",
            CheckStatus::L7Sts => "L7STS",
        }
    }

    /// The long description (`check_desc`, `reason:` in logs).
    pub fn description(self) -> &'static str {
        match self {
            CheckStatus::SockErr => "Socket error",
            CheckStatus::L4Ok => "Layer4 check passed",
            CheckStatus::L4Tout => "Layer4 timeout",
            CheckStatus::L4Con => "Layer4 connection problem",
            CheckStatus::L6Ok => "Layer6 check passed",
            CheckStatus::L6Tout => "Layer6 timeout",
            CheckStatus::L6Rsp => "Layer6 invalid response",
            CheckStatus::L7Tout => "Layer7 timeout",
            CheckStatus::L7Rsp => "Layer7 invalid response",
            CheckStatus::L7Ok => "Layer7 check passed",
            CheckStatus::L7Sts => "Layer7 wrong status",
        }
    }

    pub fn from_short(s: &str) -> Option<CheckStatus> {
        ALL.iter().copied().find(|c| c.short() == s)
    }

    pub fn is_success(self) -> bool {
        matches!(self, CheckStatus::L4Ok | CheckStatus::L6Ok | CheckStatus::L7Ok)
    }

    /// HAProxy prints `code: N` only for statuses that carry L7 data.
    pub fn has_code(self) -> bool {
        matches!(self, CheckStatus::L7Ok | CheckStatus::L7Sts)
    }

    /// HAProxy's numeric `srv_check_status` (its HCHK_STATUS_* enum order),
    /// used by `show servers state`; 1 (INI) means "not checked yet".
    pub fn number(self) -> u32 {
        match self {
            CheckStatus::SockErr => 5,
            CheckStatus::L4Ok => 6,
            CheckStatus::L4Tout => 7,
            CheckStatus::L4Con => 8,
            CheckStatus::L6Ok => 9,
            CheckStatus::L6Tout => 10,
            CheckStatus::L6Rsp => 11,
            CheckStatus::L7Tout => 12,
            CheckStatus::L7Rsp => 13,
            CheckStatus::L7Ok => 15,
            CheckStatus::L7Sts => 17,
        }
    }
}

const ALL: [CheckStatus; 11] = [
    CheckStatus::SockErr,
    CheckStatus::L4Ok,
    CheckStatus::L4Tout,
    CheckStatus::L4Con,
    CheckStatus::L6Ok,
    CheckStatus::L6Tout,
    CheckStatus::L6Rsp,
    CheckStatus::L7Tout,
    CheckStatus::L7Rsp,
    CheckStatus::L7Ok,
    CheckStatus::L7Sts,
];

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: CheckStatus,
    pub code: Option<u16>,
    /// The `info:` text (may be empty).
    pub info: String,
}

impl Outcome {
    pub fn new(status: CheckStatus, info: impl Into<String>) -> Self {
        Outcome { status, code: None, info: info.into() }
    }

    pub fn with_code(status: CheckStatus, code: u16, info: impl Into<String>) -> Self {
        Outcome { status, code: Some(code), info: info.into() }
    }
}

/// `, reason: …[, code: N][, info: "…"], check duration: Nms` as HAProxy
/// appends it to health log lines.
pub fn reason_text(status: CheckStatus, code: Option<u16>, info: &str, duration_ms: u64) -> String {
    let mut s = format!(", reason: {}", status.description());
    if status.has_code() {
        s.push_str(&format!(", code: {}", code.unwrap_or(0)));
    }
    if !info.is_empty() {
        s.push_str(&format!(", info: \"{info}\""));
    }
    s.push_str(&format!(", check duration: {duration_ms}ms"));
    s
}
