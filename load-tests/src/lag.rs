//! The platform's consumer lag, read once a second from its Prometheus `/metrics` (the gateway's
//! in the all-in-one `receipts up`, which holds every service's series).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use receipts_telemetry::metrics::CONSUMER_LAG;
use url::Url;

use crate::summary::LagSample;

/// The sum of every sample of [`CONSUMER_LAG`] in a Prometheus text exposition; `None` without
/// any (no consumer has published statistics yet).
pub fn total_lag(exposition: &str) -> Option<f64> {
    let values: Vec<f64> = exposition
        .lines()
        .filter_map(|line| sample_of(line, CONSUMER_LAG))
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// The value of `line` if it is a finite sample of the metric `name`.
fn sample_of(line: &str, name: &str) -> Option<f64> {
    let rest = line.strip_prefix(name)?;
    let value_and_time = if rest.starts_with('{') {
        // Label values may hold spaces and braces; the value comes after the last brace.
        &rest[rest.rfind('}')? + 1..]
    } else if rest.starts_with(char::is_whitespace) {
        rest
    } else {
        // Another metric whose name starts with `name`.
        return None;
    };
    let value: f64 = value_and_time.split_whitespace().next()?.parse().ok()?;
    value.is_finite().then_some(value)
}

/// Samples so far.
pub type Samples = Arc<Mutex<Vec<LagSample>>>;

/// Reads `url` every second until the returned task is aborted; a failed read records nothing.
pub fn sample_every_second(
    http: reqwest::Client,
    url: Url,
    start: Instant,
) -> (tokio::task::JoinHandle<()>, Samples) {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let out = Arc::clone(&samples);
    let task = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let Some(lag) = read(&http, &url).await else {
                continue;
            };
            let at_s = Instant::now()
                .saturating_duration_since(start)
                .as_secs_f64();
            if let Ok(mut samples) = out.lock() {
                samples.push(LagSample { at_s, lag });
            }
        }
    });
    (task, samples)
}

/// The platform's total consumer lag now, if `url` answers with it.
async fn read(http: &reqwest::Client, url: &Url) -> Option<f64> {
    match exposition(http, url).await {
        Ok(text) => total_lag(&text),
        Err(error) => {
            tracing::debug!(%url, %error, "consumer lag not read");
            None
        }
    }
}

async fn exposition(http: &reqwest::Client, url: &Url) -> reqwest::Result<String> {
    http.get(url.clone())
        .timeout(Duration::from_secs(1))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = "\
# HELP receipts_consumer_lag Messages behind the partition's high watermark.
# TYPE receipts_consumer_lag gauge
receipts_consumer_lag{service=\"validator\",topic=\"receipts.submitted\",partition=\"0\"} 12
receipts_consumer_lag{service=\"odd } name\",topic=\"t\",partition=\"1\"} 3 1700000000000
receipts_consumer_lag 5
receipts_consumer_lag_other{service=\"x\"} 100
receipts_consumer_in_flight{service=\"validator\"} 7
receipts_consumer_lag{service=\"y\"} NaN
";

    #[test]
    fn sums_every_sample_of_the_lag_gauge_only() {
        assert_eq!(total_lag(EXPOSITION), Some(20.0));
    }

    #[test]
    fn no_lag_series_is_no_sample() {
        assert_eq!(
            total_lag("receipts_build_info{version=\"0.1.0\"} 1\n"),
            None
        );
        assert_eq!(total_lag(""), None);
    }
}
