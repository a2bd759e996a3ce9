//! The audit log: who did what, when. Append-only.

use std::time::SystemTime;

use sqlx::{Row, SqliteConnection};

use super::{from_ms, limit_param, now_ms, Store, StoreError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: SystemTime,
    pub user: String,
    pub action: String,
    pub detail: String,
}

/// Inside another transaction, so the line is written exactly when the change it describes is.
pub(super) async fn insert_audit(
    conn: &mut SqliteConnection,
    user: &str,
    action: &str,
    detail: &str,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO audit (at, user_name, action, detail) VALUES (?, ?, ?, ?)")
        .bind(now_ms())
        .bind(user)
        .bind(action)
        .bind(detail)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Store {
    /// Appends one line to the audit log.
    pub async fn audit(&self, user: &str, action: &str, detail: &str) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        insert_audit(&mut conn, user, action, detail).await
    }

    /// The latest `limit` audit lines, newest first.
    pub async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows =
            sqlx::query("SELECT id, at, user_name, action, detail FROM audit ORDER BY id DESC LIMIT ?")
                .bind(limit_param(limit))
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    id: row.try_get("id")?,
                    at: from_ms(row.try_get("at")?),
                    user: row.try_get("user_name")?,
                    action: row.try_get("action")?,
                    detail: row.try_get("detail")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::temp_store;
    use super::*;

    #[tokio::test]
    async fn audit_lines_are_listed_newest_first_with_limit() {
        let (_dir, store) = temp_store().await;
        assert!(store.audit_log(10).await.unwrap().is_empty());
        let before = SystemTime::now() - std::time::Duration::from_secs(1);
        store.audit("alice", "login", "from 192.0.2.1").await.unwrap();
        store.audit("bob", "logout", "").await.unwrap();
        store.audit("alice", "apply", "haproxy: revision 3 (console)").await.unwrap();
        let log = store.audit_log(2).await.unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!((log[0].user.as_str(), log[0].action.as_str()), ("alice", "apply"));
        assert_eq!((log[1].user.as_str(), log[1].action.as_str()), ("bob", "logout"));
        assert!(log[0].id > log[1].id);
        assert!(log[0].at >= before);
        let all = store.audit_log(100).await.unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[2].detail, "from 192.0.2.1");
        assert!(store.audit_log(0).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn audit_keeps_arbitrary_text() {
        let (_dir, store) = temp_store().await;
        let detail = "quotes ' \" ; DROP TABLE audit; -- and unicode é\nsecond line";
        store.audit("o'brien", "x", detail).await.unwrap();
        let log = store.audit_log(1).await.unwrap();
        assert_eq!(log[0].detail, detail);
        assert_eq!(log[0].user, "o'brien");
    }
}
