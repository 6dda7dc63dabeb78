//! Any bytes as a gRPC request item: protobuf decoding, then the adapter to runtime data, which
//! refuses inconsistent items (sample counts, channels, tensor shapes) naming the field; what
//! it accepts goes back to the wire and converts to the same item.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use remotemedia_grpc::convert::{item_from_wire, item_to_wire};
use remotemedia_grpc::pb;

fuzz_target!(|data: &[u8]| {
    let Ok(wire) = pb::Item::decode(data) else {
        return;
    };
    let Ok(item) = item_from_wire(wire) else {
        return;
    };
    let again = item_from_wire(item_to_wire(&item)).expect("an accepted item converts back");
    assert_eq!(format!("{item:?}"), format!("{again:?}"));
});
