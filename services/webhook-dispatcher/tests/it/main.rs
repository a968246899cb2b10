//! The webhook dispatcher against real parts: tansu, a SQLite file and HTTP receivers on
//! 127.0.0.1. Signatures, the retry schedule, Retry-After, redirects, isolation between
//! destinations, the SSRF guard, endpoint auto-disable, and kill -9 of a real dispatcher process.

mod isolation;
mod kill;
mod retries;
mod signing;
mod ssrf;
mod support;
