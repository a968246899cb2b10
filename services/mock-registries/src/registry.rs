//! One mock registry: its records, counters, call log and fault configuration, and the pipeline
//! every registration/query request goes through (log the call, add latency, maybe inject a
//! fault, then answer).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use chrono::Utc;
use serde::Serialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::api::{Answer, Record, RecordState, Shape, Submission, check_key, timestamp};
use crate::config::{FaultKind, Faults, MockConfig, RegistryKind};
use crate::faults::{pick_error, sample_latency};
use crate::journal::Journal;
use crate::logistics::Logistics;
use crate::tax::Tax;
use crate::{Error, Result};

/// The call log keeps at most this many entries (oldest dropped first), so that long load runs
/// do not grow memory without bound; counters are never capped.
pub(crate) const CALL_LOG_CAPACITY: usize = 100_000;
/// Per-attempt timeout of a callback delivery.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

/// `std` mutexes are only held for short, non-async sections; a panic while holding one
/// leaves consistent data behind, so poisoning is ignored.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A registration or query request as the HTTP layer hands it over.
pub(crate) struct Request {
    pub method: &'static str,
    pub path: String,
    /// The idempotency key as sent (header or path), not yet checked.
    pub key: Option<String>,
    pub op: Op,
    /// The caller's W3C trace context, echoed on the asynchronous callback so the result joins
    /// the caller's trace.
    pub traceparent: Option<String>,
}

pub(crate) enum Op {
    Submit {
        json_content_type: bool,
        body: Bytes,
    },
    Query,
}

/// What to do with a request: answer it, or drop the connection without an answer.
pub(crate) enum Reply {
    Answer(Answer),
    /// Close the connection unanswered; `reset` makes it a TCP reset (RST) instead of a close.
    Abort {
        reset: bool,
    },
}

/// One entry of `GET /admin/calls`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Call {
    pub at: String,
    pub method: &'static str,
    pub path: String,
    pub receipt_ref: Option<String>,
    pub idempotency_key: Option<String>,
    pub outcome: String,
}

#[derive(Debug, Default, Clone, Copy, Serialize)]
pub(crate) struct CallbackStats {
    pub delivered: u64,
    pub failed_attempts: u64,
    pub given_up: u64,
}

pub(crate) struct State {
    faults: Arc<Faults>,
    pub(crate) records: HashMap<String, Record>,
    /// Registrations created per receipt ref (one per idempotency key that created one).
    registrations: BTreeMap<String, u64>,
    next_serial: u64,
    /// Requests seen per idempotency key since the faults were last replaced (`fail_first`).
    fail_first_seen: HashMap<String, u32>,
    calls: VecDeque<Call>,
    /// Sequence number of `calls[0]`.
    first_seq: u64,
    next_seq: u64,
    /// Calls numbered below this began before the last reset and are no longer counted.
    reset_seq: u64,
    requests: u64,
    outcomes: BTreeMap<String, u64>,
    callbacks: CallbackStats,
    /// Cancelled by a reset (and by shutdown): stops async completions and callback deliveries.
    pub(crate) generation: CancellationToken,
}

impl State {
    fn new(faults: Faults, generation: CancellationToken) -> Self {
        Self {
            faults: Arc::new(faults),
            records: HashMap::new(),
            registrations: BTreeMap::new(),
            next_serial: 1,
            fail_first_seen: HashMap::new(),
            calls: VecDeque::new(),
            first_seq: 0,
            next_seq: 0,
            reset_seq: 0,
            requests: 0,
            outcomes: BTreeMap::new(),
            callbacks: CallbackStats::default(),
            generation,
        }
    }

    /// Stores `record`, counting a registration when it becomes registered.
    pub(crate) fn put(&mut self, record: Record) {
        let was_registered = self
            .records
            .get(&record.key)
            .is_some_and(|old| matches!(old.state, RecordState::Registered { .. }));
        if !was_registered && matches!(record.state, RecordState::Registered { .. }) {
            *self
                .registrations
                .entry(record.receipt_ref.clone())
                .or_default() += 1;
        }
        self.records.insert(record.key.clone(), record);
    }
}

/// Serialises the requests of one idempotency key (different keys proceed in parallel).
#[derive(Default)]
pub(crate) struct KeyLocks {
    map: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

pub(crate) struct KeyGuard<'a> {
    locks: &'a KeyLocks,
    key: String,
    mutex: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl KeyLocks {
    pub(crate) async fn lock(&self, key: &str) -> KeyGuard<'_> {
        let mutex = lock(&self.map).entry(key.to_owned()).or_default().clone();
        let guard = mutex.clone().lock_owned().await;
        KeyGuard {
            locks: self,
            key: key.to_owned(),
            mutex,
            guard: Some(guard),
        }
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = lock(&self.locks.map);
        // Ours and the map's: nobody else waits for this key, so forget it.
        if Arc::strong_count(&self.mutex) == 2 {
            map.remove(&self.key);
        }
    }
}

/// Records the outcome of a call when finished; a call dropped unfinished (the client went
/// away during the added latency) is recorded as `aborted`.
pub(crate) struct CallGuard {
    app: Arc<App>,
    seq: u64,
    started: Instant,
    finished: bool,
}

impl CallGuard {
    fn finish(mut self, outcome: &str) {
        self.finished = true;
        self.app.finish_call(self.seq, outcome, self.started);
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.app.finish_call(self.seq, "aborted", self.started);
        }
    }
}

pub(crate) struct App {
    pub kind: RegistryKind,
    pub shape: &'static dyn Shape,
    state: Mutex<State>,
    pub(crate) keys: KeyLocks,
    /// Registrations and completions hold it shared; a reset holds it exclusively.
    pub(crate) gate: tokio::sync::RwLock<()>,
    journal: Option<Journal>,
    pub(crate) http: reqwest::Client,
    shutdown: CancellationToken,
    /// Where callbacks go when the fault configuration names no URL.
    pub(crate) default_callback: Option<crate::config::CallbackTarget>,
}

impl App {
    /// Validates the configuration, replays the state file and resumes pending completions.
    pub async fn open(config: MockConfig, shutdown: CancellationToken) -> Result<Arc<Self>> {
        config.faults.validate().map_err(Error::InvalidFaults)?;
        let shape: &'static dyn Shape = match config.kind {
            RegistryKind::Tax => &Tax,
            RegistryKind::Logistics => &Logistics,
        };
        let (journal, records) = match config.state_file.clone() {
            Some(path) => {
                let kind = config.kind;
                let opened = tokio::task::spawn_blocking(move || Journal::open(&path, kind))
                    .await
                    .map_err(|e| Error::Io(std::io::Error::other(e)))??;
                (Some(opened.0), opened.1)
            }
            None => (None, Vec::new()),
        };
        // Callbacks go to the platform's own endpoint, never through a forward proxy.
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(CALLBACK_TIMEOUT)
            .build()
            .map_err(Error::HttpClient)?;

        let start_faults = config.faults;
        let mut state = State::new(start_faults.clone(), shutdown.child_token());
        let mut pending = Vec::new();
        for record in records {
            if let RecordState::Registered { registry_id, .. } = &record.state
                && let Some(serial) = shape.serial_of(registry_id)
            {
                state.next_serial = state.next_serial.max(serial + 1);
            }
            if record.state == RecordState::Pending {
                pending.push(record.key.clone());
            }
            state.put(record);
        }
        let app = Arc::new(Self {
            kind: config.kind,
            shape,
            state: Mutex::new(state),
            keys: KeyLocks::default(),
            gate: tokio::sync::RwLock::new(()),
            journal,
            http,
            shutdown,
            default_callback: config.callback.clone(),
        });
        if !pending.is_empty() {
            tracing::info!(registry = %app.kind, pending = pending.len(), "resuming pending registrations");
            let faults = Arc::new(start_faults);
            for key in pending {
                app.schedule_completion(key, faults.clone());
            }
        }
        Ok(app)
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub fn faults(&self) -> Arc<Faults> {
        self.state().faults.clone()
    }

    /// Replaces the fault configuration (already validated); `fail_first` counting restarts.
    pub fn set_faults(&self, faults: Faults) {
        let mut state = self.state();
        state.faults = Arc::new(faults);
        state.fail_first_seen.clear();
        tracing::info!(registry = %self.kind, faults = ?state.faults, "fault configuration replaced");
    }

    /// Forgets every registration, call, counter and fault (and empties the state file).
    pub async fn reset(&self) -> std::io::Result<()> {
        let _exclusive = self.gate.write().await;
        if let Some(journal) = &self.journal {
            journal.truncate().await?;
        }
        let mut state = self.state();
        state.generation.cancel();
        let next_seq = state.next_seq;
        *state = State::new(Faults::default(), self.shutdown.child_token());
        state.first_seq = next_seq;
        state.next_seq = next_seq;
        state.reset_seq = next_seq;
        tracing::info!(registry = %self.kind, "reset");
        Ok(())
    }

    pub fn stats(&self) -> Value {
        let state = self.state();
        let pending = state
            .records
            .values()
            .filter(|r| r.state == RecordState::Pending)
            .count();
        json!({
            "registry": self.kind,
            "registrations": state.registrations,
            "requests": state.requests,
            "outcomes": state.outcomes,
            "pending": pending,
            "callbacks": state.callbacks,
        })
    }

    pub fn calls(&self, receipt_ref: Option<&str>, key: Option<&str>) -> Vec<Call> {
        self.state()
            .calls
            .iter()
            .filter(|c| receipt_ref.is_none_or(|r| c.receipt_ref.as_deref() == Some(r)))
            .filter(|c| key.is_none_or(|k| c.idempotency_key.as_deref() == Some(k)))
            .cloned()
            .collect()
    }

    pub(crate) fn count_callback(&self, update: impl FnOnce(&mut CallbackStats)) {
        update(&mut self.state().callbacks);
    }

    fn begin_call(self: &Arc<Self>, request: &Request, receipt_ref: Option<String>) -> CallGuard {
        let mut state = self.state();
        let seq = state.next_seq;
        state.next_seq += 1;
        state.requests += 1;
        state.calls.push_back(Call {
            at: timestamp(Utc::now()),
            method: request.method,
            path: request.path.clone(),
            receipt_ref,
            idempotency_key: request.key.clone(),
            outcome: "pending".into(),
        });
        if state.calls.len() > CALL_LOG_CAPACITY {
            state.calls.pop_front();
            state.first_seq += 1;
        }
        CallGuard {
            app: self.clone(),
            seq,
            started: Instant::now(),
            finished: false,
        }
    }

    fn finish_call(&self, seq: u64, outcome: &str, started: Instant) {
        let mut state = self.state();
        if seq < state.reset_seq {
            return;
        }
        *state.outcomes.entry(outcome.to_owned()).or_default() += 1;
        let first = state.first_seq;
        let Some(call) = seq
            .checked_sub(first)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| state.calls.get_mut(i))
        else {
            return;
        };
        call.outcome = outcome.to_owned();
        tracing::debug!(
            registry = %self.kind,
            method = call.method,
            path = %call.path,
            idempotency_key = call.idempotency_key.as_deref(),
            receipt_ref = call.receipt_ref.as_deref(),
            outcome,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request answered"
        );
    }

    /// The whole life of one registration/query request.
    pub async fn handle(self: &Arc<Self>, request: Request) -> Reply {
        let key = match &request.key {
            None => Err(self
                .shape
                .invalid(&[(self.shape.key_field().into(), "is required".into())])),
            Some(key) => check_key(key).map(|()| key.clone()).map_err(|reason| {
                self.shape
                    .invalid(&[(self.shape.key_field().into(), reason.into())])
            }),
        };
        let submission = match &request.op {
            Op::Submit {
                json_content_type,
                body,
            } => Some(self.parse(*json_content_type, body)),
            Op::Query => None,
        };
        let receipt_ref = match (&submission, &request.op) {
            (Some(Ok(submission)), _) => Some(submission.receipt_ref.clone()),
            (Some(Err(_)), Op::Submit { body, .. }) => self.receipt_ref_hint(body),
            _ => key
                .as_ref()
                .ok()
                .and_then(|key| self.state().records.get(key).map(|r| r.receipt_ref.clone())),
        };
        let call = self.begin_call(&request, receipt_ref);

        let latency = sample_latency(&self.faults().latency, &mut rand::rng());
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if let Some(fault) = self.pick_fault(key.as_deref().ok()) {
            return self.inject(fault, call).await;
        }

        let answer = match (key, submission) {
            (Err(invalid), _) => invalid,
            (Ok(_), Some(Err(invalid))) => invalid,
            (Ok(key), Some(Ok(submission))) => {
                self.register(key, submission, request.traceparent).await
            }
            (Ok(key), None) => self.query(&key),
        };
        call.finish(answer.status.as_str());
        Reply::Answer(answer)
    }

    fn parse(&self, json_content_type: bool, body: &[u8]) -> Result<Submission, Answer> {
        if !json_content_type {
            return Err(self
                .shape
                .invalid(&[("Content-Type".into(), "must be application/json".into())]));
        }
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            self.shape
                .invalid(&[("body".into(), format!("is not valid JSON: {e}"))])
        })?;
        self.shape
            .parse(&value)
            .map_err(|problems| self.shape.invalid(&problems))
    }

    /// The receipt ref of a body that did not validate, if it has one (for the call log).
    fn receipt_ref_hint(&self, body: &[u8]) -> Option<String> {
        let value: Value = serde_json::from_slice(body).ok()?;
        Some(
            value
                .get(self.shape.receipt_ref_field())?
                .as_str()?
                .to_owned(),
        )
    }

    /// Outage first, then `fail_first`, then the random error rates.
    fn pick_fault(&self, key: Option<&str>) -> Option<FaultKind> {
        let mut state = self.state();
        let faults = state.faults.clone();
        if faults.in_outage(Utc::now()) {
            return Some(FaultKind::Http503);
        }
        if let Some(key) = key
            && faults.fail_first.count > 0
        {
            let seen = state.fail_first_seen.entry(key.to_owned()).or_default();
            if *seen < faults.fail_first.count {
                *seen += 1;
                return Some(faults.fail_first.kind);
            }
        }
        drop(state);
        pick_error(&faults.errors, rand::random::<f64>())
    }

    async fn inject(&self, fault: FaultKind, call: CallGuard) -> Reply {
        match fault {
            FaultKind::Http500 | FaultKind::Http503 | FaultKind::Http429 => {
                let answer = self.shape.fault(fault, self.faults().retry_after_seconds);
                call.finish(answer.status.as_str());
                Reply::Answer(answer)
            }
            FaultKind::Reset => {
                call.finish("reset");
                Reply::Abort { reset: true }
            }
            FaultKind::Timeout => {
                call.finish("timeout");
                let hold = Duration::from_secs(self.faults().timeout_seconds);
                // A client that gives up first drops this future with its connection.
                tokio::select! {
                    () = tokio::time::sleep(hold) => {}
                    () = self.shutdown.cancelled() => {}
                }
                Reply::Abort { reset: false }
            }
        }
    }

    fn query(&self, key: &str) -> Answer {
        match self.state().records.get(key) {
            Some(record) => self.shape.replay(record),
            None => self.shape.not_found(),
        }
    }

    async fn register(
        self: &Arc<Self>,
        key: String,
        submission: Submission,
        traceparent: Option<String>,
    ) -> Answer {
        let _shared = self.gate.read().await;
        let _key = self.keys.lock(&key).await;
        let (existing, faults) = {
            let state = self.state();
            (state.records.get(&key).cloned(), state.faults.clone())
        };
        if let Some(record) = existing {
            if record.request != submission.request {
                return self.shape.conflict();
            }
            return self.shape.replay(&record);
        }

        let now = Utc::now();
        let state = if faults.async_mode.enabled {
            RecordState::Pending
        } else if let Some(rule) = faults.rejection_for(&submission.party_id) {
            // A synchronous rejection creates nothing: the same request is refused again.
            return self
                .shape
                .rejected(&key, &submission.receipt_ref, &rule.reason);
        } else {
            RecordState::Registered {
                registry_id: self.shape.registry_id(self.next_serial(), now),
                registered_at: timestamp(now),
            }
        };
        let record = Record {
            key: key.clone(),
            receipt_ref: submission.receipt_ref,
            party_id: submission.party_id,
            request: submission.request,
            accepted_at: now,
            state,
            traceparent,
        };
        if let Err(answer) = self.persist(&record).await {
            return answer;
        }
        self.state().put(record.clone());
        if record.state == RecordState::Pending {
            self.schedule_completion(key, faults);
            self.shape.pending(&record)
        } else {
            self.shape.registered(&record, true)
        }
    }

    pub(crate) fn next_serial(&self) -> u64 {
        let mut state = self.state();
        let serial = state.next_serial;
        state.next_serial += 1;
        serial
    }

    /// Writes `record` to the state file, if any; a failure is answered as the registry's 500.
    pub(crate) async fn persist(&self, record: &Record) -> Result<(), Answer> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        journal.append(record).await.map_err(|error| {
            tracing::error!(registry = %self.kind, %error, key = %record.key, "cannot persist a registration");
            self.shape.fault(FaultKind::Http500, 0)
        })
    }
}
