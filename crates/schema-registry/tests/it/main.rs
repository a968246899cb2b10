//! Integration tests: the registry served over real HTTP on 127.0.0.1, port 0.

mod client;
mod compatibility;
mod concurrency;
mod helpers;
mod persistence;
mod rest;
