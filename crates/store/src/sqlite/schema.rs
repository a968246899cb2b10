//! The schema, versioned by `PRAGMA user_version`: migration `n` (1-based) takes the database
//! from version `n - 1` to `n`. Append new migrations; never edit a released one.
//!
//! Since migration 4 every record is a row of its port's key columns, a `version` and the record
//! as JSON (see [`super::records`]); documents and API clients keep plain columns. No table
//! references another: no foreign keys, cascades or triggers. Tables are `STRICT`, so a value of
//! the wrong type can never be stored.

use libsql::Connection;

use super::codec;
use crate::{Error, Result};

/// Migrations 1 to 3, as released (the original tables; migration 4 converts them).
const RELEASED: [&str; 3] = [
    // 1: receipts, their timelines and documents, idempotency records, API clients.
    include_str!("migrations/0001.sql"),
    // 2: registrations (a receipt created by a registration has no receipt type yet).
    include_str!("migrations/0002.sql"),
    // 3: webhooks: endpoints and their secrets, callback secrets, the delivery log.
    include_str!("migrations/0003.sql"),
];

/// An epoch-milliseconds column as the RFC 3339 text the domain types' serde form uses
/// (`2024-05-01T08:00:00.123Z`); NULL stays NULL.
fn ts(column: &str) -> String {
    format!(
        "(strftime('%Y-%m-%dT%H:%M:%S', {column} / 1000, 'unixepoch') || '.' || printf('%03d', {column} % 1000) || 'Z')"
    )
}

/// 4: the store contract of ports (records keyed and versioned, no references): every table is
/// rebuilt as records, the data converted as it is, and the old tables dropped.
fn records_migration() -> String {
    let secrets = |table: &str, owner: &str, key: &str| {
        format!(
            "json_object('secrets', (SELECT json_group_array(json(s)) FROM (
                SELECT json_object('secret', x.secret, 'expires_at', {expires}) AS s
                FROM {table} x WHERE x.{owner} = {key}
                ORDER BY x.expires_at IS NOT NULL, x.created_at DESC, x.rowid DESC)))",
            expires = ts("x.expires_at"),
        )
    };
    format!(
        r#"
    CREATE TABLE receipt_records (
        id        TEXT    NOT NULL PRIMARY KEY,
        tenant_id TEXT    NOT NULL,
        status    TEXT    NOT NULL,
        version   INTEGER NOT NULL,
        record    TEXT    NOT NULL
    ) STRICT;
    CREATE INDEX receipt_records_by_tenant ON receipt_records (tenant_id, id);
    INSERT INTO receipt_records (id, tenant_id, status, version, record)
    SELECT r.id, r.tenant_id, r.status, r.version, json_object(
        'id', r.id, 'tenant_id', r.tenant_id, 'status', r.status, 'version', r.version,
        'receipt_type', r.receipt_type, 'content_type', r.content_type,
        'callback_url', r.callback_url, 'received_at', {received_at},
        'updated_at', {updated_at}, 'reasons', json(coalesce(r.reasons_json, '[]')),
        'receipt', json(r.receipt_json), 'registrations', json(r.registrations_json),
        'failures', json(r.failures_json),
        'timeline', (SELECT json_group_array(json(entry)) FROM (
            SELECT json_object('event_id', t.event_id, 'event', t.kind,
                               'occurred_at', {occurred_at}, 'recorded_at', {recorded_at},
                               'status', t.status, 'registry', t.registry) AS entry
            FROM timeline t WHERE t.receipt_id = r.id ORDER BY t.occurred_at, t.event_id)))
    FROM receipts r;

    CREATE TABLE reservations (
        tenant_id       TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        receipt_id      TEXT NOT NULL,
        record          TEXT NOT NULL,
        PRIMARY KEY (tenant_id, idempotency_key)
    ) STRICT, WITHOUT ROWID;
    CREATE UNIQUE INDEX reservations_by_receipt ON reservations (receipt_id);
    INSERT INTO reservations (tenant_id, idempotency_key, receipt_id, record)
    SELECT i.tenant_id, i.idempotency_key, i.receipt_id, json_object(
        'tenant_id', i.tenant_id, 'idempotency_key', i.idempotency_key,
        'fingerprint', i.fingerprint, 'receipt_id', i.receipt_id, 'event_id', i.event_id,
        'received_at', {reserved_at}, 'receipt_type', coalesce(r.receipt_type, ''),
        'content_type', coalesce(r.content_type, ''), 'callback_url', r.callback_url)
    FROM idempotency i LEFT JOIN receipts r ON r.id = i.receipt_id;

    CREATE TABLE documents_v4 (
        receipt_id   TEXT NOT NULL PRIMARY KEY,
        tenant_id    TEXT NOT NULL,
        content_type TEXT NOT NULL,
        bytes        BLOB NOT NULL
    ) STRICT;
    INSERT INTO documents_v4 (receipt_id, tenant_id, content_type, bytes)
    SELECT d.receipt_id, r.tenant_id, d.content_type, d.bytes
    FROM documents d JOIN receipts r ON r.id = d.receipt_id;

    DROP INDEX api_clients_by_tenant;
    CREATE INDEX api_clients_by_tenant ON api_clients (tenant_id, id);

    CREATE TABLE endpoint_records (
        id        TEXT    NOT NULL PRIMARY KEY,
        tenant_id TEXT    NOT NULL,
        version   INTEGER NOT NULL,
        record    TEXT    NOT NULL
    ) STRICT;
    CREATE INDEX endpoint_records_by_tenant ON endpoint_records (tenant_id, id);
    INSERT INTO endpoint_records (id, tenant_id, version, record)
    SELECT e.id, e.tenant_id, 1, json_object(
        'id', e.id, 'tenant_id', e.tenant_id, 'url', e.url, 'description', e.description,
        'events', json(e.events_json),
        'enabled', json(CASE e.enabled WHEN 1 THEN 'true' ELSE 'false' END),
        'disabled_reason', e.disabled_reason, 'secrets', {endpoint_secrets},
        'failing_since', {failing_since}, 'created_at', {endpoint_created},
        'updated_at', {endpoint_updated}, 'version', 1)
    FROM webhook_endpoints e;

    CREATE TABLE callback_secret_records (
        tenant_id TEXT    NOT NULL PRIMARY KEY,
        version   INTEGER NOT NULL,
        record    TEXT    NOT NULL
    ) STRICT;
    INSERT INTO callback_secret_records (tenant_id, version, record)
    SELECT t.tenant_id, 1, json_object('tenant_id', t.tenant_id, 'secrets', {callback_secrets},
                                       'version', 1)
    FROM (SELECT DISTINCT tenant_id FROM webhook_callback_secrets) t;

    CREATE TABLE delivery_records (
        id         TEXT    NOT NULL PRIMARY KEY,
        tenant_id  TEXT    NOT NULL,
        receipt_id TEXT    NOT NULL,
        created_at INTEGER NOT NULL,
        version    INTEGER NOT NULL,
        record     TEXT    NOT NULL
    ) STRICT;
    CREATE INDEX delivery_records_by_receipt ON delivery_records (receipt_id, created_at, id);
    INSERT INTO delivery_records (id, tenant_id, receipt_id, created_at, version, record)
    SELECT d.id, d.tenant_id, d.receipt_id, d.created_at, 1, json_object(
        'id', d.id, 'tenant_id', d.tenant_id, 'receipt_id', d.receipt_id,
        'destination', json(CASE d.destination
            WHEN 'callback' THEN json_object('kind', 'callback')
            ELSE json_object('kind', 'endpoint', 'id', d.endpoint_id) END),
        'url', d.url, 'event_type', d.event_type, 'payload', CAST(d.payload AS TEXT),
        'status', d.status, 'failure_reason', d.failure_reason,
        'created_at', {delivery_created}, 'updated_at', {delivery_updated},
        'series', 1, 'version', 1)
    FROM webhook_deliveries d;

    CREATE TABLE attempt_records (
        delivery_id TEXT    NOT NULL,
        number      INTEGER NOT NULL,
        record      TEXT    NOT NULL,
        PRIMARY KEY (delivery_id, number)
    ) STRICT, WITHOUT ROWID;
    INSERT INTO attempt_records (delivery_id, number, record)
    SELECT a.delivery_id, a.number, json_object(
        'number', a.number, 'at', {attempt_at}, 'url', a.url, 'http_status', a.http_status,
        'latency_ms', a.latency_ms, 'response_excerpt', a.response_excerpt, 'error', a.error,
        'succeeded', json(CASE a.succeeded WHEN 1 THEN 'true' ELSE 'false' END))
    FROM webhook_attempts a;

    DROP TABLE timeline;
    DROP TABLE documents;
    ALTER TABLE documents_v4 RENAME TO documents;
    DROP TABLE receipts;
    DROP TABLE idempotency;
    DROP TABLE webhook_attempts;
    DROP TABLE webhook_deliveries;
    DROP TABLE webhook_endpoint_secrets;
    DROP TABLE webhook_endpoints;
    DROP TABLE webhook_callback_secrets;
    "#,
        received_at = ts("r.received_at"),
        updated_at = ts("r.updated_at"),
        occurred_at = ts("t.occurred_at"),
        recorded_at = ts("t.recorded_at"),
        reserved_at = ts("i.received_at"),
        endpoint_secrets = secrets("webhook_endpoint_secrets", "endpoint_id", "e.id"),
        failing_since = ts("e.failing_since"),
        endpoint_created = ts("e.created_at"),
        endpoint_updated = ts("e.updated_at"),
        callback_secrets = secrets("webhook_callback_secrets", "tenant_id", "t.tenant_id"),
        delivery_created = ts("d.created_at"),
        delivery_updated = ts("d.updated_at"),
        attempt_at = ts("a.at"),
    )
}

/// Migrations after 4, in order.
const LATER: [&str; 1] = [
    // 5: the receipt list (summary columns, an index on tenant and id).
    include_str!("migrations/0005.sql"),
];

/// Every migration, in order.
fn migrations() -> Vec<String> {
    RELEASED
        .iter()
        .map(|sql| (*sql).to_owned())
        .chain([records_migration()])
        .chain(LATER.iter().map(|sql| (*sql).to_owned()))
        .collect()
}

/// The schema version this build writes.
pub(super) fn latest_version() -> u32 {
    // A handful of migrations: the cast cannot truncate.
    (RELEASED.len() + 1 + LATER.len()) as u32
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

/// Brings the schema up to date, in one write transaction, so that concurrent openers (other
/// processes) wait for each other and every migration is applied exactly once.
pub(super) async fn migrate(conn: &Connection, location: &str) -> Result<()> {
    conn.execute("BEGIN IMMEDIATE", ()).await?;
    match migrate_in_tx(conn, location).await {
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

async fn migrate_in_tx(conn: &Connection, location: &str) -> Result<()> {
    let current = user_version(conn).await?;
    let latest = latest_version();
    if current > latest {
        return Err(Error::Open {
            location: location.to_owned(),
            detail: format!(
                "schema version {current} is newer than this build's ({latest}); upgrade the binary"
            ),
        });
    }
    for (version, sql) in (1..).zip(migrations()).skip(current as usize) {
        tracing::info!(location, version, "applying store migration");
        conn.execute_batch(&sql).await?;
        // PRAGMA cannot take parameters; `version` is an integer we produced.
        conn.execute(&format!("PRAGMA user_version = {version}"), ())
            .await?;
    }
    Ok(())
}
