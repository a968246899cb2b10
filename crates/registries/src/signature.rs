//! HMAC-SHA256 callback signatures over `<timestamp>.<body>`, with a freshness window and
//! several accepted secrets during a rotation. Comparisons are constant-time.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use receipts_domain::Secret;
use sha2::Sha256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("malformed {0} header")]
    Malformed(&'static str),
    #[error("timestamp outside the accepted window")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

/// Checks that one of `signatures` (hex) is the HMAC of `<timestamp>.<body>` under one of
/// `secrets`, and that `timestamp` (unix seconds) is within `tolerance` of `now`.
pub(crate) fn verify(
    secrets: &[Secret],
    timestamp: &str,
    body: &[u8],
    signatures: &[&str],
    now: DateTime<Utc>,
    tolerance: std::time::Duration,
    header: &'static str,
) -> Result<(), SignatureError> {
    let seconds: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::Malformed(header))?;
    let age = (now.timestamp() - seconds).unsigned_abs();
    if age > tolerance.as_secs() {
        return Err(SignatureError::Stale);
    }
    let decoded: Vec<Vec<u8>> = signatures
        .iter()
        .filter_map(|s| hex::decode(s.trim()).ok())
        .collect();
    if decoded.is_empty() {
        return Err(SignatureError::Malformed(header));
    }
    for secret in secrets {
        for signature in &decoded {
            if mac(secret, timestamp.trim(), body)
                .verify_slice(signature)
                .is_ok()
            {
                return Ok(());
            }
        }
    }
    Err(SignatureError::Mismatch)
}

fn mac(secret: &Secret, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The hex signature of `<timestamp>.<body>` (for tests and tools that sign).
pub fn sign(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    hex::encode(
        mac(secret, &timestamp.to_string(), body)
            .finalize()
            .into_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const WINDOW: Duration = Duration::from_secs(300);

    #[test]
    fn verification() {
        let now = Utc::now();
        let (old, new) = (Secret::new("old-secret"), Secret::new("new-secret"));
        let t = now.timestamp().to_string();
        let good = sign(&new, now.timestamp(), b"{}");
        let check = |secrets: &[Secret], sigs: &[&str], body: &[u8], ts: &str| {
            verify(secrets, ts, body, sigs, now, WINDOW, "X-Sig")
        };
        assert_eq!(
            check(&[old.clone(), new.clone()], &[&good], b"{}", &t),
            Ok(()),
            "rotation: any secret"
        );
        assert_eq!(
            check(std::slice::from_ref(&new), &["00", &good], b"{}", &t),
            Ok(()),
            "any signature"
        );
        assert_eq!(
            check(std::slice::from_ref(&old), &[&good], b"{}", &t),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(std::slice::from_ref(&new), &[&good], b"{ }", &t),
            Err(SignatureError::Mismatch),
            "body tampered"
        );
        let stale = (now.timestamp() - 301).to_string();
        let stale_sig = sign(&new, now.timestamp() - 301, b"{}");
        assert_eq!(
            check(std::slice::from_ref(&new), &[&stale_sig], b"{}", &stale),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check(std::slice::from_ref(&new), &["zz"], b"{}", &t),
            Err(SignatureError::Malformed("X-Sig"))
        );
        assert_eq!(
            check(&[new], &[&good], b"{}", "yesterday"),
            Err(SignatureError::Malformed("X-Sig"))
        );
    }
}
