//! The registrar against a real broker (tansu) and the mock registries: outcomes, the retry
//! ladder, Retry-After, outages, rejections, the horizon, asynchronous registries, poison and
//! dead-letter replay.

mod admin;
mod dead_letters;
mod helpers;
mod kill;
mod outcomes;
mod retries;
