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
    
