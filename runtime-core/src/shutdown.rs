//! The stop request every RemoteMedia server honours: SIGTERM (what the kubelet sends) or
//! SIGINT. The servers take their shutdown signal from outside; their binaries pass this.

/// Resolves when SIGTERM or SIGINT arrives. If SIGTERM cannot be watched (it can always be on
/// Linux; this is defensive), says so and waits for SIGINT alone.
pub async fn requested() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "no SIGTERM handler; stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
