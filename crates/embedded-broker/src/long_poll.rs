//! Kafka's long poll, in front of tansu's fetch.
//!
//! tansu 0.6 answers a fetch by reading every partition named in it, then sleeping half of what
//! is left of `max_wait_ms`, and repeating until the wait is over, even when the first pass found
//! records: every fetch takes at least half its `max_wait_ms` (a latency floor on every pipeline
//! hop), and an idle consumer costs a pass over all its partitions every few hundred
//! milliseconds. Here a fetch that would surely find nothing (every partition's end is cached and
//! not past its offset) waits without polling until a produce or its deadline; every fetch is
//! then held until [`GATHER`] after it arrived (to batch records) and handed to tansu with
//! `max_wait_ms = 0`, which makes exactly one pass and no sleep.

use std::time::Duration;

use rama::{Context, Layer, Service};
use tansu_sans_io::{Body, Frame, IsolationLevel};
use tansu_storage::Storage;

use crate::cache::CachedStorage;

/// The least time a fetch is held (unless its own wait is shorter): a tansu fetch costs SQL for
/// every partition with data, so answering each record the moment it lands multiplies fetches
/// under load (measured: the ramp's sustainable rate halved); this gathers a few milliseconds
/// of records into each answer, as tansu's own wait did, at a fraction of its latency floor.
const GATHER: Duration = Duration::from_millis(20);

/// Wraps the broker's frame service with the long poll.
#[derive(Clone, Debug)]
pub(crate) struct LongPollLayer<G> {
    storage: CachedStorage<G>,
}

impl<G> LongPollLayer<G> {
    pub(crate) fn new(storage: CachedStorage<G>) -> Self {
        Self { storage }
    }
}

impl<G: Clone, S> Layer<S> for LongPollLayer<G> {
    type Service = LongPoll<G, S>;

    fn layer(&self, inner: S) -> Self::Service {
        LongPoll {
            storage: self.storage.clone(),
            inner,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct LongPoll<G, S> {
    storage: CachedStorage<G>,
    inner: S,
}

impl<G, S, State> Service<State, Frame> for LongPoll<G, S>
where
    G: Storage,
    S: Service<State, Frame, Response = Frame>,
    State: Clone + Send + Sync + 'static,
{
    type Response = Frame;
    type Error = S::Error;

    async fn serve(&self, ctx: Context<State>, mut frame: Frame) -> Result<Frame, Self::Error> {
        if let Body::FetchRequest(fetch) = &mut frame.body {
            let wait = Duration::from_millis(u64::try_from(fetch.max_wait_ms).unwrap_or_default());
            let arrived = tokio::time::Instant::now();
            let deadline = arrived + wait;
            let isolation = fetch
                .isolation_level
                .and_then(|level| IsolationLevel::try_from(level).ok())
                .unwrap_or(IsolationLevel::ReadUncommitted);
            loop {
                // Registered before looking, so a produce in between is not missed.
                let produced = self.storage.produced();
                tokio::pin!(produced);
                produced.as_mut().enable();
                if !self.nothing_to_read(fetch, isolation) {
                    break;
                }
                if tokio::time::timeout_at(deadline, produced).await.is_err() {
                    break;
                }
            }
            tokio::time::sleep_until((arrived + GATHER).min(deadline)).await;
            fetch.max_wait_ms = 0;
        }
        self.inner.serve(ctx, frame).await
    }
}

impl<G: Storage, S> LongPoll<G, S> {
    fn nothing_to_read(
        &self,
        fetch: &tansu_sans_io::FetchRequest,
        isolation: IsolationLevel,
    ) -> bool {
        let Some(topics) = fetch.topics.as_deref() else {
            return false;
        };
        !topics.is_empty()
            && topics.iter().all(|topic| {
                self.storage.surely_nothing_at(
                    topic.topic.as_deref(),
                    topic.topic_id,
                    topic
                        .partitions
                        .iter()
                        .flatten()
                        .map(|p| (p.partition, p.fetch_offset)),
                    isolation,
                )
            })
    }
}
