//! A typed async client of the receipts HTTP API (the ingest gateway; docs/api.md): one method
//! per route, responses as typed values, every error answer as an RFC 9457 [`Problem`].
//!
//! Reads are retried on connection failures and "try again later" answers (429, 502-504) with a
//! short backoff; submissions are retried the same way, and also after any broken connection,
//! always with the same idempotency key, so a retry never creates a second receipt. `Retry-After`
//! is honoured. Nothing else is retried.
//!
//! ```no_run
//! # async fn example() -> receipts_client::Result<()> {
//! use receipts_client::{ApiKey, Client, Submission};
//! let client = Client::new("http://127.0.0.1:8080".parse().expect("url"), Some(ApiKey::new("rk_…")?))?;
//! let accepted = client
//!     .submit(&Submission::new(std::fs::read("r.json").unwrap_or_default(), "application/json", "retail-receipt/v1", "order-1"))
//!     .await?;
//! let receipt = client.receipt(&accepted.id).await?;
//! println!("{} {}", receipt.id, receipt.status);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod error;
mod model;
mod retry;

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT,
};
use reqwest::{Method, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

pub use error::{Error, PROBLEM_TYPE_PREFIX, Problem, Result};
pub use model::*;
pub use retry::RetryPolicy;

use retry::Retry;

/// An API key (`rk_…`). `Debug` prints `***`; only [`ApiKey::expose`] shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// A key as given (surrounding whitespace removed); it must fit in an HTTP header.
    pub fn new(key: impl Into<String>) -> Result<Self> {
        let key = key.into().trim().to_owned();
        if key.is_empty() {
            return Err(Error::Invalid("the API key is empty".into()));
        }
        // The value is never part of the message.
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::Invalid(
                "the API key holds characters an HTTP header cannot carry".into(),
            ));
        }
        Ok(Self(key))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// One receipt document to submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The document exactly as issued.
    pub document: Bytes,
    /// `application/json` or `application/xml`.
    pub content_type: String,
    /// `name/version`, e.g. `retail-receipt/v1`.
    pub receipt_type: String,
    /// Chosen by the client; the same key with the same request replays the first answer.
    pub idempotency_key: String,
    /// Where the receipt's terminal status is POSTed, signed.
    pub callback_url: Option<String>,
}

impl Submission {
    pub fn new(
        document: impl Into<Bytes>,
        content_type: impl Into<String>,
        receipt_type: impl Into<String>,
        idempotency_key: impl Into<String>,
    ) -> Self {
        Self {
            document: document.into(),
            content_type: content_type.into(),
            receipt_type: receipt_type.into(),
            idempotency_key: idempotency_key.into(),
            callback_url: None,
        }
    }
}

const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
const NDJSON: &str = "application/x-ndjson";

/// A client of one gateway. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    /// `Bearer <key>`, marked sensitive.
    authorization: Option<HeaderValue>,
    retry: RetryPolicy,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("key", &self.authorization.as_ref().map(|_| "***"))
            .field("retry", &self.retry)
            .finish()
    }
}

/// One request, as many times as its retry rule allows.
struct Call {
    method: Method,
    url: Url,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Option<Bytes>,
    retry: Retry,
}

impl Client {
    /// A client of the gateway at `base_url` (`http(s)://host[:port][/prefix]`); requests carry
    /// `key` as a bearer token when given. Requests time out after 60 s.
    pub fn new(base_url: Url, key: Option<ApiKey>) -> Result<Self> {
        if !matches!(base_url.scheme(), "http" | "https") || base_url.cannot_be_a_base() {
            return Err(Error::Invalid(format!(
                "the API URL must be http(s)://host[:port], not {base_url}"
            )));
        }
        let authorization = key
            .map(|key| {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
                    .map_err(|_| {
                        Error::Invalid("the API key cannot be sent in an HTTP header".into())
                    })?;
                value.set_sensitive(true);
                Ok::<_, Error>(value)
            })
            .transpose()?;
        Ok(Self {
            http: http_client(Duration::from_secs(60))?,
            base: base_url,
            authorization,
            retry: RetryPolicy::default(),
        })
    }

    /// Retries as `policy` says (default: [`RetryPolicy::default`]).
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Gives up on a request after `timeout` (default 60 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Result<Self> {
        self.http = http_client(timeout)?;
        Ok(self)
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// `POST /v1/receipts`. Retried with the same idempotency key after a broken connection, a
    /// timeout or a "try again later" answer.
    pub async fn submit(&self, submission: &Submission) -> Result<Accepted> {
        let mut headers = vec![
            (
                CONTENT_TYPE,
                header("Content-Type", &submission.content_type)?,
            ),
            (
                HeaderName::from_static("receipt-type"),
                header("Receipt-Type", &submission.receipt_type)?,
            ),
            (
                HeaderName::from_static("idempotency-key"),
                header("Idempotency-Key", &submission.idempotency_key)?,
            ),
        ];
        if let Some(callback) = &submission.callback_url {
            headers.push((
                HeaderName::from_static("callback-url"),
                header("Callback-Url", callback)?,
            ));
        }
        let url = self.url(&["v1", "receipts"])?;
        let response = self
            .execute(Call {
                method: Method::POST,
                url: url.clone(),
                headers,
                body: Some(submission.document.clone()),
                retry: Retry::Submission,
            })
            .await?;
        let replayed = response
            .headers()
            .get(IDEMPOTENT_REPLAYED)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        let mut accepted: Accepted = decode(&url, response).await?;
        accepted.replayed = replayed;
        Ok(accepted)
    }

    /// `POST /v1/receipts/batch`: every item recorded as a single submission would be, outcomes
    /// in order. Retried like [`Client::submit`] (each item has its own idempotency key).
    pub async fn submit_batch(&self, items: &[BatchItem]) -> Result<BatchOutcome> {
        let mut body = Vec::new();
        for item in items {
            serde_json::to_writer(&mut body, item)
                .map_err(|e| Error::Invalid(format!("batch item: {e}")))?;
            body.push(b'\n');
        }
        self.submit_batch_ndjson(body.into()).await
    }

    /// [`Client::submit_batch`] with the NDJSON body already written (one [`BatchItem`] per
    /// line), for callers that stream their items.
    pub async fn submit_batch_ndjson(&self, body: Bytes) -> Result<BatchOutcome> {
        let url = self.url(&["v1", "receipts", "batch"])?;
        let response = self
            .execute(Call {
                method: Method::POST,
                url: url.clone(),
                headers: vec![(CONTENT_TYPE, HeaderValue::from_static(NDJSON))],
                body: Some(body),
                retry: Retry::Submission,
            })
            .await?;
        decode(&url, response).await
    }

    /// `GET /livez`: the gateway serves (no key needed).
    pub async fn live(&self) -> Result<()> {
        let url = self.url(&["livez"])?;
        self.execute(Call::get(url)).await.map(drop)
    }

    /// `GET /v1/receipts/{id}`.
    pub async fn receipt(&self, id: &str) -> Result<Receipt> {
        self.get_json(&["v1", "receipts", id]).await
    }

    /// `GET /v1/receipts/{id}/document`: the original bytes and their content type.
    pub async fn document(&self, id: &str) -> Result<Document> {
        let url = self.url(&["v1", "receipts", id, "document"])?;
        let response = self.execute(Call::get(url.clone())).await?;
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Error::transport(&url, e))?;
        Ok(Document {
            content_type,
            bytes,
        })
    }

    /// `GET /v1/receipts`: the first page `filter` selects, or with `cursor` the page it
    /// continues (the cursor carries the filters; only the page size comes from `filter`).
    pub async fn list(&self, filter: &ListFilter, cursor: Option<&str>) -> Result<ReceiptPage> {
        let mut url = self.url(&["v1", "receipts"])?;
        let query = match cursor {
            None => filter.query(),
            Some(cursor) => {
                let mut query = vec![("cursor", cursor.to_owned())];
                if let Some(limit) = filter.limit {
                    query.push(("limit", limit.to_string()));
                }
                query
            }
        };
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let response = self.execute(Call::get(url.clone())).await?;
        decode(&url, response).await
    }

    /// `GET /v1/receipts/{id}/deliveries`: every webhook message about the receipt.
    pub async fn deliveries(&self, receipt_id: &str) -> Result<Vec<Delivery>> {
        let list: model::DeliveryList = self
            .get_json(&["v1", "receipts", receipt_id, "deliveries"])
            .await?;
        Ok(list.deliveries)
    }

    /// `POST /v1/receipts/{id}/deliveries/{delivery}/retry`: sends a delivered or failed message
    /// again.
    pub async fn redeliver(&self, receipt_id: &str, delivery_id: &str) -> Result<Delivery> {
        let path = [
            "v1",
            "receipts",
            receipt_id,
            "deliveries",
            delivery_id,
            "retry",
        ];
        self.post_json(&path, None::<&()>).await
    }

    /// `POST /v1/webhook-endpoints`: the endpoint and its signing secret (shown only now).
    pub async fn create_endpoint(&self, endpoint: &NewEndpoint) -> Result<CreatedEndpoint> {
        self.post_json(&["v1", "webhook-endpoints"], Some(endpoint))
            .await
    }

    /// `GET /v1/webhook-endpoints`, oldest first.
    pub async fn endpoints(&self) -> Result<Vec<Endpoint>> {
        let list: model::EndpointList = self.get_json(&["v1", "webhook-endpoints"]).await?;
        Ok(list.endpoints)
    }

    /// `GET /v1/webhook-endpoints/{id}`.
    pub async fn endpoint(&self, id: &str) -> Result<Endpoint> {
        self.get_json(&["v1", "webhook-endpoints", id]).await
    }

    /// `PATCH /v1/webhook-endpoints/{id}`.
    pub async fn update_endpoint(&self, id: &str, patch: &EndpointPatch) -> Result<Endpoint> {
        let url = self.url(&["v1", "webhook-endpoints", id])?;
        let response = self
            .execute(Call::json(Method::PATCH, url.clone(), Some(patch))?)
            .await?;
        decode(&url, response).await
    }

    /// `POST /v1/webhook-endpoints/{id}/rotate-secret`.
    pub async fn rotate_endpoint_secret(&self, id: &str) -> Result<RotatedSecret> {
        self.post_json(
            &["v1", "webhook-endpoints", id, "rotate-secret"],
            None::<&()>,
        )
        .await
    }

    /// `POST /v1/webhook-endpoints/{id}/test`: sends the endpoint one signed test message and
    /// tells what it answered (not delivered is an answer too, not an error). Never retried.
    pub async fn test_endpoint(&self, id: &str) -> Result<EndpointTest> {
        self.post_json(&["v1", "webhook-endpoints", id, "test"], None::<&()>)
            .await
    }

    /// `DELETE /v1/webhook-endpoints/{id}`.
    pub async fn delete_endpoint(&self, id: &str) -> Result<()> {
        let url = self.url(&["v1", "webhook-endpoints", id])?;
        self.execute(Call {
            method: Method::DELETE,
            url,
            headers: Vec::new(),
            body: None,
            retry: Retry::Never,
        })
        .await?;
        Ok(())
    }

    /// `GET /v1/webhooks/secret`: the secrets that sign deliveries to `Callback-Url`s.
    pub async fn callback_secrets(&self) -> Result<CallbackSecrets> {
        self.get_json(&["v1", "webhooks", "secret"]).await
    }

    /// `POST /v1/webhooks/secret/rotate`.
    pub async fn rotate_callback_secret(&self) -> Result<CallbackSecrets> {
        self.post_json(&["v1", "webhooks", "secret", "rotate"], None::<&()>)
            .await
    }

    /// `GET /v1/receipt-types`.
    pub async fn receipt_types(&self) -> Result<Vec<TypeSummary>> {
        let list: model::TypeList = self.get_json(&["v1", "receipt-types"]).await?;
        Ok(list.receipt_types)
    }

    /// `GET /v1/receipt-types/{name}/{version}`: one type with its JSON Schema.
    pub async fn receipt_type(&self, name: &str, version: &str) -> Result<TypeDetail> {
        self.get_json(&["v1", "receipt-types", name, version]).await
    }

    /// The base URL with these path segments (each percent-encoded as needed).
    fn url(&self, segments: &[&str]) -> Result<Url> {
        let mut url = self.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        url.path_segments_mut()
            .map_err(|()| Error::Invalid(format!("{} cannot be a base URL", self.base)))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    async fn get_json<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T> {
        let url = self.url(segments)?;
        let response = self.execute(Call::get(url.clone())).await?;
        decode(&url, response).await
    }

    async fn post_json<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: Option<&impl Serialize>,
    ) -> Result<T> {
        let url = self.url(segments)?;
        let response = self
            .execute(Call::json(Method::POST, url.clone(), body)?)
            .await?;
        decode(&url, response).await
    }

    /// Sends `call`, retrying as its rule and the policy allow; a 2xx answer is returned, any
    /// other becomes [`Error::Problem`].
    async fn execute(&self, call: Call) -> Result<Response> {
        let mut attempt = 1;
        loop {
            let mut request = self
                .http
                .request(call.method.clone(), call.url.clone())
                .header(ACCEPT, "application/json, application/problem+json");
            if let Some(authorization) = &self.authorization {
                request = request.header(AUTHORIZATION, authorization.clone());
            }
            for (name, value) in &call.headers {
                request = request.header(name, value.clone());
            }
            if let Some(body) = &call.body {
                request = request.body(body.clone());
            }
            let retry_in = match request.send().await {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let status = response.status().as_u16();
                    if !(call.retry.on_status(status) && attempt < self.retry.attempts) {
                        return Err(problem(&call.url, response).await);
                    }
                    let retry_after = retry::retry_after(
                        response
                            .headers()
                            .get(RETRY_AFTER)
                            .and_then(|v| v.to_str().ok()),
                    );
                    self.retry.backoff(attempt, retry_after)
                }
                Err(error) => {
                    if !(call.retry.on_transport(&error) && attempt < self.retry.attempts) {
                        return Err(Error::transport(&call.url, error));
                    }
                    self.retry.backoff(attempt, None)
                }
            };
            tokio::time::sleep(retry_in).await;
            attempt += 1;
        }
    }
}

impl Call {
    fn get(url: Url) -> Self {
        Self {
            method: Method::GET,
            url,
            headers: Vec::new(),
            body: None,
            retry: Retry::Idempotent,
        }
    }

    /// A request with a JSON body (or none); never retried.
    fn json(method: Method, url: Url, body: Option<&impl Serialize>) -> Result<Self> {
        let body = body
            .map(|b| serde_json::to_vec(b).map(Bytes::from))
            .transpose()
            .map_err(|e| Error::Invalid(format!("request body: {e}")))?;
        let headers = match body {
            Some(_) => vec![(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            None => Vec::new(),
        };
        Ok(Self {
            method,
            url,
            headers,
            body,
            retry: Retry::Never,
        })
    }
}

fn http_client(timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10).min(timeout))
        .default_headers(
            [(
                USER_AGENT,
                HeaderValue::from_static(concat!("receipts-client/", env!("CARGO_PKG_VERSION"))),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .map_err(|e| Error::Invalid(format!("HTTP client: {e}")))
}

/// A header value, or an error naming the header (never its value, which may be sensitive).
fn header(name: &str, value: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(value.trim())
        .map_err(|_| Error::Invalid(format!("{name} must be visible ASCII")))
}

async fn decode<T: DeserializeOwned>(url: &Url, response: Response) -> Result<T> {
    let bytes = response
        .bytes()
        .await
        .map_err(|e| Error::transport(url, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
        url: url.to_string(),
        reason: e.to_string(),
    })
}

async fn problem(url: &Url, response: Response) -> Error {
    let status = response.status().as_u16();
    let retry_after = retry::retry_after(
        response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok()),
    );
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match response.bytes().await {
        Ok(body) => {
            let mut problem = Problem::from_response(status, content_type.as_deref(), &body);
            problem.retry_after = retry_after;
            Error::Problem(Box::new(problem))
        }
        Err(e) => Error::transport(url, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> Client {
        Client::new(base.parse().expect("url"), None).expect("client")
    }

    #[test]
    fn urls_keep_a_base_path_and_encode_segments() {
        let plain = client("http://127.0.0.1:8080");
        assert_eq!(
            plain
                .url(&["v1", "receipts", "a b/c"])
                .expect("url")
                .as_str(),
            "http://127.0.0.1:8080/v1/receipts/a%20b%2Fc"
        );
        for base in [
            "https://api.example/receipts",
            "https://api.example/receipts/",
        ] {
            assert_eq!(
                client(base)
                    .url(&["v1", "receipt-types"])
                    .expect("url")
                    .as_str(),
                "https://api.example/receipts/v1/receipt-types"
            );
        }
        assert!(Client::new("ftp://x".parse().expect("url"), None).is_err());
    }

    #[test]
    fn keys_never_print() {
        let key = ApiKey::new(" rk_secret ").expect("key");
        assert_eq!(key.expose(), "rk_secret");
        assert_eq!(format!("{key:?}"), "ApiKey(***)");
        let client = Client::new("http://h".parse().expect("url"), Some(key)).expect("client");
        assert!(!format!("{client:?}").contains("rk_secret"));
        let error = ApiKey::new("rk_\u{e9}").expect_err("not ASCII");
        assert!(!error.to_string().contains("rk_"));
        assert!(ApiKey::new("  ").is_err());
    }
}
