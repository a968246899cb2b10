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
    
