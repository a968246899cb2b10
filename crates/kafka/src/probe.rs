//! Whether the Kafka cluster answers, for readiness checks.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::{BaseProducer, Producer};

use crate::{KafkaConfig, Result};

/// One long-lived client (it never produces) that asks the cluster for its metadata.
#[derive(Clone)]
pub struct BrokerProbe {
    client: Arc<BaseProducer>,
}

impl BrokerProbe {
    pub fn new(config: &KafkaConfig, client_id: &str) -> Result<Self> {
        let mut client_config = config.client_config(client_id);
        config.apply_overrides(&mut client_config);
        Ok(Self {
            client: Arc::new(client_config.create()?),
        })
    }

    /// Ok when the cluster answers a metadata request within `timeout`.
    pub async fn check(&self, timeout: Duration) -> std::result::Result<(), String> {
        let client = Arc::clone(&self.client);
        tokio::task::spawn_blocking(move || {
            client
                .client()
                .fetch_metadata(None, timeout)
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

impl std::fmt::Debug for BrokerProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerProbe").finish_non_exhaustive()
    }
}
