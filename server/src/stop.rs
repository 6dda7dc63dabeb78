//! How a server stops: SIGTERM or SIGINT starts the drain, the drain is a future that resolves
//! when the last session ends (or at the deadline), then the server is told to stop.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use remotemedia_runtime_core::serve::Admission;

use crate::DrainFlags;

/// How long a stopped server gets to close its connections before the process exits anyway.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The future a server is handed to know when to stop.
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A server's drain on SIGTERM: new sessions are refused from the first moment, a line on
/// stderr says so (tests and operators wait for it), and this resolves once the open sessions
/// have ended and the linger has passed, or at the deadline. Returns the sessions cut.
pub async fn drain(sessions: &Admission, flags: DrainFlags) -> usize {
    sessions.refuse_new();
    let policy = flags.policy();
    eprintln!(
        "draining: refusing new sessions, {} open, waiting up to {:?} (port open for at least {:?})",
        sessions.open(),
        policy.deadline,
        policy.linger,
    );
    remotemedia_runtime_core::serve::drain(sessions, policy).await
}

/// Runs the server `serve` builds until `stop` resolves (a binary passes
/// [`shutdown::requested`](remotemedia_runtime_core::shutdown::requested), called before it
/// says it serves), then [drains](drain) `sessions`,
/// resolves the [`Shutdown`] it was handed, and gives it 2 s to finish (connections
/// still open after the drain deadline are cut by the process exiting). Prints how many
/// sessions were cut.
///
/// # Errors
///
/// The server failed before any stop was asked for.
pub async fn serve_until_drained<S, E>(
    stop: impl Future<Output = ()>,
    sessions: &Admission,
    flags: DrainFlags,
    serve: impl FnOnce(Shutdown) -> S,
) -> anyhow::Result<()>
where
    S: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(Box::pin(async {
        let _ = stopped.await;
    })));
    tokio::pin!(server);
    tokio::select! {
        () = stop => {}
        ended = &mut server => {
            // The server stopped by itself: nothing to drain.
            return match ended {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(anyhow::anyhow!("the server failed: {e}")),
                Err(e) => Err(anyhow::anyhow!("the server task failed: {e}")),
            };
        }
    }
    let cut = drain(sessions, flags).await;
    let _ = stop_server.send(());
    if let Ok(Ok(Err(e))) = tokio::time::timeout(STOP_GRACE, server).await {
        tracing::warn!(error = %e, "server stopped with an error");
    }
    eprintln!("stopped ({cut} sessions cut at the drain deadline)");
    Ok(())
}
