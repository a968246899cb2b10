//! Small HTTP helpers shared by every outgoing client (registries, webhooks).

use std::time::Duration;

use chrono::Utc;
use http::HeaderMap;
use http::header::RETRY_AFTER;

/// `Retry-After` as seconds or an HTTP date (a date in the past: no wait).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&Utc) - Utc::now())
            .to_std()
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(retry_after: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, retry_after.parse().expect("header"));
        h
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(retry_after(&headers("3")), Some(Duration::from_secs(3)));
        let later = (Utc::now() + chrono::Duration::seconds(60)).to_rfc2822();
        let parsed = retry_after(&headers(&later)).expect("date");
        assert!(parsed > Duration::from_secs(50) && parsed <= Duration::from_secs(60));
        let earlier = (Utc::now() - chrono::Duration::seconds(60)).to_rfc2822();
        assert_eq!(retry_after(&headers(&earlier)), Some(Duration::ZERO));
        assert_eq!(retry_after(&headers("soon")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }
}
