//! Configuration of the SQLite backend.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where and how the SQLite store keeps its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqliteConfig {
    /// The database file; its parent directory is created on open.
    pub path: PathBuf,
    /// How hard a commit waits for the disk (`PRAGMA synchronous`).
    pub synchronous: Synchronous,
    /// How long a write waits for another connection (or process) holding the write lock
    /// before it fails with "database is locked" (e.g. `"5s"`, `"250ms"`).
    #[serde(with = "humantime_serde")]
    pub busy_timeout: Duration,
}

impl SqliteConfig {
    /// The defaults, with the database at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            ..Self::default()
        }
    }
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("data/receipts.db"),
            synchronous: Synchronous::default(),
            busy_timeout: Duration::from_secs(5),
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

    fn parse(json: &str) -> Result<SqliteConfig, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn defaults_fill_missing_keys() {
        let config = parse("{}").expect("empty config is valid");
        assert_eq!(config, SqliteConfig::default());
        assert_eq!(config.path, PathBuf::from("data/receipts.db"));
        assert_eq!(config.synchronous, Synchronous::Full);
        assert_eq!(config.busy_timeout, Duration::from_secs(5));
    }

    #[test]
    fn durations_and_modes() {
        let config =
            parse(r#"{"path": "/tmp/x.db", "synchronous": "normal", "busy_timeout": "250ms"}"#)
                .expect("valid config");
        assert_eq!(config.synchronous, Synchronous::Normal);
        assert_eq!(config.busy_timeout, Duration::from_millis(250));
        for (text, expected) in [("750ms", 750), ("2s", 2_000), ("1m", 60_000)] {
            let json = format!(r#"{{"busy_timeout": "{text}"}}"#);
            assert_eq!(
                parse(&json).expect("valid duration").busy_timeout,
                Duration::from_millis(expected)
            );
        }
    }

    #[test]
    fn bad_values_are_refused_with_the_key() {
        for json in [
            r#"{"busy_timeout": "soon"}"#,
            r#"{"busy_timeout": -1}"#,
            r#"{"synchronous": "off"}"#,
        ] {
            assert!(parse(json).is_err(), "{json}");
        }
        let unknown = parse(r#"{"paht": "x.db"}"#).expect_err("unknown keys are refused");
        assert!(unknown.to_string().contains("paht"), "{unknown}");
    }
}
