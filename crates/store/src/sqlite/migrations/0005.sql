    -- 5: listing a tenant's receipts. Receipt ids are UUIDv7 (ordered by reception), so the
    -- index on (tenant, id) serves every interval and page; status and type ride along in it
    -- so that filtered scans never visit the table. `summary` is what a list shows of a receipt.
    ALTER TABLE receipt_records ADD COLUMN receipt_type TEXT;
    ALTER TABLE receipt_records ADD COLUMN summary TEXT;
    UPDATE receipt_records SET
        receipt_type = json_extract(record, '$.receipt_type'),
        summary = json_object(
            'status', status,
            'receipt_type', json_extract(record, '$.receipt_type'),
            'received_at', json_extract(record, '$.received_at'),
            'updated_at', json_extract(record, '$.updated_at'));
    DROP INDEX receipt_records_by_tenant;
    CREATE INDEX receipt_records_by_tenant ON receipt_records (tenant_id, id, status, receipt_type);
