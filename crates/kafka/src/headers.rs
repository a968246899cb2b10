//! Kafka header names. Every event carries `event_id`, `event_type` and `traceparent`;
//! dead-lettered messages also carry where they came from and why they failed.

pub const EVENT_ID: &str = "event_id";
pub const EVENT_TYPE: &str = "event_type";
pub const TRACEPARENT: &str = "traceparent";

pub const ORIGINAL_TOPIC: &str = "original_topic";
pub const ORIGINAL_PARTITION: &str = "original_partition";
pub const ORIGINAL_OFFSET: &str = "original_offset";
pub const ATTEMPT: &str = "attempt";
pub const ERROR_KIND: &str = "error_kind";
pub const ERROR_MESSAGE: &str = "error_message";
pub const FAILED_AT: &str = "failed_at";

/// Longest error message copied into a header.
pub const MAX_ERROR_MESSAGE: usize = 1024;
