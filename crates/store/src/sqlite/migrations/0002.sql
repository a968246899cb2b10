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
    
