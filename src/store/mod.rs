//! The configuration store: an embedded SQLite database (`DATA_DIR/lanai.db`) holding every
//! service's configuration revisions with their `running` and `saved` pointers, the console
//! users (argon2id), server-side sessions and the audit log.
//!
//! Crash safety rests on two rules: a revision's text is written once and never updated, and
//! every change that moves a pointer is one SQLite transaction (WAL journal, `synchronous=FULL`).
//! A `kill -9` at any moment therefore leaves either the old or the new pointer, each naming a
//! whole text (`tests/store_crash.rs` checks this by killing a writer at random moments).
//!
//! Queries are bound at run time (`sqlx::query`), not checked at compile time, so building needs
//! no database.

mod audit;
mod error;
mod revisions;
mod sessions;
mod users;

use std::borrow::Cow;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};

pub use audit::AuditEntry;
pub use error::StoreError;
pub use revisions::{Origin, Revision, RevisionId, RevisionMeta, ServiceRow};
pub use sessions::Session;
pub use users::{ADMIN_PASSWORD_ENV, ADMIN_USER, INITIAL_PASSWORD_FILE};

/// The database file inside the data directory.
pub const DB_FILE: &str = "lanai.db";

/// Author and audit user of changes the appliance makes by itself (boot, defaults).
pub const SYSTEM_USER: &str = "lanai";

/// How long a statement waits for another connection's write lock before failing. Writes are
/// short transactions, so this is only reached if something is badly stuck.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// WAL lets readers (the console) run while the pipeline writes; a few connections are enough.
const MAX_CONNECTIONS: u32 = 4;

/// The migrations, embedded in the binary. Listed by hand rather than with `sqlx::migrate!`,
/// which needs sqlx's `macros` feature; the checksums are the same, so either way reads the
/// other's databases. A unit test checks that every file in `migrations/` is listed here.
const MIGRATIONS: &[(i64, &str, &str)] = &[(1, "initial", include_str!("../../migrations/0001_initial.sql"))];

#[derive(Debug)]
struct EmbeddedMigrations;

impl<'s> MigrationSource<'s> for EmbeddedMigrations {
    fn resolve(self) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 's>> {
        Box::pin(async move {
            Ok(MIGRATIONS
                .iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// A handle on the store. Cheap to clone (it is a connection pool).
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) `data_dir/lanai.db` and brings its schema up to date.
    pub async fn open(data_dir: &Path) -> Result<Store, StoreError> {
        create_private_dir(data_dir)?;
        let path = data_dir.join(DB_FILE);
        create_private_file(&path)?;

        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed transaction survives a power cut too, not only a process crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open { path: path.clone(), source })?;

        let migrator = Migrator::new(EmbeddedMigrations).await?;
        migrator.run(&pool).await?;
        tracing::debug!(path = %path.display(), "store opened");
        Ok(Store { pool, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for every connection to finish and closes them (for a clean shutdown; dropping the
    /// store is also safe).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Runs SQLite's `PRAGMA integrity_check`; an error lists what SQLite found.
    pub async fn check_integrity(&self) -> Result<(), StoreError> {
        let rows = sqlx::query("PRAGMA integrity_check").fetch_all(&self.pool).await?;
        let mut problems = Vec::new();
        for row in rows {
            let line: String = row.try_get(0)?;
            if line != "ok" {
                problems.push(line);
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Corrupt(format!("integrity check: {}", problems.join("; "))))
        }
    }

    /// A write transaction. `BEGIN IMMEDIATE` takes the write lock up front (waiting up to the
    /// busy timeout): a deferred transaction that reads and then writes can fail at once with
    /// SQLITE_BUSY when another connection wrote in between.
    async fn write_tx(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// Creates the data directory (and parents) readable by the owner only: it holds password
/// hashes, session ids and the initial admin password. An existing directory is left as it is.
fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(source) => Err(StoreError::Io { path: dir.to_path_buf(), source }),
    }
}

/// Creates an empty database file with mode 0600 if there is none, so SQLite (which gives its
/// `-wal` and `-shm` files the database's mode) never creates a world-readable one.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::Io { path: path.to_path_buf(), source }),
    }
}

/// Now, as stored: Unix milliseconds.
fn now_ms() -> i64 {
    to_ms(SystemTime::now())
}

fn to_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

fn from_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// SQLite wants i64 for LIMIT; the API takes u32 so a caller cannot pass a negative limit.
fn limit_param(limit: u32) -> i64 {
    i64::from(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) async fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn open_creates_dir_and_database_with_private_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a/b");
        let store = Store::open(&data).await.unwrap();
        assert_eq!(store.path(), data.join(DB_FILE));
        let dmode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o777;
        assert_eq!(dmode, 0o700);
        let fmode = std::fs::metadata(data.join(DB_FILE)).unwrap().permissions().mode() & 0o777;
        assert_eq!(fmode, 0o600);
        store.check_integrity().await.unwrap();
    }

    #[tokio::test]
    async fn open_sets_wal_full_sync_and_foreign_keys() {
        let (_dir, store) = temp_store().await;
        let mode: String = sqlx::query("PRAGMA journal_mode").fetch_one(&store.pool).await.unwrap().get(0);
        assert_eq!(mode, "wal");
        let sync: i64 = sqlx::query("PRAGMA synchronous").fetch_one(&store.pool).await.unwrap().get(0);
        assert_eq!(sync, 2, "FULL");
        let fk: i64 = sqlx::query("PRAGMA foreign_keys").fetch_one(&store.pool).await.unwrap().get(0);
        assert_eq!(fk, 1);
    }

    #[tokio::test]
    async fn reopen_keeps_data_and_does_not_rerun_migrations() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).await.unwrap();
            store.ensure_service("haproxy", "global\n").await.unwrap();
            store.close().await;
        }
        let store = Store::open(dir.path()).await.unwrap();
        assert_eq!(store.services().await.unwrap().len(), 1);
        let applied: i64 =
            sqlx::query("SELECT COUNT(*) FROM _sqlx_migrations").fetch_one(&store.pool).await.unwrap().get(0);
        assert_eq!(applied, MIGRATIONS.len() as i64);
    }

    #[tokio::test]
    async fn open_fails_cleanly_on_a_file_that_is_not_a_database() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DB_FILE), vec![0x42u8; 8192]).unwrap();
        let err = Store::open(dir.path()).await.unwrap_err();
        assert!(matches!(err, StoreError::Open { .. } | StoreError::Migrate(_) | StoreError::Db(_)));
        assert!(!err.to_string().is_empty());
    }

    #[tokio::test]
    async fn open_fails_cleanly_when_the_dir_cannot_be_created() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let err = Store::open(&file.join("sub")).await.unwrap_err();
        assert!(matches!(err, StoreError::Io { .. }), "{err}");
    }

    #[test]
    fn every_migration_file_is_embedded() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS.iter().map(|(v, d, _)| format!("{v:04}_{d}.sql")).collect();
        assert_eq!(files, listed);
    }

    #[test]
    fn time_conversions_round_trip_and_never_panic() {
        let t = from_ms(1_700_000_000_123);
        assert_eq!(to_ms(t), 1_700_000_000_123);
        assert_eq!(from_ms(-5), UNIX_EPOCH);
        assert!(now_ms() > 1_600_000_000_000);
    }
}
