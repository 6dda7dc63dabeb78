//! Lossless adapters between `remotemedia.v1` wire types and runtime-core's data.
//!
//! Every `RuntimeData` variant maps to its own wire field and back bit for bit (property tests
//! in `tests/convert.rs`). Wire data that cannot be runtime data is a [`ConvertError`] naming
//! the field path, e.g. `input.data.audio.samples_f32le: 7 bytes is not a whole number of
//! float32 samples`.

use std::collections::BTreeMap;
use std::sync::Arc;

use remotemedia_runtime_core::data::{DType, TensorData};
use remotemedia_runtime_core::{
    AudioBuffer, NodeFailure, RuntimeData, SessionOutput, TransportData,
};

use crate::pb;

/// Wire data that is not valid runtime data.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ConvertError {
    /// Field path in the request, e.g. `input.data.tensor.dtype`.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl ConvertError {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// The same error, its field path prefixed with `parent`.
    #[must_use]
    pub fn under(self, parent: &str) -> Self {
        Self {
            field: format!("{parent}.{}", self.field),
            problem: self.problem,
        }
    }
}

/// Samples as little-endian bytes. Sized once and filled in place, which compiles to a plain
/// copy on little-endian machines; collecting a `flat_map` went byte by byte.
fn f32le_bytes(samples: &[f32]) -> Vec<u8> {
    let mut bytes = vec![0; samples.len() * 4];
    for (out, s) in bytes.chunks_exact_mut(4).zip(samples) {
        out.copy_from_slice(&s.to_le_bytes());
    }
    bytes
}

/// Runtime data as wire data.
#[must_use]
pub fn data_to_wire(data: &RuntimeData) -> pb::Data {
    use pb::data::Kind;
    let kind = match data {
        RuntimeData::Audio(audio) => Kind::Audio(pb::Audio {
            samples_f32le: f32le_bytes(&audio.samples),
            sample_rate: audio.sample_rate,
            channels: u32::from(audio.channels),
            stream_id: audio.stream_id.clone(),
            timestamp_us: audio.timestamp_us,
        }),
        RuntimeData::Text(text) => Kind::Text(text.clone()),
        RuntimeData::Json(value) => Kind::Json(value.to_string()),
        RuntimeData::Binary(bytes) => Kind::Binary(bytes.to_vec()),
        RuntimeData::Tensor(tensor) => Kind::Tensor(pb::Tensor {
            data: tensor.bytes.to_vec(),
            shape: tensor.shape.iter().map(|&d| d as u64).collect(),
            dtype: dtype_to_wire(tensor.dtype) as i32,
        }),
    };
    pb::Data { kind: Some(kind) }
}

/// Wire data as runtime data; field paths in errors start at `data`.
///
/// # Errors
/// No kind set, audio bytes that are not whole float32 samples, channels beyond 65535, a
/// tensor with no or an unknown dtype or a dimension beyond this machine's address space, JSON
/// text that does not parse.
pub fn data_from_wire(data: pb::Data) -> Result<RuntimeData, ConvertError> {
    use pb::data::Kind;
    let kind = data
        .kind
        .ok_or_else(|| ConvertError::new("data.kind", "no data kind is set"))?;
    Ok(match kind {
        Kind::Audio(audio) => RuntimeData::Audio(audio_from_wire(audio)?),
        Kind::Text(text) => RuntimeData::Text(text),
        Kind::Json(text) => RuntimeData::Json(
            serde_json::from_str(&text)
                .map_err(|e| ConvertError::new("data.json", format!("not JSON: {e}")))?,
        ),
        Kind::Binary(bytes) => RuntimeData::Binary(bytes.into()),
        Kind::Tensor(tensor) => RuntimeData::Tensor(tensor_from_wire(tensor)?),
    })
}

fn audio_from_wire(audio: pb::Audio) -> Result<AudioBuffer, ConvertError> {
    let bytes = &audio.samples_f32le;
    if !bytes.len().is_multiple_of(4) {
        return Err(ConvertError::new(
            "data.audio.samples_f32le",
            format!(
                "{} bytes is not a whole number of float32 samples",
                bytes.len()
            ),
        ));
    }
    let channels = u16::try_from(audio.channels).map_err(|_| {
        ConvertError::new(
            "data.audio.channels",
            format!("{} channels is more than 65535", audio.channels),
        )
    })?;
    let samples: Arc<[f32]> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok(AudioBuffer {
        samples: samples.into(),
        sample_rate: audio.sample_rate,
        channels,
        stream_id: audio.stream_id,
        timestamp_us: audio.timestamp_us,
    })
}

fn tensor_from_wire(tensor: pb::Tensor) -> Result<TensorData, ConvertError> {
    let dtype = match pb::Dtype::try_from(tensor.dtype) {
        Ok(pb::Dtype::Unspecified) => {
            return Err(ConvertError::new(
                "data.tensor.dtype",
                "dtype is unspecified (0); name the element type",
            ));
        }
        Ok(known) => dtype_from_wire(known),
        Err(_) => {
            return Err(ConvertError::new(
                "data.tensor.dtype",
                format!("unknown dtype {}", tensor.dtype),
            ));
        }
    };
    let shape = tensor
        .shape
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            usize::try_from(d).map_err(|_| {
                ConvertError::new(
                    format!("data.tensor.shape[{i}]"),
                    format!("{d} is too large"),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(TensorData {
        bytes: tensor.data.into(),
        shape,
        dtype,
    })
}

fn dtype_to_wire(dtype: DType) -> pb::Dtype {
    match dtype {
        DType::F32 => pb::Dtype::F32,
        DType::F16 => pb::Dtype::F16,
        DType::F64 => pb::Dtype::F64,
        DType::I8 => pb::Dtype::I8,
        DType::I16 => pb::Dtype::I16,
        DType::I32 => pb::Dtype::I32,
        DType::I64 => pb::Dtype::I64,
        DType::U8 => pb::Dtype::U8,
    }
}

fn dtype_from_wire(dtype: pb::Dtype) -> DType {
    match dtype {
        // Rejected by the caller; never silently float32.
        pb::Dtype::Unspecified | pb::Dtype::F32 => DType::F32,
        pb::Dtype::F16 => DType::F16,
        pb::Dtype::F64 => DType::F64,
        pb::Dtype::I8 => DType::I8,
        pb::Dtype::I16 => DType::I16,
        pb::Dtype::I32 => DType::I32,
        pb::Dtype::I64 => DType::I64,
        pb::Dtype::U8 => DType::U8,
    }
}

/// An item (data, sequence, metadata) as wire data.
#[must_use]
pub fn item_to_wire(item: &TransportData) -> pb::Item {
    pb::Item {
        data: Some(data_to_wire(&item.data)),
        sequence: item.sequence,
        metadata: item
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// A wire item as runtime data; field paths in errors start at the item's `data`, so callers
/// prefix the request field holding the item.
///
/// # Errors
/// As [`data_from_wire`], and an item with no data.
pub fn item_from_wire(item: pb::Item) -> Result<TransportData, ConvertError> {
    let data = item
        .data
        .ok_or_else(|| ConvertError::new("data", "the item has no data"))
        .and_then(data_from_wire)?;
    Ok(TransportData {
        data,
        sequence: item.sequence,
        metadata: item.metadata.into_iter().collect::<BTreeMap<_, _>>(),
    })
}

/// A session output as a wire output.
#[must_use]
pub fn output_to_wire(output: &SessionOutput) -> pb::Output {
    use pb::output::Kind;
    let kind = match output {
        SessionOutput::Data { node_id, data } => Kind::Result(pb::Result {
            node_id: node_id.clone(),
            item: Some(item_to_wire(data)),
        }),
        SessionOutput::Error(failure) => Kind::Error(failure_to_wire(failure)),
    };
    pb::Output { kind: Some(kind) }
}

/// A node failure as a wire error.
#[must_use]
pub fn failure_to_wire(failure: &NodeFailure) -> pb::NodeError {
    pb::NodeError {
        node_id: failure.node_id.clone(),
        sequence: failure.sequence,
        message: failure.message.clone(),
    }
}

/// A wire output as a session output (what a client makes of the server's answers).
///
/// # Errors
/// An output with no kind, a result with no item, or invalid data in it.
pub fn output_from_wire(output: pb::Output) -> Result<SessionOutput, ConvertError> {
    use pb::output::Kind;
    match output.kind {
        Some(Kind::Result(result)) => result_from_wire(result),
        Some(Kind::Error(error)) => Ok(SessionOutput::Error(NodeFailure {
            node_id: error.node_id,
            sequence: error.sequence,
            message: error.message,
        })),
        None => Err(ConvertError::new("output.kind", "no output kind is set")),
    }
}

/// A wire result as a session output.
///
/// # Errors
/// A result with no item, or invalid data in it.
pub fn result_from_wire(result: pb::Result) -> Result<SessionOutput, ConvertError> {
    let item = result
        .item
        .ok_or_else(|| ConvertError::new("result.item", "the result has no item"))?;
    Ok(SessionOutput::Data {
        node_id: result.node_id,
        data: item_from_wire(item).map_err(|e| e.under("result.item"))?,
    })
}
