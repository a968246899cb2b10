//! Webhook endpoints, signing secrets and the delivery log: each change is a domain rule
//! applied to a loaded record and stored with compare-and-set.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use receipts_domain::{
    CallbackSecrets, Delivery, DeliveryAttempt, Endpoint, EndpointHealth, EndpointId,
    EndpointPatch, NewDelivery, NewEndpoint, ReceiptId, StoredSecret, TenantId, WebhookEventType,
    WebhookSecret,
};
use receipts_store::{Cas, DeliveryStore, EndpointStore};

use crate::cas::{Change, modify};
use crate::{Error, Result};

/// A delivery with every attempt at it, in attempt order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryLog {
    pub delivery: Delivery,
    pub attempts: Vec<DeliveryAttempt>,
}

/// Webhook use cases; tenant-scoped where partners ask (another tenant's endpoint or delivery
/// does not exist for them).
#[derive(Clone)]
pub struct Webhooks {
    endpoints: Arc<dyn EndpointStore>,
    deliveries: Arc<dyn DeliveryStore>,
}

impl Webhooks {
    pub fn new(endpoints: Arc<dyn EndpointStore>, deliveries: Arc<dyn DeliveryStore>) -> Self {
        Self {
            endpoints,
            deliveries,
        }
    }

    // -- endpoints ---------------------------------------------------------------------------

    pub async fn create_endpoint(&self, new: NewEndpoint, now: DateTime<Utc>) -> Result<Endpoint> {
        let endpoint = Endpoint::new(new, now);
        self.endpoints.create_endpoint(&endpoint).await?;
        Ok(endpoint)
    }

    pub async fn endpoint(&self, tenant: &TenantId, id: EndpointId) -> Result<Option<Endpoint>> {
        Ok(self
            .endpoints
            .endpoint(id)
            .await?
            .filter(|e| e.tenant_id == *tenant))
    }

    /// The endpoint by id alone (the dispatcher, which knows the id from the message).
    pub async fn endpoint_by_id(&self, id: EndpointId) -> Result<Option<Endpoint>> {
        Ok(self.endpoints.endpoint(id).await?)
    }

    /// The tenant's endpoints, oldest first.
    pub async fn endpoints(&self, tenant: &TenantId) -> Result<Vec<Endpoint>> {
        Ok(self.endpoints.endpoints(tenant).await?)
    }

    /// The tenant's endpoints that want messages of `event` now.
    pub async fn subscribed_endpoints(
        &self,
        tenant: &TenantId,
        event: WebhookEventType,
    ) -> Result<Vec<Endpoint>> {
        let mut endpoints = self.endpoints.endpoints(tenant).await?;
        endpoints.retain(|e| e.wants(event));
        Ok(endpoints)
    }

    /// Changes an endpoint of `tenant`; `None` if there is no such endpoint.
    pub async fn update_endpoint(
        &self,
        tenant: &TenantId,
        id: EndpointId,
        patch: &EndpointPatch,
        now: DateTime<Utc>,
    ) -> Result<Option<Endpoint>> {
        self.change_endpoint(tenant, id, |endpoint| endpoint.patch(patch, now))
            .await
    }

    /// A new current secret for an endpoint of `tenant`; the previous one signs until
    /// `previous_until`. `None` if there is no such endpoint.
    pub async fn rotate_endpoint_secret(
        &self,
        tenant: &TenantId,
        id: EndpointId,
        secret: WebhookSecret,
        previous_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<Endpoint>> {
        self.change_endpoint(tenant, id, |endpoint| {
            endpoint.rotate_secret(secret.clone(), previous_until, now);
        })
        .await
    }

    async fn save_endpoint(&self, endpoint: Endpoint, expected: u64) -> Result<Cas> {
        Ok(self.endpoints.save_endpoint(&endpoint, expected).await?)
    }

    async fn change_endpoint(
        &self,
        tenant: &TenantId,
        id: EndpointId,
        mut change: impl FnMut(&mut Endpoint),
    ) -> Result<Option<Endpoint>> {
        let changed = modify(
            "webhook endpoint",
            &id.to_string(),
            || self.endpoint(tenant, id),
            |endpoint| {
                change(endpoint);
                Ok(Change::Write(()))
            },
            |endpoint, expected| self.save_endpoint(endpoint, expected),
        )
        .await?;
        Ok(changed.map(|(endpoint, ())| endpoint))
    }

    /// Deletes an endpoint of `tenant` (its deliveries stay in the log); false if there was none.
    pub async fn delete_endpoint(&self, tenant: &TenantId, id: EndpointId) -> Result<bool> {
        if self.endpoint(tenant, id).await?.is_none() {
            return Ok(false);
        }
        Ok(self.endpoints.delete_endpoint(id).await?)
    }

    /// Records the outcome of a delivery attempt made at `at` in the endpoint's health (see
    /// [`Endpoint::record_result`]); stores only what changed. An endpoint deleted meanwhile is
    /// left alone: [`EndpointHealth::Healthy`].
    pub async fn record_endpoint_result(
        &self,
        id: EndpointId,
        succeeded: bool,
        at: DateTime<Utc>,
        disable_after: Duration,
        now: DateTime<Utc>,
    ) -> Result<EndpointHealth> {
        let recorded = modify(
            "webhook endpoint",
            &id.to_string(),
            || self.endpoint_by_id(id),
            |endpoint| {
                let (health, changed) = endpoint.record_result(succeeded, at, disable_after, now);
                Ok(if changed {
                    Change::Write(health)
                } else {
                    Change::Keep(health)
                })
            },
            |endpoint, expected| self.save_endpoint(endpoint, expected),
        )
        .await?;
        Ok(recorded.map_or(EndpointHealth::Healthy, |(_, health)| health))
    }

    // -- callback secrets --------------------------------------------------------------------

    /// The tenant's secrets for `Callback-Url` deliveries that sign at `now`, current first;
    /// `initial` becomes the current one if the tenant has none yet (of concurrent first calls,
    /// exactly one `initial` wins and every caller gets it).
    pub async fn callback_secrets(
        &self,
        tenant: &TenantId,
        initial: WebhookSecret,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoredSecret>> {
        Ok(self
            .tenant_secrets(tenant, initial)
            .await?
            .secrets
            .live(now))
    }

    /// A new current callback secret; the previous one signs until `previous_until`.
    pub async fn rotate_callback_secret(
        &self,
        tenant: &TenantId,
        secret: WebhookSecret,
        previous_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoredSecret>> {
        let initial = WebhookSecret::generate();
        self.tenant_secrets(tenant, initial).await?;
        let rotated = modify(
            "callback secrets",
            tenant.as_str(),
            || async { Ok(self.endpoints.callback_secrets(tenant).await?) },
            |secrets| {
                secrets.secrets.rotate(secret.clone(), previous_until, now);
                Ok(Change::Write(()))
            },
            |secrets, expected| async move {
                Ok(self
                    .endpoints
                    .save_callback_secrets(&secrets, expected)
                    .await?)
            },
        )
        .await?;
        let (secrets, ()) = rotated.ok_or_else(|| Error::Contention {
            what: "callback secrets",
            id: tenant.to_string(),
            attempts: 1,
        })?;
        Ok(secrets.secrets.live(now))
    }

    /// The tenant's callback secrets, created with `initial` if it has none.
    async fn tenant_secrets(
        &self,
        tenant: &TenantId,
        initial: WebhookSecret,
    ) -> Result<CallbackSecrets> {
        if let Some(secrets) = self.endpoints.callback_secrets(tenant).await? {
            return Ok(secrets);
        }
        let first = CallbackSecrets::new(tenant.clone(), initial);
        match self.endpoints.save_callback_secrets(&first, 0).await? {
            Cas::Written => Ok(first),
            // Another caller created them first: theirs stand.
            Cas::Conflict => self
                .endpoints
                .callback_secrets(tenant)
                .await?
                .ok_or_else(|| Error::Contention {
                    what: "callback secrets",
                    id: tenant.to_string(),
                    attempts: 1,
                }),
        }
    }

    // -- deliveries --------------------------------------------------------------------------

    /// Records a planned delivery (idempotent: a delivery recorded before stays as it is) and
    /// returns it as stored.
    pub async fn record_delivery(&self, new: NewDelivery) -> Result<Delivery> {
        let delivery = Delivery::new(new);
        if self.deliveries.record_delivery(&delivery).await? {
            return Ok(delivery);
        }
        Ok(self
            .deliveries
            .delivery(&delivery.id)
            .await?
            .unwrap_or(delivery))
    }

    /// The delivery by id alone (the dispatcher).
    pub async fn delivery_by_id(&self, id: &str) -> Result<Option<Delivery>> {
        Ok(self.deliveries.delivery(id).await?)
    }

    /// A delivery of `tenant` with its attempts.
    pub async fn delivery(&self, tenant: &TenantId, id: &str) -> Result<Option<DeliveryLog>> {
        let Some(delivery) = self
            .deliveries
            .delivery(id)
            .await?
            .filter(|d| d.tenant_id == *tenant)
        else {
            return Ok(None);
        };
        let attempts = self.deliveries.attempts(id).await?;
        Ok(Some(DeliveryLog { delivery, attempts }))
    }

    /// Every delivery about a receipt of `tenant`, oldest first, with its attempts.
    pub async fn deliveries(
        &self,
        tenant: &TenantId,
        receipt: ReceiptId,
    ) -> Result<Vec<DeliveryLog>> {
        let mut logs = Vec::new();
        for delivery in self.deliveries.deliveries_of(receipt).await? {
            if delivery.tenant_id != *tenant {
                continue;
            }
            let attempts = self.deliveries.attempts(&delivery.id).await?;
            logs.push(DeliveryLog { delivery, attempts });
        }
        Ok(logs)
    }

    /// Records one attempt of the series starting at `series` (idempotent on its number), then
    /// its effect on the delivery's state.
    pub async fn record_attempt(
        &self,
        delivery_id: &str,
        series: u32,
        attempt: &DeliveryAttempt,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.deliveries.put_attempt(delivery_id, attempt).await?;
        self.change_delivery(delivery_id, |delivery| {
            delivery.record_attempt(series, attempt, now);
            Ok(())
        })
        .await
        .map(drop)
    }

    /// Gives up on the series starting at `series` of a delivery, for `reason`.
    pub async fn fail_delivery(
        &self,
        delivery_id: &str,
        series: u32,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.change_delivery(delivery_id, |delivery| {
            delivery.fail(series, reason, now);
            Ok(())
        })
        .await
        .map(drop)
    }

    /// Starts the series `series` of a delivery (a manual redelivery): pending again. Refused
    /// while the delivery is pending. `None` if there is no such delivery.
    pub async fn reopen_delivery(
        &self,
        delivery_id: &str,
        series: u32,
        now: DateTime<Utc>,
    ) -> Result<Option<Delivery>> {
        self.change_delivery(delivery_id, |delivery| Ok(delivery.reopen(series, now)?))
            .await
    }

    async fn change_delivery(
        &self,
        delivery_id: &str,
        mut change: impl FnMut(&mut Delivery) -> Result<()>,
    ) -> Result<Option<Delivery>> {
        let changed = modify(
            "webhook delivery",
            delivery_id,
            || async { Ok(self.deliveries.delivery(delivery_id).await?) },
            |delivery| change(delivery).map(Change::Write),
            |delivery, expected| async move {
                Ok(self.deliveries.save_delivery(&delivery, expected).await?)
            },
        )
        .await?;
        Ok(changed.map(|(delivery, ())| delivery))
    }
}
