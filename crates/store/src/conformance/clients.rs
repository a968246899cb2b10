//! [`ClientStore`](crate::ClientStore).

use chrono::TimeDelta;
use receipts_domain::event::now_millis;
use receipts_domain::{ApiKey, ClientId, NewClient, Scope, TenantId};

use super::unique_tenant;
use crate::{Error, Stores};

fn new_client(tenant: &TenantId, scope: Scope, label: Option<&str>) -> NewClient {
    ApiKey::generate().new_client(tenant.clone(), scope, label.map(str::to_owned))
}

/// Clients are created as given, found by key hash, listed in id order (all, or one tenant's),
/// and revoked once; a revoked client is still found, marked revoked.
pub async fn clients_are_created_found_listed_and_revoked(stores: &Stores) {
    let (tenant, other) = (unique_tenant(), unique_tenant());
    let clients = &stores.clients;
    let at = now_millis();
    let a = new_client(&tenant, Scope::ReadWrite, Some("ops"));
    let b = new_client(&other, Scope::Read, None);
    let c = new_client(&tenant, Scope::Read, None);
    let created_a = clients.create_client(&a, at).await.expect("create");
    assert_eq!(
        (created_a.id, &created_a.tenant_id, created_a.scope),
        (a.id, &tenant, Scope::ReadWrite)
    );
    assert_eq!(
        (
            created_a.label.as_deref(),
            created_a.created_at,
            created_a.revoked_at
        ),
        (Some("ops"), at, None)
    );
    clients.create_client(&b, at).await.expect("create");
    clients
        .create_client(&c, at + TimeDelta::seconds(1))
        .await
        .expect("create");

    let found = clients
        .client_by_key_hash(&a.key_hash)
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(found, created_a);
    assert_eq!(
        clients.client_by_key_hash("nope").await.expect("lookup"),
        None
    );

    let ids =
        |list: Vec<receipts_domain::ApiClient>| list.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(
        ids(clients.clients(Some(&tenant)).await.expect("list")),
        [a.id, c.id]
    );
    let all = ids(clients.clients(None).await.expect("list"));
    let mine: Vec<ClientId> = all
        .into_iter()
        .filter(|id| [a.id, b.id, c.id].contains(id))
        .collect();
    assert_eq!(mine, [a.id, b.id, c.id], "id order is creation order");

    let revoked_at = at + TimeDelta::minutes(5);
    assert!(
        clients
            .revoke_client(a.id, revoked_at)
            .await
            .expect("revoke")
    );
    assert!(
        !clients
            .revoke_client(a.id, revoked_at + TimeDelta::minutes(1))
            .await
            .expect("revoke"),
        "revoked once"
    );
    assert!(
        !clients
            .revoke_client(ClientId::new(), at)
            .await
            .expect("revoke")
    );
    let found = clients
        .client_by_key_hash(&a.key_hash)
        .await
        .expect("lookup")
        .expect("still found");
    assert_eq!(
        found.revoked_at,
        Some(revoked_at),
        "the first revocation stays"
    );
    assert!(!found.is_active());
}

/// Two clients can never share an id or a key hash.
pub async fn ids_and_key_hashes_are_unique(stores: &Stores) {
    let tenant = unique_tenant();
    let clients = &stores.clients;
    let first = new_client(&tenant, Scope::Read, None);
    clients
        .create_client(&first, now_millis())
        .await
        .expect("create");
    let same_hash = NewClient {
        id: ClientId::new(),
        ..new_client(&tenant, Scope::ReadWrite, None)
    };
    let same_hash = NewClient {
        key_hash: first.key_hash.clone(),
        ..same_hash
    };
    let same_id = NewClient {
        id: first.id,
        ..new_client(&tenant, Scope::Read, None)
    };
    for clash in [same_hash, same_id] {
        let error = clients
            .create_client(&clash, now_millis())
            .await
            .expect_err("refused");
        assert!(matches!(error, Error::AlreadyExists { .. }), "{error}");
        assert!(!error.is_transient());
    }
    assert_eq!(clients.clients(Some(&tenant)).await.expect("list").len(), 1);
}
