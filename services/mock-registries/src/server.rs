//! Serving connections with hyper directly (not `axum::serve`), so that a request can end its
//! connection without any HTTP response: the `reset` and `timeout` faults.

use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::RegistryKind;
use crate::http::Abort;

/// How long open connections get to finish their requests after shutdown.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// The service's error when a request must end its connection unanswered; hyper then drops the
/// connection without writing a response.
#[derive(Debug, thiserror::Error)]
#[error("connection aborted by fault injection")]
struct ConnectionAborted;

/// A TCP stream that, when asked to, is closed with a reset (SO_LINGER 0) instead of a FIN.
struct ResettableStream {
    inner: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if self.reset.load(Ordering::Relaxed) {
            // Zero linger: closing sends RST and never blocks.
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Accepts connections until `shutdown`, then lets open ones finish (bounded by a grace period).
pub(crate) async fn serve_connections(
    kind: RegistryKind,
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) {
    let tracker = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(registry = %kind, %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let reset = Arc::new(AtomicBool::new(false));
        let io = TokioIo::new(ResettableStream {
            inner: stream,
            reset: reset.clone(),
        });
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let router = router.clone();
            let reset = reset.clone();
            async move {
                let response = match router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                match response.extensions().get::<Abort>() {
                    Some(abort) => {
                        reset.store(abort.reset, Ordering::Relaxed);
                        Err(ConnectionAborted)
                    }
                    None => Ok(response),
                }
            }
        });
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(io, service);
            let mut connection = pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    tokio::time::timeout(DRAIN_GRACE, connection.as_mut())
                        .await
                        .unwrap_or(Ok(()))
                }
            };
            if let Err(error) = result {
                tracing::debug!(registry = %kind, %peer, %error, "connection ended");
            }
        });
    }
    tracker.close();
    tracker.wait().await;
}
