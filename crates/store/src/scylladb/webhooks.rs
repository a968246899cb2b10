//! API clients, webhook endpoints, callback secrets and the delivery log on ScyllaDB. Records
//! live in one table each, keyed by id and written with compare-and-set (lightweight
//! transactions); the lookups by tenant or receipt are index tables written *before* the
//! record (idempotently), so a crash leaves at most an index entry without its record, which
//! reads skip.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use receipts_domain::{
    ApiClient, CallbackSecrets, ClientId, Delivery, DeliveryAttempt, Endpoint, EndpointId,
    NewClient, ReceiptId, TenantId,
};
use scylla::statement::prepared::PreparedStatement;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::rows::{self, applied};
use super::{ScyllaStore, backend};
use crate::{Cas, ClientStore, DeliveryStore, EndpointStore, Error, Result};

impl ScyllaStore {
    /// A versioned record by key.
    async fn record<T: DeserializeOwned>(
        &self,
        statement: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
        what: &'static str,
        version: impl Fn(&T) -> u64,
    ) -> Result<Option<T>> {
        self.one::<(i64, String)>(statement, values)
            .await?
            .map(|row| rows::versioned(row, what, version))
            .transpose()
    }

    /// Compare-and-set: `insert` (`IF NOT EXISTS`) when `expected` is 0, else `update`
    /// (`IF version = ?`), with the key bound last but for the expected version.
    async fn cas(
        &self,
        (insert, update): (&PreparedStatement, &PreparedStatement),
        key: impl scylla::serialize::value::SerializeValue + Copy,
        version: u64,
        json: String,
        expected: u64,
        what: &'static str,
    ) -> Result<Cas> {
        let version = rows::version(version, what)?;
        let result = if expected == 0 {
            self.session()
                .execute_unpaged(insert, (key, version, json))
                .await
        } else {
            let expected = rows::version(expected, what)?;
            self.session()
                .execute_unpaged(update, (version, json, key, expected))
                .await
        };
        Ok(if applied(result.map_err(backend)?)? {
            Cas::Written
        } else {
            Cas::Conflict
        })
    }

    async fn client(&self, id: Uuid) -> Result<Option<ApiClient>> {
        self.one::<(String,)>(&self.st().client, (id,))
            .await?
            .map(|(json,)| rows::from_json(&json, "api client"))
            .transpose()
    }
}

#[async_trait]
impl ClientStore for ScyllaStore {
    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %client.id, tenant_id = %client.tenant_id))]
    async fn create_client(
        &self,
        client: &NewClient,
        created_at: DateTime<Utc>,
    ) -> Result<ApiClient> {
        let st = self.st();
        let id = client.id.as_uuid();
        let taken = || Error::AlreadyExists {
            what: "api client",
            detail: format!("a client with id {} or the same key hash", client.id),
        };
        // The key hash is claimed first: no two clients ever answer to one key.
        let claim = self
            .session()
            .execute_unpaged(&st.claim_key_hash, (client.key_hash.as_str(), id))
            .await
            .map_err(backend)?;
        if !applied(claim)? {
            return Err(taken());
        }
        let stored = ApiClient {
            id: client.id,
            tenant_id: client.tenant_id.clone(),
            scope: client.scope,
            key_prefix: client.key_prefix.clone(),
            label: client.label.clone(),
            created_at,
            revoked_at: None,
        };
        let tenant = client.tenant_id.as_str();
        self.session()
            .execute_unpaged(&st.index_client, (tenant, id))
            .await
            .map_err(backend)?;
        let inserted = self
            .session()
            .execute_unpaged(
                &st.insert_client,
                (id, tenant, rows::to_json(&stored, "api client")?),
            )
            .await
            .map_err(backend)?;
        if !applied(inserted)? {
            return Err(taken());
        }
        Ok(stored)
    }

    async fn client_by_key_hash(&self, key_hash: &str) -> Result<Option<ApiClient>> {
        match self
            .one::<(Uuid,)>(&self.st().client_by_key_hash, (key_hash,))
            .await?
        {
            Some((id,)) => self.client(id).await,
            None => Ok(None),
        }
    }

    async fn clients(&self, tenant: Option<&TenantId>) -> Result<Vec<ApiClient>> {
        let mut clients = match tenant {
            Some(tenant) => {
                let ids = self
                    .all::<(Uuid,)>(&self.st().clients_of, (tenant.as_str(),))
                    .await?;
                let mut clients = Vec::with_capacity(ids.len());
                for (id,) in ids {
                    clients.extend(self.client(id).await?);
                }
                clients
            }
            // Operators only (`receipts clients list`): a scan of the whole table.
            None => self
                .all::<(String,)>(&self.st().all_clients, ())
                .await?
                .into_iter()
                .map(|(json,)| rows::from_json(&json, "api client"))
                .collect::<Result<Vec<ApiClient>>>()?,
        };
        clients.sort_by_key(|c| c.id);
        Ok(clients)
    }

    async fn revoke_client(&self, id: ClientId, at: DateTime<Utc>) -> Result<bool> {
        let Some(client) = self.client(id.as_uuid()).await? else {
            return Ok(false);
        };
        if client.revoked_at.is_some() {
            return Ok(false);
        }
        let current = rows::to_json(&client, "api client")?;
        let revoked = ApiClient {
            revoked_at: Some(at),
            ..client
        };
        let result = self
            .session()
            .execute_unpaged(
                &self.st().revoke_client,
                (
                    rows::to_json(&revoked, "api client")?,
                    id.as_uuid(),
                    current,
                ),
            )
            .await
            .map_err(backend)?;
        // Lost to a concurrent revocation: revoked either way, but not by this call.
        applied(result)
    }
}

#[async_trait]
impl EndpointStore for ScyllaStore {
    async fn create_endpoint(&self, endpoint: &Endpoint) -> Result<()> {
        let st = self.st();
        self.session()
            .execute_unpaged(
                &st.index_endpoint,
                (endpoint.tenant_id.as_str(), endpoint.id.as_uuid()),
            )
            .await
            .map_err(backend)?;
        let json = rows::to_json(endpoint, "webhook endpoint")?;
        match self
            .cas(
                (&st.insert_endpoint, &st.update_endpoint),
                endpoint.id.as_uuid(),
                endpoint.version,
                json,
                0,
                "webhook endpoint",
            )
            .await?
        {
            Cas::Written => Ok(()),
            Cas::Conflict => Err(Error::AlreadyExists {
                what: "webhook endpoint",
                detail: endpoint.id.to_string(),
            }),
        }
    }

    async fn endpoint(&self, id: EndpointId) -> Result<Option<Endpoint>> {
        self.record(
            &self.st().endpoint,
            (id.as_uuid(),),
            "webhook endpoint",
            |e: &Endpoint| e.version,
        )
        .await
    }

    async fn endpoints(&self, tenant: &TenantId) -> Result<Vec<Endpoint>> {
        let ids = self
            .all::<(Uuid,)>(&self.st().endpoints_of, (tenant.as_str(),))
            .await?;
        let mut endpoints = Vec::with_capacity(ids.len());
        for (id,) in ids {
            // An index entry whose endpoint was deleted, or never written, is skipped.
            endpoints.extend(
                self.endpoint(EndpointId::from_uuid(id))
                    .await?
                    .filter(|e| e.tenant_id == *tenant),
            );
        }
        Ok(endpoints)
    }

    async fn save_endpoint(&self, endpoint: &Endpoint, expected: u64) -> Result<Cas> {
        let st = self.st();
        self.cas(
            (&st.insert_endpoint, &st.update_endpoint),
            endpoint.id.as_uuid(),
            endpoint.version,
            rows::to_json(endpoint, "webhook endpoint")?,
            expected,
            "webhook endpoint",
        )
        .await
    }

    async fn delete_endpoint(&self, id: EndpointId) -> Result<bool> {
        let Some(endpoint) = self.endpoint(id).await? else {
            return Ok(false);
        };
        let st = self.st();
        let deleted = applied(
            self.session()
                .execute_unpaged(&st.delete_endpoint, (id.as_uuid(),))
                .await
                .map_err(backend)?,
        )?;
        self.session()
            .execute_unpaged(
                &st.unindex_endpoint,
                (endpoint.tenant_id.as_str(), id.as_uuid()),
            )
            .await
            .map_err(backend)?;
        Ok(deleted)
    }

    async fn callback_secrets(&self, tenant: &TenantId) -> Result<Option<CallbackSecrets>> {
        self.record(
            &self.st().callback_secrets,
            (tenant.as_str(),),
            "callback secrets",
            |s: &CallbackSecrets| s.version,
        )
        .await
    }

    async fn save_callback_secrets(&self, secrets: &CallbackSecrets, expected: u64) -> Result<Cas> {
        let st = self.st();
        self.cas(
            (&st.insert_callback_secrets, &st.update_callback_secrets),
            secrets.tenant_id.as_str(),
            secrets.version,
            rows::to_json(secrets, "callback secrets")?,
            expected,
            "callback secrets",
        )
        .await
    }
}

#[async_trait]
impl DeliveryStore for ScyllaStore {
    async fn record_delivery(&self, delivery: &Delivery) -> Result<bool> {
        let st = self.st();
        self.session()
            .execute_unpaged(
                &st.index_delivery,
                (
                    delivery.receipt_id.as_uuid(),
                    rows::timestamp(delivery.created_at),
                    delivery.id.as_str(),
                ),
            )
            .await
            .map_err(backend)?;
        let written = self
            .cas(
                (&st.insert_delivery, &st.update_delivery),
                delivery.id.as_str(),
                delivery.version,
                rows::to_json(delivery, "webhook delivery")?,
                0,
                "webhook delivery",
            )
            .await?;
        Ok(written == Cas::Written)
    }

    async fn delivery(&self, id: &str) -> Result<Option<Delivery>> {
        self.record(
            &self.st().delivery,
            (id,),
            "webhook delivery",
            |d: &Delivery| d.version,
        )
        .await
    }

    async fn save_delivery(&self, delivery: &Delivery, expected: u64) -> Result<Cas> {
        let st = self.st();
        self.cas(
            (&st.insert_delivery, &st.update_delivery),
            delivery.id.as_str(),
            delivery.version,
            rows::to_json(delivery, "webhook delivery")?,
            expected,
            "webhook delivery",
        )
        .await
    }

    async fn put_attempt(&self, delivery_id: &str, attempt: &DeliveryAttempt) -> Result<()> {
        let number = i32::try_from(attempt.number).map_err(|_| Error::Encode {
            what: "delivery attempt",
            detail: format!("attempt number {} exceeds an int", attempt.number),
        })?;
        self.session()
            .execute_unpaged(
                &self.st().put_attempt,
                (
                    delivery_id,
                    number,
                    rows::to_json(attempt, "delivery attempt")?,
                ),
            )
            .await
            .map(drop)
            .map_err(backend)
    }

    async fn attempts(&self, delivery_id: &str) -> Result<Vec<DeliveryAttempt>> {
        self.all::<(String,)>(&self.st().attempts, (delivery_id,))
            .await?
            .into_iter()
            .map(|(json,)| rows::from_json(&json, "delivery attempt"))
            .collect()
    }

    async fn deliveries_of(&self, receipt: ReceiptId) -> Result<Vec<Delivery>> {
        let ids = self
            .all::<(scylla::value::CqlTimestamp, String)>(
                &self.st().deliveries_of,
                (receipt.as_uuid(),),
            )
            .await?;
        // A delivery recorded twice (a replayed fan-out) may be indexed under two times: each
        // is listed once, by its record's creation time.
        let mut seen = std::collections::HashSet::new();
        let mut deliveries = Vec::with_capacity(ids.len());
        for (_, id) in ids {
            if seen.insert(id.clone()) {
                deliveries.extend(self.delivery(&id).await?);
            }
        }
        deliveries.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(deliveries)
    }
}
