//! `GET /v1/receipt-types[/{name}/{version}]`: the receipt types this gateway accepts, with
//! their JSON Schemas, so partners can validate before sending; and the lifecycle headers of
//! deprecated types.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, NaiveTime};
use receipts_validation::types::{Status, TypeDefinition};
use serde::Serialize;
use serde_json::Value;

use crate::app::AppState;
use crate::auth::Caller;
use crate::problem::ApiError;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TypeSummary {
    /// `name/version`: the value of the `Receipt-Type` header.
    pub id: String,
    pub name: String,
    pub version: String,
    pub description: String,
    /// `active` or `deprecated` (still accepted, with `Deprecation` and `Sunset` headers).
    #[schema(value_type = String, pattern = "^(active|deprecated)$")]
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deprecated_since: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sunset: Option<NaiveDate>,
    /// Accepted `Content-Type`s.
    pub media_types: Vec<&'static str>,
    /// Other `Receipt-Type` names for one media type each.
    pub aliases: Vec<AliasSummary>,
    pub url: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AliasSummary {
    pub id: String,
    pub media_type: &'static str,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TypeList {
    pub receipt_types: Vec<TypeSummary>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TypeDetail {
    #[serde(flatten)]
    pub summary: TypeSummary,
    /// JSON Schema (2020-12) of the canonical JSON form.
    #[schema(value_type = Object)]
    pub schema: Value,
}

fn summary(state: &AppState, definition: &TypeDefinition) -> TypeSummary {
    TypeSummary {
        id: definition.id(),
        name: definition.name.clone(),
        version: definition.version.clone(),
        description: definition.description.clone(),
        status: definition.status,
        deprecated_since: definition.deprecated_since,
        sunset: definition.sunset,
        media_types: definition.formats.iter().map(|f| f.media_type()).collect(),
        aliases: definition
            .aliases
            .iter()
            .map(|a| AliasSummary {
                id: a.name.clone(),
                media_type: a.format.media_type(),
            })
            .collect(),
        url: format!(
            "{}/v1/receipt-types/{}/{}",
            state.public_url, definition.name, definition.version
        ),
    }
}

/// List receipt types
///
/// Every type a submission may name, active and deprecated.
#[utoipa::path(
    get,
    path = "/v1/receipt-types",
    tag = "receipt-types",
    operation_id = "list_receipt_types",
    security(("api_key" = ["read"])),
    responses((status = 200, description = "The types.", body = TypeList)),
)]
pub async fn list(State(state): State<AppState>, _caller: Caller) -> Json<TypeList> {
    let types = state.receipt_types.current();
    Json(TypeList {
        receipt_types: types.iter().map(|t| summary(&state, t)).collect(),
    })
}

/// Get a receipt type
///
/// One type with the JSON Schema (2020-12) of its canonical JSON form.
#[utoipa::path(
    get,
    path = "/v1/receipt-types/{name}/{version}",
    tag = "receipt-types",
    operation_id = "get_receipt_type",
    security(("api_key" = ["read"])),
    params(
        ("name" = String, Path, example = "retail-receipt"),
        ("version" = String, Path, example = "v1"),
    ),
    responses(
        (status = 200, description = "The type.", body = TypeDetail, headers(
            ("Deprecation" = String, description = "A deprecated type: `@<unix seconds>` (RFC 9745)."),
            ("Sunset" = String, description = "A deprecated type: an HTTP date (RFC 8594)."),
        )),
        (status = 404, description = "No such type."),
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    _caller: Caller,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let types = state.receipt_types.current();
    let definition = types
        .get(&format!("{name}/{version}"))
        .ok_or(ApiError::NotFound)?;
    let mut response = Json(TypeDetail {
        summary: summary(&state, definition),
        schema: definition.schema.clone(),
    })
    .into_response();
    if let (Status::Deprecated, Some(since), Some(sunset)) = (
        definition.status,
        definition.deprecated_since,
        definition.sunset,
    ) {
        deprecation_headers(response.headers_mut(), since, sunset);
    }
    Ok(response)
}

/// `Deprecation` (RFC 9745: `@` + Unix seconds) and `Sunset` (RFC 8594: an HTTP date), both at
/// the start of the day in UTC.
pub fn deprecation_headers(headers: &mut HeaderMap, since: NaiveDate, sunset: NaiveDate) {
    let midnight = |day: NaiveDate| day.and_time(NaiveTime::MIN).and_utc();
    let deprecation = format!("@{}", midnight(since).timestamp());
    let sunset = midnight(sunset)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    if let Ok(value) = HeaderValue::from_str(&deprecation) {
        headers.insert("deprecation", value);
    }
    if let Ok(value) = HeaderValue::from_str(&sunset) {
        headers.insert("sunset", value);
    }
}
