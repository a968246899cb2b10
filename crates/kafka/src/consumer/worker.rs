//! One partition's worker: handles messages (several at once, one receipt at a time), retries
//! transient failures in place, schedules retryable ones on a retry tier, dead-letters poison,
//! and reports which offsets are done.

use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use receipts_avro::DecodeError;
use receipts_domain::ReceiptEvent;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{EventHandler, HandlerError, MessageContext, Partition, RetryableFailure, WorkerEnv};
use receipts_telemetry::metrics::{
    CONSUMER_DEAD_LETTERED, CONSUMER_IN_FLIGHT, CONSUMER_MESSAGES, CONSUMER_PROCESSING_DURATION,
    CONSUMER_RETRIES_SCHEDULED, CONSUMER_TRANSIENT_FAILURES,
};
use receipts_telemetry::trace;

use crate::headers;
use crate::retry::NextAttempt;
use crate::window::Window;

pub(super) async fn run_worker<H: EventHandler>(
    env: std::sync::Arc<WorkerEnv<H>>,
    partition: Partition,
    mut rx: mpsc::Receiver<OwnedMessage>,
    cancel: CancellationToken,
    done: std_mpsc::Sender<(Partition, i64)>,
    max_in_flight: usize,
) {
    let mut window = Window::default();
    let mut running = FuturesUnordered::new();
    let start = |message: OwnedMessage| {
        let (env, cancel) = (&env, &cancel);
        async move {
            let (offset, key) = (message.offset(), message.key().map(<[u8]>::to_vec));
            (offset, key, process(env, message, cancel).await)
        }
    };
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled(), if running.is_empty() => break,
            Some((offset, key, finished)) = running.next() => {
                let (offset, key, finished): (i64, Option<Vec<u8>>, bool) = (offset, key, finished);
                if !finished {
                    // Cancelled mid-retry: let the other running messages finish, start nothing.
                    continue;
                }
                let (next, done_up_to) = window.finish(offset, key.as_deref());
                if let Some(next) = next.filter(|_| !cancel.is_cancelled()) {
                    running.push(start(next));
                }
                if let Some(offset) = done_up_to
                    && done.send((partition.clone(), offset)).is_err()
                {
                    break;
                }
            }
            message = rx.recv(), if window.len() < max_in_flight && !cancel.is_cancelled() => {
                let Some(message) = message else { break };
                let (offset, key) = (message.offset(), message.key().map(<[u8]>::to_vec));
                if let Some(message) = window.admit(offset, key.as_deref(), message) {
                    running.push(start(message));
                }
            }
        }
    }
}

/// The result of one attempt at a message.
enum Step {
    Done(Outcome),
    /// Try the same message again here, after a backoff (our own infrastructure failed).
    Again(String),
}

/// How a message was finished, for metrics.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Handled,
    RetryScheduled,
    Deferred,
    DeadLettered,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Handled => "handled",
            Self::RetryScheduled => "retry_scheduled",
            Self::Deferred => "deferred",
            Self::DeadLettered => "dead_lettered",
        }
    }
}

/// Handles one message until it is done (true) or the worker is cancelled mid-retry (false).
async fn process<H: EventHandler>(
    env: &WorkerEnv<H>,
    message: OwnedMessage,
    cancel: &CancellationToken,
) -> bool {
    let context = context_of(&message);
    let span = process_span(env, &message, &context);
    trace::set_parent(&span, context.traceparent.as_deref());
    let (service, topic) = (env.service.clone(), context.topic.clone());
    let in_flight = metrics::gauge!(CONSUMER_IN_FLIGHT, "service" => service.clone());
    in_flight.increment(1.0);
    let started = std::time::Instant::now();
    let finished = attempts(env, &message, &context, &span, cancel).await;
    in_flight.decrement(1.0);
    if let Some(outcome) = finished {
        metrics::histogram!(CONSUMER_PROCESSING_DURATION, "service" => service.clone(), "topic" => topic.clone())
            .record(started.elapsed().as_secs_f64());
        metrics::counter!(CONSUMER_MESSAGES, "service" => service, "topic" => topic, "outcome" => outcome.as_str())
            .increment(1);
    }
    finished.is_some()
}

/// The consumer span of processing one message, named and described per the OpenTelemetry
/// messaging conventions (the event's producer span is its parent).
fn process_span<H>(
    env: &WorkerEnv<H>,
    message: &OwnedMessage,
    context: &MessageContext,
) -> tracing::Span {
    let event_id = header(message, headers::EVENT_ID).unwrap_or_default();
    let key = message
        .key()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    tracing::info_span!(
        "process",
        otel.name = %format!("process {}", context.topic),
        otel.kind = "consumer",
        messaging.system = "kafka",
        messaging.operation.type = "process",
        messaging.operation.name = "process",
        messaging.destination.name = %context.topic,
        messaging.consumer.group.name = %env.service,
        messaging.destination.partition.id = context.partition,
        messaging.kafka.offset = context.offset,
        messaging.kafka.message.key = %key,
        messaging.message.id = %event_id,
        service = %env.service,
        attempt = context.attempt,
    )
}

/// Attempts a message until it is finished (its outcome), or the worker is cancelled mid-retry
/// (`None`).
async fn attempts<H: EventHandler>(
    env: &WorkerEnv<H>,
    message: &OwnedMessage,
    context: &MessageContext,
    span: &tracing::Span,
    cancel: &CancellationToken,
) -> Option<Outcome> {
    let mut backoff = Backoff::default();
    loop {
        let attempt =
            trace::with_inbound(context.traceparent.clone(), attempt(env, message, context));
        match attempt.instrument(span.clone()).await {
            Step::Done(outcome) => return Some(outcome),
            Step::Again(reason) => {
                metrics::counter!(CONSUMER_TRANSIENT_FAILURES, "service" => env.service.clone(), "topic" => context.topic.clone())
                    .increment(1);
                let delay = backoff.next_delay();
                tracing::warn!(parent: span, reason, retry_in = ?delay, "transient failure; retrying");
                tokio::select! {
                    () = cancel.cancelled() => return None,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// What the headers say about where a message comes from and which attempt this is.
fn context_of(message: &OwnedMessage) -> MessageContext {
    let millis = |name| {
        header(message, name)
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(DateTime::from_timestamp_millis)
    };
    let now = Utc::now();
    MessageContext {
        topic: message.topic().to_owned(),
        partition: message.partition(),
        offset: message.offset(),
        traceparent: header(message, headers::TRACEPARENT),
        original_topic: header(message, headers::ORIGINAL_TOPIC)
            .unwrap_or_else(|| message.topic().to_owned()),
        attempt: header(message, headers::ATTEMPT)
            .and_then(|v| v.parse().ok())
            .unwrap_or(1)
            .max(1),
        first_attempt_at: millis(headers::FIRST_ATTEMPT_AT).unwrap_or(now),
    }
}

async fn attempt<H: EventHandler>(
    env: &WorkerEnv<H>,
    message: &OwnedMessage,
    context: &MessageContext,
) -> Step {
    let Some(payload) = message.payload() else {
        return dead_letter(
            env,
            message,
            context,
            "undecodable",
            "message has no payload",
        )
        .await;
    };
    let event = match env.producer.codec().decode(payload).await {
        Ok(event) => event,
        Err(DecodeError::Unavailable(reason)) => return Step::Again(reason),
        Err(DecodeError::Malformed(reason)) => {
            return dead_letter(env, message, context, "undecodable", &reason).await;
        }
    };
    match env.handler.handle(event.clone(), context).await {
        Ok(()) => Step::Done(Outcome::Handled),
        Err(HandlerError::Failed(error)) => failed(env, message, context, error.as_ref()).await,
        Err(HandlerError::Retry(failure)) => {
            schedule_retry(env, message, context, event, failure).await
        }
        Err(HandlerError::Defer(delay)) => defer(env, message, context, delay).await,
    }
}

/// A transient failure is tried again here; a permanent one is dead-lettered.
async fn failed<H>(
    env: &WorkerEnv<H>,
    message: &OwnedMessage,
    context: &MessageContext,
    error: &dyn receipts_domain::Failure,
) -> Step {
    let reason = super::chain(error);
    if error.is_transient() {
        Step::Again(reason)
    } else {
        dead_letter(env, message, context, "poison", &reason).await
    }
}

/// Hands a message back to the first retry tier, due after `delay`, as the same attempt.
async fn defer<H>(
    env: &WorkerEnv<H>,
    message: &OwnedMessage,
    context: &MessageContext,
    delay: Duration,
) -> Step {
    let due = Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::TimeDelta::MAX);
    match send_to_tier(env, message, context, 1, context.attempt, due, None).await {
        Ok(topic) => {
            tracing::debug!(retry_topic = %topic, delay = ?delay, "deferred");
            Step::Done(Outcome::Deferred)
        }
        Err(error) => Step::Again(format!("defer produce failed: {error}")),
    }
}

/// Sends a message whose attempt failed retryably to its next retry tier, or, past the horizon,
/// lets the handler conclude.
async fn schedule_retry<H: EventHandler>(
    env: &WorkerEnv<H>,
    message: &OwnedMessage,
    context: &MessageContext,
    event: ReceiptEvent,
    failure: RetryableFailure,
) -> Step {
    let now = Utc::now();
    match env.retry.next(
        context.attempt,
        context.first_attempt_at,
        now,
        failure.retry_after,
    ) {
        NextAttempt::Exhausted => {
            tracing::warn!(kind = %failure.kind, message = %failure.message, attempt = context.attempt, "retry horizon exceeded");
            match env.handler.exhausted(event, context, &failure).await {
                Ok(()) => Step::Done(Outcome::Handled),
                Err(HandlerError::Failed(error)) => {
                    failed(env, message, context, error.as_ref()).await
                }
                Err(HandlerError::Retry(RetryableFailure {
                    message: reason, ..
                })) => Step::Again(reason),
                Err(HandlerError::Defer(delay)) => {
                    Step::Again(format!("deferred for {delay:?} past the horizon"))
                }
            }
        }
        NextAttempt::Tier { tier, due } => {
            let next_attempt = context.attempt + 1;
            match send_to_tier(
                env,
                message,
                context,
                tier,
                next_attempt,
                due,
                Some(&failure),
            )
            .await
            {
                Ok(topic) => {
                    tracing::info!(
                        retry_topic = %topic,
                        next_attempt,
                        due = %due,
                        kind = %failure.kind,
                        message = %failure.message,
                        "retry scheduled"
                    );
                    metrics::counter!(CONSUMER_RETRIES_SCHEDULED, "service" => env.service.clone(), "tier" => tier.to_string())
                        .increment(1);
                    Step::Done(Outcome::RetryScheduled)
                }
                Err(error) => Step::Again(format!("retry produce failed: {error}")),
            }
        }
    }
}

/// Copies `message` to retry tier `tier` as attempt `attempt`, due at `due`, with the failure
/// that sent it there (a deferral has none); returns the tier's topic.
async fn send_to_tier<H>(
    env: &WorkerEnv<H>,
    message: &OwnedMessage,
    context: &MessageContext,
    tier: usize,
    attempt: u32,
    due: DateTime<Utc>,
    failure: Option<&RetryableFailure>,
) -> Result<String, crate::Error> {
    let topic = env
        .producer
        .topics()
        .retry_tier(&env.service, &context.original_topic, tier);
    let mut headers = forwarded_headers(message, context)
        .insert(text_header(headers::ATTEMPT, &attempt.to_string()))
        .insert(text_header(
            headers::DUE_AT,
            &due.timestamp_millis().to_string(),
        ))
        .insert(text_header(
            headers::FIRST_ATTEMPT_AT,
            &context.first_attempt_at.timestamp_millis().to_string(),
        ));
    if let Some(failure) = failure {
        headers = headers
            .insert(text_header(headers::ERROR_KIND, &failure.kind))
            .insert(text_header(
                headers::ERROR_MESSAGE,
                truncated(&failure.message),
            ));
    }
    let (key, payload) = (
        message.key().unwrap_or_default(),
        message.payload().unwrap_or_default(),
    );
    env.producer.send(&topic, key, payload, headers).await?;
    Ok(topic)
}

/// A header with a text value.
fn text_header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

/// Copies `message` to the service's dead-letter topic for its original topic.
async fn dead_letter<H>(
    env: &WorkerEnv<H>,
    message: &OwnedMessage,
    context: &MessageContext,
    kind: &str,
    reason: &str,
) -> Step {
    let topic = env
        .producer
        .topics()
        .dead_letter(&env.service, &context.original_topic);
    tracing::error!(dead_letter_topic = %topic, error_kind = kind, reason, "dead-lettering message");
    let headers = forwarded_headers(message, context)
        .insert(text_header(headers::ATTEMPT, &context.attempt.to_string()))
        .insert(text_header(headers::ERROR_KIND, kind))
        .insert(text_header(headers::ERROR_MESSAGE, truncated(reason)))
        .insert(text_header(
            headers::FAILED_AT,
            &Utc::now().timestamp_millis().to_string(),
        ));
    let (key, payload) = (
        message.key().unwrap_or_default(),
        message.payload().unwrap_or_default(),
    );
    match env.producer.send(&topic, key, payload, headers).await {
        Ok(_) => {
            metrics::counter!(CONSUMER_DEAD_LETTERED, "service" => env.service.clone(), "topic" => context.topic.clone(), "kind" => kind.to_owned())
                .increment(1);
            Step::Done(Outcome::DeadLettered)
        }
        Err(error) => Step::Again(format!("dead-letter produce failed: {error}")),
    }
}

/// The message's own headers (event id, trace context, ...) without the retry bookkeeping, plus
/// where it originally came from.
fn forwarded_headers(message: &OwnedMessage, context: &MessageContext) -> OwnedHeaders {
    let mut out = OwnedHeaders::new();
    if let Some(original) = message.headers() {
        for h in original
            .iter()
            .filter(|h| !headers::RETRY_BOOKKEEPING.contains(&h.key))
        {
            out = out.insert(Header {
                key: h.key,
                value: h.value,
            });
        }
    }
    // The first hop records the source position; later hops keep it.
    let partition = header(message, headers::ORIGINAL_PARTITION)
        .unwrap_or_else(|| context.partition.to_string());
    let offset =
        header(message, headers::ORIGINAL_OFFSET).unwrap_or_else(|| context.offset.to_string());
    out.insert(Header {
        key: headers::ORIGINAL_TOPIC,
        value: Some(context.original_topic.as_bytes()),
    })
    .insert(Header {
        key: headers::ORIGINAL_PARTITION,
        value: Some(partition.as_bytes()),
    })
    .insert(Header {
        key: headers::ORIGINAL_OFFSET,
        value: Some(offset.as_bytes()),
    })
}

fn truncated(text: &str) -> &str {
    if text.len() <= headers::MAX_ERROR_MESSAGE {
        return text;
    }
    let mut cut = headers::MAX_ERROR_MESSAGE;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

pub(super) fn header(message: &OwnedMessage, name: &str) -> Option<String> {
    let headers = message.headers()?;
    headers
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::to_owned)
}

/// Exponential backoff from 100 ms, doubling, capped at 10 s, with ±20% jitter.
#[derive(Debug, Default)]
struct Backoff {
    attempts: u32,
}

impl Backoff {
    fn next_delay(&mut self) -> Duration {
        let base = 100u64.saturating_mul(1 << self.attempts.min(7)).min(10_000);
        self.attempts = self.attempts.saturating_add(1);
        let jitter = rand::random_range(0.8..1.2);
        Duration::from_millis((base as f64 * jitter) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let mut backoff = Backoff::default();
        let delays: Vec<Duration> = (0..12).map(|_| backoff.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(80) && delays[0] <= Duration::from_millis(120));
        assert!(delays[3] > delays[0]);
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(12_000)));
        assert!(delays[11] >= Duration::from_millis(8_000));
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let text = "é".repeat(headers::MAX_ERROR_MESSAGE);
        let cut = truncated(&text);
        assert!(cut.len() <= headers::MAX_ERROR_MESSAGE);
        assert!(text.starts_with(cut));
        assert_eq!(truncated("short"), "short");
    }
}
