//! Webhook endpoints, callback secrets, deliveries and attempts on SQLite: versioned records
//! (attempts are keyed by delivery and number, without a version).

use async_trait::async_trait;
use libsql::Value;
use receipts_domain::{
    CallbackSecrets, Delivery, DeliveryAttempt, Endpoint, EndpointId, ReceiptId, TenantId,
};

use super::records::{self, Table, Versioned};
use super::{SqliteStore, codec};
use crate::{Cas, DeliveryStore, EndpointStore, Error, Result};

const ENDPOINTS: Table = Table {
    name: "endpoint_records",
    what: "webhook endpoint",
    columns: &["id", "tenant_id"],
};

const CALLBACK_SECRETS: Table = Table {
    name: "callback_secret_records",
    what: "callback secrets",
    columns: &["tenant_id"],
};

const DELIVERIES: Table = Table {
    name: "delivery_records",
    what: "webhook delivery",
    columns: &["id", "tenant_id", "receipt_id", "created_at"],
};

impl Versioned for Endpoint {
    fn version(&self) -> u64 {
        self.version
    }
}

impl Versioned for CallbackSecrets {
    fn version(&self) -> u64 {
        self.version
    }
}

impl Versioned for Delivery {
    fn version(&self) -> u64 {
        self.version
    }
}

fn endpoint_columns(endpoint: &Endpoint) -> Vec<Value> {
    vec![
        Value::Text(endpoint.id.to_string()),
        Value::Text(endpoint.tenant_id.as_str().to_owned()),
    ]
}

fn delivery_columns(delivery: &Delivery) -> Vec<Value> {
    vec![
        Value::Text(delivery.id.clone()),
        Value::Text(delivery.tenant_id.as_str().to_owned()),
        Value::Text(delivery.receipt_id.to_string()),
        Value::Integer(codec::millis(delivery.created_at)),
    ]
}

#[async_trait]
impl EndpointStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all, fields(endpoint_id = %endpoint.id, tenant_id = %endpoint.tenant_id))]
    async fn create_endpoint(&self, endpoint: &Endpoint) -> Result<()> {
        let endpoint = endpoint.clone();
        self.write(move |conn| async move {
            let columns = endpoint_columns(&endpoint);
            match records::save(&conn, &ENDPOINTS, columns, &endpoint, 0).await? {
                Cas::Written => Ok(()),
                Cas::Conflict => Err(Error::AlreadyExists {
                    what: "webhook endpoint",
                    detail: format!("an endpoint with id {}", endpoint.id),
                }),
            }
        })
        .await
    }

    async fn endpoint(&self, id: EndpointId) -> Result<Option<Endpoint>> {
        self.read(
            move |conn| async move { records::load(&conn, &ENDPOINTS, &id.to_string()).await },
        )
        .await
    }

    async fn endpoints(&self, tenant: &TenantId) -> Result<Vec<Endpoint>> {
        let tenant = tenant.as_str().to_owned();
        self.read(move |conn| async move {
            records::load_all(
                &conn,
                &ENDPOINTS,
                "tenant_id = ?1",
                "id",
                vec![Value::Text(tenant)],
            )
            .await
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(endpoint_id = %endpoint.id, version = endpoint.version, expected))]
    async fn save_endpoint(&self, endpoint: &Endpoint, expected: u64) -> Result<Cas> {
        let endpoint = endpoint.clone();
        self.write(move |conn| async move {
            let columns = endpoint_columns(&endpoint);
            records::save(&conn, &ENDPOINTS, columns, &endpoint, expected).await
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(endpoint_id = %id))]
    async fn delete_endpoint(&self, id: EndpointId) -> Result<bool> {
        self.write(move |conn| async move {
            let deleted = conn
                .execute(
                    "DELETE FROM endpoint_records WHERE id = ?1",
                    [id.to_string()],
                )
                .await?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn callback_secrets(&self, tenant: &TenantId) -> Result<Option<CallbackSecrets>> {
        let tenant = tenant.as_str().to_owned();
        self.read(move |conn| async move { records::load(&conn, &CALLBACK_SECRETS, &tenant).await })
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %secrets.tenant_id, expected))]
    async fn save_callback_secrets(&self, secrets: &CallbackSecrets, expected: u64) -> Result<Cas> {
        let secrets = secrets.clone();
        self.write(move |conn| async move {
            let columns = vec![Value::Text(secrets.tenant_id.as_str().to_owned())];
            records::save(&conn, &CALLBACK_SECRETS, columns, &secrets, expected).await
        })
        .await
    }
}

#[async_trait]
impl DeliveryStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all, fields(delivery_id = %delivery.id, receipt_id = %delivery.receipt_id))]
    async fn record_delivery(&self, delivery: &Delivery) -> Result<bool> {
        let delivery = delivery.clone();
        self.write(move |conn| async move {
            let columns = delivery_columns(&delivery);
            let new = records::save(&conn, &DELIVERIES, columns, &delivery, 0).await?;
            Ok(new == Cas::Written)
        })
        .await
    }

    async fn delivery(&self, id: &str) -> Result<Option<Delivery>> {
        let id = id.to_owned();
        self.read(move |conn| async move { records::load(&conn, &DELIVERIES, &id).await })
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(delivery_id = %delivery.id, version = delivery.version, expected))]
    async fn save_delivery(&self, delivery: &Delivery, expected: u64) -> Result<Cas> {
        let delivery = delivery.clone();
        self.write(move |conn| async move {
            let columns = delivery_columns(&delivery);
            records::save(&conn, &DELIVERIES, columns, &delivery, expected).await
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(delivery_id, attempt = attempt.number))]
    async fn put_attempt(&self, delivery_id: &str, attempt: &DeliveryAttempt) -> Result<()> {
        let (delivery_id, attempt) = (delivery_id.to_owned(), attempt.clone());
        self.write(move |conn| async move {
            let json = codec::to_json(&attempt, "delivery attempt")?;
            conn.execute(
                "INSERT INTO attempt_records (delivery_id, number, record) VALUES (?1, ?2, ?3)
                 ON CONFLICT (delivery_id, number) DO UPDATE SET record = excluded.record",
                (delivery_id, attempt.number, json),
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn attempts(&self, delivery_id: &str) -> Result<Vec<DeliveryAttempt>> {
        let delivery_id = delivery_id.to_owned();
        self.read(move |conn| async move {
            let mut rows = conn
                .query(
                    "SELECT record FROM attempt_records WHERE delivery_id = ?1 ORDER BY number",
                    [delivery_id],
                )
                .await?;
            let mut attempts = Vec::new();
            while let Some(row) = rows.next().await? {
                attempts.push(codec::from_json(
                    &codec::text(&row, 0, "delivery attempt")?,
                    "delivery attempt",
                )?);
            }
            Ok(attempts)
        })
        .await
    }

    async fn deliveries_of(&self, receipt: ReceiptId) -> Result<Vec<Delivery>> {
        self.read(move |conn| async move {
            records::load_all(
                &conn,
                &DELIVERIES,
                "receipt_id = ?1",
                "created_at, id",
                vec![Value::Text(receipt.to_string())],
            )
            .await
        })
        .await
    }
}
