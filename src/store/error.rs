//! The store's one error type. Every message names what was asked for, so the console and the
//! CLI can show it as it is.

use std::path::PathBuf;

use super::RevisionId;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot open the store {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },

    #[error("store migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    #[error("store database error: {0}")]
    Db(#[from] sqlx::Error),

    /// The database holds a value this version cannot read (e.g. an unknown origin): reported,
    /// never a panic.
    #[error("store holds invalid data: {0}")]
    Corrupt(String),

    #[error(
        "invalid service name {0:?}: use 1 to 64 of a-z, 0-9, '-' and '_', starting with a letter or digit"
    )]
    InvalidServiceName(String),

    #[error("unknown service {0:?}")]
    UnknownService(String),

    #[error("unknown revision {0}")]
    UnknownRevision(RevisionId),

    #[error("revision {revision} belongs to service {actual:?}, not {expected:?}")]
    RevisionOfOtherService { revision: RevisionId, actual: String, expected: String },

    #[error("unknown origin {0:?}: expected console, api, file, push, boot or restore")]
    UnknownOrigin(String),

    #[error("invalid user name {0:?}: use 1 to 64 of a-z, A-Z, 0-9, '.', '-', '_' and '@'")]
    InvalidUserName(String),

    #[error("user {0:?} already exists")]
    UserExists(String),

    #[error("unknown user {0:?}")]
    UnknownUser(String),

    #[error("wrong password")]
    WrongPassword,

    #[error("the password must not be empty")]
    EmptyPassword,

    #[error("password hashing failed: {0}")]
    PasswordHash(String),

    #[error("store background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}
