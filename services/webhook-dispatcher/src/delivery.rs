//! Delivers the messages on `receipts.webhook-deliveries`: one signed POST per attempt, every
//! attempt logged, failures retried on the schedule's tiers, and a message given up on (schedule
//! exhausted, destination refused, endpoint disabled or deleted) marked failed and announced on
//! `receipts.webhook-failed`.
//!
//! The offset of a message is stored only after its attempt is logged and its retry (or failure
//! event) is produced: a crash in between sends it again, with the same `webhook-id`, and the
//! log keeps one record per attempt number.

use std::time::Duration;

use receipts_core::Webhooks;
use receipts_domain::event::now_millis;
use receipts_domain::{
    Delivery, DeliveryAttempt, Destination, EndpointHealth, EventMeta, NewDelivery, ReceiptEvent,
    WebhookFailed, WebhookRequested, WebhookSecret,
};
use receipts_kafka::{EventHandler, EventProducer, HandlerError, MessageContext, RetryableFailure};
use receipts_telemetry::metrics::{
    WEBHOOK_ATTEMPT_DURATION, WEBHOOK_DELIVERIES, WEBHOOK_ENDPOINTS_DISABLED,
};
use receipts_webhooks::{Attempt, Outcome, Sender};

use crate::SERVICE;
use crate::limits::Limiter;

pub(crate) struct Deliverer {
    pub webhooks: Webhooks,
    pub producer: EventProducer,
    pub sender: Sender,
    pub limiter: Limiter,
    pub disable_after: Duration,
}

/// Where a message goes now and what signs it.
struct Target {
    url: String,
    secrets: Vec<WebhookSecret>,
    /// The key its destination's limits are counted under.
    limit_key: String,
}

impl Deliverer {
    async fn deliver(
        &self,
        message: &WebhookRequested,
        context: &MessageContext,
    ) -> Result<(), HandlerError> {
        // The series this message belongs to: the number its first attempt has.
        let series = message.meta.attempt.max(1);
        let delivery = self.logged(message).await?;
        if !delivery.accepts(series) {
            delivery_counted("skipped");
            return Ok(());
        }
        let target = match self.target(message).await? {
            Ok(target) => target,
            Err(reason) => return self.give_up(message, series, &reason).await,
        };
        let permit = self
            .limiter
            .try_acquire(&target.limit_key)
            .map_err(|busy| HandlerError::Defer(busy.retry_in()))?;
        let attempt = self
            .sender
            .send(
                &target.url,
                &message.delivery_id,
                // As logged: every attempt and every copy of the message sends the same bytes.
                &delivery.payload,
                &target.secrets,
            )
            .await;
        drop(permit);
        metrics::histogram!(WEBHOOK_ATTEMPT_DURATION, "service" => SERVICE, "outcome" => attempt.label())
            .record(attempt.latency.as_secs_f64());
        let number = series - 1 + context.attempt;
        // Health first: a delivery seen as delivered implies its endpoint's health is recorded.
        let health = match (&message.destination, &attempt.outcome) {
            (Destination::Endpoint(id), Outcome::Delivered | Outcome::Failed { .. }) => Some(
                self.webhooks
                    .record_endpoint_result(
                        *id,
                        attempt.outcome == Outcome::Delivered,
                        attempt.at,
                        self.disable_after,
                        now_millis(),
                    )
                    .await?,
            ),
            _ => None,
        };
        if health == Some(EndpointHealth::DisabledNow) {
            metrics::counter!(WEBHOOK_ENDPOINTS_DISABLED, "service" => SERVICE).increment(1);
        }
        self.log_attempt(message, &target, series, number, &attempt)
            .await?;
        match attempt.outcome {
            Outcome::Delivered => {
                delivery_counted("delivered");
                Ok(())
            }
            Outcome::Refused(reason) => {
                self.give_up(message, series, &format!("refused: {reason}"))
                    .await
            }
            Outcome::Failed { .. } if health == Some(EndpointHealth::DisabledNow) => {
                let reason = format!(
                    "the endpoint was disabled: every delivery failed for {}",
                    humantime::format_duration(self.disable_after)
                );
                self.give_up(message, series, &reason).await
            }
            Outcome::Failed {
                kind,
                error,
                retry_after,
            } => {
                delivery_counted("retry_scheduled");
                Err(HandlerError::Retry(RetryableFailure {
                    kind,
                    message: error,
                    retry_after,
                }))
            }
        }
    }

    /// The message's delivery as logged; a message whose delivery was never logged is logged
    /// now.
    async fn logged(&self, message: &WebhookRequested) -> Result<Delivery, HandlerError> {
        let meta = &message.meta;
        Ok(
            match self.webhooks.delivery_by_id(&message.delivery_id).await? {
                Some(delivery) => delivery,
                None => {
                    self.webhooks
                        .record_delivery(NewDelivery {
                            id: message.delivery_id.clone(),
                            tenant_id: meta.tenant_id.clone(),
                            receipt_id: meta.receipt_id,
                            destination: message.destination.clone(),
                            url: message.url.clone(),
                            event_type: message.event_type,
                            payload: message.payload.clone(),
                            created_at: meta.occurred_at,
                        })
                        .await?
                }
            },
        )
    }

    /// The URL and secrets to use now: an endpoint's current ones (it may have moved or rotated
    /// since the message was planned), or the tenant's callback secrets. `Err` with the reason
    /// when there is nowhere to send to any more.
    async fn target(
        &self,
        message: &WebhookRequested,
    ) -> Result<Result<Target, String>, HandlerError> {
        let now = now_millis();
        match &message.destination {
            Destination::Endpoint(id) => {
                let endpoint = self.webhooks.endpoint_by_id(*id).await?;
                Ok(match endpoint {
                    None => Err("the endpoint was deleted".to_owned()),
                    Some(e) if !e.enabled => Err(format!(
                        "the endpoint is disabled ({})",
                        e.disabled_reason.as_deref().unwrap_or("no reason given")
                    )),
                    Some(e) => Ok(Target {
                        secrets: e.live_secrets(now).into_iter().map(|s| s.secret).collect(),
                        url: e.url,
                        limit_key: id.to_string(),
                    }),
                })
            }
            Destination::Callback => {
                let secrets = self
                    .webhooks
                    .callback_secrets(&message.meta.tenant_id, WebhookSecret::generate(), now)
                    .await?;
                Ok(Ok(Target {
                    url: message.url.clone(),
                    secrets: secrets.into_iter().map(|s| s.secret).collect(),
                    limit_key: format!("callback {}", origin(&message.url)),
                }))
            }
        }
    }

    async fn log_attempt(
        &self,
        message: &WebhookRequested,
        target: &Target,
        series: u32,
        number: u32,
        attempt: &Attempt,
    ) -> Result<(), HandlerError> {
        let succeeded = attempt.outcome == Outcome::Delivered;
        tracing::info!(
            receipt_id = %message.meta.receipt_id,
            webhook_id = %message.delivery_id,
            destination = %message.destination.key(),
            attempt = number,
            http_status = attempt.http_status,
            latency_ms = attempt.latency.as_millis() as u64,
            succeeded,
            error = attempt.error(),
            "webhook attempt"
        );
        let logged = DeliveryAttempt {
            number,
            at: attempt.at,
            url: target.url.clone(),
            http_status: attempt.http_status,
            latency_ms: u64::try_from(attempt.latency.as_millis()).unwrap_or(u64::MAX),
            response_excerpt: attempt.response_excerpt.clone(),
            error: attempt.error().map(str::to_owned),
            succeeded,
        };
        self.webhooks
            .record_attempt(&message.delivery_id, series, &logged, now_millis())
            .await?;
        Ok(())
    }

    /// Marks the delivery's series failed for good and announces it.
    async fn give_up(
        &self,
        message: &WebhookRequested,
        series: u32,
        reason: &str,
    ) -> Result<(), HandlerError> {
        tracing::warn!(
            receipt_id = %message.meta.receipt_id,
            webhook_id = %message.delivery_id,
            destination = %message.destination.key(),
            reason,
            "webhook delivery failed"
        );
        self.webhooks
            .fail_delivery(&message.delivery_id, series, reason, now_millis())
            .await?;
        let failed = WebhookFailed {
            meta: EventMeta::derived(&message.meta, "webhook-failed"),
            delivery_id: message.delivery_id.clone(),
            destination: message.destination.clone(),
            url: message.url.clone(),
            event_type: message.event_type,
            reason: reason.to_owned(),
        };
        self.producer.publish(&failed.into()).await?;
        delivery_counted("failed");
        Ok(())
    }
}

fn delivery_counted(outcome: &'static str) {
    metrics::counter!(WEBHOOK_DELIVERIES, "service" => SERVICE, "outcome" => outcome).increment(1);
}

/// `scheme://host:port` of a URL (callbacks to one server share its limits).
fn origin(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| url.to_owned())
}

impl EventHandler for Deliverer {
    async fn handle(
        &self,
        event: ReceiptEvent,
        context: &MessageContext,
    ) -> Result<(), HandlerError> {
        match event {
            ReceiptEvent::WebhookRequested(message) => self.deliver(&message, context).await,
            _ => Ok(()),
        }
    }

    async fn exhausted(
        &self,
        event: ReceiptEvent,
        context: &MessageContext,
        last: &RetryableFailure,
    ) -> Result<(), HandlerError> {
        let ReceiptEvent::WebhookRequested(message) = event else {
            return Ok(());
        };
        let reason = format!(
            "gave up after {} attempts; last failure ({}): {}",
            context.attempt, last.kind, last.message
        );
        self.give_up(&message, message.meta.attempt.max(1), &reason)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks_share_limits_per_origin() {
        assert_eq!(origin("https://a.example/x?y=1"), "https://a.example");
        assert_eq!(
            origin("http://127.0.0.1:8080/cb/1"),
            "http://127.0.0.1:8080"
        );
        assert_ne!(
            origin("http://127.0.0.1:8080/"),
            origin("http://127.0.0.1:8081/")
        );
    }
}
