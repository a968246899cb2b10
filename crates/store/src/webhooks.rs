//! Webhook endpoints, signing secrets and the delivery log.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use receipts_domain::{
    Destination, EndpointId, ReceiptId, TenantId, WebhookEventType, WebhookSecret,
};
use serde::Serialize;

use crate::Result;

/// The `disabled_reason` of an endpoint its owner disabled ([`EndpointPatch::enabled`]).
pub const DISABLED_BY_OWNER: &str = "disabled by its owner";

/// The `disabled_reason` of an endpoint disabled automatically (by
/// [`WebhookStore::record_endpoint_result`]) after failing since `failing_since`, for longer
/// than `disable_after`. Every backend words it the same.
pub fn auto_disabled_reason(disable_after: Duration, failing_since: DateTime<Utc>) -> String {
    format!(
        "disabled automatically: every delivery has failed for longer than {} (since {})",
        humantime::format_duration(disable_after),
        failing_since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

/// A signing secret and, once rotated out, until when it still signs (rotation grace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSecret {
    pub secret: WebhookSecret,
    /// `None` for the current secret.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A tenant's webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: EndpointId,
    pub tenant_id: TenantId,
    pub url: String,
    pub description: Option<String>,
    /// The event types it receives; `None`: every terminal status change.
    pub events: Option<Vec<WebhookEventType>>,
    pub enabled: bool,
    /// Why it was disabled (by its owner, or automatically after failing for too long).
    pub disabled_reason: Option<String>,
    /// The current secret first, then rotated-out secrets still within their grace period.
    pub secrets: Vec<StoredSecret>,
    /// Since when every delivery to it has failed (cleared by a success).
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Endpoint {
    /// Whether it wants messages of `event`.
    pub fn subscribes_to(&self, event: WebhookEventType) -> bool {
        match &self.events {
            Some(events) => events.contains(&event),
            None => event.is_terminal(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEndpoint {
    pub id: EndpointId,
    pub tenant_id: TenantId,
    pub url: String,
    pub description: Option<String>,
    pub events: Option<Vec<WebhookEventType>>,
    pub secret: WebhookSecret,
}

/// Changes to an endpoint; `None` fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub description: Option<Option<String>>,
    /// `Some(None)` resets to "every terminal status change".
    pub events: Option<Option<Vec<WebhookEventType>>>,
    /// Enabling clears `disabled_reason` and `failing_since`; disabling by its owner records
    /// "disabled by its owner".
    pub enabled: Option<bool>,
}

/// What recording a delivery result did to its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointHealth {
    Healthy,
    /// Failing, but not yet for long enough to disable.
    Failing,
    /// This failure disabled it (it had only failed for longer than the allowed period).
    DisabledNow,
}

/// One webhook message to one destination, and every attempt at delivering it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// The `webhook-id` (stable for every attempt).
    pub id: String,
    #[serde(skip)]
    pub tenant_id: TenantId,
    pub receipt_id: ReceiptId,
    pub destination: Destination,
    pub url: String,
    pub event_type: WebhookEventType,
    #[serde(skip)]
    pub payload: Vec<u8>,
    pub status: DeliveryStatus,
    /// Why it failed for good (when `failed`).
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// In attempt order.
    pub attempts: Vec<DeliveryAttempt>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub id: String,
    pub tenant_id: TenantId,
    pub receipt_id: ReceiptId,
    pub destination: Destination,
    pub url: String,
    pub event_type: WebhookEventType,
    /// The exact body every attempt sends.
    pub payload: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

/// One HTTP attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryAttempt {
    /// 1 for the first attempt (a manual redelivery starts a new series at the next number).
    pub number: u32,
    pub at: DateTime<Utc>,
    pub url: String,
    pub http_status: Option<u16>,
    pub latency_ms: u64,
    /// The start of the response body (at most 1 KiB).
    pub response_excerpt: Option<String>,
    /// Why it failed without (or despite) a response: timeout, connection refused, redirect, ...
    pub error: Option<String>,
    pub succeeded: bool,
}

/// Endpoints, secrets and deliveries.
#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    async fn create_endpoint(&self, endpoint: &NewEndpoint) -> Result<Endpoint>;

    /// The endpoint, if it exists and belongs to `tenant`. Secrets past their grace period are
    /// left out (here and everywhere).
    async fn endpoint(&self, tenant: &TenantId, id: EndpointId) -> Result<Option<Endpoint>>;

    /// The endpoint by id alone (the dispatcher, which knows the id from the message).
    async fn endpoint_by_id(&self, id: EndpointId) -> Result<Option<Endpoint>>;

    /// Every endpoint of `tenant`, oldest first.
    async fn endpoints(&self, tenant: &TenantId) -> Result<Vec<Endpoint>>;

    /// Applies `patch`; `None` if there is no such endpoint of `tenant`.
    async fn update_endpoint(
        &self,
        tenant: &TenantId,
        id: EndpointId,
        patch: &EndpointPatch,
    ) -> Result<Option<Endpoint>>;

    /// Deletes the endpoint (its deliveries stay in the log); false if there was none.
    async fn delete_endpoint(&self, tenant: &TenantId, id: EndpointId) -> Result<bool>;

    /// Makes `secret` the current one; the previous current secret keeps signing until
    /// `previous_until` (a time already past ends it at once). Secrets rotated out earlier keep
    /// their own expiry. `None` if there is no such endpoint of `tenant`.
    async fn rotate_endpoint_secret(
        &self,
        tenant: &TenantId,
        id: EndpointId,
        secret: WebhookSecret,
        previous_until: DateTime<Utc>,
    ) -> Result<Option<Endpoint>>;

    /// The enabled endpoints of `tenant` that subscribe to `event`.
    async fn subscribed_endpoints(
        &self,
        tenant: &TenantId,
        event: WebhookEventType,
    ) -> Result<Vec<Endpoint>>;

    /// Records the outcome of a delivery to an endpoint: a success clears `failing_since`; a
    /// failure sets it if unset, and disables the endpoint (with a reason naming the period)
    /// when it has been failing for longer than `disable_after`.
    ///
    /// A failure of an endpoint that is already disabled is [`EndpointHealth::Failing`]; a result
    /// for an endpoint that no longer exists (deleted while a delivery was under way) changes
    /// nothing and is [`EndpointHealth::Healthy`]. The read-modify-write is atomic.
    async fn record_endpoint_result(
        &self,
        id: EndpointId,
        succeeded: bool,
        at: DateTime<Utc>,
        disable_after: Duration,
    ) -> Result<EndpointHealth>;

    /// The tenant's secrets for `Callback-Url` deliveries (current first); `initial` becomes the
    /// current one if the tenant has none yet. Concurrent first calls agree: exactly one of their
    /// `initial`s becomes current and every caller gets it.
    async fn callback_secrets(
        &self,
        tenant: &TenantId,
        initial: WebhookSecret,
    ) -> Result<Vec<StoredSecret>>;

    /// Makes `secret` the tenant's current callback secret; the previous keeps signing until
    /// `previous_until` (as [`WebhookStore::rotate_endpoint_secret`]).
    async fn rotate_callback_secret(
        &self,
        tenant: &TenantId,
        secret: WebhookSecret,
        previous_until: DateTime<Utc>,
    ) -> Result<Vec<StoredSecret>>;

    /// Records a delivery (status pending, no attempts). Idempotent: recording the same id
    /// again changes nothing.
    async fn record_delivery(&self, delivery: &NewDelivery) -> Result<()>;

    /// Records one attempt (idempotent on (delivery, number): a repeated number replaces the
    /// earlier record of it) and, when it succeeded, marks the delivery delivered (and clears any
    /// failure reason). [`Error::NotFound`](crate::Error::NotFound) if the delivery was never
    /// recorded (here and in the two below).
    async fn record_attempt(&self, delivery_id: &str, attempt: &DeliveryAttempt) -> Result<()>;

    /// Marks a delivery failed for good.
    async fn fail_delivery(&self, delivery_id: &str, reason: &str) -> Result<()>;

    /// Marks a delivery pending again (a manual redelivery).
    async fn reopen_delivery(&self, delivery_id: &str) -> Result<()>;

    /// A receipt's deliveries with their attempts, oldest first; empty for another tenant's.
    async fn deliveries(&self, tenant: &TenantId, receipt: ReceiptId) -> Result<Vec<Delivery>>;

    /// One delivery, if it exists and belongs to `tenant`.
    async fn delivery(&self, tenant: &TenantId, delivery_id: &str) -> Result<Option<Delivery>>;
}
