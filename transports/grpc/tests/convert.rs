//! The wire adapters lose nothing: runtime data -> protobuf bytes -> runtime data is the
//! identity for every variant (audio compared bit for bit, NaNs included), and wire data that
//! cannot be runtime data is refused with its field path.

use proptest::prelude::*;
use prost::Message as _;
use remotemedia_grpc::convert::{data_from_wire, data_to_wire, item_from_wire, item_to_wire};
use remotemedia_grpc::pb;
use remotemedia_runtime_core::data::{DType, TensorData};
use remotemedia_runtime_core::{AudioBuffer, RuntimeData, TransportData};
use serde_json::Value;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".*".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".*", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn audio() -> impl Strategy<Value = AudioBuffer> {
    (1u16..=4, 0usize..64, any::<u32>()).prop_flat_map(|(channels, frames, rate)| {
        (
            prop::collection::vec(
                any::<u32>().prop_map(f32::from_bits),
                frames * usize::from(channels),
            ),
            proptest::option::of(".*"),
            proptest::option::of(any::<u64>()),
        )
            .prop_map(move |(samples, stream_id, timestamp_us)| AudioBuffer {
                samples: samples.into(),
                sample_rate: rate,
                channels,
                stream_id,
                timestamp_us,
            })
    })
}

fn tensor() -> impl Strategy<Value = TensorData> {
    let dtype = prop_oneof![
        Just(DType::F32),
        Just(DType::F16),
        Just(DType::F64),
        Just(DType::I8),
        Just(DType::I16),
        Just(DType::I32),
        Just(DType::I64),
        Just(DType::U8),
    ];
    (dtype, prop::collection::vec(0usize..4, 0..4)).prop_flat_map(|(dtype, shape)| {
        let len = shape.iter().product::<usize>() * dtype.size_bytes();
        prop::collection::vec(any::<u8>(), len).prop_map(move |bytes| TensorData {
            bytes: bytes.into(),
            shape: shape.clone(),
            dtype,
        })
    })
}

fn runtime_data() -> impl Strategy<Value = RuntimeData> {
    prop_oneof![
        audio().prop_map(RuntimeData::Audio),
        ".*".prop_map(RuntimeData::Text),
        json_value().prop_map(RuntimeData::Json),
        prop::collection::vec(any::<u8>(), 0..256).prop_map(|b| RuntimeData::Binary(b.into())),
        tensor().prop_map(RuntimeData::Tensor),
    ]
}

/// Equality with audio compared by bit pattern (a NaN sample must come back as the same NaN).
fn same(a: &RuntimeData, b: &RuntimeData) -> bool {
    match (a, b) {
        (RuntimeData::Audio(x), RuntimeData::Audio(y)) => {
            x.samples
                .iter()
                .map(|s| s.to_bits())
                .eq(y.samples.iter().map(|s| s.to_bits()))
                && (x.sample_rate, x.channels, &x.stream_id, x.timestamp_us)
                    == (y.sample_rate, y.channels, &y.stream_id, y.timestamp_us)
        }
        _ => a == b,
    }
}

proptest! {
    /// Any bytes a client sends as an item: refused naming the field, or converted, and then
    /// the same item after a round trip (the `grpc_adapters` fuzz target goes further).
    #[test]
    fn any_bytes_are_an_item_or_a_refusal(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let item = pb::Item::decode(bytes.as_slice()).ok().and_then(|w| item_from_wire(w).ok());
        if let Some(item) = item {
            let back = item_from_wire(item_to_wire(&item)).unwrap();
            prop_assert!(same(&item.data, &back.data));
        }
    }

    #[test]
    fn every_runtime_data_survives_the_wire(data in runtime_data()) {
        let bytes = data_to_wire(&data).encode_to_vec();
        let back = data_from_wire(pb::Data::decode(bytes.as_slice()).unwrap()).unwrap();
        prop_assert!(same(&data, &back), "{data:?} came back as {back:?}");
    }

    #[test]
    fn sequence_and_metadata_survive_the_wire(
        data in runtime_data(),
        sequence in proptest::option::of(any::<u64>()),
        metadata in prop::collection::btree_map(".*", ".*", 0..4),
    ) {
        let item = TransportData { data, sequence, metadata };
        let bytes = item_to_wire(&item).encode_to_vec();
        let back = item_from_wire(pb::Item::decode(bytes.as_slice()).unwrap()).unwrap();
        prop_assert!(same(&item.data, &back.data));
        prop_assert_eq!((item.sequence, item.metadata), (back.sequence, back.metadata));
    }
}

#[test]
fn a_json_string_stays_json_and_binary_stays_binary() {
    // The two upstream losses: Json("x") became Text, Binary was dropped.
    for data in [
        RuntimeData::Json(Value::String("just text?".into())),
        RuntimeData::Binary(vec![0, 159, 255].into()),
    ] {
        assert_eq!(data_from_wire(data_to_wire(&data)).unwrap(), data);
    }
}

#[test]
fn wire_data_that_is_not_runtime_data_names_its_field() {
    let audio = |bytes: usize, channels: u32| pb::Data {
        kind: Some(pb::data::Kind::Audio(pb::Audio {
            samples_f32le: vec![0; bytes],
            sample_rate: 48_000,
            channels,
            stream_id: None,
            timestamp_us: None,
        })),
    };
    let tensor = |dtype: i32| pb::Data {
        kind: Some(pb::data::Kind::Tensor(pb::Tensor {
            data: vec![0; 4],
            shape: vec![1],
            dtype,
        })),
    };
    let cases = [
        (pb::Data { kind: None }, "data.kind", "no data kind"),
        (audio(7, 1), "data.audio.samples_f32le", "7 bytes"),
        (audio(8, 70_000), "data.audio.channels", "70000"),
        (tensor(0), "data.tensor.dtype", "unspecified"),
        (tensor(99), "data.tensor.dtype", "unknown dtype 99"),
        (
            pb::Data {
                kind: Some(pb::data::Kind::Json("{nope".into())),
            },
            "data.json",
            "not JSON",
        ),
    ];
    for (data, field, problem) in cases {
        let err = data_from_wire(data).unwrap_err();
        assert_eq!(err.field, field, "{err}");
        assert!(err.problem.contains(problem), "{err}");
    }
    let err = item_from_wire(pb::Item {
        data: None,
        sequence: None,
        metadata: Default::default(),
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "data: the item has no data");
}
