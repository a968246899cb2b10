//! The OpenAPI 3.1 document of the HTTP API, generated from the handlers' annotations as the
//! router is built (`app::api`), so the document and the routes cannot drift apart; served at
//! `/openapi.json` (committed as `docs/openapi.json`) and shown by the page at `/docs`.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, PathItem, Ref, RefOr};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::app::AppState;
use crate::problem::PROBLEM_JSON;

/// The name of the API-key security scheme; its scopes are `read` and `read-write`.
pub const API_KEY: &str = "api_key";

/// The document's fixed parts; paths come from the router (`app::api`).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "receipts",
        description = include_str!("openapi_intro.md"),
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(ProblemDocument)),
    tags(
        (name = "receipts", description = "Submit receipts and follow them to their outcome."),
        (name = "webhooks", description = "Webhook endpoints, signing secrets and the delivery log."),
        (name = "receipt-types", description = "The receipt types submissions may name, with their JSON Schemas."),
        (name = "registries", description = "Outcomes reported by asynchronous registries (signed by the registry, not an API key)."),
        (name = "operations", description = "Health, readiness and metrics, for the platform's operators."),
        (name = "documentation", description = "This document and the page that shows it."),
    ),
    modifiers(&Security),
)]
pub struct ApiDoc;

/// An RFC 9457 problem document (`Content-Type: application/problem+json`). `type` is a stable
/// URN (`urn:receipts:problem:<slug>`) that clients may branch on; `detail` is for people.
#[derive(ToSchema)]
#[schema(
    as = Problem,
    example = json!({
        "type": "urn:receipts:problem:missing-header",
        "title": "Required header missing",
        "status": 400,
        "detail": "the Idempotency-Key header is required"
    })
)]
#[allow(dead_code)] // A schema only: the API writes `problem::Problem`.
pub struct ProblemDocument {
    #[schema(rename = "type", example = "urn:receipts:problem:receipt-not-found")]
    kind: String,
    title: String,
    #[schema(minimum = 400, maximum = 599)]
    status: u16,
    detail: String,
    /// `idempotency-key-conflict`: the receipt the key already names.
    receipt_id: Option<receipts_domain::ReceiptId>,
    /// `invalid-query-parameter`, `cursor-query-mismatch`: the parameter at fault.
    parameter: Option<String>,
    /// `payload-too-large`: the limit.
    limit_bytes: Option<u64>,
    /// `batch-too-large`: the limit.
    limit_items: Option<u64>,
}

/// `Authorization: Bearer <API key>`. A key's scope is `read` (reads only) or `read-write` (reads
/// and changes); operations name the scope they need.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            API_KEY,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("rk_…")
                    .description(Some(
                        "An API key issued by the operator (`receipts clients create`). Scope `read` reads; scope `read-write` also submits and changes.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every error response's body is a problem document, and the problems any authenticated
/// operation may answer are added to every operation rather than repeated on each: 401 (no
/// valid key), 403 (a `read` key on a `read-write` operation), 408 (the request took longer
/// than `request_timeout`) and 503 (broker or store unavailable, retry).
struct SharedProblems;

impl Modify for SharedProblems {
    fn modify(&self, openapi: &mut Document) {
        for item in openapi.paths.paths.values_mut() {
            for operation in operations(item) {
                let scopes: Vec<String> = operation
                    .security
                    .iter()
                    .flatten()
                    .flat_map(scopes)
                    .collect();
                let responses = &mut operation.responses.responses;
                let mut add = |status: &str, description: &str| {
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| problem_response(description));
                };
                if operation.security.is_some() {
                    add("401", "No valid API key (`WWW-Authenticate: Bearer`).");
                }
                if scopes.iter().any(|s| s == "read-write") {
                    add(
                        "403",
                        "The API key's scope is `read`; this needs `read-write`.",
                    );
                }
                add(
                    "408",
                    "The request took too long; retry (a submission with the same Idempotency-Key).",
                );
                add(
                    "503",
                    "The broker or the store is unavailable, or the gateway is at its limit of submissions in flight; retry after `Retry-After` seconds.",
                );
                // Handlers state their error statuses and why; the body is always a problem.
                for (status, response) in responses.iter_mut() {
                    let error = status.starts_with('4') || status.starts_with('5');
                    if let RefOr::T(response) = response
                        && error
                        && response.content.is_empty()
                    {
                        response
                            .content
                            .insert(PROBLEM_JSON.to_owned(), problem_content().into());
                    }
                }
            }
        }
    }
}

/// The API-key scopes a requirement names (the type offers no accessor; its JSON form is
/// `{"api_key": ["read-write"]}`).
fn scopes(requirement: &utoipa::openapi::security::SecurityRequirement) -> Vec<String> {
    serde_json::to_value(requirement)
        .ok()
        .and_then(|v| serde_json::from_value::<Vec<String>>(v.get(API_KEY)?.clone()).ok())
        .unwrap_or_default()
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

fn problem_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_JSON, problem_content())
        .into()
}

fn problem_content() -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("Problem")))
        .build()
}

/// The whole document, as `/openapi.json` serves it.
pub fn document() -> Document {
    let mut document = crate::app::api().into_openapi();
    // After the routes: the operations exist only once the router has added them.
    SharedProblems.modify(&mut document);
    document
}

/// The document as committed in `docs/openapi.json`: pretty JSON and a final newline.
pub fn document_json() -> String {
    let mut json = document()
        .to_pretty_json()
        .unwrap_or_else(|error| format!("{{\"error\":\"{error}\"}}"));
    json.push('\n');
    json
}

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "documentation",
    operation_id = "openapi",
    responses((status = 200, description = "This document.", content_type = "application/json", body = Object)),
)]
pub async fn openapi_json(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        state.openapi.clone(),
    )
        .into_response()
}

/// The interactive reference: Swagger UI, vendored from the `swagger-ui-dist` npm package
/// (`scripts/vendor-swagger-ui`), so the page needs nothing but this gateway.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "documentation",
    operation_id = "docs",
    responses((status = 200, description = "An HTML page showing this document.", content_type = "text/html", body = String)),
)]
pub async fn docs_page() -> Response {
    asset("text/html; charset=utf-8", DOCS_PAGE.as_bytes())
}

/// The page's script, stylesheet and licence files.
#[utoipa::path(
    get,
    path = "/docs/{asset}",
    tag = "documentation",
    operation_id = "docs_asset",
    params(("asset" = String, Path, description = "One of `swagger-ui-bundle.js`, `swagger-ui.css`, `docs.js`, `LICENSE`.")),
    responses(
        (status = 200, description = "The file.", content_type = "application/octet-stream", body = String),
        (status = 404, description = "No such file."),
    ),
)]
pub async fn docs_asset(
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Result<Response, crate::problem::ApiError> {
    let (content_type, bytes): (&str, &[u8]) = match name.as_str() {
        "swagger-ui-bundle.js" => ("text/javascript; charset=utf-8", SWAGGER_UI_JS),
        "swagger-ui.css" => ("text/css; charset=utf-8", SWAGGER_UI_CSS),
        "docs.js" => ("text/javascript; charset=utf-8", DOCS_JS.as_bytes()),
        "LICENSE" => ("text/plain; charset=utf-8", SWAGGER_UI_LICENSE.as_bytes()),
        _ => return Err(crate::problem::ApiError::NotFound),
    };
    Ok(asset(content_type, bytes))
}

const DOCS_PAGE: &str = include_str!("../assets/docs.html");
const DOCS_JS: &str = include_str!("../assets/docs.js");
const SWAGGER_UI_JS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js");
const SWAGGER_UI_CSS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui.css");
const SWAGGER_UI_LICENSE: &str = include_str!("../assets/swagger-ui/LICENSE");

fn asset(content_type: &'static str, bytes: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
            // Only this gateway's own files run on the page.
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'",
                ),
            ),
        ],
        bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// `docs/openapi.json` is the generated document. After changing the API, regenerate it:
    /// `RECEIPTS_BLESS=1 cargo test -p ingest-gateway --lib openapi`.
    #[test]
    fn the_committed_document_is_the_generated_one() {
        let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
        let generated = super::document_json();
        if std::env::var_os("RECEIPTS_BLESS").is_some() {
            std::fs::write(&committed, &generated).expect("write docs/openapi.json");
        }
        let on_disk = std::fs::read_to_string(&committed).unwrap_or_default();
        assert!(
            on_disk == generated,
            "docs/openapi.json differs from the generated document; regenerate it with \
             RECEIPTS_BLESS=1 cargo test -p ingest-gateway --lib openapi"
        );
    }
}
