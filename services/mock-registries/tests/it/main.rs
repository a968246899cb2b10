//! Integration tests: every mock on 127.0.0.1, a random port, real HTTP through reqwest.

mod admin;
mod async_mode;
mod binary;
mod faults;
mod helpers;
mod logistics;
mod persistence;
mod tax;
