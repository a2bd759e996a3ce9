//! Services, their configuration revisions and the `running` / `saved` pointers.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::audit::insert_audit;
use super::{from_ms, limit_param, now_ms, Store, StoreError, SYSTEM_USER};

/// A revision's id: monotonic, never reused, so a larger id is a later revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RevisionId(pub i64);

impl fmt::Display for RevisionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a revision came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Console,
    Api,
    File,
    Push,
    Boot,
    Restore,
}

impl Origin {
    pub const ALL: [Origin; 6] =
        [Origin::Console, Origin::Api, Origin::File, Origin::Push, Origin::Boot, Origin::Restore];

    /// The stored (and displayed) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Console => "console",
            Origin::Api => "api",
            Origin::File => "file",
            Origin::Push => "push",
            Origin::Boot => "boot",
            Origin::Restore => "restore",
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Origin {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Origin, StoreError> {
        Origin::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| StoreError::UnknownOrigin(s.to_string()))
    }
}

/// One configuration text of one service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revision {
    pub id: RevisionId,
    pub service: String,
    pub text: String,
    pub origin: Origin,
    pub author: String,
    pub created_at: SystemTime,
}

/// A revision without its text, for history lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevisionMeta {
    pub id: RevisionId,
    pub origin: Origin,
    pub author: String,
    pub created_at: SystemTime,
    pub is_running: bool,
    pub is_saved: bool,
}

/// A service as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRow {
    pub name: String,
    pub autostart: bool,
    pub running_revision: Option<RevisionId>,
    pub saved_revision: Option<RevisionId>,
}

#[derive(Clone, Copy)]
enum Pointer {
    Running,
    Saved,
}

/// Service names are API path segments and file names elsewhere: keep them plain.
fn validate_service_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidServiceName(name.to_string()))
    }
}

/// Reads an origin column: a value this version does not know is reported, not a panic.
fn origin_of(row: &SqliteRow, column: &str) -> Result<Origin, StoreError> {
    let text: String = row.try_get(column)?;
    text.parse().map_err(|_| StoreError::Corrupt(format!("unknown revision origin {text:?}")))
}

fn revision_of(row: &SqliteRow) -> Result<Revision, StoreError> {
    Ok(Revision {
        id: RevisionId(row.try_get("id")?),
        service: row.try_get("service")?,
        text: row.try_get("text")?,
        origin: origin_of(row, "origin")?,
        author: row.try_get("author")?,
        created_at: from_ms(row.try_get("created_at")?),
    })
}

async fn require_service(conn: &mut SqliteConnection, name: &str) -> Result<(), StoreError> {
    let found =
        sqlx::query("SELECT 1 FROM services WHERE name = ?").bind(name).fetch_optional(&mut *conn).await?;
    match found {
        Some(_) => Ok(()),
        None => Err(StoreError::UnknownService(name.to_string())),
    }
}

async fn insert_revision(
    conn: &mut SqliteConnection,
    service: &str,
    text: &str,
    origin: Origin,
    author: &str,
) -> Result<RevisionId, StoreError> {
    let id: i64 = sqlx::query(
        "INSERT INTO revisions (service, text, origin, author, created_at) VALUES (?, ?, ?, ?, ?) \
         RETURNING id",
    )
    .bind(service)
    .bind(text)
    .bind(origin.as_str())
    .bind(author)
    .bind(now_ms())
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)?;
    Ok(RevisionId(id))
}

/// Checks that `rev` exists and belongs to `service`; returns its origin and author (for the
/// audit line).
async fn revision_of_service(
    conn: &mut SqliteConnection,
    service: &str,
    rev: RevisionId,
) -> Result<(Origin, String), StoreError> {
    let row = sqlx::query("SELECT service, origin, author FROM revisions WHERE id = ?")
        .bind(rev.0)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::UnknownRevision(rev))?;
    let actual: String = row.try_get("service")?;
    if actual != service {
        return Err(StoreError::RevisionOfOtherService {
            revision: rev,
            actual,
            expected: service.to_string(),
        });
    }
    Ok((origin_of(&row, "origin")?, row.try_get("author")?))
}

async fn set_pointer(
    conn: &mut SqliteConnection,
    service: &str,
    pointer: Pointer,
    rev: RevisionId,
) -> Result<(), StoreError> {
    let sql = match pointer {
        Pointer::Running => "UPDATE services SET running_revision = ? WHERE name = ?",
        Pointer::Saved => "UPDATE services SET saved_revision = ? WHERE name = ?",
    };
    sqlx::query(sql).bind(rev.0).bind(service).execute(&mut *conn).await?;
    Ok(())
}

impl Store {
    /// Registers `name` if it is new, with `default_text` as its first revision (origin boot),
    /// both running and saved, so a known service always has a configuration. Returns whether
    /// it was created; an existing service is left untouched.
    pub async fn ensure_service(&self, name: &str, default_text: &str) -> Result<bool, StoreError> {
        validate_service_name(name)?;
        let mut tx = self.write_tx().await?;
        if require_service(&mut tx, name).await.is_ok() {
            return Ok(false);
        }
        sqlx::query("INSERT INTO services (name) VALUES (?)").bind(name).execute(&mut *tx).await?;
        let rev = insert_revision(&mut tx, name, default_text, Origin::Boot, SYSTEM_USER).await?;
        set_pointer(&mut tx, name, Pointer::Running, rev).await?;
        set_pointer(&mut tx, name, Pointer::Saved, rev).await?;
        insert_audit(&mut tx, SYSTEM_USER, "service.create", &format!("{name}: default revision {rev}"))
            .await?;
        tx.commit().await?;
        tracing::info!(service = name, revision = rev.0, "service registered");
        Ok(true)
    }

    /// Stores a new revision without moving any pointer (the pipeline calls `set_running`
    /// once the service accepted it).
    pub async fn add_revision(
        &self,
        service: &str,
        text: &str,
        origin: Origin,
        author: &str,
    ) -> Result<RevisionId, StoreError> {
        let mut tx = self.write_tx().await?;
        require_service(&mut tx, service).await?;
        let rev = insert_revision(&mut tx, service, text, origin, author).await?;
        tx.commit().await?;
        Ok(rev)
    }

    /// Points `running` at `rev`, which must be a revision of `service`. Audited as the system
    /// (the revision keeps its own author), since boot and rollback move this pointer too.
    pub async fn set_running(&self, service: &str, rev: RevisionId) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        require_service(&mut tx, service).await?;
        let (origin, author) = revision_of_service(&mut tx, service, rev).await?;
        set_pointer(&mut tx, service, Pointer::Running, rev).await?;
        let detail = format!("{service}: running := revision {rev} ({origin}, by {author})");
        insert_audit(&mut tx, SYSTEM_USER, "service.running", &detail).await?;
        tx.commit().await?;
        Ok(())
    }

    /// New revision + `running` := it + audit line, in one transaction: after a crash either
    /// all three happened or none did.
    pub async fn apply_revision(
        &self,
        service: &str,
        text: &str,
        origin: Origin,
        author: &str,
    ) -> Result<RevisionId, StoreError> {
        let mut tx = self.write_tx().await?;
        require_service(&mut tx, service).await?;
        let rev = insert_revision(&mut tx, service, text, origin, author).await?;
        set_pointer(&mut tx, service, Pointer::Running, rev).await?;
        insert_audit(&mut tx, author, "apply", &format!("{service}: revision {rev} ({origin})")).await?;
        tx.commit().await?;
        Ok(rev)
    }

    /// The revision `service` runs; `None` if it has none yet.
    pub async fn running(&self, service: &str) -> Result<Option<Revision>, StoreError> {
        self.pointed(service, Pointer::Running).await
    }

    /// The revision boot applies to `service`; `None` if it was never saved.
    pub async fn saved(&self, service: &str) -> Result<Option<Revision>, StoreError> {
        self.pointed(service, Pointer::Saved).await
    }

    async fn pointed(&self, service: &str, pointer: Pointer) -> Result<Option<Revision>, StoreError> {
        // LEFT JOIN: no row means no such service, a row of NULLs means no revision yet.
        let sql = match pointer {
            Pointer::Running => {
                "SELECT r.id, r.service, r.text, r.origin, r.author, r.created_at FROM services s \
                 LEFT JOIN revisions r ON r.id = s.running_revision WHERE s.name = ?"
            }
            Pointer::Saved => {
                "SELECT r.id, r.service, r.text, r.origin, r.author, r.created_at FROM services s \
                 LEFT JOIN revisions r ON r.id = s.saved_revision WHERE s.name = ?"
            }
        };
        let row = sqlx::query(sql)
            .bind(service)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::UnknownService(service.to_string()))?;
        if row.try_get::<Option<i64>, _>("id")?.is_none() {
            return Ok(None);
        }
        revision_of(&row).map(Some)
    }

    /// One revision by id; `None` if there is no such revision.
    pub async fn revision(&self, id: RevisionId) -> Result<Option<Revision>, StoreError> {
        let row =
            sqlx::query("SELECT id, service, text, origin, author, created_at FROM revisions WHERE id = ?")
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(revision_of).transpose()
    }

    /// The latest `limit` revisions of `service`, newest first.
    pub async fn revisions(&self, service: &str, limit: u32) -> Result<Vec<RevisionMeta>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        require_service(&mut conn, service).await?;
        let rows = sqlx::query(
            "SELECT r.id, r.origin, r.author, r.created_at, \
                    r.id IS s.running_revision AS is_running, r.id IS s.saved_revision AS is_saved \
             FROM revisions r JOIN services s ON s.name = r.service \
             WHERE r.service = ? ORDER BY r.id DESC LIMIT ?",
        )
        .bind(service)
        .bind(limit_param(limit))
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RevisionMeta {
                    id: RevisionId(row.try_get("id")?),
                    origin: origin_of(row, "origin")?,
                    author: row.try_get("author")?,
                    created_at: from_ms(row.try_get("created_at")?),
                    is_running: row.try_get("is_running")?,
                    is_saved: row.try_get("is_saved")?,
                })
            })
            .collect()
    }

    /// Save: `saved` := `running` for every service, in one transaction, with one audit line.
    /// Returns the services whose saved pointer moved, by name (this can include one whose
    /// running text equals its saved text under a newer revision id; see `unsaved_services`).
    pub async fn save_all(&self, author: &str) -> Result<Vec<String>, StoreError> {
        let mut tx = self.write_tx().await?;
        let mut moved: Vec<String> = sqlx::query(
            "UPDATE services SET saved_revision = running_revision \
             WHERE running_revision IS NOT NULL AND saved_revision IS NOT running_revision \
             RETURNING name",
        )
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
        // RETURNING gives no order.
        moved.sort();
        let detail = if moved.is_empty() {
            "nothing to save".to_string()
        } else {
            format!("saved {}", moved.join(", "))
        };
        insert_audit(&mut tx, author, "save", &detail).await?;
        tx.commit().await?;
        tracing::info!(author, services = ?moved, "configuration saved");
        Ok(moved)
    }

    /// Services whose running text differs from their saved text (by content: re-applying the
    /// saved text is not an unsaved change), sorted by name.
    pub async fn unsaved_services(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.name FROM services s \
             LEFT JOIN revisions r ON r.id = s.running_revision \
             LEFT JOIN revisions v ON v.id = s.saved_revision \
             WHERE r.text IS NOT v.text ORDER BY s.name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| row.try_get(0).map_err(StoreError::from)).collect()
    }

    /// Every service, sorted by name.
    pub async fn services(&self) -> Result<Vec<ServiceRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, autostart, running_revision, saved_revision FROM services ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ServiceRow {
                    name: row.try_get("name")?,
                    autostart: row.try_get("autostart")?,
                    running_revision: row.try_get::<Option<i64>, _>("running_revision")?.map(RevisionId),
                    saved_revision: row.try_get::<Option<i64>, _>("saved_revision")?.map(RevisionId),
                })
            })
            .collect()
    }

    /// Whether boot starts `name`.
    pub async fn set_autostart(&self, name: &str, autostart: bool) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE services SET autostart = ? WHERE name = ?")
            .bind(autostart)
            .bind(name)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownService(name.to_string()));
        }
        Ok(())
    }

    /// (service, running text) for every service that has one, sorted by name: the content of
    /// a backup.
    pub async fn export_running(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.name, r.text FROM services s JOIN revisions r ON r.id = s.running_revision \
             ORDER BY s.name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| Ok((row.try_get("name")?, row.try_get("text")?))).collect()
    }
}

#[cfg(test)]
#[path = "revisions_tests.rs"]
mod tests;
