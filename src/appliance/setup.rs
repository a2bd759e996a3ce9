//! The Services tab's setup editor: one service's `service NAME` blocks of
//! config.rc, edited on their own and put back into the whole file, which
//! then goes through the one apply pipeline (as the network service's text).

use super::pipeline::{Appliance, ApplyError, Which};
use super::services::{self, ServiceKind};
use crate::conf::{rc, Diagnostic};
use crate::store::{Origin, RevisionId};

/// A setup text spliced into the running config.rc.
struct Spliced {
    whole: String,
    /// 0-based line of config.rc where the setup text starts.
    offset: usize,
}

impl Appliance {
    /// The blocks of `service` in the running config.rc; a bare `service
    /// NAME` line when it has none (so the editor shows what to extend).
    pub async fn setup_text(&self, service: &str) -> Result<String, ApplyError> {
        let kind = setup_kind(service)?;
        let rc_text = self.config(services::NETWORK.name, Which::Running).await?.unwrap_or_default();
        let blocks = rc::service_blocks(&rc_text, kind.name);
        Ok(if blocks.is_empty() && kind != services::NETWORK {
            format!("service {}\n", kind.name)
        } else {
            blocks
        })
    }

    /// Validates a setup text as part of config.rc; diagnostics carry the
    /// setup text's own line numbers.
    pub async fn setup_check(&self, service: &str, text: &str) -> Result<Vec<Diagnostic>, ApplyError> {
        let kind = setup_kind(service)?;
        match self.splice(kind, text).await? {
            Ok(spliced) => {
                let diags = self.check(services::NETWORK.name, &spliced.whole)?;
                Ok(relocate(diags, &spliced, text))
            }
            Err(diag) => Ok(vec![diag]),
        }
    }

    /// The whole config.rc this setup text would make (for Diff).
    pub async fn setup_whole(&self, service: &str, text: &str) -> Result<String, ApplyError> {
        let kind = setup_kind(service)?;
        match self.splice(kind, text).await? {
            Ok(spliced) => Ok(spliced.whole),
            Err(diag) => Err(ApplyError::Invalid(vec![diag])),
        }
    }

    /// Applies a setup text: config.rc with these blocks replaced.
    pub async fn setup_apply(
        &self,
        service: &str,
        text: &str,
        origin: Origin,
        author: &str,
    ) -> Result<(RevisionId, Vec<String>), ApplyError> {
        let kind = setup_kind(service)?;
        let spliced = match self.splice(kind, text).await? {
            Ok(spliced) => spliced,
            Err(diag) => return Err(ApplyError::Invalid(vec![diag])),
        };
        match self.apply_reporting(services::NETWORK.name, &spliced.whole, origin, author).await {
            Err(ApplyError::Invalid(diags)) => Err(ApplyError::Invalid(relocate(diags, &spliced, text))),
            other => other,
        }
    }

    async fn splice(&self, kind: ServiceKind, text: &str) -> Result<Result<Spliced, Diagnostic>, ApplyError> {
        let rc_text = self.config(services::NETWORK.name, Which::Running).await?.unwrap_or_default();
        Ok(match rc::replace_service_blocks(&rc_text, kind.name, text) {
            Ok((whole, offset)) => Ok(Spliced { whole, offset }),
            Err((line, message)) => Err(Diagnostic::error(services::NETWORK.file, line, message)),
        })
    }
}

fn setup_kind(service: &str) -> Result<ServiceKind, ApplyError> {
    services::by_name(service)
        .filter(|k| rc::SERVICES.contains(&k.name))
        .ok_or_else(|| ApplyError::UnknownService(service.to_string()))
}

/// Diagnostics of the whole config.rc, renumbered to the setup text's lines;
/// one outside it (cannot happen: the rest is the running, valid text) keeps
/// its line and says where it is.
fn relocate(diags: Vec<Diagnostic>, spliced: &Spliced, text: &str) -> Vec<Diagnostic> {
    let len = text.lines().count();
    diags
        .into_iter()
        .map(|mut d| {
            if d.line > spliced.offset && d.line <= spliced.offset + len {
                d.line -= spliced.offset;
            } else {
                d.message = format!("config.rc line {}: {}", d.line, d.message);
                d.line = 0;
            }
            d
        })
        .collect()
}
