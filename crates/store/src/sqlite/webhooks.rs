//! [`WebhookStore`] on SQLite: endpoints, signing secrets and the delivery log.
//!
//! Every write is one request to the writer task, so it is group-committed with the others and
//! atomic: a read-modify-write (`update_endpoint`, `record_endpoint_result`, the get-or-create of
//! `callback_secrets`) runs entirely inside its request's savepoint, and requests run one after
//! another on the one writer connection (other processes wait on SQLite's write lock). Reads of
//! more than one statement run in one read transaction on a reader connection, so they see one
//! snapshot.
//!
//! Secrets past their grace period are left out of every read (`expires_at > now`) and deleted
//! whenever their owner's secrets are rotated.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use libsql::params::IntoParams;
use libsql::{Connection, Row};
use receipts_domain::event::now_millis;
use receipts_domain::{
    Destination, EndpointId, ReceiptId, TenantId, WebhookEventType, WebhookSecret,
};

use super::writer::{self, Answer, Reply, answer, pending};
use super::{SqliteStore, codec, rollback_quietly};
use crate::{
    DISABLED_BY_OWNER, Delivery, DeliveryAttempt, DeliveryStatus, Endpoint, EndpointHealth,
    EndpointPatch, Error, NewDelivery, NewEndpoint, Result, StoredSecret, WebhookStore,
    auto_disabled_reason,
};

/// A webhook write, as the writer task runs it.
pub(super) enum Write {
    CreateEndpoint {
        endpoint: NewEndpoint,
        now: DateTime<Utc>,
        reply: Reply<Endpoint>,
    },
    UpdateEndpoint {
        tenant: TenantId,
        id: EndpointId,
        patch: EndpointPatch,
        now: DateTime<Utc>,
        reply: Reply<Option<Endpoint>>,
    },
    DeleteEndpoint {
        tenant: TenantId,
        id: EndpointId,
        reply: Reply<bool>,
    },
    RotateEndpointSecret {
        tenant: TenantId,
        id: EndpointId,
        rotation: Rotation,
        reply: Reply<Option<Endpoint>>,
    },
    RecordEndpointResult {
        id: EndpointId,
        succeeded: bool,
        at: DateTime<Utc>,
        disable_after: Duration,
        now: DateTime<Utc>,
        reply: Reply<EndpointHealth>,
    },
    CallbackSecrets {
        tenant: TenantId,
        initial: WebhookSecret,
        now: DateTime<Utc>,
        reply: Reply<Vec<StoredSecret>>,
    },
    RotateCallbackSecret {
        tenant: TenantId,
        rotation: Rotation,
        reply: Reply<Vec<StoredSecret>>,
    },
    RecordDelivery {
        delivery: NewDelivery,
        reply: Reply<bool>,
    },
    RecordAttempt {
        delivery_id: String,
        attempt: DeliveryAttempt,
        now: DateTime<Utc>,
        reply: Reply<()>,
    },
    FailDelivery {
        delivery_id: String,
        reason: String,
        now: DateTime<Utc>,
        reply: Reply<()>,
    },
    ReopenDelivery {
        delivery_id: String,
        now: DateTime<Utc>,
        reply: Reply<()>,
    },
}

/// A new current secret; the previous current one keeps signing until `previous_until`.
pub(super) struct Rotation {
    secret: WebhookSecret,
    previous_until: DateTime<Utc>,
    now: DateTime<Utc>,
}

impl Write {
    /// Runs the write inside the savepoint the writer opened for it.
    pub(super) async fn execute(self, conn: &Connection) -> Box<dyn Answer> {
        match self {
            Self::CreateEndpoint {
                endpoint,
                now,
                reply,
            } => pending(reply, create_endpoint_in_tx(conn, &endpoint, now).await),
            Self::UpdateEndpoint {
                tenant,
                id,
                patch,
                now,
                reply,
            } => pending(
                reply,
                update_endpoint_in_tx(conn, &tenant, id, &patch, now).await,
            ),
            Self::DeleteEndpoint { tenant, id, reply } => {
                pending(reply, delete_endpoint_in_tx(conn, &tenant, id).await)
            }
            Self::RotateEndpointSecret {
                tenant,
                id,
                rotation,
                reply,
            } => pending(
                reply,
                rotate_endpoint_secret_in_tx(conn, &tenant, id, &rotation).await,
            ),
            Self::RecordEndpointResult {
                id,
                succeeded,
                at,
                disable_after,
                now,
                reply,
            } => pending(
                reply,
                record_endpoint_result_in_tx(conn, id, succeeded, at, disable_after, now).await,
            ),
            Self::CallbackSecrets {
                tenant,
                initial,
                now,
                reply,
            } => pending(
                reply,
                callback_secrets_in_tx(conn, &tenant, &initial, now).await,
            ),
            Self::RotateCallbackSecret {
                tenant,
                rotation,
                reply,
            } => pending(
                reply,
                rotate_callback_secret_in_tx(conn, &tenant, &rotation).await,
            ),
            Self::RecordDelivery { delivery, reply } => {
                pending(reply, record_delivery_in_tx(conn, &delivery).await)
            }
            Self::RecordAttempt {
                delivery_id,
                attempt,
                now,
                reply,
            } => pending(
                reply,
                record_attempt_in_tx(conn, &delivery_id, &attempt, now).await,
            ),
            Self::FailDelivery {
                delivery_id,
                reason,
                now,
                reply,
            } => pending(
                reply,
                set_delivery_status(
                    conn,
                    &delivery_id,
                    DeliveryStatus::Failed,
                    Some(&reason),
                    now,
                )
                .await,
            ),
            Self::ReopenDelivery {
                delivery_id,
                now,
                reply,
            } => pending(
                reply,
                set_delivery_status(conn, &delivery_id, DeliveryStatus::Pending, None, now).await,
            ),
        }
    }

    /// Answers the write, which was never run, with (a copy of) `error`.
    pub(super) fn fail(self, error: &Error) {
        match self {
            Self::CreateEndpoint { reply, .. } => answer(reply, Err(error.duplicate())),
            Self::UpdateEndpoint { reply, .. } => answer(reply, Err(error.duplicate())),
            Self::DeleteEndpoint { reply, .. } => answer(reply, Err(error.duplicate())),
            Self::RotateEndpointSecret { reply, .. } => answer(reply, Err(error.duplicate())),
            Self::RecordEndpointResult { reply, .. } => answer(reply, Err(error.duplicate())),
            Self::CallbackSecrets { reply, .. } => answer(reply, Err(error.duplicate())),
            Self::RotateCallbackSecret { reply, .. } => answer(reply, Err(error.duplicate())),
            Self::RecordDelivery { reply, .. } => answer(reply, Err(error.duplicate())),
            Self::RecordAttempt { reply, .. } => answer(reply, Err(error.duplicate())),
            Self::FailDelivery { reply, .. } => answer(reply, Err(error.duplicate())),
            Self::ReopenDelivery { reply, .. } => answer(reply, Err(error.duplicate())),
        }
    }
}

impl SqliteStore {
    /// Hands a webhook write to the writer task and waits for its committed outcome.
    async fn webhook_write<T>(&self, write: impl FnOnce(Reply<T>) -> Write) -> Result<T> {
        self.write(|reply| writer::Request::Webhook(Box::new(write(reply))))
            .await
    }

    /// Runs `read` in one read transaction on a reader connection.
    async fn snapshot<T>(&self, read: impl AsyncFnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.reader().await;
        rollback_quietly(&conn).await;
        conn.execute("BEGIN", ()).await?;
        let result = read(&conn).await;
        rollback_quietly(&conn).await;
        result
    }
}

#[async_trait]
impl WebhookStore for SqliteStore {
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(tenant_id = %endpoint.tenant_id, endpoint_id = %endpoint.id),
    )]
    async fn create_endpoint(&self, endpoint: &NewEndpoint) -> Result<Endpoint> {
        let now = now_millis();
        let created = self
            .webhook_write(|reply| Write::CreateEndpoint {
                endpoint: endpoint.clone(),
                now,
                reply,
            })
            .await?;
        tracing::debug!("created webhook endpoint");
        Ok(created)
    }

    async fn endpoint(&self, tenant: &TenantId, id: EndpointId) -> Result<Option<Endpoint>> {
        let now = now_millis();
        let found = self
            .snapshot(async |conn| {
                load_endpoints(
                    conn,
                    "id = ?1 AND tenant_id = ?2",
                    (id.to_string(), tenant.as_str()),
                    now,
                )
                .await
            })
            .await?;
        Ok(found.into_iter().next())
    }

    async fn endpoint_by_id(&self, id: EndpointId) -> Result<Option<Endpoint>> {
        let now = now_millis();
        let found = self
            .snapshot(async |conn| load_endpoints(conn, "id = ?1", [id.to_string()], now).await)
            .await?;
        Ok(found.into_iter().next())
    }

    async fn endpoints(&self, tenant: &TenantId) -> Result<Vec<Endpoint>> {
        let now = now_millis();
        self.snapshot(async |conn| {
            load_endpoints(conn, "tenant_id = ?1", [tenant.as_str()], now).await
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant, endpoint_id = %id))]
    async fn update_endpoint(
        &self,
        tenant: &TenantId,
        id: EndpointId,
        patch: &EndpointPatch,
    ) -> Result<Option<Endpoint>> {
        let now = now_millis();
        let updated = self
            .webhook_write(|reply| Write::UpdateEndpoint {
                tenant: tenant.clone(),
                id,
                patch: patch.clone(),
                now,
                reply,
            })
            .await?;
        tracing::debug!(
            found = updated.is_some(),
            enabled = ?patch.enabled,
            "update webhook endpoint"
        );
        Ok(updated)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant, endpoint_id = %id))]
    async fn delete_endpoint(&self, tenant: &TenantId, id: EndpointId) -> Result<bool> {
        let deleted = self
            .webhook_write(|reply| Write::DeleteEndpoint {
                tenant: tenant.clone(),
                id,
                reply,
            })
            .await?;
        tracing::debug!(deleted, "delete webhook endpoint");
        Ok(deleted)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant, endpoint_id = %id))]
    async fn rotate_endpoint_secret(
        &self,
        tenant: &TenantId,
        id: EndpointId,
        secret: WebhookSecret,
        previous_until: DateTime<Utc>,
    ) -> Result<Option<Endpoint>> {
        let rotation = Rotation {
            secret,
            previous_until,
            now: now_millis(),
        };
        let rotated = self
            .webhook_write(|reply| Write::RotateEndpointSecret {
                tenant: tenant.clone(),
                id,
                rotation,
                reply,
            })
            .await?;
        tracing::debug!(
            found = rotated.is_some(),
            %previous_until,
            "rotate webhook endpoint secret"
        );
        Ok(rotated)
    }

    async fn subscribed_endpoints(
        &self,
        tenant: &TenantId,
        event: WebhookEventType,
    ) -> Result<Vec<Endpoint>> {
        let now = now_millis();
        let enabled = self
            .snapshot(async |conn| {
                load_endpoints(
                    conn,
                    "tenant_id = ?1 AND enabled = 1",
                    [tenant.as_str()],
                    now,
                )
                .await
            })
            .await?;
        Ok(enabled
            .into_iter()
            .filter(|endpoint| endpoint.subscribes_to(event))
            .collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(endpoint_id = %id, succeeded = succeeded))]
    async fn record_endpoint_result(
        &self,
        id: EndpointId,
        succeeded: bool,
        at: DateTime<Utc>,
        disable_after: Duration,
    ) -> Result<EndpointHealth> {
        let now = now_millis();
        let health = self
            .webhook_write(|reply| Write::RecordEndpointResult {
                id,
                succeeded,
                at,
                disable_after,
                now,
                reply,
            })
            .await?;
        match health {
            EndpointHealth::DisabledNow => tracing::warn!(
                disable_after = ?disable_after,
                "webhook endpoint disabled: its deliveries have failed for too long"
            ),
            health => tracing::debug!(?health, "recorded webhook endpoint result"),
        }
        Ok(health)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant))]
    async fn callback_secrets(
        &self,
        tenant: &TenantId,
        initial: WebhookSecret,
    ) -> Result<Vec<StoredSecret>> {
        let now = now_millis();
        {
            // Almost always the tenant has a current secret already: no write needed.
            let conn = self.reader().await;
            let secrets = live_secrets(&conn, CALLBACK_SECRETS, tenant.as_str(), now).await?;
            if secrets.first().is_some_and(|s| s.expires_at.is_none()) {
                return Ok(secrets);
            }
        }
        let secrets = self
            .webhook_write(|reply| Write::CallbackSecrets {
                tenant: tenant.clone(),
                initial,
                now,
                reply,
            })
            .await?;
        tracing::debug!("ensured a current callback secret");
        Ok(secrets)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant))]
    async fn rotate_callback_secret(
        &self,
        tenant: &TenantId,
        secret: WebhookSecret,
        previous_until: DateTime<Utc>,
    ) -> Result<Vec<StoredSecret>> {
        let rotation = Rotation {
            secret,
            previous_until,
            now: now_millis(),
        };
        let secrets = self
            .webhook_write(|reply| Write::RotateCallbackSecret {
                tenant: tenant.clone(),
                rotation,
                reply,
            })
            .await?;
        tracing::debug!(%previous_until, "rotated callback secret");
        Ok(secrets)
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(delivery_id = %delivery.id, tenant_id = %delivery.tenant_id, receipt_id = %delivery.receipt_id),
    )]
    async fn record_delivery(&self, delivery: &NewDelivery) -> Result<()> {
        let new = self
            .webhook_write(|reply| Write::RecordDelivery {
                delivery: delivery.clone(),
                reply,
            })
            .await?;
        tracing::debug!(new, destination = %delivery.destination.key(), "recorded webhook delivery");
        Ok(())
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(delivery_id = %delivery_id, attempt = attempt.number, succeeded = attempt.succeeded),
    )]
    async fn record_attempt(&self, delivery_id: &str, attempt: &DeliveryAttempt) -> Result<()> {
        let now = now_millis();
        self.webhook_write(|reply| Write::RecordAttempt {
            delivery_id: delivery_id.to_owned(),
            attempt: attempt.clone(),
            now,
            reply,
        })
        .await?;
        tracing::debug!(http_status = ?attempt.http_status, "recorded webhook delivery attempt");
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(delivery_id = %delivery_id))]
    async fn fail_delivery(&self, delivery_id: &str, reason: &str) -> Result<()> {
        let now = now_millis();
        self.webhook_write(|reply| Write::FailDelivery {
            delivery_id: delivery_id.to_owned(),
            reason: reason.to_owned(),
            now,
            reply,
        })
        .await?;
        tracing::debug!(reason, "webhook delivery failed for good");
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(delivery_id = %delivery_id))]
    async fn reopen_delivery(&self, delivery_id: &str) -> Result<()> {
        let now = now_millis();
        self.webhook_write(|reply| Write::ReopenDelivery {
            delivery_id: delivery_id.to_owned(),
            now,
            reply,
        })
        .await?;
        tracing::debug!("webhook delivery reopened");
        Ok(())
    }

    async fn deliveries(&self, tenant: &TenantId, receipt: ReceiptId) -> Result<Vec<Delivery>> {
        self.snapshot(async |conn| {
            load_deliveries(
                conn,
                "tenant_id = ?1 AND receipt_id = ?2",
                (tenant.as_str(), receipt.to_string()),
            )
            .await
        })
        .await
    }

    async fn delivery(&self, tenant: &TenantId, delivery_id: &str) -> Result<Option<Delivery>> {
        let found = self
            .snapshot(async |conn| {
                load_deliveries(
                    conn,
                    "tenant_id = ?1 AND id = ?2",
                    (tenant.as_str(), delivery_id),
                )
                .await
            })
            .await?;
        Ok(found.into_iter().next())
    }
}

// ---------------------------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------------------------

const ENDPOINT_COLUMNS: &str = "id, tenant_id, url, description, events_json, enabled, \
     disabled_reason, failing_since, created_at, updated_at";

/// An endpoint row, without its secrets.
fn endpoint_from_row(row: &Row) -> Result<Endpoint> {
    Ok(Endpoint {
        id: codec::parse(
            &codec::text(row, 0, "webhook_endpoints.id")?,
            "webhook_endpoints.id",
            |s| EndpointId::parse(s).ok_or("not an endpoint id"),
        )?,
        tenant_id: codec::parse(
            &codec::text(row, 1, "webhook_endpoints.tenant_id")?,
            "webhook_endpoints.tenant_id",
            TenantId::parse,
        )?,
        url: codec::text(row, 2, "webhook_endpoints.url")?,
        description: codec::opt_text(row, 3, "webhook_endpoints.description")?,
        events: codec::opt_text(row, 4, "webhook_endpoints.events_json")?
            .map(|json| codec::from_json(&json, "webhook_endpoints.events_json"))
            .transpose()?,
        enabled: flag(row, 5, "webhook_endpoints.enabled")?,
        disabled_reason: codec::opt_text(row, 6, "webhook_endpoints.disabled_reason")?,
        secrets: Vec::new(),
        failing_since: codec::opt_time(
            codec::opt_int(row, 7, "webhook_endpoints.failing_since")?,
            "webhook_endpoints.failing_since",
        )?,
        created_at: codec::time(
            codec::int(row, 8, "webhook_endpoints.created_at")?,
            "webhook_endpoints.created_at",
        )?,
        updated_at: codec::time(
            codec::int(row, 9, "webhook_endpoints.updated_at")?,
            "webhook_endpoints.updated_at",
        )?,
    })
}

/// The endpoints matching `filter` (an SQL condition on `webhook_endpoints`), oldest first, each
/// with the secrets still valid at `now`.
async fn load_endpoints(
    conn: &Connection,
    filter: &str,
    params: impl IntoParams,
    now: DateTime<Utc>,
) -> Result<Vec<Endpoint>> {
    let sql = format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE {filter} ORDER BY created_at, rowid"
    );
    let mut endpoints = Vec::new();
    {
        let mut rows = conn.query(&sql, params).await?;
        while let Some(row) = rows.next().await? {
            endpoints.push(endpoint_from_row(&row)?);
        }
    }
    for endpoint in &mut endpoints {
        endpoint.secrets =
            live_secrets(conn, ENDPOINT_SECRETS, &endpoint.id.to_string(), now).await?;
    }
    Ok(endpoints)
}

/// The endpoint `id` of `tenant`, inside the writer's transaction.
async fn endpoint_in_tx(
    conn: &Connection,
    tenant: &TenantId,
    id: EndpointId,
    now: DateTime<Utc>,
) -> Result<Option<Endpoint>> {
    let found = load_endpoints(
        conn,
        "id = ?1 AND tenant_id = ?2",
        (id.to_string(), tenant.as_str()),
        now,
    )
    .await?;
    Ok(found.into_iter().next())
}

fn events_json(events: Option<&Vec<WebhookEventType>>) -> Result<Option<String>> {
    events
        .map(|events| codec::to_json(events, "endpoint events"))
        .transpose()
}

async fn create_endpoint_in_tx(
    conn: &Connection,
    new: &NewEndpoint,
    now: DateTime<Utc>,
) -> Result<Endpoint> {
    let id = new.id.to_string();
    let inserted = conn
        .execute(
            "INSERT INTO webhook_endpoints (id, tenant_id, url, description, events_json, enabled,
                                            created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?6)
             ON CONFLICT (id) DO NOTHING",
            libsql::params![
                id.as_str(),
                new.tenant_id.as_str(),
                new.url.as_str(),
                new.description.as_deref(),
                events_json(new.events.as_ref())?,
                codec::millis(now),
            ],
        )
        .await?;
    if inserted == 0 {
        return Err(Error::AlreadyExists {
            what: "webhook endpoint",
            detail: format!("an endpoint with id {id}"),
        });
    }
    insert_secret(conn, ENDPOINT_SECRET_INSERT, &id, &new.secret, now).await?;
    Ok(Endpoint {
        id: new.id,
        tenant_id: new.tenant_id.clone(),
        url: new.url.clone(),
        description: new.description.clone(),
        events: new.events.clone(),
        enabled: true,
        disabled_reason: None,
        secrets: vec![StoredSecret {
            secret: new.secret.clone(),
            expires_at: None,
        }],
        failing_since: None,
        created_at: now,
        updated_at: now,
    })
}

async fn update_endpoint_in_tx(
    conn: &Connection,
    tenant: &TenantId,
    id: EndpointId,
    patch: &EndpointPatch,
    now: DateTime<Utc>,
) -> Result<Option<Endpoint>> {
    let Some(mut endpoint) = endpoint_in_tx(conn, tenant, id, now).await? else {
        return Ok(None);
    };
    if let Some(url) = &patch.url {
        endpoint.url.clone_from(url);
    }
    if let Some(description) = &patch.description {
        endpoint.description.clone_from(description);
    }
    if let Some(events) = &patch.events {
        endpoint.events.clone_from(events);
    }
    match patch.enabled {
        Some(true) => {
            endpoint.enabled = true;
            endpoint.disabled_reason = None;
            endpoint.failing_since = None;
        }
        Some(false) => {
            endpoint.enabled = false;
            endpoint.disabled_reason = Some(DISABLED_BY_OWNER.to_owned());
        }
        None => {}
    }
    endpoint.updated_at = now;
    conn.execute(
        "UPDATE webhook_endpoints SET url = ?2, description = ?3, events_json = ?4, enabled = ?5,
                disabled_reason = ?6, failing_since = ?7, updated_at = ?8
         WHERE id = ?1",
        libsql::params![
            endpoint.id.to_string(),
            endpoint.url.as_str(),
            endpoint.description.as_deref(),
            events_json(endpoint.events.as_ref())?,
            endpoint.enabled,
            endpoint.disabled_reason.as_deref(),
            endpoint.failing_since.map(codec::millis),
            codec::millis(now),
        ],
    )
    .await?;
    Ok(Some(endpoint))
}

/// Deletes the endpoint and (by the foreign key's cascade) its secrets; its deliveries stay.
async fn delete_endpoint_in_tx(
    conn: &Connection,
    tenant: &TenantId,
    id: EndpointId,
) -> Result<bool> {
    let deleted = conn
        .execute(
            "DELETE FROM webhook_endpoints WHERE id = ?1 AND tenant_id = ?2",
            (id.to_string(), tenant.as_str()),
        )
        .await?;
    Ok(deleted > 0)
}

async fn rotate_endpoint_secret_in_tx(
    conn: &Connection,
    tenant: &TenantId,
    id: EndpointId,
    rotation: &Rotation,
) -> Result<Option<Endpoint>> {
    let key = id.to_string();
    let touched = conn
        .execute(
            "UPDATE webhook_endpoints SET updated_at = ?3 WHERE id = ?1 AND tenant_id = ?2",
            (key.as_str(), tenant.as_str(), codec::millis(rotation.now)),
        )
        .await?;
    if touched == 0 {
        return Ok(None);
    }
    rotate(
        conn,
        "webhook_endpoint_secrets",
        "endpoint_id",
        ENDPOINT_SECRET_INSERT,
        &key,
        rotation,
    )
    .await?;
    endpoint_in_tx(conn, tenant, id, rotation.now).await
}

/// Records a delivery result in the endpoint's health (see [`WebhookStore::record_endpoint_result`]).
/// An endpoint that no longer exists (deleted while a delivery to it was under way) is left
/// alone: [`EndpointHealth::Healthy`], as there is nothing to disable.
async fn record_endpoint_result_in_tx(
    conn: &Connection,
    id: EndpointId,
    succeeded: bool,
    at: DateTime<Utc>,
    disable_after: Duration,
    now: DateTime<Utc>,
) -> Result<EndpointHealth> {
    let key = id.to_string();
    let (enabled, failing_since) = {
        let mut rows = conn
            .query(
                "SELECT enabled, failing_since FROM webhook_endpoints WHERE id = ?1",
                [key.as_str()],
            )
            .await?;
        let Some(row) = rows.next().await? else {
            return Ok(EndpointHealth::Healthy);
        };
        (
            flag(&row, 0, "webhook_endpoints.enabled")?,
            codec::opt_time(
                codec::opt_int(&row, 1, "webhook_endpoints.failing_since")?,
                "webhook_endpoints.failing_since",
            )?,
        )
    };
    if succeeded {
        if failing_since.is_some() {
            conn.execute(
                "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ?1",
                [key.as_str()],
            )
            .await?;
        }
        return Ok(EndpointHealth::Healthy);
    }
    let since = failing_since.unwrap_or(at);
    // A period too long to represent is never exceeded.
    let overdue = TimeDelta::from_std(disable_after).is_ok_and(|limit| at - since > limit);
    if enabled && overdue {
        let reason = auto_disabled_reason(disable_after, since);
        conn.execute(
            "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = ?2, failing_since = ?3,
                    updated_at = ?4
             WHERE id = ?1",
            (
                key.as_str(),
                reason,
                codec::millis(since),
                codec::millis(now),
            ),
        )
        .await?;
        return Ok(EndpointHealth::DisabledNow);
    }
    if failing_since.is_none() {
        conn.execute(
            "UPDATE webhook_endpoints SET failing_since = ?2 WHERE id = ?1",
            (key.as_str(), codec::millis(since)),
        )
        .await?;
    }
    Ok(EndpointHealth::Failing)
}

fn flag(row: &Row, idx: i32, what: &'static str) -> Result<bool> {
    match codec::int(row, idx, what)? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(codec::corrupt(what, format!("{other} is not 0 or 1"))),
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

/// An endpoint's secrets still valid at `?2`: the current one first, then rotated-out ones,
/// newest first.
const ENDPOINT_SECRETS: &str = "SELECT secret, expires_at FROM webhook_endpoint_secrets
     WHERE endpoint_id = ?1 AND (expires_at IS NULL OR expires_at > ?2)
     ORDER BY expires_at IS NOT NULL, created_at DESC, rowid DESC";

/// A tenant's callback secrets still valid at `?2`, in the same order.
const CALLBACK_SECRETS: &str = "SELECT secret, expires_at FROM webhook_callback_secrets
     WHERE tenant_id = ?1 AND (expires_at IS NULL OR expires_at > ?2)
     ORDER BY expires_at IS NOT NULL, created_at DESC, rowid DESC";

const ENDPOINT_SECRET_INSERT: &str =
    "INSERT INTO webhook_endpoint_secrets (endpoint_id, secret, expires_at, created_at)
     VALUES (?1, ?2, NULL, ?3)";

const CALLBACK_SECRET_INSERT: &str =
    "INSERT INTO webhook_callback_secrets (tenant_id, secret, expires_at, created_at)
     VALUES (?1, ?2, NULL, ?3)";

/// The secrets `sql` selects for `owner` that are still valid at `now`.
async fn live_secrets(
    conn: &Connection,
    sql: &str,
    owner: &str,
    now: DateTime<Utc>,
) -> Result<Vec<StoredSecret>> {
    let mut rows = conn.query(sql, (owner, codec::millis(now))).await?;
    let mut secrets = Vec::new();
    while let Some(row) = rows.next().await? {
        secrets.push(StoredSecret {
            secret: codec::parse(
                &codec::text(&row, 0, "webhook secret")?,
                "webhook secret",
                WebhookSecret::parse,
            )?,
            expires_at: codec::opt_time(
                codec::opt_int(&row, 1, "webhook secret expiry")?,
                "webhook secret expiry",
            )?,
        });
    }
    Ok(secrets)
}

/// Makes `secret` the current secret of `owner` (with `insert`, one of the `*_SECRET_INSERT`s).
async fn insert_secret(
    conn: &Connection,
    insert: &str,
    owner: &str,
    secret: &WebhookSecret,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.execute(insert, (owner, secret.expose(), codec::millis(now)))
        .await?;
    Ok(())
}

/// Rotates the secrets of `owner` in `table` (whose owner column is `owner_column`): the current
/// one expires at `previous_until`, the new one becomes current, and those already expired are
/// deleted. Rotated-out secrets keep their own expiry.
async fn rotate(
    conn: &Connection,
    table: &str,
    owner_column: &str,
    insert: &str,
    owner: &str,
    rotation: &Rotation,
) -> Result<()> {
    let now = codec::millis(rotation.now);
    conn.execute(
        &format!(
            "UPDATE {table} SET expires_at = ?2 WHERE {owner_column} = ?1 AND expires_at IS NULL"
        ),
        (owner, codec::millis(rotation.previous_until)),
    )
    .await?;
    conn.execute(
        &format!("DELETE FROM {table} WHERE {owner_column} = ?1 AND expires_at <= ?2"),
        (owner, now),
    )
    .await?;
    insert_secret(conn, insert, owner, &rotation.secret, rotation.now).await
}

/// Makes `initial` the tenant's current callback secret unless it has one, and returns its
/// secrets. Inside the writer's transaction, so two first calls cannot both create one.
async fn callback_secrets_in_tx(
    conn: &Connection,
    tenant: &TenantId,
    initial: &WebhookSecret,
    now: DateTime<Utc>,
) -> Result<Vec<StoredSecret>> {
    conn.execute(
        "INSERT INTO webhook_callback_secrets (tenant_id, secret, expires_at, created_at)
         SELECT ?1, ?2, NULL, ?3
         WHERE NOT EXISTS (SELECT 1 FROM webhook_callback_secrets
                           WHERE tenant_id = ?1 AND expires_at IS NULL)",
        (tenant.as_str(), initial.expose(), codec::millis(now)),
    )
    .await?;
    live_secrets(conn, CALLBACK_SECRETS, tenant.as_str(), now).await
}

async fn rotate_callback_secret_in_tx(
    conn: &Connection,
    tenant: &TenantId,
    rotation: &Rotation,
) -> Result<Vec<StoredSecret>> {
    rotate(
        conn,
        "webhook_callback_secrets",
        "tenant_id",
        CALLBACK_SECRET_INSERT,
        tenant.as_str(),
        rotation,
    )
    .await?;
    live_secrets(conn, CALLBACK_SECRETS, tenant.as_str(), rotation.now).await
}

// ---------------------------------------------------------------------------------------------
// Deliveries
// ---------------------------------------------------------------------------------------------

const DELIVERY_COLUMNS: &str = "id, tenant_id, receipt_id, destination, endpoint_id, url, \
     event_type, payload, status, failure_reason, created_at, updated_at";

const ATTEMPT_COLUMNS: &str =
    "number, at, url, http_status, latency_ms, response_excerpt, error, succeeded";

fn status_str(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Failed => "failed",
    }
}

fn parse_status(s: &str) -> Option<DeliveryStatus> {
    [
        DeliveryStatus::Pending,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
    ]
    .into_iter()
    .find(|&status| status_str(status) == s)
}

/// The `destination` and `endpoint_id` columns of a destination.
fn destination_columns(destination: &Destination) -> (&'static str, Option<String>) {
    match destination {
        Destination::Endpoint(id) => ("endpoint", Some(id.to_string())),
        Destination::Callback => ("callback", None),
    }
}

fn destination_from_columns(kind: &str, endpoint_id: Option<String>) -> Result<Destination> {
    const WHAT: &str = "webhook_deliveries.destination";
    match (kind, endpoint_id) {
        ("callback", None) => Ok(Destination::Callback),
        ("endpoint", Some(id)) => codec::parse(&id, "webhook_deliveries.endpoint_id", |s| {
            EndpointId::parse(s)
                .map(Destination::Endpoint)
                .ok_or("not an endpoint id")
        }),
        (kind, endpoint_id) => Err(codec::corrupt(
            WHAT,
            format!("destination {kind:?} with endpoint id {endpoint_id:?}"),
        )),
    }
}

/// A delivery row, without its attempts.
fn delivery_from_row(row: &Row) -> Result<Delivery> {
    Ok(Delivery {
        id: codec::text(row, 0, "webhook_deliveries.id")?,
        tenant_id: codec::parse(
            &codec::text(row, 1, "webhook_deliveries.tenant_id")?,
            "webhook_deliveries.tenant_id",
            TenantId::parse,
        )?,
        receipt_id: codec::parse(
            &codec::text(row, 2, "webhook_deliveries.receipt_id")?,
            "webhook_deliveries.receipt_id",
            ReceiptId::parse,
        )?,
        destination: destination_from_columns(
            &codec::text(row, 3, "webhook_deliveries.destination")?,
            codec::opt_text(row, 4, "webhook_deliveries.endpoint_id")?,
        )?,
        url: codec::text(row, 5, "webhook_deliveries.url")?,
        event_type: codec::parse(
            &codec::text(row, 6, "webhook_deliveries.event_type")?,
            "webhook_deliveries.event_type",
            str::parse::<WebhookEventType>,
        )?,
        payload: codec::blob(row, 7, "webhook_deliveries.payload")?,
        status: codec::parse(
            &codec::text(row, 8, "webhook_deliveries.status")?,
            "webhook_deliveries.status",
            |s| parse_status(s).ok_or("unknown delivery status"),
        )?,
        failure_reason: codec::opt_text(row, 9, "webhook_deliveries.failure_reason")?,
        created_at: codec::time(
            codec::int(row, 10, "webhook_deliveries.created_at")?,
            "webhook_deliveries.created_at",
        )?,
        updated_at: codec::time(
            codec::int(row, 11, "webhook_deliveries.updated_at")?,
            "webhook_deliveries.updated_at",
        )?,
        attempts: Vec::new(),
    })
}

fn attempt_from_row(row: &Row) -> Result<DeliveryAttempt> {
    let number = codec::int(row, 0, "webhook_attempts.number")?;
    let http_status = codec::opt_int(row, 3, "webhook_attempts.http_status")?;
    let latency_ms = codec::int(row, 4, "webhook_attempts.latency_ms")?;
    Ok(DeliveryAttempt {
        number: u32::try_from(number).map_err(|_| {
            codec::corrupt(
                "webhook_attempts.number",
                format!("{number} is no attempt number"),
            )
        })?,
        at: codec::time(
            codec::int(row, 1, "webhook_attempts.at")?,
            "webhook_attempts.at",
        )?,
        url: codec::text(row, 2, "webhook_attempts.url")?,
        http_status: http_status
            .map(|status| {
                u16::try_from(status).map_err(|_| {
                    codec::corrupt(
                        "webhook_attempts.http_status",
                        format!("{status} is no HTTP status"),
                    )
                })
            })
            .transpose()?,
        latency_ms: u64::try_from(latency_ms).map_err(|_| {
            codec::corrupt(
                "webhook_attempts.latency_ms",
                format!("negative latency {latency_ms}"),
            )
        })?,
        response_excerpt: codec::opt_text(row, 5, "webhook_attempts.response_excerpt")?,
        error: codec::opt_text(row, 6, "webhook_attempts.error")?,
        succeeded: flag(row, 7, "webhook_attempts.succeeded")?,
    })
}

/// The deliveries matching `filter` (an SQL condition on `webhook_deliveries`), oldest first,
/// each with its attempts in order.
async fn load_deliveries(
    conn: &Connection,
    filter: &str,
    params: impl IntoParams,
) -> Result<Vec<Delivery>> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE {filter} ORDER BY created_at, rowid"
    );
    let mut deliveries = Vec::new();
    {
        let mut rows = conn.query(&sql, params).await?;
        while let Some(row) = rows.next().await? {
            deliveries.push(delivery_from_row(&row)?);
        }
    }
    let sql = format!(
        "SELECT {ATTEMPT_COLUMNS} FROM webhook_attempts WHERE delivery_id = ?1 ORDER BY number"
    );
    for delivery in &mut deliveries {
        let mut rows = conn.query(&sql, [delivery.id.as_str()]).await?;
        while let Some(row) = rows.next().await? {
            delivery.attempts.push(attempt_from_row(&row)?);
        }
    }
    Ok(deliveries)
}

/// Whether the delivery is new (false: it was recorded before, and is left as it is).
async fn record_delivery_in_tx(conn: &Connection, delivery: &NewDelivery) -> Result<bool> {
    let (destination, endpoint_id) = destination_columns(&delivery.destination);
    let inserted = conn
        .execute(
            "INSERT INTO webhook_deliveries (id, tenant_id, receipt_id, destination, endpoint_id, url,
                                             event_type, payload, status, failure_reason,
                                             created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, ?10, ?10)
             ON CONFLICT (id) DO NOTHING",
            libsql::params![
                delivery.id.as_str(),
                delivery.tenant_id.as_str(),
                delivery.receipt_id.to_string(),
                destination,
                endpoint_id,
                delivery.url.as_str(),
                delivery.event_type.as_str(),
                delivery.payload.as_slice(),
                status_str(DeliveryStatus::Pending),
                codec::millis(delivery.created_at),
            ],
        )
        .await?;
    Ok(inserted > 0)
}

fn no_delivery(delivery_id: &str) -> Error {
    Error::NotFound {
        what: "webhook delivery",
        id: delivery_id.to_owned(),
    }
}

async fn record_attempt_in_tx(
    conn: &Connection,
    delivery_id: &str,
    attempt: &DeliveryAttempt,
    now: DateTime<Utc>,
) -> Result<()> {
    // A successful attempt delivers; a failed one leaves the status as it is.
    let updated = conn
        .execute(
            "UPDATE webhook_deliveries
             SET status = CASE WHEN ?2 THEN ?3 ELSE status END,
                 failure_reason = CASE WHEN ?2 THEN NULL ELSE failure_reason END,
                 updated_at = ?4
             WHERE id = ?1",
            (
                delivery_id,
                attempt.succeeded,
                status_str(DeliveryStatus::Delivered),
                codec::millis(now),
            ),
        )
        .await?;
    if updated == 0 {
        return Err(no_delivery(delivery_id));
    }
    let latency_ms = i64::try_from(attempt.latency_ms).map_err(|_| Error::Encode {
        what: "attempt latency",
        detail: format!("{} ms is too long", attempt.latency_ms),
    })?;
    conn.execute(
        "INSERT INTO webhook_attempts (delivery_id, number, at, url, http_status, latency_ms,
                                       response_excerpt, error, succeeded)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (delivery_id, number) DO UPDATE SET
             at = excluded.at, url = excluded.url, http_status = excluded.http_status,
             latency_ms = excluded.latency_ms, response_excerpt = excluded.response_excerpt,
             error = excluded.error, succeeded = excluded.succeeded",
        libsql::params![
            delivery_id,
            attempt.number,
            codec::millis(attempt.at),
            attempt.url.as_str(),
            attempt.http_status,
            latency_ms,
            attempt.response_excerpt.as_deref(),
            attempt.error.as_deref(),
            attempt.succeeded,
        ],
    )
    .await?;
    Ok(())
}

/// Sets a delivery's status and failure reason.
async fn set_delivery_status(
    conn: &Connection,
    delivery_id: &str,
    status: DeliveryStatus,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    let updated = conn
        .execute(
            "UPDATE webhook_deliveries SET status = ?2, failure_reason = ?3, updated_at = ?4
             WHERE id = ?1",
            (delivery_id, status_str(status), reason, codec::millis(now)),
        )
        .await?;
    if updated == 0 {
        return Err(no_delivery(delivery_id));
    }
    Ok(())
}
