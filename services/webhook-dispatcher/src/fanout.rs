//! Turns each status change into webhook messages: one per subscribed endpoint of the tenant,
//! plus one to the receipt's `Callback-Url` for a terminal status. Each message is logged as a
//! pending delivery, then published on `receipts.webhook-deliveries`. Both steps are idempotent
//! (the message id derives from the status change and the destination), so handling the same
//! change twice after a crash produces the same messages, which the delivery side sends once.

use receipts_core::Webhooks;
use receipts_domain::{
    Destination, Endpoint, EventMeta, NewDelivery, ReceiptEvent, StatusChanged, WebhookEventType,
    WebhookRequested, webhook_id,
};
use receipts_kafka::{EventHandler, EventProducer, HandlerError, MessageContext};
use url::Url;

use crate::payload;

pub(crate) struct Fanout {
    pub webhooks: Webhooks,
    pub producer: EventProducer,
    pub public_url: Option<Url>,
}

/// Where one status change goes: (destination, URL).
fn destinations(
    change: &StatusChanged,
    event_type: WebhookEventType,
    endpoints: Vec<Endpoint>,
) -> Vec<(Destination, String)> {
    let callback = change
        .callback_url
        .as_ref()
        .filter(|_| event_type.is_terminal())
        .map(|url| (Destination::Callback, url.as_str().to_owned()));
    endpoints
        .into_iter()
        .map(|e| (Destination::Endpoint(e.id), e.url))
        .chain(callback)
        .collect()
}

impl Fanout {
    async fn fan_out(&self, change: &StatusChanged) -> Result<(), HandlerError> {
        let Some(event_type) = WebhookEventType::for_status(change.to) else {
            return Ok(());
        };
        let meta = &change.meta;
        let endpoints = self
            .webhooks
            .subscribed_endpoints(&meta.tenant_id, event_type)
            .await?;
        let targets = destinations(change, event_type, endpoints);
        if targets.is_empty() {
            return Ok(());
        }
        let body = payload::render(change, event_type, self.public_url.as_ref());
        for (destination, url) in targets {
            let id = webhook_id(meta.event_id, &destination);
            self.webhooks
                .record_delivery(NewDelivery {
                    id: id.clone(),
                    tenant_id: meta.tenant_id.clone(),
                    receipt_id: meta.receipt_id,
                    destination: destination.clone(),
                    url: url.clone(),
                    event_type,
                    payload: body.clone(),
                    created_at: meta.occurred_at,
                })
                .await?;
            let requested = WebhookRequested {
                meta: EventMeta::derived(meta, &format!("webhook:{}", destination.key())),
                delivery_id: id.clone(),
                destination,
                url,
                event_type,
                payload: body.clone(),
            };
            self.producer.publish(&requested.into()).await?;
            tracing::debug!(receipt_id = %meta.receipt_id, webhook_id = %id, event_type = %event_type, "webhook message planned");
        }
        Ok(())
    }
}

impl EventHandler for Fanout {
    async fn handle(
        &self,
        event: ReceiptEvent,
        _context: &MessageContext,
    ) -> Result<(), HandlerError> {
        match event {
            ReceiptEvent::StatusChanged(change) => self.fan_out(&change).await,
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use receipts_domain::{
        CallbackUrl, EndpointId, NewEndpoint, ReceiptId, Status, TenantId, WebhookSecret,
    };

    use super::*;

    fn change(to: Status, callback: Option<&str>) -> StatusChanged {
        StatusChanged {
            meta: EventMeta::new(ReceiptId::new(), TenantId::parse("acme").expect("tenant")),
            from: Status::Validated,
            to,
            receipt_type: "retail-receipt/v1".into(),
            callback_url: callback.map(|u| CallbackUrl::parse(u).expect("url")),
            reasons: vec![],
            registrations: vec![],
            failures: vec![],
        }
    }

    fn endpoint(url: &str) -> Endpoint {
        Endpoint::new(
            NewEndpoint {
                id: EndpointId::new(),
                tenant_id: TenantId::parse("acme").expect("tenant"),
                url: url.into(),
                description: None,
                events: None,
                secret: WebhookSecret::generate(),
            },
            chrono::Utc::now(),
        )
    }

    #[test]
    fn terminal_changes_go_to_endpoints_and_the_callback_url() {
        let ep = endpoint("https://a.example/hook");
        let targets = destinations(
            &change(Status::Accepted, Some("https://partner.example/cb")),
            WebhookEventType::Accepted,
            vec![ep.clone()],
        );
        assert_eq!(
            targets,
            vec![
                (
                    Destination::Endpoint(ep.id),
                    "https://a.example/hook".to_owned()
                ),
                (
                    Destination::Callback,
                    "https://partner.example/cb".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn the_callback_url_hears_only_of_terminal_changes() {
        let ep = endpoint("https://a.example/hook");
        let targets = destinations(
            &change(Status::Validated, Some("https://partner.example/cb")),
            WebhookEventType::Validated,
            vec![ep.clone()],
        );
        assert_eq!(targets, vec![(Destination::Endpoint(ep.id), ep.url)]);
    }
}
