//! Lease-based leader election (kube-lease-manager), so that two operator replicas never
//! reconcile at once. Every replica serves the webhook; only the leader runs controllers.

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Lease duration: how long a crashed leader blocks the others.
const LEASE_SECONDS: u64 = 15;
/// Renew this long before expiry.
const GRACE_SECONDS: u64 = 5;

/// A running election: `is_leader` flips as the lease is won or lost.
pub struct Election {
    /// True while this replica holds the lease.
    pub is_leader: watch::Receiver<bool>,
    task: JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
}

impl Election {
    /// Joins the election for Lease `namespace/name` as `identity`.
    ///
    /// # Errors
    /// The Lease could not be read or created.
    pub async fn join(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
    ) -> Result<Self, LeaseManagerError> {
        let manager = LeaseManagerBuilder::new(client, name)
            .with_namespace(namespace)
            .with_identity(identity)
            .with_duration(LEASE_SECONDS)
            .with_grace(GRACE_SECONDS)
            .with_field_manager("remotemedia-operator-lease")
            .build()
            .await?;
        let (is_leader, task) = manager.watch().await;
        Ok(Self { is_leader, task })
    }

    /// Waits until this replica leads. Returns false if the election ended first.
    pub async fn wait_to_lead(&mut self) -> bool {
        self.is_leader.wait_for(|leader| *leader).await.is_ok()
    }

    /// Leaves the election, releasing the lease if held, so a standby takes over at once.
    pub async fn leave(self) {
        drop(self.is_leader);
        match self.task.await {
            Ok(Ok(_)) => tracing::info!("released the leader lease"),
            Ok(Err(e)) => tracing::warn!(error = %e, "releasing the leader lease failed"),
            Err(e) => tracing::warn!(error = %e, "lease task failed"),
        }
    }
}
