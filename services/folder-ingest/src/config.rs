//! `[folder_ingest]`, and the service's whole configuration.

use std::path::PathBuf;
use std::time::Duration;

use receipts_domain::Secret;
use receipts_runtime::TelemetryConfig;
use receipts_service::{Admin, AdminConfig, Readiness, ServiceConfig};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::gateway;
use crate::metrics::SERVICE;

/// The gateway's own limit on items per batch.
pub const MAX_BATCH_ITEMS: usize = 1000;

/// `[folder_ingest]`: the folder, the gateway, and how fast and in what shape records are sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// The watched folder (created if missing, with `done/`, `rejected/` and
    /// `.receipts-ingest/` in it).
    pub dir: PathBuf,
    /// The gateway's base URL.
    pub gateway_url: Url,
    /// A read-write API key of the tenant the receipts belong to
    /// (`RECEIPTS_FOLDER_INGEST__API_KEY`; never logged).
    pub api_key: Option<Secret>,
    /// The receipt type of every file's documents (unset: `retail-receipt/v1`, and
    /// `retail-receipt-xml/v1` for XML files).
    pub receipt_type: Option<String>,
    /// The receipt type of XML files (unset: `receipt_type`, else `retail-receipt-xml/v1`).
    pub xml_receipt_type: Option<String>,
    /// Records per batch request (at most the gateway's 1,000).
    pub batch_size: usize,
    /// Bytes per batch request (the gateway's limit is 16 MiB).
    pub max_batch_bytes: usize,
    /// Batch requests in flight.
    pub concurrency: usize,
    /// Records per second at most (0: no limit). With a limit, a batch holds at most one
    /// second's worth.
    pub rate: u32,
    /// How long a file must stay unchanged before it is taken.
    #[serde(with = "humantime_serde")]
    pub quiet_period: Duration,
    /// How often the folder is looked at.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// A larger record is refused (and never held in memory whole).
    pub max_record_bytes: usize,
    /// One request to the gateway.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// How long one batch is retried while the gateway fails (transport errors, 429, 5xx) before
    /// the file is left for the next scan (`--once`: the command fails).
    #[serde(with = "humantime_serde")]
    pub give_up_after: Duration,
    /// After submitting a file, poll every accepted receipt until its status is terminal and
    /// add the REJECTED and FAILED ones to the file's report.
    pub wait: bool,
    /// How long `wait` polls a file's receipts at most.
    #[serde(with = "humantime_serde")]
    pub wait_timeout: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("inbox"),
            gateway_url: Url::parse("http://127.0.0.1:8080/").expect("a literal URL"),
            api_key: None,
            receipt_type: None,
            xml_receipt_type: None,
            batch_size: 500,
            max_batch_bytes: 8 * 1024 * 1024,
            concurrency: 2,
            rate: 0,
            quiet_period: Duration::from_secs(2),
            poll_interval: Duration::from_secs(5),
            max_record_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(60),
            give_up_after: Duration::from_secs(300),
            wait: false,
            wait_timeout: Duration::from_secs(600),
        }
    }
}

impl IngestConfig {
    /// Checks the values; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self
            .api_key
            .as_ref()
            .is_none_or(|k| k.expose().trim().is_empty())
        {
            return Err("folder_ingest.api_key is required (RECEIPTS_FOLDER_INGEST__API_KEY; `receipts ingest-folder`: --key or RECEIPTS_KEY)".into());
        }
        if !(1..=MAX_BATCH_ITEMS).contains(&self.batch_size) {
            return Err(format!(
                "folder_ingest.batch_size must be 1 to {MAX_BATCH_ITEMS}, not {}",
                self.batch_size
            ));
        }
        if self.concurrency == 0 {
            return Err("folder_ingest.concurrency must be at least 1".into());
        }
        if self.max_record_bytes == 0 {
            return Err("folder_ingest.max_record_bytes must be at least 1".into());
        }
        if self.max_batch_bytes < self.max_record_bytes {
            return Err(format!(
                "folder_ingest.max_batch_bytes ({}) must be at least folder_ingest.max_record_bytes ({})",
                self.max_batch_bytes, self.max_record_bytes
            ));
        }
        if !matches!(self.gateway_url.scheme(), "http" | "https") {
            return Err(format!(
                "folder_ingest.gateway_url must be http(s), not {}",
                self.gateway_url
            ));
        }
        Ok(())
    }

    /// The API key (after [`IngestConfig::validate`]).
    pub fn key(&self) -> Secret {
        self.api_key.clone().unwrap_or_else(|| Secret::new(""))
    }
}

/// Everything the `folder-ingest` service reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FolderIngestConfig {
    /// `/livez`, `/readyz` (the gateway answers, the folder exists), `/metrics`.
    pub admin: AdminConfig,
    pub telemetry: TelemetryConfig,
    pub folder_ingest: IngestConfig,
}

impl ServiceConfig for FolderIngestConfig {
    fn service(&self) -> String {
        SERVICE.into()
    }

    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }

    fn admin(&self) -> Result<Option<Admin>, receipts_service::Error> {
        let config = &self.folder_ingest;
        config
            .validate()
            .map_err(|e| receipts_service::Error::setup("[folder_ingest]", e))?;
        let gateway = gateway::client(&config.gateway_url, &config.key(), Duration::from_secs(2))
            .map_err(|e| receipts_service::Error::setup("the gateway client", e))?;
        let dir = config.dir.clone();
        let readiness = Readiness::default()
            .check("gateway", move || {
                let gateway = gateway.clone();
                async move { gateway.live().await.map_err(|e| e.to_string()) }
            })
            .check("folder", move || {
                let dir = dir.clone();
                async move {
                    match tokio::fs::metadata(&dir).await {
                        Ok(m) if m.is_dir() => Ok(()),
                        Ok(_) => Err(format!("{} is not a directory", dir.display())),
                        Err(e) => Err(format!("{}: {e}", dir.display())),
                    }
                }
            });
        Ok(Some(Admin {
            listen: self.admin.listen,
            readiness,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_only_a_key() {
        let mut config = IngestConfig::default();
        assert!(config.validate().expect_err("no key").contains("api_key"));
        config.api_key = Some(Secret::new("k"));
        config.validate().expect("valid");
        config.batch_size = 1001;
        assert!(
            config
                .validate()
                .expect_err("too big")
                .contains("batch_size")
        );
    }

    #[test]
    fn a_file_like_the_charts_loads() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("folder-ingest.toml");
        std::fs::write(
            &file,
            "[folder_ingest]\ndir = \"/var/lib/receipts/inbox\"\ngateway_url = \"http://gw:8080/\"\n\
             batch_size = 200\nrate = 50\nquiet_period = \"3s\"\nwait = true\nwait_timeout = \"1h\"\n\
             [admin]\nlisten = \"0.0.0.0:9090\"\n[telemetry]\nlog_format = \"json\"\n",
        )
        .expect("write");
        let config: FolderIngestConfig = receipts_runtime::load_config(Some(&file)).expect("loads");
        let ingest = &config.folder_ingest;
        assert_eq!(ingest.dir, PathBuf::from("/var/lib/receipts/inbox"));
        assert_eq!(
            (ingest.batch_size, ingest.rate, ingest.wait),
            (200, 50, true)
        );
        assert_eq!(ingest.quiet_period, Duration::from_secs(3));
        assert_eq!(ingest.wait_timeout, Duration::from_secs(3600));
        assert_eq!(ingest.api_key, None);
    }

    #[test]
    fn the_key_never_prints() {
        let config = IngestConfig {
            api_key: Some(Secret::new("hunter2")),
            ..IngestConfig::default()
        };
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
