//! The pod link: how a worker process serves its pipeline to sidecar processes and Python
//! node processes over iceoryx2 shared memory.
//!
//! Built so far: [`codec`], the byte format of every message on the link (shared with the
//! Python package). The iceoryx2 services, `IpcRunner` and the worker come next (issue 4).

pub mod codec;
