//! Console users: argon2id password hashes (PHC strings) and the first-start admin account.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::distr::{Alphanumeric, SampleString};
use rand::RngCore;
use sqlx::Row;

use super::audit::insert_audit;
use super::{now_ms, Store, StoreError, SYSTEM_USER};

/// The account created on first start.
pub const ADMIN_USER: &str = "admin";
/// If set (and not empty) on first start, the admin password; otherwise one is generated.
pub const ADMIN_PASSWORD_ENV: &str = "LANAI_ADMIN_PASSWORD";
/// Where a generated admin password is written (mode 0600) in the data directory.
pub const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";
/// 20 alphanumerics: about 119 bits.
const GENERATED_PASSWORD_LEN: usize = 20;

/// User names appear in the audit log and the console: printable, no spaces.
fn validate_user_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidUserName(name.to_string()))
    }
}

/// Argon2id v19 with the crate's defaults (19 MiB, 2 passes, 1 lane: OWASP's recommendation).
fn hasher() -> Argon2<'static> {
    Argon2::default()
}

/// Hashes on the blocking pool: argon2 takes tens of milliseconds of CPU by design.
async fn hash_password(password: &str) -> Result<String, StoreError> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| StoreError::PasswordHash(e.to_string()))?;
        hasher()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| StoreError::PasswordHash(e.to_string()))
    })
    .await?
}

/// A hash of a random password, computed once, that unknown users are checked against so that
/// "no such user" takes as long as "wrong password" (no user enumeration by timing).
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let password = Alphanumeric.sample_string(&mut rand::rng(), GENERATED_PASSWORD_LEN);
        match SaltString::encode_b64(&salt) {
            Ok(salt) => {
                hasher().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).unwrap_or_default()
            }
            Err(_) => String::new(),
        }
    })
}

/// Verifies on the blocking pool. `stored` is `None` for an unknown user; a stored hash that
/// does not parse is logged and fails, after the same amount of work.
async fn verify_hash(password: &str, stored: Option<String>) -> Result<bool, StoreError> {
    let password = password.to_string();
    let ok = tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| dummy_hash().to_string());
        let parsed = match PasswordHash::new(&stored) {
            Ok(parsed) => parsed,
            Err(e) => {
                tracing::warn!(error = %e, "stored password hash does not parse");
                // Spend the time anyway, and fail.
                if let Ok(dummy) = PasswordHash::new(dummy_hash()) {
                    let _ = hasher().verify_password(password.as_bytes(), &dummy);
                }
                return false;
            }
        };
        // Verify first, then look at `known`: `known && verify` would skip the work for
        // unknown users. verify_password compares in constant time.
        let matches = hasher().verify_password(password.as_bytes(), &parsed).is_ok();
        known && matches
    })
    .await?;
    Ok(ok)
}

impl Store {
    async fn password_hash_of(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT password_hash FROM users WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => Some(row.try_get("password_hash")?),
            None => None,
        })
    }

    /// Creates a user. Fails with `UserExists` if the name is taken.
    pub async fn create_user(&self, name: &str, password: &str) -> Result<(), StoreError> {
        validate_user_name(name)?;
        if password.is_empty() {
            return Err(StoreError::EmptyPassword);
        }
        let hash = hash_password(password).await?;
        let now = now_ms();
        let inserted = sqlx::query(
            "INSERT INTO users (name, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?)",
        )
        .bind(name)
        .bind(&hash)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::UserExists(name.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether `password` is `name`'s password. An unknown user is `false`, after the same work.
    pub async fn verify_password(&self, name: &str, password: &str) -> Result<bool, StoreError> {
        let stored = self.password_hash_of(name).await?;
        verify_hash(password, stored).await
    }

    /// Changes `name`'s password if `old` is the current one. Sessions are left alone: the
    /// caller decides (see `delete_user_sessions`).
    pub async fn set_password(&self, name: &str, old: &str, new: &str) -> Result<(), StoreError> {
        if new.is_empty() {
            return Err(StoreError::EmptyPassword);
        }
        let stored =
            self.password_hash_of(name).await?.ok_or_else(|| StoreError::UnknownUser(name.to_string()))?;
        if !verify_hash(old, Some(stored.clone())).await? {
            return Err(StoreError::WrongPassword);
        }
        let hash = hash_password(new).await?;
        let mut tx = self.write_tx().await?;
        // Only if nobody changed it meanwhile: otherwise `old` was checked against a stale hash.
        let done = sqlx::query(
            "UPDATE users SET password_hash = ?, updated_at = ? WHERE name = ? AND password_hash = ?",
        )
        .bind(&hash)
        .bind(now_ms())
        .bind(name)
        .bind(&stored)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::WrongPassword);
        }
        insert_audit(&mut tx, name, "user.password", name).await?;
        tx.commit().await?;
        if name == ADMIN_USER {
            self.remove_initial_password_file().await;
        }
        Ok(())
    }

    /// Once the admin has chosen a password, the generated one on disk is stale: remove it so
    /// nobody mistakes it for the current one. Best effort (the password change stands).
    async fn remove_initial_password_file(&self) {
        let Some(dir) = self.path.parent() else { return };
        let file = dir.join(INITIAL_PASSWORD_FILE);
        match tokio::fs::remove_file(&file).await {
            Ok(()) => tracing::info!(file = %file.display(), "removed the initial admin password file"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "cannot remove the initial admin password file")
            }
        }
    }

    /// First start: creates `admin` if it does not exist, with `$LANAI_ADMIN_PASSWORD` if set,
    /// otherwise with a random password that is written to `data_dir/initial-admin-password`
    /// (mode 0600) and returned, for the caller to print with the console URL.
    pub async fn ensure_admin(&self, data_dir: &Path) -> Result<Option<String>, StoreError> {
        let from_env = std::env::var(ADMIN_PASSWORD_ENV).ok().filter(|p| !p.is_empty());
        self.ensure_admin_with(data_dir, from_env).await
    }

    /// `ensure_admin` with the environment read by the caller (tests need not touch it).
    pub async fn ensure_admin_with(
        &self,
        data_dir: &Path,
        from_env: Option<String>,
    ) -> Result<Option<String>, StoreError> {
        if self.password_hash_of(ADMIN_USER).await?.is_some() {
            return Ok(None);
        }
        let (password, generated) = match from_env {
            Some(p) => (p, false),
            None => (Alphanumeric.sample_string(&mut rand::rng(), GENERATED_PASSWORD_LEN), true),
        };
        if generated {
            // The file first: a crash before the user exists just means a new password next
            // start; the other order could leave an admin whose password nobody knows.
            write_private_file(data_dir.join(INITIAL_PASSWORD_FILE), format!("{password}\n")).await?;
        }
        match self.create_user(ADMIN_USER, &password).await {
            Ok(()) => {}
            // Another process won the race: its password stands.
            Err(StoreError::UserExists(_)) => return Ok(None),
            Err(e) => return Err(e),
        }
        let how = if generated { "generated password" } else { "password from LANAI_ADMIN_PASSWORD" };
        self.audit(SYSTEM_USER, "user.create", &format!("{ADMIN_USER} ({how})")).await?;
        tracing::info!(user = ADMIN_USER, how, "admin account created");
        Ok(generated.then_some(password))
    }
}

/// Writes `content` to `path` with mode 0600, atomically (temporary file, fsync, rename, fsync
/// of the directory), so the file is either absent or whole after a crash.
async fn write_private_file(path: PathBuf, content: String) -> Result<(), StoreError> {
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        let tmp = path.with_extension("tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        // `mode` applies only to a new file; a leftover temporary may have another mode.
        file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io(&tmp))?;
        file.write_all(content.as_bytes()).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))?;
        }
        Ok(())
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::super::tests::temp_store;
    use super::*;

    #[tokio::test]
    async fn create_and_verify_password() {
        let (_dir, store) = temp_store().await;
        store.create_user("alice", "correct horse").await.unwrap();
        assert!(store.verify_password("alice", "correct horse").await.unwrap());
        assert!(!store.verify_password("alice", "wrong").await.unwrap());
        assert!(!store.verify_password("alice", "").await.unwrap());
        assert!(!store.verify_password("nobody", "correct horse").await.unwrap());
        // The hash is an argon2id PHC string, never the password.
        let hash = store.password_hash_of("alice").await.unwrap().unwrap();
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert!(!hash.contains("correct horse"));
    }

    #[tokio::test]
    async fn create_user_rejects_duplicates_bad_names_and_empty_passwords() {
        let (_dir, store) = temp_store().await;
        store.create_user("bob", "pw").await.unwrap();
        assert!(matches!(store.create_user("bob", "other").await, Err(StoreError::UserExists(_))));
        assert!(store.verify_password("bob", "pw").await.unwrap());
        for bad in ["", "has space", "semi;colon", &"x".repeat(65)] {
            assert!(
                matches!(store.create_user(bad, "pw").await, Err(StoreError::InvalidUserName(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(store.create_user("carol", "").await, Err(StoreError::EmptyPassword)));
    }

    #[tokio::test]
    async fn set_password_needs_the_old_one() {
        let (_dir, store) = temp_store().await;
        store.create_user("alice", "one").await.unwrap();
        assert!(matches!(store.set_password("alice", "bad", "two").await, Err(StoreError::WrongPassword)));
        assert!(store.verify_password("alice", "one").await.unwrap());
        assert!(matches!(store.set_password("alice", "one", "").await, Err(StoreError::EmptyPassword)));
        assert!(matches!(store.set_password("nobody", "one", "two").await, Err(StoreError::UnknownUser(_))));
        store.set_password("alice", "one", "two").await.unwrap();
        assert!(!store.verify_password("alice", "one").await.unwrap());
        assert!(store.verify_password("alice", "two").await.unwrap());
        let log = store.audit_log(1).await.unwrap();
        assert_eq!((log[0].user.as_str(), log[0].action.as_str()), ("alice", "user.password"));
    }

    #[tokio::test]
    async fn corrupt_hash_fails_verification_without_panic() {
        let (_dir, store) = temp_store().await;
        store.create_user("alice", "pw").await.unwrap();
        sqlx::query("UPDATE users SET password_hash = 'garbage' WHERE name = 'alice'")
            .execute(&store.pool)
            .await
            .unwrap();
        assert!(!store.verify_password("alice", "pw").await.unwrap());
    }

    #[tokio::test]
    async fn unknown_user_costs_about_as_much_as_a_wrong_password() {
        let (_dir, store) = temp_store().await;
        store.create_user("alice", "pw").await.unwrap();
        // Warm the dummy hash so the first call's one-off hashing is not measured.
        store.verify_password("nobody", "x").await.unwrap();
        let t = std::time::Instant::now();
        store.verify_password("alice", "wrong").await.unwrap();
        let known = t.elapsed();
        let t = std::time::Instant::now();
        store.verify_password("nobody", "wrong").await.unwrap();
        let unknown = t.elapsed();
        // Both run a full argon2 verification; allow wide noise on a shared machine.
        assert!(unknown * 4 > known, "unknown {unknown:?} vs known {known:?}");
    }

    #[tokio::test]
    async fn ensure_admin_generates_a_password_file_once() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, store) = temp_store().await;
        let password = store.ensure_admin_with(dir.path(), None).await.unwrap().unwrap();
        assert_eq!(password.len(), GENERATED_PASSWORD_LEN);
        assert!(password.bytes().all(|b| b.is_ascii_alphanumeric()));
        let file = dir.path().join(INITIAL_PASSWORD_FILE);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), format!("{password}\n"));
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(store.verify_password(ADMIN_USER, &password).await.unwrap());
        // Second start: nothing new, password unchanged.
        assert_eq!(store.ensure_admin_with(dir.path(), None).await.unwrap(), None);
        assert_eq!(store.ensure_admin_with(dir.path(), Some("x".into())).await.unwrap(), None);
        assert!(store.verify_password(ADMIN_USER, &password).await.unwrap());
        let log = store.audit_log(10).await.unwrap();
        assert_eq!(log.iter().filter(|e| e.action == "user.create").count(), 1);
        // Once the admin picks a password, the generated one is no longer on disk.
        store.set_password(ADMIN_USER, &password, "chosen").await.unwrap();
        assert!(!file.exists());
    }

    #[tokio::test]
    async fn ensure_admin_uses_the_given_password_and_writes_no_file() {
        let (dir, store) = temp_store().await;
        let got = store.ensure_admin_with(dir.path(), Some("from-env".into())).await.unwrap();
        assert_eq!(got, None);
        assert!(!dir.path().join(INITIAL_PASSWORD_FILE).exists());
        assert!(store.verify_password(ADMIN_USER, "from-env").await.unwrap());
    }

    #[tokio::test]
    async fn ensure_admin_reports_an_unwritable_data_dir() {
        let (dir, store) = temp_store().await;
        let missing = dir.path().join("missing");
        let err = store.ensure_admin_with(&missing, None).await.unwrap_err();
        assert!(matches!(err, StoreError::Io { .. }), "{err}");
        // No admin was created with a password nobody could read.
        assert!(store.password_hash_of(ADMIN_USER).await.unwrap().is_none());
    }
}
