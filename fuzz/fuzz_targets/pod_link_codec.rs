//! Any bytes as a pod-link message (what a crashed or hostile peer could put in shared
//! memory): decoded or refused with an error, never a panic or an allocation beyond the bytes;
//! whatever decodes encodes back to a message that decodes to the same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use remotemedia_runtime_core::ipc::codec::{decode, encode};

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = decode(data) else {
        return;
    };
    let bytes = encode(&envelope).expect("a decoded message encodes");
    let again = decode(&bytes).expect("an encoded message decodes");
    assert_eq!(format!("{envelope:?}"), format!("{again:?}"));
});
