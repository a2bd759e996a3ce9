//! Server-side console sessions: the cookie carries a random id, everything else is here.

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use rand::RngCore;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::{from_ms, now_ms, to_ms, Store, StoreError};

#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    /// 256 random bits, lowercase hex (64 characters).
    pub id: String,
    /// Per-session token that state-changing requests must echo (256 random bits, hex).
    pub csrf_token: String,
    pub user: String,
    pub created_at: SystemTime,
    pub expires_at: SystemTime,
}

/// Hand-written so a session logged by `{:?}` does not leak its secrets.
impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &"<redacted>")
            .field("csrf_token", &"<redacted>")
            .field("user", &self.user)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// 256 bits from the thread-local CSPRNG (ChaCha, seeded from the OS), as hex.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let mut hex = String::with_capacity(64);
    for b in bytes {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

fn session_of(row: &SqliteRow) -> Result<Session, StoreError> {
    Ok(Session {
        id: row.try_get("id")?,
        csrf_token: row.try_get("csrf_token")?,
        user: row.try_get("user_name")?,
        created_at: from_ms(row.try_get("created_at")?),
        expires_at: from_ms(row.try_get("expires_at")?),
    })
}

impl Store {
    /// Opens a session for an existing user, valid for `ttl`.
    pub async fn create_session(&self, user: &str, ttl: Duration) -> Result<Session, StoreError> {
        let created_at = SystemTime::now();
        // An absurd ttl (Duration::MAX as "never") caps at a century rather than overflowing.
        let expires_at = created_at.checked_add(ttl.min(MAX_TTL)).unwrap_or(created_at);
        let session = Session {
            id: random_token(),
            csrf_token: random_token(),
            user: user.to_string(),
            created_at,
            expires_at,
        };
        let inserted = sqlx::query(
            "INSERT INTO sessions (id, user_name, csrf_token, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&session.id)
        .bind(user)
        .bind(&session.csrf_token)
        .bind(to_ms(created_at))
        .bind(to_ms(expires_at))
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(session),
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                Err(StoreError::UnknownUser(user.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The live session with this id. An expired one is deleted and reads as `None`.
    pub async fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query(
            "SELECT id, user_name, csrf_token, created_at, expires_at FROM sessions WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let expires_at: i64 = row.try_get("expires_at")?;
        if expires_at <= now_ms() {
            self.delete_session(id).await?;
            return Ok(None);
        }
        session_of(&row).map(Some)
    }

    /// Logout. Returns whether there was such a session.
    pub async fn delete_session(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE id = ?").bind(id).execute(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }

    /// Ends every session of `user` (after a password change, say). Returns how many.
    pub async fn delete_user_sessions(&self, user: &str) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM sessions WHERE user_name = ?").bind(user).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }

    /// Deletes expired sessions (run now and then; `session` ignores them anyway). Returns how many.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::temp_store;
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn create_and_look_up_a_session() {
        let (_dir, store) = temp_store().await;
        store.create_user("alice", "pw").await.unwrap();
        let s = store.create_session("alice", HOUR).await.unwrap();
        assert_eq!(s.id.len(), 64);
        assert!(s.id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(s.csrf_token.len(), 64);
        assert_ne!(s.id, s.csrf_token);
        assert!(s.expires_at > SystemTime::now() + HOUR - Duration::from_secs(60));
        let got = store.session(&s.id).await.unwrap().unwrap();
        assert_eq!(got.user, "alice");
        assert_eq!(got.csrf_token, s.csrf_token);
        assert_eq!(to_ms(got.expires_at), to_ms(s.expires_at));
        let other = store.create_session("alice", HOUR).await.unwrap();
        assert_ne!(other.id, s.id);
        assert!(!format!("{s:?}").contains(&s.id), "Debug must not print the id");
    }

    #[tokio::test]
    async fn unknown_user_and_unknown_id() {
        let (_dir, store) = temp_store().await;
        assert!(matches!(store.create_session("ghost", HOUR).await, Err(StoreError::UnknownUser(_))));
        assert!(store.session("nope").await.unwrap().is_none());
        assert!(store.session("").await.unwrap().is_none());
        assert!(!store.delete_session("nope").await.unwrap());
    }

    #[tokio::test]
    async fn expired_session_is_none_and_deleted() {
        let (_dir, store) = temp_store().await;
        store.create_user("alice", "pw").await.unwrap();
        let s = store.create_session("alice", Duration::ZERO).await.unwrap();
        assert!(store.session(&s.id).await.unwrap().is_none());
        // It was deleted, not only hidden.
        assert!(!store.delete_session(&s.id).await.unwrap());
    }

    #[tokio::test]
    async fn delete_and_purge() {
        let (_dir, store) = temp_store().await;
        store.create_user("alice", "pw").await.unwrap();
        store.create_user("bob", "pw").await.unwrap();
        let live = store.create_session("alice", HOUR).await.unwrap();
        let gone = store.create_session("alice", HOUR).await.unwrap();
        for _ in 0..3 {
            store.create_session("bob", Duration::ZERO).await.unwrap();
        }
        assert!(store.delete_session(&gone.id).await.unwrap());
        assert!(store.session(&gone.id).await.unwrap().is_none());
        assert_eq!(store.purge_expired().await.unwrap(), 3);
        assert_eq!(store.purge_expired().await.unwrap(), 0);
        assert!(store.session(&live.id).await.unwrap().is_some());
        store.create_session("alice", HOUR).await.unwrap();
        assert_eq!(store.delete_user_sessions("alice").await.unwrap(), 2);
        assert!(store.session(&live.id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn huge_ttl_does_not_overflow() {
        let (_dir, store) = temp_store().await;
        store.create_user("alice", "pw").await.unwrap();
        let s = store.create_session("alice", Duration::MAX).await.unwrap();
        assert!(s.expires_at > SystemTime::now() + 50 * 365 * 24 * HOUR);
        assert!(store.session(&s.id).await.unwrap().is_some());
    }
}
