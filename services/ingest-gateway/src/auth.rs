//! API-key authentication: `Authorization: Bearer <key>`, looked up by its SHA-256 hash. Every
//! failure answers the same 401, so the response never tells which part was wrong.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use receipts_domain::{ApiKey, ClientId, Scope, TenantId};

use crate::app::AppState;
use crate::problem::ApiError;

/// The authenticated client behind a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub client_id: ClientId,
    pub tenant: TenantId,
    pub scope: Scope,
}

impl Caller {
    /// Refuses callers whose key cannot write.
    pub fn require_write(&self, action: &'static str) -> Result<(), ApiError> {
        if self.scope.can_write() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(action))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let presented = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token)
            .ok_or(ApiError::Unauthenticated)?;
        let client = state
            .clients
            .client_by_key_hash(&ApiKey::hash_of(presented))
            .await
            .map_err(|error| {
                tracing::warn!(%error, "client lookup failed");
                ApiError::StoreUnavailable
            })?
            .filter(|c| c.is_active())
            .ok_or(ApiError::Unauthenticated)?;
        tracing::Span::current().record("tenant", client.tenant_id.as_str());
        Ok(Caller {
            client_id: client.id,
            tenant: client.tenant_id,
            scope: client.scope,
        })
    }
}

/// The token of an `Authorization: Bearer <token>` header value (scheme case-insensitive).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= 256)
        .then_some(token)
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer_token("Bearer rk_abc"), Some("rk_abc"));
        assert_eq!(bearer_token("bearer   rk_abc "), Some("rk_abc"));
        assert_eq!(bearer_token("Basic dXNlcg=="), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("rk_abc"), None);
        assert_eq!(bearer_token(&format!("Bearer {}", "x".repeat(300))), None);
    }
}
