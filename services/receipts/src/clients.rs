//! API client management (`receipts clients ...`) and the development key.

use std::io::Write;
use std::path::Path;

use receipts_domain::event::now_millis;
use receipts_domain::{ApiClient, ApiKey, Scope, TenantId};
use receipts_store::ClientStore;

/// A created client and its key, which is shown only this once.
pub struct Created {
    pub client: ApiClient,
    pub key: ApiKey,
}

pub async fn create(
    store: &dyn ClientStore,
    tenant: TenantId,
    scope: Scope,
    label: Option<String>,
) -> receipts_store::Result<Created> {
    let key = ApiKey::generate();
    let client = store
        .create_client(&key.new_client(tenant, scope, label), now_millis())
        .await?;
    Ok(Created { client, key })
}

/// What [`ensure_dev_key`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum DevKey {
    /// A new key was created and written (print it).
    Created(String),
    /// The key in the file is still valid.
    Existing,
}

/// Makes sure `file` holds a valid read-write key of tenant `dev`, creating one on first start
/// (or when the store no longer knows the key in the file).
pub async fn ensure_dev_key(store: &dyn ClientStore, file: &Path) -> anyhow::Result<DevKey> {
    if let Ok(existing) = std::fs::read_to_string(file) {
        let key = existing.trim();
        if let Some(client) = store.client_by_key_hash(&ApiKey::hash_of(key)).await?
            && client.is_active()
        {
            return Ok(DevKey::Existing);
        }
    }
    let tenant = TenantId::parse("dev").map_err(anyhow::Error::msg)?;
    let created = create(
        store,
        tenant,
        Scope::ReadWrite,
        Some("development key".into()),
    )
    .await?;
    write_secret(file, created.key.expose())?;
    Ok(DevKey::Created(created.key.expose().to_owned()))
}

/// Writes a secret readable by the owner only.
fn write_secret(file: &Path, secret: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(file)?;
    writeln!(out, "{secret}")
}
