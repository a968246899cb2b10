//! What every service reports the same way: Prometheus metrics ([`metrics`]: the catalogue of
//! every series and the process-wide recorder) and W3C trace context ([`trace`]: carried on Kafka
//! messages and outgoing HTTP calls, so one trace follows a receipt through every service).
#![forbid(unsafe_code)]

pub mod metrics;
pub mod trace;
