//! Every statement of the backend, prepared once at open. Each names its table's whole
//! partition key as bound values (so the driver routes it to a replica, and to the shard, that
//! owns the data); statements that may be replayed safely are marked idempotent (the driver
//! then retries and speculates them); conditional ones (`IF …`) run at LOCAL_SERIAL.

use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;

use super::backend;
use crate::Result;
use crate::config::ScyllaOptions;

/// Rows per page of a paged read.
pub(super) const PAGE_SIZE: i32 = 5_000;

/// How a statement runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A read, or a write that converges however often it is applied.
    Idempotent,
    /// A lightweight transaction or an append: replaying it may change its outcome.
    Conditional,
    /// A paged scan: idempotent, under the long timeout.
    Scan,
}

macro_rules! statements {
    ($($name:ident: $kind:ident = $cql:literal;)*) => {
        /// The prepared statements.
        pub(super) struct Statements {
            $(pub $name: PreparedStatement,)*
        }

        /// Each statement's CQL (with `{ks}` for the keyspace) and kind.
        #[cfg(test)]
        pub(super) const ALL: &[(&str, &str, Kind)] = &[$((stringify!($name), $cql, Kind::$kind),)*];

        impl Statements {
            pub(super) async fn prepare(
                session: &Session,
                keyspace: &str,
                location: &super::ScyllaLocation,
                options: &ScyllaOptions,
            ) -> Result<Self> {
                let scan = super::scan_profile(location, options).into_handle();
                Ok(Self {
                    $($name: prepare(session, keyspace, $cql, Kind::$kind, &scan).await?,)*
                })
            }
        }
    };
}

async fn prepare(
    session: &Session,
    keyspace: &str,
    cql: &str,
    kind: Kind,
    scan: &scylla::client::execution_profile::ExecutionProfileHandle,
) -> Result<PreparedStatement> {
    let mut statement = session
        .prepare(cql.replace("{ks}", keyspace))
        .await
        .map_err(backend)?;
    statement.set_is_idempotent(kind != Kind::Conditional);
    statement.set_page_size(PAGE_SIZE);
    if kind == Kind::Scan {
        statement.set_execution_profile_handle(Some(scan.clone()));
    }
    Ok(statement)
}

statements! {
    ping: Idempotent = "SELECT release_version FROM system.local WHERE key = 'local'";

    receipt: Idempotent = "SELECT version, record FROM {ks}.receipts WHERE id = ?";
    insert_receipt: Conditional = "INSERT INTO {ks}.receipts (id, version, record) VALUES (?, ?, ?) IF NOT EXISTS";
    update_receipt: Conditional = "UPDATE {ks}.receipts SET version = ?, record = ? WHERE id = ? IF version = ?";
    upsert_listed: Idempotent = "INSERT INTO {ks}.receipts_by_tenant (tenant_id, bucket, id, status, receipt_type, received_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?";
    insert_bucket: Idempotent = "INSERT INTO {ks}.receipt_buckets (tenant_id, month, bucket) VALUES (?, ?, ?)";
    insert_month: Idempotent = "INSERT INTO {ks}.receipt_months (tenant_id, month) VALUES (?, ?)";
    months_desc: Scan = "SELECT month FROM {ks}.receipt_months WHERE tenant_id = ? AND month >= ? AND month <= ? ORDER BY month DESC";
    months_asc: Scan = "SELECT month FROM {ks}.receipt_months WHERE tenant_id = ? AND month >= ? AND month <= ? ORDER BY month ASC";
    buckets_desc: Scan = "SELECT bucket FROM {ks}.receipt_buckets WHERE tenant_id = ? AND month = ? AND bucket >= ? AND bucket <= ? ORDER BY bucket DESC";
    buckets_asc: Scan = "SELECT bucket FROM {ks}.receipt_buckets WHERE tenant_id = ? AND month = ? AND bucket >= ? AND bucket <= ? ORDER BY bucket ASC";
    listed_desc: Scan = "SELECT id, status, receipt_type, received_at, updated_at FROM {ks}.receipts_by_tenant WHERE tenant_id = ? AND bucket = ? AND id > ? AND id < ? ORDER BY id DESC";
    listed_asc: Scan = "SELECT id, status, receipt_type, received_at, updated_at FROM {ks}.receipts_by_tenant WHERE tenant_id = ? AND bucket = ? AND id > ? AND id < ? ORDER BY id ASC";

    document: Idempotent = "SELECT tenant_id, content_type, bytes FROM {ks}.documents WHERE receipt_id = ?";
    insert_document: Idempotent = "INSERT INTO {ks}.documents (receipt_id, tenant_id, content_type, bytes) VALUES (?, ?, ?, ?) USING TIMESTAMP ?";

    reserve: Conditional = "INSERT INTO {ks}.reservations (tenant_id, idempotency_key, record) VALUES (?, ?, ?) IF NOT EXISTS";
    reservation: Idempotent = "SELECT record FROM {ks}.reservations WHERE tenant_id = ? AND idempotency_key = ?";
    index_reservation: Idempotent = "INSERT INTO {ks}.reservations_by_receipt (receipt_id, record) VALUES (?, ?)";
    reservation_of: Idempotent = "SELECT record FROM {ks}.reservations_by_receipt WHERE receipt_id = ?";

    claim_key_hash: Conditional = "INSERT INTO {ks}.clients_by_key_hash (key_hash, client_id) VALUES (?, ?) IF NOT EXISTS";
    insert_client: Conditional = "INSERT INTO {ks}.clients (id, tenant_id, record) VALUES (?, ?, ?) IF NOT EXISTS";
    index_client: Idempotent = "INSERT INTO {ks}.clients_by_tenant (tenant_id, id) VALUES (?, ?)";
    client: Idempotent = "SELECT record FROM {ks}.clients WHERE id = ?";
    client_by_key_hash: Idempotent = "SELECT client_id FROM {ks}.clients_by_key_hash WHERE key_hash = ?";
    clients_of: Scan = "SELECT id FROM {ks}.clients_by_tenant WHERE tenant_id = ?";
    all_clients: Scan = "SELECT record FROM {ks}.clients";
    revoke_client: Conditional = "UPDATE {ks}.clients SET record = ? WHERE id = ? IF record = ?";

    endpoint: Idempotent = "SELECT version, record FROM {ks}.endpoints WHERE id = ?";
    insert_endpoint: Conditional = "INSERT INTO {ks}.endpoints (id, version, record) VALUES (?, ?, ?) IF NOT EXISTS";
    update_endpoint: Conditional = "UPDATE {ks}.endpoints SET version = ?, record = ? WHERE id = ? IF version = ?";
    delete_endpoint: Conditional = "DELETE FROM {ks}.endpoints WHERE id = ? IF EXISTS";
    index_endpoint: Idempotent = "INSERT INTO {ks}.endpoints_by_tenant (tenant_id, id) VALUES (?, ?)";
    unindex_endpoint: Idempotent = "DELETE FROM {ks}.endpoints_by_tenant WHERE tenant_id = ? AND id = ?";
    endpoints_of: Scan = "SELECT id FROM {ks}.endpoints_by_tenant WHERE tenant_id = ?";
    callback_secrets: Idempotent = "SELECT version, record FROM {ks}.callback_secrets WHERE tenant_id = ?";
    insert_callback_secrets: Conditional = "INSERT INTO {ks}.callback_secrets (tenant_id, version, record) VALUES (?, ?, ?) IF NOT EXISTS";
    update_callback_secrets: Conditional = "UPDATE {ks}.callback_secrets SET version = ?, record = ? WHERE tenant_id = ? IF version = ?";

    delivery: Idempotent = "SELECT version, record FROM {ks}.deliveries WHERE id = ?";
    insert_delivery: Conditional = "INSERT INTO {ks}.deliveries (id, version, record) VALUES (?, ?, ?) IF NOT EXISTS";
    update_delivery: Conditional = "UPDATE {ks}.deliveries SET version = ?, record = ? WHERE id = ? IF version = ?";
    index_delivery: Idempotent = "INSERT INTO {ks}.deliveries_by_receipt (receipt_id, created_at, id) VALUES (?, ?, ?)";
    deliveries_of: Scan = "SELECT created_at, id FROM {ks}.deliveries_by_receipt WHERE receipt_id = ?";
    put_attempt: Idempotent = "INSERT INTO {ks}.delivery_attempts (delivery_id, number, record) VALUES (?, ?, ?)";
    attempts: Scan = "SELECT record FROM {ks}.delivery_attempts WHERE delivery_id = ?";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_binds_its_whole_partition_key_and_conditions_match_kinds() {
        for (name, cql, kind) in ALL {
            let conditional = cql.contains(" IF ");
            assert_eq!(
                conditional,
                *kind == Kind::Conditional,
                "{name}: only lightweight transactions are conditional"
            );
            if cql.starts_with("SELECT") && !cql.contains("system.local") && *name != "all_clients"
            {
                assert!(
                    cql.contains("WHERE") && cql.contains("= ?"),
                    "{name}: by key"
                );
            }
            if cql.contains("USING TIMESTAMP") {
                assert!(
                    !conditional,
                    "{name}: never mixed with lightweight transactions"
                );
            }
            assert!(!cql.contains("ALLOW FILTERING"), "{name}");
        }
    }

    #[test]
    fn rows_written_with_transactions_are_never_written_without() {
        let table_of = |cql: &str| {
            cql.split_whitespace()
                .skip_while(|w| !matches!(*w, "INTO" | "UPDATE" | "FROM"))
                .nth(1)
                .map(|t| t.to_owned())
        };
        let writes = |conditional: bool| -> Vec<String> {
            ALL.iter()
                .filter(|(_, cql, kind)| {
                    !cql.starts_with("SELECT") && (*kind == Kind::Conditional) == conditional
                })
                .filter_map(|(_, cql, _)| table_of(cql))
                .collect()
        };
        let (with_lwt, without) = (writes(true), writes(false));
        for table in &with_lwt {
            assert!(!without.contains(table), "{table} is written both ways");
        }
        assert!(with_lwt.contains(&"{ks}.receipts".to_owned()));
        assert!(without.contains(&"{ks}.receipts_by_tenant".to_owned()));
    }
}
