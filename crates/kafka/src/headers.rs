//! Kafka header names. Every event carries `event_id`, `event_type` and `traceparent`; retried
//! and dead-lettered messages also carry where they came from, which attempt is next, when it is
//! due and why the last one failed.

pub const EVENT_ID: &str = "event_id";
pub const EVENT_TYPE: &str = "event_type";
pub const TRACEPARENT: &str = "traceparent";

pub const ORIGINAL_TOPIC: &str = "original_topic";
pub const ORIGINAL_PARTITION: &str = "original_partition";
pub const ORIGINAL_OFFSET: &str = "original_offset";
pub const ATTEMPT: &str = "attempt";
/// When a retry becomes due (epoch milliseconds).
pub const DUE_AT: &str = "due_at";
/// When the first attempt was made (epoch milliseconds): retries stop at the horizon after it.
pub const FIRST_ATTEMPT_AT: &str = "first_attempt_at";
pub const ERROR_KIND: &str = "error_kind";
pub const ERROR_MESSAGE: &str = "error_message";
pub const FAILED_AT: &str = "failed_at";
/// On a replayed dead letter: `<dead-letter topic>:<partition>:<offset>` it was replayed from.
pub const REPLAYED_FROM: &str = "replayed_from";

/// Longest error message copied into a header.
pub const MAX_ERROR_MESSAGE: usize = 1024;

/// Headers a retry or dead-letter copy sets anew rather than forwarding.
pub const RETRY_BOOKKEEPING: &[&str] = &[
    ORIGINAL_TOPIC,
    ORIGINAL_PARTITION,
    ORIGINAL_OFFSET,
    ATTEMPT,
    DUE_AT,
    FIRST_ATTEMPT_AT,
    ERROR_KIND,
    ERROR_MESSAGE,
    FAILED_AT,
    REPLAYED_FROM,
];
