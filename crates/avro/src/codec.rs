//! The registry-backed codec: Confluent wire format with the topic-name subject strategy
//! (`<topic>-value`), the Confluent default, so other teams' standard deserializers just work.

use std::time::Duration;

use receipts_domain::{EventKind, ReceiptEvent};
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::{DecodeError, Error, Result, mapping, schemas};

/// Where the Schema Registry is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchemaRegistryConfig {
    pub url: Url,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// HTTP basic authentication (Confluent Cloud: the API key and secret).
    pub username: Option<String>,
    pub password: Option<receipts_domain::Secret>,
}

impl Default for SchemaRegistryConfig {
    fn default() -> Self {
        Self {
            url: Url::parse("http://127.0.0.1:8081").expect("a literal URL"),
            timeout: Duration::from_secs(5),
            username: None,
            password: None,
        }
    }
}

/// Encodes and decodes events. Schemas are registered on first use per topic (or up front with
/// [`EventCodec::register`]) and cached, as are schemas fetched by id.
#[derive(Debug)]
pub struct EventCodec {
    encoder: AvroEncoder,
    decoder: AvroDecoder,
}

impl EventCodec {
    pub fn new(config: &SchemaRegistryConfig) -> Result<Self> {
        let settings = || {
            let mut builder =
                SrSettings::new_builder(config.url.as_str().trim_end_matches('/').to_owned());
            builder.set_timeout(config.timeout).no_proxy();
            if let Some(username) = &config.username {
                builder.set_basic_authorization(
                    username,
                    config
                        .password
                        .as_ref()
                        .map(receipts_domain::Secret::expose),
                );
            }
            builder.build().map_err(|e| Error::Settings(e.to_string()))
        };
        Ok(Self {
            encoder: AvroEncoder::new(settings()?),
            decoder: AvroDecoder::new(settings()?),
        })
    }

    fn strategy(topic: &str, kind: EventKind) -> SubjectNameStrategy {
        SubjectNameStrategy::TopicNameStrategyWithSchema(
            topic.to_owned(),
            false,
            SuppliedSchema::new(
                Some(schemas::full_name(kind).to_owned()),
                SchemaType::Avro,
                schemas::schema_text(kind).to_owned(),
            ),
        )
    }

    /// Registers `kind`'s schema under `topic`'s value subject; returns the schema id. Services
    /// call this at startup so a registry problem shows before the first request.
    pub async fn register(&self, topic: &str, kind: EventKind) -> Result<u32> {
        let strategy = Self::strategy(topic, kind);
        let subject = strategy.get_subject().map_err(registry)?;
        let schema = self
            .encoder
            .get_schema_and_id(&subject, strategy)
            .await
            .map_err(|e| {
                // Errors the converter cached would otherwise stick until restart.
                self.encoder.remove_errors_from_cache();
                registry(e)
            })?;
        Ok(schema.id)
    }

    /// The event in Confluent wire format for `topic`.
    pub async fn encode(&self, topic: &str, event: &ReceiptEvent) -> Result<Vec<u8>> {
        let strategy = Self::strategy(topic, event.kind());
        self.encoder
            .encode_value(mapping::event_to_value(event), &strategy)
            .await
            .map_err(|e| {
                self.encoder.remove_errors_from_cache();
                registry(e)
            })
    }

    /// The event a Confluent-wire-format payload holds.
    pub async fn decode(&self, payload: &[u8]) -> Result<ReceiptEvent, DecodeError> {
        let decoded = self.decoder.decode(Some(payload)).await.map_err(|e| {
            if e.retriable {
                DecodeError::Unavailable(e.to_string())
            } else {
                DecodeError::Malformed(e.to_string())
            }
        })?;
        let name = decoded
            .name
            .map(|n| n.fullname(None))
            .ok_or_else(|| DecodeError::Malformed("payload is not a named record".into()))?;
        let kind = schemas::kind_of(&name)
            .ok_or_else(|| DecodeError::Malformed(format!("unknown record type {name}")))?;
        let reader = schemas::schema(kind)
            .ok_or_else(|| DecodeError::Malformed(format!("no reader schema for {name}")))?;
        // Resolve against our reader schema: fills defaults of fields older writers did not have.
        let value = decoded.value.resolve(reader).map_err(|e| {
            DecodeError::Malformed(format!("{name} does not match the reader schema: {e}"))
        })?;
        mapping::event_from_value(kind, value)
    }
}

fn registry(e: SRCError) -> Error {
    Error::Registry(e.to_string())
}
