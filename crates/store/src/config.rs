//! `[store]`: which backend, where, and the backends' own settings.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use receipts_domain::Secret;
use serde::{Deserialize, Serialize};

pub use crate::scylladb::ScyllaLocation;
use crate::{Error, Result};

/// The URL schemes this build can open.
pub const SCHEMES: &[&str] = &["sqlite", "scylla"];

/// Where and how the platform keeps its state. Every service reads the same section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// The backend and where it is: `sqlite://<path>` (a relative path is relative to the
    /// working directory; `sqlite:///var/lib/receipts.db` is absolute).
    pub url: String,
    /// Settings of the SQLite backend.
    pub sqlite: SqliteOptions,
    /// Settings of the ScyllaDB backend (`scylla://host1:9042,host2:9042/<keyspace>?dc=<dc>`).
    pub scylla: ScyllaOptions,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self::sqlite("data/receipts.db")
    }
}

/// What a store URL points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    Sqlite(PathBuf),
    Scylla(ScyllaLocation),
}

impl StoreConfig {
    /// The defaults, with a SQLite database at `path`.
    pub fn sqlite(path: impl Into<PathBuf>) -> Self {
        Self {
            url: format!("sqlite://{}", path.into().display()),
            sqlite: SqliteOptions::default(),
            scylla: ScyllaOptions::default(),
        }
    }

    /// The backend and location `url` names; an unknown scheme is an error naming the schemes
    /// this build supports.
    pub fn location(&self) -> Result<StoreLocation> {
        let (scheme, rest) = self.url.split_once("://").ok_or_else(|| {
            Error::Config(format!(
                "store.url {:?} is not a URL; expected one of {}",
                self.url,
                supported()
            ))
        })?;
        match scheme {
            "sqlite" => {
                let path = rest.split(['?', '#']).next().unwrap_or_default();
                if path.is_empty() {
                    return Err(Error::Config(format!(
                        "store.url {:?} names no database file (sqlite://<path>)",
                        self.url
                    )));
                }
                Ok(StoreLocation::Sqlite(PathBuf::from(path)))
            }
            "scylla" => ScyllaLocation::parse(rest, &self.url).map(StoreLocation::Scylla),
            other => Err(Error::Config(format!(
                "store.url scheme {other:?} is not supported by this build; supported: {}",
                supported()
            ))),
        }
    }
}

fn supported() -> String {
    SCHEMES
        .iter()
        .map(|s| format!("{s}://"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Settings of the SQLite backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqliteOptions {
    /// How hard a commit waits for the disk (`PRAGMA synchronous`).
    pub synchronous: Synchronous,
    /// How long a write waits for another process holding the write lock before it fails with
    /// "database is locked" (e.g. `"5s"`, `"250ms"`).
    #[serde(with = "humantime_serde")]
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::default(),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// Settings of the ScyllaDB backend. Credentials and TLS live here (or in
/// `RECEIPTS_STORE__SCYLLA__*`), never in the URL, and never reach a log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScyllaOptions {
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Connect with TLS, verifying the nodes against the system's roots (and `ca_file`).
    pub tls: bool,
    /// A PEM file of CA certificates to trust besides the system's.
    pub ca_file: Option<PathBuf>,
    /// Replicas per data centre, for `receipts store migrate` when it creates the keyspace
    /// (NetworkTopologyStrategy). Empty: 3 in the URL's `dc` (or `datacenter1`).
    pub replication: BTreeMap<String, u32>,
    /// Create the keyspace with vnodes (`tablets = {'enabled': false}`): the idempotency
    /// reservation is a lightweight transaction, which tablet keyspaces do not support on every
    /// ScyllaDB release. Set `false` on a ScyllaDB before 6.0 (no tablets option at all).
    pub disable_tablets: bool,
    /// Client-side timeout of a single-partition request (reads and writes by key).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Client-side timeout of a paged scan (lists).
    #[serde(with = "humantime_serde")]
    pub scan_timeout: Duration,
}

impl Default for ScyllaOptions {
    fn default() -> Self {
        Self {
            username: None,
            password: None,
            tls: false,
            ca_file: None,
            replication: BTreeMap::new(),
            disable_tablets: true,
            request_timeout: Duration::from_secs(2),
            scan_timeout: Duration::from_secs(30),
        }
    }
}

/// `PRAGMA synchronous` in WAL mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Every commit is on disk before it returns: survives power loss. The default, because a
    /// 202 promises the receipt is never lost.
    #[default]
    Full,
    /// Commits survive a crash of the process but the last ones may be lost on power loss;
    /// much faster on slow disks.
    Normal,
}

impl Synchronous {
    pub(crate) fn pragma_value(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<StoreConfig, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn defaults_fill_missing_keys() {
        let config = parse("{}").expect("empty config is valid");
        assert_eq!(config, StoreConfig::default());
        assert_eq!(config.url, "sqlite://data/receipts.db");
        assert_eq!(
            config.location().expect("location"),
            StoreLocation::Sqlite(PathBuf::from("data/receipts.db"))
        );
        assert_eq!(config.sqlite.synchronous, Synchronous::Full);
        assert_eq!(config.sqlite.busy_timeout, Duration::from_secs(5));
    }

    #[test]
    fn urls_name_the_backend_and_the_place() {
        let at = |url: &str| {
            StoreConfig {
                url: url.into(),
                ..StoreConfig::default()
            }
            .location()
        };
        assert_eq!(
            at("sqlite:///var/lib/receipts.db").expect("absolute"),
            StoreLocation::Sqlite(PathBuf::from("/var/lib/receipts.db"))
        );
        assert_eq!(
            at("sqlite://receipts.db?mode=rwc").expect("query ignored"),
            StoreLocation::Sqlite(PathBuf::from("receipts.db"))
        );
        assert_eq!(
            at("scylla://db1,db2:19042/receipts?dc=eu").expect("scylla"),
            StoreLocation::Scylla(ScyllaLocation {
                nodes: vec!["db1:9042".into(), "db2:19042".into()],
                keyspace: "receipts".into(),
                local_dc: Some("eu".into()),
            })
        );
        let unknown = at("postgres://db1/receipts").expect_err("not built in");
        assert!(unknown.to_string().contains("postgres"), "{unknown}");
        assert!(
            unknown.to_string().contains("sqlite://, scylla://"),
            "{unknown}"
        );
        assert!(!unknown.is_transient());
        assert!(at("data/receipts.db").is_err(), "not a URL");
        assert!(at("sqlite://").is_err(), "no file");
    }

    #[test]
    fn options_and_bad_values() {
        let config = parse(
            r#"{"url": "sqlite:///tmp/x.db", "sqlite": {"synchronous": "normal", "busy_timeout": "250ms"}}"#,
        )
        .expect("valid config");
        assert_eq!(config.sqlite.synchronous, Synchronous::Normal);
        assert_eq!(config.sqlite.busy_timeout, Duration::from_millis(250));
        for json in [
            r#"{"sqlite": {"busy_timeout": "soon"}}"#,
            r#"{"sqlite": {"synchronous": "off"}}"#,
        ] {
            assert!(parse(json).is_err(), "{json}");
        }
        let unknown = parse(r#"{"path": "x.db"}"#).expect_err("unknown keys are refused");
        assert!(unknown.to_string().contains("path"), "{unknown}");
    }
}
