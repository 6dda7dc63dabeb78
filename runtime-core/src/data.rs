//! The data that flows through a pipeline: [`RuntimeData`] items wrapped in [`TransportData`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

mod samples;

pub use samples::{SampleSource, Samples};

/// Interleaved 32-bit float PCM with its format and optional stream identity and timing.
///
/// Samples are shared ([`Samples`]) so fan-out to several nodes does not copy audio.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AudioBuffer {
    /// Interleaved samples: frame 0 channel 0, frame 0 channel 1, frame 1 channel 0, ...
    pub samples: Samples,
    /// Frames per second.
    pub sample_rate: u32,
    /// Samples per frame.
    pub channels: u16,
    /// Which logical stream (speaker, track) the audio belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
    /// Media presentation time of the first frame, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_us: Option<u64>,
}

impl AudioBuffer {
    /// Audio with no stream id and no timestamp.
    #[must_use]
    pub fn new(samples: impl Into<Samples>, sample_rate: u32, channels: u16) -> Self {
        Self {
            samples: samples.into(),
            sample_rate,
            channels,
            stream_id: None,
            timestamp_us: None,
        }
    }

    /// Sets the media timestamp of the first frame.
    #[must_use]
    pub fn with_timestamp_us(mut self, timestamp_us: u64) -> Self {
        self.timestamp_us = Some(timestamp_us);
        self
    }

    /// Sets the stream id.
    #[must_use]
    pub fn with_stream_id(mut self, stream_id: impl Into<String>) -> Self {
        self.stream_id = Some(stream_id.into());
        self
    }

    /// Number of frames (samples per channel). A zero channel count yields zero frames.
    #[must_use]
    pub fn frames(&self) -> usize {
        match self.channels {
            0 => 0,
            channels => self.samples.len() / usize::from(channels),
        }
    }

    /// Duration in microseconds, computed from frames (not samples), so stereo is not doubled.
    #[must_use]
    pub fn duration_us(&self) -> u64 {
        frames_to_us(self.frames() as u64, self.sample_rate)
    }

    /// Checks the invariants every node relies on: a rate in 1..=[`MAX_SAMPLE_RATE`], a
    /// channel count in 1..=[`MAX_CHANNELS`], and a sample count that is a whole number of
    /// frames. Every input from outside (clients, the Python package, the pod link) is checked
    /// here, so no node allocates per-channel state for 65,535 channels.
    ///
    /// # Errors
    /// Returns a message describing the first broken invariant.
    pub fn check_format(&self) -> Result<(), String> {
        if self.sample_rate == 0 {
            return Err("audio sample_rate is 0".into());
        }
        if self.sample_rate > MAX_SAMPLE_RATE {
            return Err(format!(
                "audio sample_rate {} is above the limit of {MAX_SAMPLE_RATE} Hz",
                self.sample_rate
            ));
        }
        if self.channels == 0 {
            return Err("audio channels is 0".into());
        }
        if self.channels > MAX_CHANNELS {
            return Err(format!(
                "audio has {} channels, above the limit of {MAX_CHANNELS}",
                self.channels
            ));
        }
        if !self
            .samples
            .len()
            .is_multiple_of(usize::from(self.channels))
        {
            return Err(format!(
                "audio has {} samples, not a whole number of {}-channel frames",
                self.samples.len(),
                self.channels
            ));
        }
        Ok(())
    }
}

/// The most channels an audio item may have (64: third-order ambisonics and 7.1.4 fit many
/// times over); more is refused where the item enters.
pub const MAX_CHANNELS: u16 = 64;
/// The highest sample rate an audio item may have, in Hz (the resampler's own limit).
pub const MAX_SAMPLE_RATE: u32 = 768_000;

/// About what a JSON value holds: strings by length, keys too, and 16 bytes per other value.
fn json_bytes(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    match value {
        Value::String(s) => 16 + s.len(),
        Value::Array(items) => 16 + items.iter().map(json_bytes).sum::<usize>(),
        Value::Object(map) => {
            16 + map
                .iter()
                .map(|(k, v)| 16 + k.len() + json_bytes(v))
                .sum::<usize>()
        }
        _ => 16,
    }
}

/// Converts a frame count at `sample_rate` to microseconds (0 for a zero rate).
#[must_use]
pub fn frames_to_us(frames: u64, sample_rate: u32) -> u64 {
    if sample_rate == 0 {
        return 0;
    }
    let us = u128::from(frames) * 1_000_000 / u128::from(sample_rate);
    u64::try_from(us).unwrap_or(u64::MAX)
}

/// Element type of a [`TensorData`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum DType {
    F32,
    F16,
    F64,
    I8,
    I16,
    I32,
    I64,
    U8,
}

impl DType {
    /// Bytes per element.
    #[must_use]
    pub fn size_bytes(self) -> usize {
        match self {
            Self::I8 | Self::U8 => 1,
            Self::F16 | Self::I16 => 2,
            Self::F32 | Self::I32 => 4,
            Self::F64 | Self::I64 => 8,
        }
    }
}

/// A dense tensor: little-endian element bytes in row-major order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorData {
    /// Raw element bytes.
    pub bytes: Arc<[u8]>,
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: DType,
}

impl TensorData {
    /// Checks that the byte length matches `shape` and `dtype`.
    ///
    /// # Errors
    /// Returns a message naming the expected and actual byte counts.
    pub fn check_format(&self) -> Result<(), String> {
        let elements = self
            .shape
            .iter()
            .try_fold(1usize, |acc, d| acc.checked_mul(*d));
        let expected = elements.and_then(|e| e.checked_mul(self.dtype.size_bytes()));
        match expected {
            Some(n) if n == self.bytes.len() => Ok(()),
            Some(n) => Err(format!(
                "tensor of shape {:?} and dtype {:?} needs {n} bytes, has {}",
                self.shape,
                self.dtype,
                self.bytes.len()
            )),
            None => Err(format!("tensor shape {:?} overflows", self.shape)),
        }
    }
}

/// One item of pipeline data.
///
/// Serialized with an explicit `type` tag (`{"type":"text","data":"hi"}`), so JSON Lines output
/// and wire adapters can dispatch without guessing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "lowercase")]
pub enum RuntimeData {
    /// PCM audio.
    Audio(AudioBuffer),
    /// UTF-8 text (a token, a sentence, a transcript).
    Text(String),
    /// A JSON value (events, requests, results).
    Json(serde_json::Value),
    /// Opaque bytes.
    Binary(Arc<[u8]>),
    /// A dense tensor.
    Tensor(TensorData),
}

impl RuntimeData {
    /// About how many bytes the item holds: exact for audio, text, binary and tensors; for
    /// JSON, its strings and numbers walked without serializing. What byte budgets count.
    #[must_use]
    pub fn approx_bytes(&self) -> usize {
        match self {
            Self::Audio(a) => a.samples.len() * std::mem::size_of::<f32>(),
            Self::Text(t) => t.len(),
            Self::Json(v) => json_bytes(v),
            Self::Binary(b) => b.len(),
            Self::Tensor(t) => t.bytes.len(),
        }
    }

    /// Checks that the data is self-consistent (audio with channels and whole frames, a
    /// tensor whose bytes match its shape); text, JSON and binary always are.
    ///
    /// # Errors
    /// What is inconsistent.
    pub fn check_format(&self) -> Result<(), String> {
        match self {
            Self::Audio(a) => a.check_format(),
            Self::Tensor(t) => t.check_format(),
            Self::Text(_) | Self::Json(_) | Self::Binary(_) => Ok(()),
        }
    }

    /// The kind of data, as used in error messages, metrics and JSON Lines (`"audio"`, ...).
    #[must_use]
    pub fn kind(&self) -> DataKind {
        match self {
            Self::Audio(_) => DataKind::Audio,
            Self::Text(_) => DataKind::Text,
            Self::Json(_) => DataKind::Json,
            Self::Binary(_) => DataKind::Binary,
            Self::Tensor(_) => DataKind::Tensor,
        }
    }

    /// Shorthand for text data.
    #[must_use]
    pub fn text(s: impl Into<String>) -> Self {
        Self::Text(s.into())
    }
}

/// The variant of a [`RuntimeData`], without its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum DataKind {
    Audio,
    Text,
    Json,
    Binary,
    Tensor,
}

impl DataKind {
    /// Lower-case name (`"audio"`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Audio => "audio",
            Self::Text => "text",
            Self::Json => "json",
            Self::Binary => "binary",
            Self::Tensor => "tensor",
        }
    }
}

impl fmt::Display for DataKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Data as it crosses a transport boundary: the payload plus the caller's sequence number and
/// string metadata.
///
/// Both `sequence` and `metadata` survive a trip through the router: every output derived from
/// an input carries that input's sequence and metadata (the upstream router dropped them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransportData {
    /// The payload.
    pub data: RuntimeData,
    /// Caller-assigned sequence number, echoed on derived outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// Caller metadata, echoed on derived outputs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

impl TransportData {
    /// Wraps data with no sequence and no metadata.
    #[must_use]
    pub fn new(data: RuntimeData) -> Self {
        Self {
            data,
            sequence: None,
            metadata: BTreeMap::new(),
        }
    }

    /// Sets the sequence number.
    #[must_use]
    pub fn with_sequence(mut self, sequence: u64) -> Self {
        self.sequence = Some(sequence);
        self
    }

    /// Adds one metadata entry.
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

impl From<RuntimeData> for TransportData {
    fn from(data: RuntimeData) -> Self {
        Self::new(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stereo_duration_counts_frames_not_samples() {
        let audio = AudioBuffer::new(vec![0.0; 48_000 * 2], 48_000, 2);
        assert_eq!(audio.frames(), 48_000);
        assert_eq!(audio.duration_us(), 1_000_000);
    }

    #[test]
    fn audio_format_check_rejects_partial_frames() {
        let audio = AudioBuffer::new(vec![0.0; 3], 16_000, 2);
        assert!(audio.check_format().unwrap_err().contains("whole number"));
        assert!(AudioBuffer::new(vec![0.0; 4], 0, 2).check_format().is_err());
    }

    #[test]
    fn audio_beyond_the_channel_and_rate_limits_is_refused_naming_the_limit() {
        let wide = AudioBuffer::new(vec![0.0; 65_535], 48_000, 65_535);
        let e = wide.check_format().unwrap_err();
        assert!(
            e.contains("65535 channels") && e.contains("limit of 64"),
            "{e}"
        );
        assert!(
            AudioBuffer::new(vec![0.0; 64], 48_000, 64)
                .check_format()
                .is_ok()
        );
        let fast = AudioBuffer::new(vec![0.0; 2], 1_000_000, 1);
        assert!(fast.check_format().unwrap_err().contains("768000 Hz"));
        assert!(
            AudioBuffer::new(vec![0.0; 2], 768_000, 1)
                .check_format()
                .is_ok()
        );
    }

    #[test]
    fn tensor_byte_length_must_match_shape() {
        let t = TensorData {
            bytes: vec![0u8; 24].into(),
            shape: vec![2, 3],
            dtype: DType::F32,
        };
        assert!(t.check_format().is_ok());
        let bad = TensorData {
            shape: vec![2, 4],
            ..t
        };
        assert!(bad.check_format().unwrap_err().contains("needs 32 bytes"));
    }

    #[test]
    fn runtime_data_serializes_with_type_tag() {
        let v = serde_json::to_value(RuntimeData::text("hi")).unwrap();
        assert_eq!(v, serde_json::json!({"type": "text", "data": "hi"}));
        let back: RuntimeData = serde_json::from_value(v).unwrap();
        assert_eq!(back, RuntimeData::text("hi"));
    }
}
