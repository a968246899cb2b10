//! An open-loop load generator for the receipts platform.
//!
//! Receipts are sent at fixed arrival times ([`schedule`]), whatever the platform answers, so a
//! slow platform shows as latency measured from the *intended* send time (no coordinated
//! omission). Each receipt is unique and valid, of every built-in type in turn, sent under many
//! tenants' keys ([`provision`]). Terminal statuses are observed through the platform's own
//! signed webhooks to a receiver inside the generator ([`receiver`]), with polling as a fallback;
//! at the end the mock registries' counts must show exactly one registration per accepted
//! receipt ([`generator`]). Figures go to a JSON summary ([`summary`]) and an HTML report with
//! charts ([`report`]).
#![forbid(unsafe_code)]

pub mod baseline;
pub mod bulk;
pub mod generator;
pub mod lag;
pub mod process;
pub mod provision;
pub mod receiver;
pub mod report;
pub mod scenarios;
pub mod schedule;
pub mod summary;
pub mod target;
