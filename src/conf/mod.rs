//! Configuration parsers: text in, typed model or diagnostics out. Pure: no I/O
//! except where a function says so (e.g. checking that referenced files exist).

mod check;
pub mod haproxy;
pub mod keepalived;
pub mod rc;
pub mod source;

pub use check::{check_file, check_text, ConfigKind};

use std::fmt;

/// How bad a diagnostic is. Errors make a configuration invalid; warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// One problem found in a configuration file, tied to its line (1-based; 0 when
/// the problem concerns the file as a whole).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub severity: Severity,
    pub message: String,
}

impl Diagnostic {
    pub fn error(file: &str, line: usize, message: impl Into<String>) -> Self {
        Diagnostic { file: file.to_string(), line, severity: Severity::Error, message: message.into() }
    }

    pub fn warning(file: &str, line: usize, message: impl Into<String>) -> Self {
        Diagnostic { file: file.to_string(), line, severity: Severity::Warning, message: message.into() }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// `FILE:LINE: message`, with `warning: ` before warnings' messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.severity {
            Severity::Error => write!(f, "{}:{}: {}", self.file, self.line, self.message),
            Severity::Warning => write!(f, "{}:{}: warning: {}", self.file, self.line, self.message),
        }
    }
}

/// True when any diagnostic is an error.
pub fn has_errors(diags: &[Diagnostic]) -> bool {
    diags.iter().any(Diagnostic::is_error)
}
