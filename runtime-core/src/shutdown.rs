//! The stop request every RemoteMedia server honours: SIGTERM (what the kubelet sends) or
//! SIGINT. The servers take their shutdown signal from outside; their binaries pass this.

use std::future::Future;

use tokio::signal::unix::{SignalKind, signal};

/// Starts listening for SIGTERM and SIGINT at once, and resolves when one arrives. Call it
/// before the process tells anyone it serves: a signal that comes before the handlers are in
/// place kills the process (the default action), and registering on the first poll instead
/// left a window after a server's "serving" line in which SIGTERM did exactly that.
///
/// Must be called inside a tokio runtime. If a handler cannot be installed (on Linux it
/// always can; this is defensive), says so and waits for the other signal alone.
pub fn requested() -> impl Future<Output = ()> + Send + 'static {
    let watch = |kind: SignalKind, name: &'static str| match signal(kind) {
        Ok(stream) => Some(stream),
        Err(e) => {
            tracing::warn!(error = %e, "no {name} handler");
            None
        }
    };
    let mut term = watch(SignalKind::terminate(), "SIGTERM");
    let mut interrupt = watch(SignalKind::interrupt(), "SIGINT");
    async move {
        let term = async {
            match term.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        let interrupt = async {
            match interrupt.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = term => {}
            _ = interrupt => {}
        }
    }
}
