//! API clients on SQLite (plain columns; the key hash is unique).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use libsql::Row;
use receipts_domain::{ApiClient, ClientId, NewClient, Scope, TenantId};

use super::{SqliteStore, codec};
use crate::{ClientStore, Error, Result};

const COLUMNS: &str = "id, tenant_id, scope, key_prefix, label, created_at, revoked_at";

fn client_from_row(row: &Row) -> Result<ApiClient> {
    Ok(ApiClient {
        id: codec::parse(
            &codec::text(row, 0, "api_clients.id")?,
            "api_clients.id",
            ClientId::parse,
        )?,
        tenant_id: codec::parse(
            &codec::text(row, 1, "api_clients.tenant_id")?,
            "api_clients.tenant_id",
            TenantId::parse,
        )?,
        scope: codec::parse(
            &codec::text(row, 2, "api_clients.scope")?,
            "api_clients.scope",
            str::parse::<Scope>,
        )?,
        key_prefix: codec::text(row, 3, "api_clients.key_prefix")?,
        label: codec::opt_text(row, 4, "api_clients.label")?,
        created_at: codec::time(
            codec::int(row, 5, "api_clients.created_at")?,
            "api_clients.created_at",
        )?,
        revoked_at: codec::opt_int(row, 6, "api_clients.revoked_at")?
            .map(|ms| codec::time(ms, "api_clients.revoked_at"))
            .transpose()?,
    })
}

#[async_trait]
impl ClientStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %client.id, tenant_id = %client.tenant_id))]
    async fn create_client(
        &self,
        client: &NewClient,
        created_at: DateTime<Utc>,
    ) -> Result<ApiClient> {
        let client = client.clone();
        self.write(move |conn| async move {
            let inserted = conn
                .execute(
                    "INSERT INTO api_clients (id, tenant_id, scope, key_hash, key_prefix, label, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT DO NOTHING",
                    (
                        client.id.to_string(),
                        client.tenant_id.as_str(),
                        client.scope.as_str(),
                        client.key_hash.as_str(),
                        client.key_prefix.as_str(),
                        client.label.as_deref(),
                        codec::millis(created_at),
                    ),
                )
                .await?;
            if inserted == 0 {
                return Err(Error::AlreadyExists {
                    what: "api client",
                    detail: format!("a client with id {} or the same key hash", client.id),
                });
            }
            Ok(ApiClient {
                id: client.id,
                tenant_id: client.tenant_id,
                scope: client.scope,
                key_prefix: client.key_prefix,
                label: client.label,
                created_at,
                revoked_at: None,
            })
        })
        .await
    }

    async fn client_by_key_hash(&self, key_hash: &str) -> Result<Option<ApiClient>> {
        let key_hash = key_hash.to_owned();
        self.read(move |conn| async move {
            let sql = format!("SELECT {COLUMNS} FROM api_clients WHERE key_hash = ?1");
            let mut rows = conn.query(&sql, [key_hash]).await?;
            match rows.next().await? {
                Some(row) => client_from_row(&row).map(Some),
                None => Ok(None),
            }
        })
        .await
    }

    async fn clients(&self, tenant: Option<&TenantId>) -> Result<Vec<ApiClient>> {
        let tenant = tenant.cloned();
        self.read(move |conn| async move {
            let mut rows = match tenant {
                Some(tenant) => {
                    let sql = format!(
                        "SELECT {COLUMNS} FROM api_clients WHERE tenant_id = ?1 ORDER BY id"
                    );
                    conn.query(&sql, [tenant.as_str()]).await?
                }
                None => {
                    let sql = format!("SELECT {COLUMNS} FROM api_clients ORDER BY id");
                    conn.query(&sql, ()).await?
                }
            };
            let mut clients = Vec::new();
            while let Some(row) = rows.next().await? {
                clients.push(client_from_row(&row)?);
            }
            Ok(clients)
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %id))]
    async fn revoke_client(&self, id: ClientId, at: DateTime<Utc>) -> Result<bool> {
        self.write(move |conn| async move {
            let revoked = conn
                .execute(
                    "UPDATE api_clients SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                    (id.to_string(), codec::millis(at)),
                )
                .await?;
            Ok(revoked > 0)
        })
        .await
    }
}
