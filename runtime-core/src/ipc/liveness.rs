//! Which iceoryx2 nodes (processes) on this host are alive. iceoryx2 keeps a lock file per
//! node that the kernel releases when its process dies, so "dead" is known at once, without
//! heartbeats.

use iceoryx2::node::{NodeState, NodeView};
use iceoryx2::prelude::*;

use super::pipe::{Ipc, IpcError};

/// A live node: its unique id, name and process id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveNode {
    /// iceoryx2's system-wide unique node id.
    pub id: u128,
    /// The node name (not unique).
    pub name: String,
    /// The owning process.
    pub pid: i32,
}

/// Every live node whose name satisfies `wanted`.
///
/// # Errors
/// The node list could not be read.
pub fn live_nodes(
    config: &Config,
    mut wanted: impl FnMut(&str) -> bool,
) -> Result<Vec<LiveNode>, IpcError> {
    let mut found = Vec::new();
    Node::<Ipc>::list(config, |state| {
        if let NodeState::Alive(view) = &state
            && let Some(details) = view.details()
        {
            let name = details.name().as_str();
            if wanted(name) {
                found.push(LiveNode {
                    id: view.id().value(),
                    name: name.to_owned(),
                    pid: details.process_id().value(),
                });
            }
        }
        CallbackProgression::Continue
    })
    .map_err(super::pipe::io("list nodes"))?;
    Ok(found)
}
