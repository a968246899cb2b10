//! The REST API: routes, extractors that answer Confluent-style errors, and the one place
//! where [`ApiError`] becomes an HTTP status and an `error_code`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::SchemaRegistry;
use crate::error::ApiError;
use crate::store::{SchemaInput, SchemaView, SubjectVersionRef, VersionSelector, VersionView};

/// The Schema Registry media type, used for every answer.
const SR_CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Request body media types accepted (as Confluent does). A request without a content type is
/// accepted too.
const ACCEPTED_BODY_TYPES: [&str; 4] = [
    SR_CONTENT_TYPE,
    "application/vnd.schemaregistry+json",
    "application/json",
    "application/octet-stream",
];

pub(crate) fn router(registry: SchemaRegistry) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/config", get(config))
        .route("/schemas/types", get(schema_types))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/versions", get(versions_of_id))
        .route("/schemas/ids/{id}/subjects", get(subjects_of_id))
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}", post(lookup))
        .route("/subjects/{subject}/versions", get(versions).post(register))
        .route("/subjects/{subject}/versions/{version}", get(version))
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(version_schema),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(registry)
}

async fn root() -> Sr<serde_json::Value> {
    Sr(json!({}))
}

async fn config() -> Sr<serde_json::Value> {
    Sr(json!({ "compatibilityLevel": "BACKWARD" }))
}

async fn schema_types() -> Sr<[&'static str; 1]> {
    Sr(["AVRO"])
}

async fn schema_by_id(
    State(registry): State<SchemaRegistry>,
    SrPath(id): SrPath<String>,
) -> Result<Sr<SchemaView>, ApiError> {
    let id = parse_id(&id)?;
    Ok(Sr(registry.store.schema_by_id(id).await?))
}

async fn versions_of_id(
    State(registry): State<SchemaRegistry>,
    SrPath(id): SrPath<String>,
) -> Result<Sr<Vec<SubjectVersionRef>>, ApiError> {
    let id = parse_id(&id)?;
    Ok(Sr(registry.store.versions_of_id(id).await?))
}

async fn subjects_of_id(
    State(registry): State<SchemaRegistry>,
    SrPath(id): SrPath<String>,
) -> Result<Sr<Vec<String>>, ApiError> {
    let id = parse_id(&id)?;
    let mut subjects: Vec<String> = registry
        .store
        .versions_of_id(id)
        .await?
        .into_iter()
        .map(|v| v.subject)
        .collect();
    subjects.dedup();
    Ok(Sr(subjects))
}

async fn subjects(State(registry): State<SchemaRegistry>) -> Sr<Vec<String>> {
    Sr(registry.store.subjects().await)
}

async fn lookup(
    State(registry): State<SchemaRegistry>,
    SrPath(subject): SrPath<String>,
    SrBody(input): SrBody<SchemaInput>,
) -> Result<Sr<VersionView>, ApiError> {
    Ok(Sr(registry.store.lookup(&subject, &input).await?))
}

async fn versions(
    State(registry): State<SchemaRegistry>,
    SrPath(subject): SrPath<String>,
) -> Result<Sr<Vec<u32>>, ApiError> {
    Ok(Sr(registry.store.versions(&subject).await?))
}

async fn register(
    State(registry): State<SchemaRegistry>,
    SrPath(subject): SrPath<String>,
    SrBody(input): SrBody<SchemaInput>,
) -> Result<Sr<serde_json::Value>, ApiError> {
    let id = registry.store.clone().register(subject, input).await?;
    Ok(Sr(json!({ "id": id })))
}

async fn version(
    State(registry): State<SchemaRegistry>,
    SrPath((subject, version)): SrPath<(String, String)>,
) -> Result<Sr<VersionView>, ApiError> {
    let selector = parse_version(&version)?;
    Ok(Sr(registry.store.version(&subject, selector).await?))
}

/// The schema itself, unwrapped (Confluent's `.../versions/{version}/schema`).
async fn version_schema(
    State(registry): State<SchemaRegistry>,
    SrPath((subject, version)): SrPath<(String, String)>,
) -> Result<Response, ApiError> {
    let selector = parse_version(&version)?;
    let view = registry.store.version(&subject, selector).await?;
    Ok(sr_response(StatusCode::OK, view.schema.into_bytes()))
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Schema ids are positive integers; anything else names no schema.
fn parse_id(raw: &str) -> Result<u32, ApiError> {
    raw.parse::<u32>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(ApiError::SchemaNotFound)
}

/// `latest` (or `-1`, as Confluent allows) or a version in `1..=2^31-1`.
fn parse_version(raw: &str) -> Result<VersionSelector, ApiError> {
    if raw == "latest" || raw == "-1" {
        return Ok(VersionSelector::Latest);
    }
    raw.parse::<u32>()
        .ok()
        .filter(|v| (1..=i32::MAX.unsigned_abs()).contains(v))
        .map(VersionSelector::Number)
        .ok_or_else(|| ApiError::InvalidVersion(raw.to_owned()))
}

fn sr_response(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(SR_CONTENT_TYPE),
        )],
        body,
    )
        .into_response()
}

/// A JSON answer with the Schema Registry media type.
struct Sr<T>(T);

impl<T: Serialize> IntoResponse for Sr<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => sr_response(StatusCode::OK, body),
            Err(e) => {
                tracing::error!(error = %e, "serializing an answer failed");
                error_body(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    50001,
                    "Internal server error",
                )
            }
        }
    }
}

fn error_body(status: StatusCode, error_code: u32, message: &str) -> Response {
    let body = json!({ "error_code": error_code, "message": message }).to_string();
    sr_response(status, body.into_bytes())
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error_code) = match &self {
            ApiError::SubjectNotFound(_) => (StatusCode::NOT_FOUND, 40401),
            ApiError::VersionNotFound(_) => (StatusCode::NOT_FOUND, 40402),
            ApiError::SchemaNotFound => (StatusCode::NOT_FOUND, 40403),
            ApiError::InvalidSchema(_) | ApiError::UnsupportedSchemaType(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, 42201)
            }
            ApiError::InvalidVersion(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42202),
            ApiError::Incompatible(_) => (StatusCode::CONFLICT, 409),
            ApiError::UnprocessableBody(_) => (StatusCode::UNPROCESSABLE_ENTITY, 422),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, 400),
            ApiError::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, 415),
            ApiError::NotFound => (StatusCode::NOT_FOUND, 404),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, 405),
            ApiError::Storage(_) => (StatusCode::INTERNAL_SERVER_ERROR, 50001),
        };
        let message = self.to_string();
        if status.is_server_error() {
            tracing::error!(error_code, error = ?self, "request failed");
        } else {
            tracing::debug!(error_code, %message, "request refused");
        }
        error_body(status, error_code, &message)
    }
}

/// A JSON request body, accepted with the Schema Registry media types or `application/json`;
/// refusals are Confluent-style error bodies.
struct SrBody<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for SrBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(content_type) = req.headers().get(header::CONTENT_TYPE) {
            let media_type = content_type
                .to_str()
                .ok()
                .and_then(|v| v.split(';').next())
                .map(|v| v.trim().to_ascii_lowercase());
            if !media_type.is_some_and(|m| ACCEPTED_BODY_TYPES.contains(&m.as_str())) {
                return Err(ApiError::UnsupportedMediaType);
            }
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        serde_json::from_slice(&bytes)
            .map(SrBody)
            .map_err(|e| match e.classify() {
                serde_json::error::Category::Data => ApiError::UnprocessableBody(e.to_string()),
                _ => ApiError::BadRequest(e.to_string()),
            })
    }
}

/// Percent-decoded path parameters; refusals are Confluent-style error bodies.
struct SrPath<T>(T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for SrPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| SrPath(value))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_like_confluent() {
        assert_eq!(parse_version("latest").ok(), Some(VersionSelector::Latest));
        assert_eq!(parse_version("-1").ok(), Some(VersionSelector::Latest));
        assert_eq!(parse_version("3").ok(), Some(VersionSelector::Number(3)));
        assert_eq!(
            parse_version("2147483647").ok(),
            Some(VersionSelector::Number(2_147_483_647))
        );
        for bad in ["0", "-2", "2147483648", "abc", "", "1.0"] {
            assert!(
                matches!(parse_version(bad), Err(ApiError::InvalidVersion(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn ids_parse() {
        assert_eq!(parse_id("7").ok(), Some(7));
        assert!(parse_id("0").is_err());
        assert!(parse_id("x").is_err());
    }
}
