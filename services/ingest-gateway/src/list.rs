//! `GET /v1/receipts`: a tenant's receipts by when they were received, page by page (the query's
//! rules: `receipts_domain::listing`; pages and cursors: `receipts_core`).
//!
//! The page is decided first (its receipts' ids and the cursor to the next page), so the
//! `Link` header leads the response; the body is streamed as the summaries are read, as one JSON
//! document or, for `Accept: application/x-ndjson`, one receipt per line.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use receipts_domain::listing::{ListError, ListRequest, Order, page_limit};
use receipts_domain::{ListQuery, ReceiptId, ReceiptSummary, Status};
use serde::Serialize;

use crate::app::AppState;
use crate::auth::Caller;
use crate::problem::ApiError;

pub const NDJSON: &str = "application/x-ndjson";
const PARAMETERS: [&str; 7] = ["from", "to", "status", "type", "order", "limit", "cursor"];

/// One receipt in a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ReceiptListItem)]
struct Item {
    id: ReceiptId,
    status: Status,
    receipt_type: Option<String>,
    received_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    status_url: String,
}

impl Item {
    fn new(summary: ReceiptSummary, public_url: &str) -> Self {
        Self {
            status_url: format!("{public_url}/v1/receipts/{}", summary.id),
            id: summary.id,
            status: summary.status,
            receipt_type: summary.receipt_type,
            received_at: summary.received_at,
            updated_at: summary.updated_at,
        }
    }
}

/// The query string, each known parameter at most once.
fn parameters(raw: Option<&str>) -> Result<BTreeMap<String, String>, ApiError> {
    let mut found = BTreeMap::new();
    for (name, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if !PARAMETERS.contains(&name.as_ref()) {
            return Err(invalid(&name, "unknown parameter"));
        }
        if found.insert(name.to_string(), value.into_owned()).is_some() {
            return Err(invalid(&name, "given more than once"));
        }
    }
    Ok(found)
}

fn invalid(parameter: &str, reason: impl Into<String>) -> ApiError {
    ApiError::InvalidQuery {
        parameter: parameter.chars().take(64).collect(),
        reason: reason.into(),
    }
}

fn time(name: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.to_utc())
        .map_err(|_| {
            invalid(
                name,
                "expected an RFC 3339 time such as 2026-11-01T00:00:00Z",
            )
        })
}

/// The filters the parameters ask for (absent ones stay `None`).
fn request(params: &BTreeMap<String, String>) -> Result<ListRequest, ApiError> {
    let get = |name: &str| params.get(name).map(String::as_str);
    let statuses = match get("status") {
        None => BTreeSet::new(),
        Some(list) => list
            .split(',')
            .map(|s| {
                Status::parse(s.trim()).ok_or_else(|| {
                    invalid(
                        "status",
                        format!(
                            "unknown status {s:?}; one or more (comma-separated) of RECEIVED, VALIDATED, ACCEPTED, REJECTED, FAILED"
                        ),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let receipt_type = match get("type") {
        Some("") => return Err(invalid("type", "must not be empty")),
        other => other.map(str::to_owned),
    };
    Ok(ListRequest {
        from: get("from").map(|v| time("from", v)).transpose()?,
        to: get("to").map(|v| time("to", v)).transpose()?,
        statuses,
        receipt_type,
        order: get("order")
            .map(|v| Order::parse(v).ok_or_else(|| invalid("order", "expected asc or desc")))
            .transpose()?,
    })
}

fn list_error(e: ListError) -> ApiError {
    let parameter = match e {
        ListError::Limit(_) => "limit",
        ListError::FromNotBeforeTo { .. } | ListError::WindowTooLong { .. } => "from",
        ListError::OutOfRange => "to",
    };
    invalid(parameter, e.to_string())
}

/// The query a continued list keeps: the cursor's, which filters given again must repeat.
fn continued(asked: &ListRequest, query: ListQuery) -> Result<ListQuery, ApiError> {
    let same_time = |asked: Option<DateTime<Utc>>, kept: DateTime<Utc>| {
        asked.is_none_or(|t| t.timestamp_millis() == kept.timestamp_millis())
    };
    if !same_time(asked.from, query.from) {
        return Err(ApiError::CursorMismatch("from"));
    }
    if !same_time(asked.to, query.to) {
        return Err(ApiError::CursorMismatch("to"));
    }
    if !asked.statuses.is_empty() && asked.statuses != query.statuses {
        return Err(ApiError::CursorMismatch("status"));
    }
    if asked.receipt_type.is_some() && asked.receipt_type != query.receipt_type {
        return Err(ApiError::CursorMismatch("type"));
    }
    if asked.order.is_some_and(|o| o != query.order) {
        return Err(ApiError::CursorMismatch("order"));
    }
    Ok(query)
}

fn wants_ndjson(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.split(';').next().is_some_and(|t| t.trim() == NDJSON))
}

/// One receipt per line.
fn ndjson_body(items: impl Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static) -> Body {
    Body::from_stream(batched(items.map(|item| {
        item.map(|mut line| {
            line.push(b'\n');
            Bytes::from(line)
        })
    })))
}

/// `{"receipts":[…],"next_cursor":…}`, the receipts written as they come.
fn json_body(
    items: impl Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static,
    next_cursor: Option<&str>,
) -> Body {
    let tail = format!(
        "],\"next_cursor\":{}}}",
        serde_json::to_string(&next_cursor).unwrap_or_else(|_| "null".into())
    );
    let separated = items.enumerate().map(|(n, item)| {
        item.map(|json| {
            let mut chunk = Vec::with_capacity(json.len() + 1);
            if n > 0 {
                chunk.push(b',');
            }
            chunk.extend(json);
            Bytes::from(chunk)
        })
    });
    let stream = futures::stream::once(async { Ok(Bytes::from_static(b"{\"receipts\":[")) })
        .chain(batched(separated))
        .chain(futures::stream::once(async move { Ok(Bytes::from(tail)) }));
    Body::from_stream(stream)
}

/// Joins the pieces that are ready into one write (up to [`BATCH`] receipts): one write per
/// receipt would cost a system call and a TCP segment each.
fn batched(
    pieces: impl Stream<Item = std::io::Result<Bytes>> + Send + 'static,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    pieces.ready_chunks(BATCH).map(|chunk| {
        let mut joined = Vec::new();
        for piece in chunk {
            joined.extend_from_slice(&piece?);
        }
        Ok(Bytes::from(joined))
    })
}

/// Receipts per write of a streamed list.
const BATCH: usize = 256;

/// A page of a list, as `application/json`.
#[derive(utoipa::ToSchema)]
#[schema(as = ReceiptPage)]
#[allow(dead_code)] // A schema only: the page is streamed by `json_body`.
struct Page {
    receipts: Vec<Item>,
    /// Continues the list (`cursor=`); `null` on the last page.
    next_cursor: Option<String>,
}

/// List receipts
///
/// The tenant's receipts by when they were received (newest first by default), page by page:
/// a page's `next_cursor` (also in the `Link: <…>; rel="next"` header) continues the same
/// query. With `Accept: application/x-ndjson` the page is one receipt per line and the cursor
/// is only in the `Link` header (its schema is the sequence of lines, as an array). The time
/// window is at most 31 days (default: the 30 days
/// before `to`).
#[utoipa::path(
    get,
    path = "/v1/receipts",
    tag = "receipts",
    operation_id = "list_receipts",
    security(("api_key" = ["read"])),
    params(
        ("from" = Option<DateTime<Utc>>, Query, description = "Received at or after (RFC 3339)."),
        ("to" = Option<DateTime<Utc>>, Query, description = "Received before (RFC 3339; default: now)."),
        ("status" = Option<String>, Query, example = "REJECTED,FAILED", description = "Only these statuses, comma-separated: RECEIVED, VALIDATED, ACCEPTED, REJECTED, FAILED."),
        ("type" = Option<String>, Query, min_length = 1, example = "retail-receipt/v1", description = "Only this receipt type (as submitted)."),
        ("order" = Option<String>, Query, pattern = "^(asc|desc)$", description = "`desc` (newest first, the default) or `asc`."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 10000, description = "Receipts per page (default 100)."),
        ("cursor" = Option<String>, Query, min_length = 1, description = "A page's `next_cursor`: continues its query (filters given again must repeat it)."),
    ),
    responses(
        (status = 200, description = "A page.", headers(("Link" = String, description = "`<…>; rel=\"next\"` while more pages follow.")), content(
            (Page = "application/json"),
            (Vec<Item> = "application/x-ndjson"),
        )),
        (status = 400, description = "An unknown, repeated or invalid parameter (`parameter` names it), an invalid cursor, or a cursor with other filters."),
    ),
)]
#[tracing::instrument(skip_all, fields(tenant = %caller.tenant))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = parameters(raw.as_deref())?;
    let asked = request(&params)?;
    let limit = params
        .get("limit")
        .map(|v| {
            v.parse::<usize>()
                .map_err(|_| invalid("limit", "expected a whole number"))
        })
        .transpose()?;
    let limit = page_limit(limit).map_err(list_error)?;
    let (query, position) = match params.get("cursor") {
        Some(cursor) => {
            let (query, last) = state
                .cursor_key
                .open(&caller.tenant, cursor)
                .map_err(ApiError::InvalidCursor)?;
            (continued(&asked, query)?, Some(last))
        }
        None => (asked.resolve(Utc::now()).map_err(list_error)?, None),
    };
    let page = state
        .receipts
        .page(&caller.tenant, &query, position, limit)
        .await
        .map_err(crate::routes::store_unavailable)?;
    let next_cursor = page
        .next
        .map(|last| state.cursor_key.seal(&caller.tenant, &query, last));
    tracing::debug!(
        receipts = page.ids.len(),
        more = next_cursor.is_some(),
        "list page"
    );

    let public_url = state.public_url.clone();
    let items = state
        .receipts
        .summaries(caller.tenant.clone(), page.ids, query.order)
        .map(move |summary| match summary {
            Ok(summary) => {
                serde_json::to_vec(&Item::new(summary, &public_url)).map_err(std::io::Error::other)
            }
            Err(e) => {
                // The status line is sent: all that is left is to cut the body short.
                tracing::warn!(error = %e, "store error while streaming a list");
                Err(std::io::Error::other(e))
            }
        });
    let ndjson = wants_ndjson(&headers);
    let body = if ndjson {
        ndjson_body(items)
    } else {
        json_body(items, next_cursor.as_deref())
    };
    let mut response = body.into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if ndjson { NDJSON } else { "application/json" }),
    );
    if let Some(cursor) = &next_cursor {
        let link = format!(
            "<{}/v1/receipts?cursor={cursor}&limit={limit}>; rel=\"next\"",
            state.public_url
        );
        if let Ok(link) = HeaderValue::from_str(&link) {
            response_headers.insert(header::LINK, link);
        }
    }
    response_headers.insert(header::VARY, HeaderValue::from_static("accept"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(raw: &str) -> Result<BTreeMap<String, String>, ApiError> {
        parameters(Some(raw))
    }

    #[test]
    fn parameters_are_known_and_single() {
        assert!(params("from=2026-01-01T00:00:00Z&limit=5").is_ok());
        assert!(matches!(
            params("colour=red"),
            Err(ApiError::InvalidQuery { parameter, .. }) if parameter == "colour"
        ));
        assert!(matches!(
            params("limit=1&limit=2"),
            Err(ApiError::InvalidQuery { parameter, .. }) if parameter == "limit"
        ));
    }

    #[test]
    fn filters_parse_precisely() {
        let req = request(
            &params("status=ACCEPTED,REJECTED&type=retail-receipt/v1&order=asc").expect("params"),
        )
        .expect("request");
        assert_eq!(req.statuses, [Status::Accepted, Status::Rejected].into());
        assert_eq!(req.receipt_type.as_deref(), Some("retail-receipt/v1"));
        assert_eq!(req.order, Some(Order::Asc));
        for (raw, parameter) in [
            ("status=DONE", "status"),
            ("status=accepted", "status"),
            ("order=up", "order"),
            ("from=yesterday", "from"),
            ("to=2026-13-01T00:00:00Z", "to"),
            ("type=", "type"),
        ] {
            assert!(
                matches!(request(&params(raw).expect("params")), Err(ApiError::InvalidQuery { parameter: p, .. }) if p == parameter),
                "{raw}"
            );
        }
    }

    #[test]
    fn a_continued_query_must_repeat_the_cursors_filters() {
        let query = ListRequest {
            statuses: [Status::Accepted].into(),
            ..Default::default()
        }
        .resolve(Utc::now())
        .expect("query");
        assert_eq!(
            continued(&ListRequest::default(), query.clone()).expect("same"),
            query
        );
        let same = ListRequest {
            statuses: [Status::Accepted].into(),
            from: Some(query.from),
            ..Default::default()
        };
        assert!(continued(&same, query.clone()).is_ok());
        let other = ListRequest {
            statuses: [Status::Rejected].into(),
            ..Default::default()
        };
        assert!(matches!(
            continued(&other, query.clone()),
            Err(ApiError::CursorMismatch("status"))
        ));
        let asc = ListRequest {
            order: Some(Order::Asc),
            ..Default::default()
        };
        assert!(matches!(
            continued(&asc, query),
            Err(ApiError::CursorMismatch("order"))
        ));
    }

    #[test]
    fn ndjson_is_chosen_by_accept() {
        let mut headers = HeaderMap::new();
        assert!(!wants_ndjson(&headers));
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json;q=0.5, application/x-ndjson"),
        );
        assert!(wants_ndjson(&headers));
    }
}
