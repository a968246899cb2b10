//! The generator's tenants: a read-write API key each (created in the platform's store, as
//! `receipts clients create` does) and a webhook endpoint each, pointing at the generator's
//! receiver, for the terminal statuses.

use receipts_domain::{Scope, TenantId};
use receipts_store::Stores;

use crate::receiver::Receiver;

/// One tenant the generator sends as.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: String,
    pub key: String,
}

/// Creates `count` tenants named `<prefix>-<n>`, each with a fresh read-write key.
pub async fn tenants(stores: &Stores, prefix: &str, count: usize) -> anyhow::Result<Vec<Tenant>> {
    let mut out = Vec::with_capacity(count);
    for n in 0..count {
        let id = format!("{prefix}-{n}");
        let created = receipts::clients::create(
            stores.clients.as_ref(),
            TenantId::parse(&id)?,
            Scope::ReadWrite,
            Some("load-tests".into()),
        )
        .await?;
        out.push(Tenant {
            id,
            key: created.key.expose().to_owned(),
        });
    }
    Ok(out)
}

/// Registers, for each tenant, an endpoint on `receiver` for the terminal statuses, and tells
/// the receiver its signing secret.
pub async fn endpoints(
    http: &reqwest::Client,
    base: &url::Url,
    tenants: &[Tenant],
    receiver: &Receiver,
) -> anyhow::Result<()> {
    for tenant in tenants {
        let secret = endpoint(
            http,
            base,
            tenant,
            &receiver.url(&tenant.id),
            "load-tests receiver",
        )
        .await?;
        receiver.trust(&tenant.id, &secret)?;
    }
    Ok(())
}

/// Registers `url` as one more of `tenant`'s webhook endpoints, for the terminal statuses;
/// returns its signing secret.
pub async fn endpoint(
    http: &reqwest::Client,
    base: &url::Url,
    tenant: &Tenant,
    url: &str,
    description: &str,
) -> anyhow::Result<String> {
    let response = http
        .post(base.join("v1/webhook-endpoints")?)
        .bearer_auth(&tenant.key)
        .json(&serde_json::json!({
            "url": url,
            "events": ["receipt.accepted", "receipt.rejected", "receipt.failed"],
            "description": description,
        }))
        .send()
        .await?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    anyhow::ensure!(
        status.is_success(),
        "creating {}'s webhook endpoint: {status} {body}",
        tenant.id
    );
    body["secret"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no secret in {body}"))
}
