//! The schema, versioned by `PRAGMA user_version`: migration `n` (1-based) takes the database
//! from version `n - 1` to `n`. Append new migrations; never edit a released one.
//!
//! Ids are stored as hyphenated UUID text, timestamps as integer epoch milliseconds (UTC).
//! Tables are `STRICT`, so a value of the wrong type can never be stored.

use libsql::Connection;

use super::codec;
use crate::{Error, Result};

const MIGRATIONS: &[&str] = &[
    // 1: receipts, their timelines and documents, idempotency records, API clients.
    r#"
    CREATE TABLE receipts (
        id           TEXT    NOT NULL PRIMARY KEY,
        tenant_id    TEXT    NOT NULL,
        status       TEXT    NOT NULL,
        state_json   TEXT    NOT NULL,
        version      INTEGER NOT NULL,
        receipt_type TEXT    NOT NULL,
        content_type TEXT,
        callback_url TEXT,
        received_at  INTEGER,
        updated_at   INTEGER NOT NULL,
        reasons_json TEXT,
        receipt_json TEXT
    ) STRICT;
    CREATE INDEX receipts_by_tenant_updated ON receipts (tenant_id, updated_at);

    -- The foreign keys are deferred so that apply() can write the timeline entry (its
    -- idempotency check) before the receipt row that the entry belongs to.
    CREATE TABLE timeline (
        receipt_id  TEXT    NOT NULL REFERENCES receipts (id) DEFERRABLE INITIALLY DEFERRED,
        event_id    TEXT    NOT NULL,
        kind        TEXT    NOT NULL,
        occurred_at INTEGER NOT NULL,
        recorded_at INTEGER NOT NULL,
        status      TEXT    NOT NULL,
        seq         INTEGER NOT NULL,
        PRIMARY KEY (receipt_id, event_id)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE documents (
        receipt_id   TEXT NOT NULL PRIMARY KEY REFERENCES receipts (id) DEFERRABLE INITIALLY DEFERRED,
        content_type TEXT NOT NULL,
        bytes        BLOB NOT NULL
    ) STRICT;

    CREATE TABLE idempotency (
        tenant_id       TEXT    NOT NULL,
        idempotency_key TEXT    NOT NULL,
        fingerprint     TEXT    NOT NULL,
        receipt_id      TEXT    NOT NULL,
        event_id        TEXT    NOT NULL,
        received_at     INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, idempotency_key)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE api_clients (
        id         TEXT    NOT NULL PRIMARY KEY,
        tenant_id  TEXT    NOT NULL,
        scope      TEXT    NOT NULL,
        key_hash   TEXT    NOT NULL UNIQUE,
        key_prefix TEXT    NOT NULL,
        label      TEXT,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
    ) STRICT;
    CREATE INDEX api_clients_by_tenant ON api_clients (tenant_id, created_at);
    "#,
    // 2: registrations. A receipt may now be created by an event that names no receipt type (a
    // registration), so `receipt_type` becomes nullable: SQLite cannot relax NOT NULL in place,
    // so the table is rebuilt (SQLite's "12-step" procedure; foreign keys are off meanwhile, see
    // `migrate`). Existing receipts have no registrations or failures; existing timeline entries
    // changed nothing as far as anyone knows (`status_before` = `status`).
    r#"
    CREATE TABLE receipts_v2 (
        id                 TEXT    NOT NULL PRIMARY KEY,
        tenant_id          TEXT    NOT NULL,
        status             TEXT    NOT NULL,
        state_json         TEXT    NOT NULL,
        version            INTEGER NOT NULL,
        receipt_type       TEXT,
        content_type       TEXT,
        callback_url       TEXT,
        received_at        INTEGER,
        updated_at         INTEGER NOT NULL,
        reasons_json       TEXT,
        receipt_json       TEXT,
        registrations_json TEXT    NOT NULL DEFAULT '[]',
        failures_json      TEXT    NOT NULL DEFAULT '[]'
    ) STRICT;
    INSERT INTO receipts_v2 (id, tenant_id, status, state_json, version, receipt_type, content_type,
                             callback_url, received_at, updated_at, reasons_json, receipt_json)
        SELECT id, tenant_id, status, state_json, version, receipt_type, content_type,
               callback_url, received_at, updated_at, reasons_json, receipt_json
        FROM receipts;
    DROP TABLE receipts;
    ALTER TABLE receipts_v2 RENAME TO receipts;
    CREATE INDEX receipts_by_tenant_updated ON receipts (tenant_id, updated_at);

    -- The status before the event was applied, so that a redelivery can report the transition
    -- the event caused the first time.
    ALTER TABLE timeline ADD COLUMN status_before TEXT;
    UPDATE timeline SET status_before = status;
    -- The registry of a registration event (NULL for other events).
    ALTER TABLE timeline ADD COLUMN registry TEXT;
    "#,
    // 3: webhooks: tenants' endpoints and their signing secrets, tenants' callback secrets, and
    // the delivery log. Endpoint ids are stored as they print (`ep_…`), delivery ids are the
    // `webhook-id`s (`msg_…`).
    r#"
    CREATE TABLE webhook_endpoints (
        id              TEXT    NOT NULL PRIMARY KEY,
        tenant_id       TEXT    NOT NULL,
        url             TEXT    NOT NULL,
        description     TEXT,
        -- The subscribed event types (a JSON array); NULL: every terminal status change.
        events_json     TEXT,
        enabled         INTEGER NOT NULL CHECK (enabled IN (0, 1)),
        disabled_reason TEXT,
        failing_since   INTEGER,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX webhook_endpoints_by_tenant ON webhook_endpoints (tenant_id, created_at);

    -- expires_at NULL: the current secret (at most one per endpoint); else the end of a
    -- rotated-out secret's grace period.
    CREATE TABLE webhook_endpoint_secrets (
        endpoint_id TEXT    NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
        secret      TEXT    NOT NULL,
        expires_at  INTEGER,
        created_at  INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX webhook_endpoint_secrets_by_endpoint ON webhook_endpoint_secrets (endpoint_id);
    CREATE UNIQUE INDEX webhook_endpoint_secrets_current ON webhook_endpoint_secrets (endpoint_id)
        WHERE expires_at IS NULL;

    -- The secrets `Callback-Url` deliveries are signed with, per tenant; as above.
    CREATE TABLE webhook_callback_secrets (
        tenant_id  TEXT    NOT NULL,
        secret     TEXT    NOT NULL,
        expires_at INTEGER,
        created_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX webhook_callback_secrets_by_tenant ON webhook_callback_secrets (tenant_id);
    CREATE UNIQUE INDEX webhook_callback_secrets_current ON webhook_callback_secrets (tenant_id)
        WHERE expires_at IS NULL;

    -- One message to one destination. No reference to the endpoint: the log outlives it.
    CREATE TABLE webhook_deliveries (
        id             TEXT    NOT NULL PRIMARY KEY,
        tenant_id      TEXT    NOT NULL,
        receipt_id     TEXT    NOT NULL,
        destination    TEXT    NOT NULL CHECK (destination IN ('endpoint', 'callback')),
        endpoint_id    TEXT    CHECK ((destination = 'endpoint') = (endpoint_id IS NOT NULL)),
        url            TEXT    NOT NULL,
        event_type     TEXT    NOT NULL,
        payload        BLOB    NOT NULL,
        status         TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
        failure_reason TEXT,
        created_at     INTEGER NOT NULL,
        updated_at     INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX webhook_deliveries_by_receipt
        ON webhook_deliveries (tenant_id, receipt_id, created_at);

    CREATE TABLE webhook_attempts (
        delivery_id      TEXT    NOT NULL REFERENCES webhook_deliveries (id),
        number           INTEGER NOT NULL,
        at               INTEGER NOT NULL,
        url              TEXT    NOT NULL,
        http_status      INTEGER,
        latency_ms       INTEGER NOT NULL,
        response_excerpt TEXT,
        error            TEXT,
        succeeded        INTEGER NOT NULL CHECK (succeeded IN (0, 1)),
        PRIMARY KEY (delivery_id, number)
    ) STRICT, WITHOUT ROWID;
    "#,
];

/// The schema version this build writes.
pub(super) fn latest_version() -> u32 {
    // At most a handful of migrations: the cast cannot truncate.
    MIGRATIONS.len() as u32
}

pub(super) async fn user_version(conn: &Connection) -> Result<u32> {
    let mut rows = conn.query("PRAGMA user_version", ()).await?;
    let row = rows
        .next()
        .await?
        .ok_or_else(|| codec::corrupt("user_version", "no row"))?;
    let version = codec::int(&row, 0, "user_version")?;
    u32::try_from(version)
        .map_err(|_| codec::corrupt("user_version", format!("{version} is not a schema version")))
}

/// Brings the schema up to date, in one write transaction so that concurrent openers (other
/// processes) wait for each other and every migration is applied exactly once.
///
/// Foreign keys are off while migrating (they cannot be switched inside a transaction), so that
/// a migration may rebuild a referenced table; the references are checked before committing.
pub(super) async fn migrate(conn: &Connection, path: &str) -> Result<()> {
    conn.execute("PRAGMA foreign_keys = OFF", ()).await?;
    let result = migrate_with_foreign_keys_off(conn, path).await;
    let restored = conn.execute("PRAGMA foreign_keys = ON", ()).await;
    result?;
    restored?;
    Ok(())
}

async fn migrate_with_foreign_keys_off(conn: &Connection, path: &str) -> Result<()> {
    conn.execute("BEGIN IMMEDIATE", ()).await?;
    let result = async {
        migrate_in_tx(conn, path).await?;
        check_foreign_keys(conn).await
    }
    .await;
    match result {
        Ok(()) => conn
            .execute("COMMIT", ())
            .await
            .map(drop)
            .map_err(Error::from),
        Err(e) => {
            super::rollback_quietly(conn).await;
            Err(e)
        }
    }
}

/// Fails if any row references a row that does not exist.
async fn check_foreign_keys(conn: &Connection) -> Result<()> {
    let mut rows = conn.query("PRAGMA foreign_key_check", ()).await?;
    match rows.next().await? {
        None => Ok(()),
        Some(row) => {
            let table = codec::text(&row, 0, "foreign_key_check")?;
            Err(codec::corrupt(
                "foreign keys",
                format!("a row of {table} references a missing row"),
            ))
        }
    }
}

async fn migrate_in_tx(conn: &Connection, path: &str) -> Result<()> {
    let current = user_version(conn).await?;
    let latest = latest_version();
    if current > latest {
        return Err(Error::Open {
            path: path.to_owned(),
            detail: format!(
                "schema version {current} is newer than this build's ({latest}); upgrade the binary"
            ),
        });
    }
    for (version, sql) in (1..).zip(MIGRATIONS).skip(current as usize) {
        tracing::debug!(path, version, "applying store migration");
        conn.execute_batch(sql).await?;
        // PRAGMA cannot take parameters; `version` is an integer we produced.
        conn.execute(&format!("PRAGMA user_version = {version}"), ())
            .await?;
    }
    Ok(())
}
