//! Reading request bodies within a limit.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};

use crate::problem::ApiError;

/// How much of an oversized body is read and discarded before answering 413.
const DRAIN_LIMIT: usize = 1024 * 1024;

/// Reads the body, refusing more than `limit` bytes. An oversized body is still read (and
/// discarded) up to [`DRAIN_LIMIT`], so the client, which may still be sending, reliably gets the
/// 413 instead of a reset connection; beyond that the connection is simply closed.
pub(crate) async fn read_limited(
    headers: &HeaderMap,
    mut body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Refused unread only beyond what is drained anyway (a batch limit may exceed the drain).
    if declared.is_some_and(|n| n > limit.max(DRAIN_LIMIT) as u64) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut buffer = Vec::with_capacity(declared.map_or(0, |n| n.min(limit as u64) as usize));
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ApiError::UnreadableBody)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(data.len());
        if total <= limit {
            buffer.extend_from_slice(&data);
        } else if total > DRAIN_LIMIT {
            break;
        }
    }
    if total > limit {
        Err(ApiError::PayloadTooLarge { limit })
    } else {
        Ok(Bytes::from(buffer))
    }
}
