//! A scriptable HTTP receiver on 127.0.0.1 (webhook destinations in tests): records every
//! request and answers each by a script.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::task::JoinHandle;

use crate::eventually;

/// How long [`Receiver::wait_for`] waits at most.
const WAIT: Duration = Duration::from_secs(90);

/// What a receiver answers to its n-th request (0-based).
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    /// A status with extra headers and a body.
    Full(u16, Vec<(&'static str, String)>, String),
    /// Never answers.
    Hang,
}

/// A request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    pub fn webhook_id(&self) -> String {
        self.header("webhook-id")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

type Script = Arc<dyn Fn(usize) -> Reply + Send + Sync>;

#[derive(Clone)]
struct ReceiverState {
    script: Script,
    requests: Arc<Mutex<Vec<Received>>>,
}

/// An HTTP server on 127.0.0.1 that records every request and answers by script.
pub struct Receiver {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Received>>>,
    task: JoinHandle<()>,
}

impl Receiver {
    pub async fn start(script: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = ReceiverState {
            script: Arc::new(script),
            requests: Arc::clone(&requests),
        };
        let app = axum::Router::new().fallback(receive).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("receiver addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("receiver serves");
        });
        Self {
            addr,
            requests,
            task,
        }
    }

    /// Answers 200 to everything.
    pub async fn ok() -> Self {
        Self::start(|_| Reply::Status(200)).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.requests.lock().expect("requests").clone()
    }

    pub fn count(&self) -> usize {
        self.requests.lock().expect("requests").len()
    }

    /// Waits for at least `n` requests.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        eventually(&format!("{n} requests at {}", self.addr), WAIT, || async {
            let got = self.requests();
            (got.len() >= n).then_some(got)
        })
        .await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(State(state): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> Response {
    let n = {
        let mut requests = state.requests.lock().expect("requests");
        requests.push(Received {
            headers,
            body,
            at: Instant::now(),
        });
        requests.len() - 1
    };
    match (state.script)(n) {
        Reply::Status(code) => StatusCode::from_u16(code).expect("status").into_response(),
        Reply::Full(code, headers, body) => {
            let mut response = (StatusCode::from_u16(code).expect("status"), body).into_response();
            for (name, value) in headers {
                response
                    .headers_mut()
                    .insert(name, value.parse().expect("header value"));
            }
            response
        }
        Reply::Hang => std::future::pending().await,
    }
}
