//! The pod link: how a worker process serves its pipeline to sidecar processes and Python
//! node processes over iceoryx2 shared memory.
//!
//! Built so far: [`codec`], the byte format of every message on the link. The Python package
//! in `runtime-core/python` (`remotemedia_nodes.codec`) implements the same format, and both
//! are held to the golden vectors in `runtime-core/tests/data/ipc/`. The iceoryx2 services,
//! `IpcRunner` and the worker come next; the plan and its measurements are in
//! `docs/ipc-design.md`.

pub mod codec;
pub mod pipe;
