-- Lanai configuration store, first schema.
-- Times are Unix milliseconds (INTEGER). Tables are STRICT so a wrong type is an error at write
-- time instead of a surprise at read time.

-- One row per service (haproxy, lvs, vrrp, csyncd, network, system, ...). The two pointers are
-- the whole state machine: `running` is what the service runs now, `saved` what boot applies.
CREATE TABLE services (
    name             TEXT    NOT NULL PRIMARY KEY,
    autostart        INTEGER NOT NULL DEFAULT 1 CHECK (autostart IN (0, 1)),
    running_revision INTEGER REFERENCES revisions (id),
    saved_revision   INTEGER REFERENCES revisions (id)
) STRICT;

-- Every configuration text ever applied or proposed; never updated, so a pointer always names a
-- whole text. AUTOINCREMENT keeps ids monotonic (never reused), which orders the history.
CREATE TABLE revisions (
    id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    service    TEXT    NOT NULL REFERENCES services (name),
    text       TEXT    NOT NULL,
    origin     TEXT    NOT NULL
        CHECK (origin IN ('console', 'api', 'file', 'push', 'boot', 'restore')),
    author     TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE INDEX revisions_by_service ON revisions (service, id);

-- A pointer must name a revision of its own service; the code checks first (for a clear
-- message), the triggers make it impossible to get wrong from any path.
CREATE TRIGGER services_running_same_service
BEFORE UPDATE OF running_revision ON services
WHEN NEW.running_revision IS NOT NULL
 AND (SELECT service FROM revisions WHERE id = NEW.running_revision) IS NOT NEW.name
BEGIN
    SELECT RAISE(ABORT, 'running revision belongs to another service');
END;

CREATE TRIGGER services_saved_same_service
BEFORE UPDATE OF saved_revision ON services
WHEN NEW.saved_revision IS NOT NULL
 AND (SELECT service FROM revisions WHERE id = NEW.saved_revision) IS NOT NEW.name
BEGIN
    SELECT RAISE(ABORT, 'saved revision belongs to another service');
END;

CREATE TABLE users (
    name          TEXT    NOT NULL PRIMARY KEY,
    password_hash TEXT    NOT NULL, -- PHC string (argon2id)
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

-- Server-side sessions: the cookie carries only the random id.
CREATE TABLE sessions (
    id         TEXT    NOT NULL PRIMARY KEY,
    user_name  TEXT    NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    csrf_token TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX sessions_by_expiry ON sessions (expires_at);
CREATE INDEX sessions_by_user ON sessions (user_name);

-- Append-only audit log. user_name is free text (not a foreign key): entries outlive users and
-- the system itself writes as "lanai".
CREATE TABLE audit (
    id        INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    user_name TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    detail    TEXT    NOT NULL
) STRICT;
