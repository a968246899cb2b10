//! A read cache in front of tansu's storage engine.
//!
//! tansu 0.6 answers every fetch by querying SQLite for every partition named in it: the topic's
//! metadata, the partition's offsets (twice) and its records, preparing each statement anew.
//! A consumer that has caught up asks again every few hundred milliseconds for every partition
//! it owns, so an idle platform spent most of a core answering "nothing new". This broker is the
//! only writer of its storage file, so it knows exactly when a partition's offsets or a topic's
//! metadata can change: it keeps the last answer until then, and answers a fetch at the end of
//! a partition without touching SQLite. Everything else passes straight through.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tansu_sans_io::create_topics_request::CreatableTopic;
use tansu_sans_io::delete_groups_response::DeletableGroupResult;
use tansu_sans_io::delete_records_request::DeleteRecordsTopic;
use tansu_sans_io::delete_records_response::DeleteRecordsTopicResult;
use tansu_sans_io::describe_cluster_response::DescribeClusterBroker;
use tansu_sans_io::describe_configs_response::DescribeConfigsResult;
use tansu_sans_io::describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic;
use tansu_sans_io::incremental_alter_configs_request::AlterConfigsResource;
use tansu_sans_io::incremental_alter_configs_response::AlterConfigsResourceResponse;
use tansu_sans_io::list_groups_response::ListedGroup;
use tansu_sans_io::record::deflated;
use tansu_sans_io::txn_offset_commit_response::TxnOffsetCommitResponseTopic;
use tansu_sans_io::{ConfigResource, ErrorCode, IsolationLevel, ListOffset, ScramMechanism};
use tansu_storage::{
    BrokerRegistrationRequest, GroupDetail, ListOffsetResponse, MetadataResponse, NamedGroupDetail,
    OffsetCommitRequest, OffsetStage, ProducerIdResponse, Result, ScramCredential, Storage,
    TopicId, Topition, TxnAddPartitionsRequest, TxnAddPartitionsResponse, TxnOffsetCommitRequest,
    UpdateError, Version,
};
use url::Url;
use uuid::Uuid;

/// `S` with its partition offsets and single-topic metadata cached until a write through this
/// value changes them. Clones share the cache, so the broker must hand out only clones of one
/// `CachedStorage` and nothing else may write the storage while it runs.
#[derive(Clone, Debug)]
pub(crate) struct CachedStorage<S> {
    inner: S,
    cache: Arc<Mutex<Cache>>,
    /// Woken by every produce: fetches waiting at the end of their partitions look again.
    produced: Arc<tokio::sync::Notify>,
}

/// Each entry remembers the generation it was read in: a read that started before a write
/// finished must not store its (possibly stale) answer after the write invalidated the entry.
#[derive(Debug, Default)]
struct Cache {
    /// Bumped by every write that invalidates something.
    generation: u64,
    stages: HashMap<Topition, OffsetStage>,
    /// Generation of the last write to each partition; a partition absent here was last written
    /// before `cleared`.
    written: HashMap<Topition, u64>,
    metadata: HashMap<TopicId, MetadataResponse>,
    /// Generation of the last write that cleared everything (topics created, deleted, altered,
    /// retention applied).
    cleared: u64,
}

impl Cache {
    fn last_write(&self, topition: &Topition) -> u64 {
        self.written
            .get(topition)
            .copied()
            .unwrap_or(self.cleared)
            .max(self.cleared)
    }

    fn invalidate(&mut self, topition: &Topition) {
        self.generation += 1;
        self.stages.remove(topition);
        self.written.insert(topition.clone(), self.generation);
    }

    fn clear(&mut self) {
        self.generation += 1;
        self.cleared = self.generation;
        self.stages.clear();
        self.written.clear();
        self.metadata.clear();
    }
}

impl<S: Storage> CachedStorage<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            cache: Arc::new(Mutex::new(Cache::default())),
            produced: Arc::default(),
        }
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        // The cache holds no invariant a panicking holder could break half-way: keep using it.
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn invalidate(&self, topition: &Topition) {
        self.cache().invalidate(topition);
        self.produced.notify_waiters();
    }

    /// Woken by the next produce (create the future before looking, then await it).
    pub(crate) fn produced(&self) -> tokio::sync::futures::Notified<'_> {
        self.produced.notified()
    }

    /// Whether a fetch of `partitions` of `topic` (a name, or an id in cached metadata) from
    /// their offsets would surely find nothing: every partition's end is cached and not past
    /// its offset. Anything unknown counts as maybe-data.
    pub(crate) fn surely_nothing_at(
        &self,
        topic: Option<&str>,
        topic_id: Option<[u8; 16]>,
        mut partitions: impl Iterator<Item = (i32, i64)>,
        isolation: IsolationLevel,
    ) -> bool {
        let cache = self.cache();
        let name = match (topic.filter(|name| !name.is_empty()), topic_id) {
            (Some(name), _) => name.to_owned(),
            (None, Some(id)) => match cache.metadata.values().find_map(|metadata| {
                metadata
                    .topics()
                    .iter()
                    .find(|t| t.topic_id == Some(id))
                    .and_then(|t| t.name.clone())
            }) {
                Some(name) => name,
                None => return false,
            },
            (None, None) => return false,
        };
        partitions.all(|(partition, offset)| {
            cache
                .stages
                .get(&Topition::new(name.clone(), partition))
                .is_some_and(|stage| offset >= readable_end(stage, isolation))
        })
    }

    fn clear(&self) {
        self.cache().clear();
        self.produced.notify_waiters();
    }

    /// The newest offset a fetch at `isolation` may read up to, if it is cached.
    fn cached_end(&self, topition: &Topition, isolation: IsolationLevel) -> Option<i64> {
        self.cache()
            .stages
            .get(topition)
            .map(|stage| readable_end(stage, isolation))
    }
}

/// The newest offset a fetch at `isolation` may read up to.
fn readable_end(stage: &OffsetStage, isolation: IsolationLevel) -> i64 {
    if isolation == IsolationLevel::ReadCommitted {
        stage.last_stable()
    } else {
        stage.high_watermark()
    }
}

#[async_trait]
impl<S: Storage> Storage for CachedStorage<S> {
    async fn register_broker(&self, registration: BrokerRegistrationRequest) -> Result<()> {
        self.inner.register_broker(registration).await
    }

    async fn create_topic(&self, topic: CreatableTopic, validate_only: bool) -> Result<Uuid> {
        let created = self.inner.create_topic(topic, validate_only).await;
        self.clear();
        created
    }

    async fn incremental_alter_resource(
        &self,
        resource: AlterConfigsResource,
    ) -> Result<AlterConfigsResourceResponse> {
        let altered = self.inner.incremental_alter_resource(resource).await;
        self.clear();
        altered
    }

    async fn delete_records(
        &self,
        topics: &[DeleteRecordsTopic],
    ) -> Result<Vec<DeleteRecordsTopicResult>> {
        let deleted = self.inner.delete_records(topics).await;
        self.clear();
        deleted
    }

    async fn delete_topic(&self, topic: &TopicId) -> Result<ErrorCode> {
        let deleted = self.inner.delete_topic(topic).await;
        self.clear();
        deleted
    }

    async fn brokers(&self) -> Result<Vec<DescribeClusterBroker>> {
        self.inner.brokers().await
    }

    async fn produce(
        &self,
        transaction_id: Option<&str>,
        topition: &Topition,
        batch: deflated::Batch,
    ) -> Result<i64> {
        let produced = self.inner.produce(transaction_id, topition, batch).await;
        // Also on error: a failed produce may still have written part of its work.
        self.invalidate(topition);
        produced
    }

    async fn fetch(
        &self,
        topition: &'_ Topition,
        offset: i64,
        min_bytes: u32,
        max_bytes: u32,
        isolation: IsolationLevel,
    ) -> Result<Vec<deflated::Batch>> {
        // At (or past) the end of the partition there is nothing to read; the engine would
        // answer the same, empty, after two queries. Below the log start it must answer.
        match self.cached_end(topition, isolation) {
            Some(end) if offset >= end => Ok(Vec::new()),
            _ => {
                self.inner
                    .fetch(topition, offset, min_bytes, max_bytes, isolation)
                    .await
            }
        }
    }

    async fn offset_stage(&self, topition: &Topition) -> Result<OffsetStage> {
        let started = {
            let cache = self.cache();
            if let Some(stage) = cache.stages.get(topition) {
                return Ok(*stage);
            }
            cache.generation
        };
        let stage = self.inner.offset_stage(topition).await?;
        let mut cache = self.cache();
        if cache.last_write(topition) <= started {
            cache.stages.insert(topition.clone(), stage);
        }
        Ok(stage)
    }

    async fn list_offsets(
        &self,
        isolation_level: IsolationLevel,
        offsets: &[(Topition, ListOffset)],
    ) -> Result<Vec<(Topition, ListOffsetResponse)>> {
        self.inner.list_offsets(isolation_level, offsets).await
    }

    async fn offset_commit(
        &self,
        group_id: &str,
        retention_time_ms: Option<Duration>,
        offsets: &[(Topition, OffsetCommitRequest)],
    ) -> Result<Vec<(Topition, ErrorCode)>> {
        self.inner
            .offset_commit(group_id, retention_time_ms, offsets)
            .await
    }

    async fn offset_fetch(
        &self,
        group_id: Option<&str>,
        topics: &[Topition],
        require_stable: Option<bool>,
    ) -> Result<BTreeMap<Topition, i64>> {
        self.inner
            .offset_fetch(group_id, topics, require_stable)
            .await
    }

    async fn committed_offset_topitions(&self, group_id: &str) -> Result<BTreeMap<Topition, i64>> {
        self.inner.committed_offset_topitions(group_id).await
    }

    async fn metadata(&self, topics: Option<&[TopicId]>) -> Result<MetadataResponse> {
        // Only one-topic requests are cached: every fetch asks for its topics one at a time.
        let Some([topic]) = topics else {
            return self.inner.metadata(topics).await;
        };
        let started = {
            let cache = self.cache();
            if let Some(metadata) = cache.metadata.get(topic) {
                return Ok(metadata.clone());
            }
            cache.generation
        };
        let metadata = self.inner.metadata(topics).await?;
        let found = metadata.topics();
        let known = !found.is_empty()
            && found
                .iter()
                .all(|topic| topic.error_code == i16::from(ErrorCode::None));
        let mut cache = self.cache();
        if known && cache.cleared <= started {
            cache.metadata.insert(topic.clone(), metadata.clone());
        }
        Ok(metadata)
    }

    async fn upsert_user_scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
        credential: ScramCredential,
    ) -> Result<()> {
        self.inner
            .upsert_user_scram_credential(user, mechanism, credential)
            .await
    }

    async fn delete_user_scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Result<()> {
        self.inner
            .delete_user_scram_credential(user, mechanism)
            .await
    }

    async fn user_scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Result<Option<ScramCredential>> {
        self.inner.user_scram_credential(user, mechanism).await
    }

    async fn describe_config(
        &self,
        name: &str,
        resource: ConfigResource,
        keys: Option<&[String]>,
    ) -> Result<DescribeConfigsResult> {
        self.inner.describe_config(name, resource, keys).await
    }

    async fn list_groups(&self, states_filter: Option<&[String]>) -> Result<Vec<ListedGroup>> {
        self.inner.list_groups(states_filter).await
    }

    async fn delete_groups(
        &self,
        group_ids: Option<&[String]>,
    ) -> Result<Vec<DeletableGroupResult>> {
        self.inner.delete_groups(group_ids).await
    }

    async fn describe_groups(
        &self,
        group_ids: Option<&[String]>,
        include_authorized_operations: bool,
    ) -> Result<Vec<NamedGroupDetail>> {
        self.inner
            .describe_groups(group_ids, include_authorized_operations)
            .await
    }

    async fn describe_topic_partitions(
        &self,
        topics: Option<&[TopicId]>,
        partition_limit: i32,
        cursor: Option<Topition>,
    ) -> Result<Vec<DescribeTopicPartitionsResponseTopic>> {
        self.inner
            .describe_topic_partitions(topics, partition_limit, cursor)
            .await
    }

    async fn update_group(
        &self,
        group_id: &str,
        detail: GroupDetail,
        version: Option<Version>,
    ) -> Result<Version, UpdateError<GroupDetail>> {
        self.inner.update_group(group_id, detail, version).await
    }

    async fn init_producer(
        &self,
        transaction_id: Option<&str>,
        transaction_timeout_ms: i32,
        producer_id: Option<i64>,
        producer_epoch: Option<i16>,
    ) -> Result<ProducerIdResponse> {
        self.inner
            .init_producer(
                transaction_id,
                transaction_timeout_ms,
                producer_id,
                producer_epoch,
            )
            .await
    }

    async fn txn_add_offsets(
        &self,
        transaction_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        group_id: &str,
    ) -> Result<ErrorCode> {
        self.inner
            .txn_add_offsets(transaction_id, producer_id, producer_epoch, group_id)
            .await
    }

    async fn txn_add_partitions(
        &self,
        partitions: TxnAddPartitionsRequest,
    ) -> Result<TxnAddPartitionsResponse> {
        self.inner.txn_add_partitions(partitions).await
    }

    async fn txn_offset_commit(
        &self,
        offsets: TxnOffsetCommitRequest,
    ) -> Result<Vec<TxnOffsetCommitResponseTopic>> {
        self.inner.txn_offset_commit(offsets).await
    }

    async fn txn_end(
        &self,
        transaction_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        committed: bool,
    ) -> Result<ErrorCode> {
        // Ending a transaction moves partitions' last stable offsets.
        let ended = self
            .inner
            .txn_end(transaction_id, producer_id, producer_epoch, committed)
            .await;
        self.clear();
        ended
    }

    async fn maintain(&self, now: SystemTime) -> Result<()> {
        // Retention may move log starts.
        let maintained = self.inner.maintain(now).await;
        self.clear();
        maintained
    }

    async fn cluster_id(&self) -> Result<String> {
        self.inner.cluster_id().await
    }

    async fn node(&self) -> Result<i32> {
        self.inner.node().await
    }

    async fn advertised_listener(&self) -> Result<Url> {
        self.inner.advertised_listener().await
    }

    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }
}
