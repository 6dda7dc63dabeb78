//! `SilenceDetectorNode`: sustained silence and intermittent dropouts over a stream.

use std::collections::VecDeque;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::audio::{amplitude_db, expect_audio, rms, round2};
use super::{Io, Node, NodeError, NodeKind, Outputs};
use crate::data::{DataKind, RuntimeData};

/// Tracks silence on the stream's media clock (frames, so stereo counts once). A silent run
/// lasting `sustained_silence_ms` is sustained silence; a shorter silent run between sounds is
/// a dropout, and `dropout_count_threshold` dropouts within `dropout_window_ms` are
/// intermittent dropouts. Emits one `silence_event` per input item.
#[derive(Debug)]
pub struct SilenceDetectorNode {
    params: SilenceDetectorParams,
    /// Media time processed so far, in ms.
    clock_ms: f64,
    /// Length of the current silent run, in ms.
    silence_ms: f64,
    /// Media times at which dropouts ended.
    dropouts: VecDeque<f64>,
}

/// Params of [`SilenceDetectorNode`].
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceDetectorParams {
    /// RMS level (dBFS) below which an item is silent.
    #[serde(default = "default_threshold")]
    #[schemars(range(min = -120.0, max = 0.0))]
    pub silence_threshold_db: f64,
    /// Silent run length (ms) that counts as sustained silence.
    #[serde(default = "default_sustained")]
    #[schemars(range(min = 1, max = 3_600_000))]
    pub sustained_silence_ms: u32,
    /// Dropouts within the window that count as intermittent dropouts.
    #[serde(default = "default_count")]
    #[schemars(range(min = 1, max = 10_000))]
    pub dropout_count_threshold: u32,
    /// Window (ms) over which dropouts are counted.
    #[serde(default = "default_window")]
    #[schemars(range(min = 1, max = 3_600_000))]
    pub dropout_window_ms: u32,
}

fn default_threshold() -> f64 {
    -50.0
}
fn default_sustained() -> u32 {
    500
}
fn default_count() -> u32 {
    3
}
fn default_window() -> u32 {
    5000
}

impl NodeKind for SilenceDetectorNode {
    const NODE_TYPE: &'static str = "SilenceDetectorNode";
    const DESCRIPTION: &'static str =
        "Sustained silence and intermittent dropouts on the stream's media clock (JSON events).";
    const IO: Io = Io {
        accepts: &[DataKind::Audio],
        produces: &[DataKind::Json],
    };
    type Params = SilenceDetectorParams;

    fn new(params: SilenceDetectorParams) -> Self {
        Self {
            params,
            clock_ms: 0.0,
            silence_ms: 0.0,
            dropouts: VecDeque::new(),
        }
    }
}

impl Node for SilenceDetectorNode {
    fn process(&mut self, input: RuntimeData, out: &mut Outputs) -> Result<(), NodeError> {
        let audio = expect_audio(input)?;
        let duration_ms = audio.duration_us() as f64 / 1000.0;
        let rms_db = amplitude_db(rms(audio.samples.iter()));
        let is_silent = rms_db < self.params.silence_threshold_db;
        self.clock_ms += duration_ms;
        let sustained_ms = f64::from(self.params.sustained_silence_ms);
        if is_silent {
            self.silence_ms += duration_ms;
        } else {
            if self.silence_ms > 0.0
                && self.silence_ms < sustained_ms
                && self.clock_ms > self.silence_ms + duration_ms
            {
                // A short gap after earlier sound, now ended by sound: a dropout.
                self.dropouts.push_back(self.clock_ms);
            }
            self.silence_ms = 0.0;
        }
        let window_start = self.clock_ms - f64::from(self.params.dropout_window_ms);
        while self.dropouts.front().is_some_and(|&t| t < window_start) {
            self.dropouts.pop_front();
        }
        let is_sustained = self.silence_ms >= sustained_ms;
        let intermittent = self.dropouts.len() >= self.params.dropout_count_threshold as usize;
        let health = if is_sustained {
            0.0
        } else if intermittent {
            0.5
        } else {
            1.0
        };
        out.push(RuntimeData::Json(json!({
            "_schema": "silence_event",
            "is_silent": is_silent,
            "rms_db": round2(rms_db),
            "silence_duration_ms": round2(self.silence_ms),
            "is_sustained_silence": is_sustained,
            "dropout_count": self.dropouts.len(),
            "has_intermittent_dropouts": intermittent,
            "health": health,
            "stream_id": audio.stream_id,
            "timestamp_us": audio.timestamp_us,
        })));
        Ok(())
    }
}
