//! `AudioLevelNode`: RMS and peak level of each audio item, as a JSON event.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::audio::{amplitude_db, expect_audio, peak, rms, round2};
use super::{Io, Node, NodeError, NodeKind, Outputs, ParamIssue};
use crate::data::{DataKind, RuntimeData};

/// Emits `{rms_db, peak_db, is_low_volume, is_silence, health, duration_ms, ...}` per item.
/// `health` goes linearly from 0 at the silence threshold to 1 at the low-volume threshold.
#[derive(Debug)]
pub struct AudioLevelNode {
    params: AudioLevelParams,
}

/// Params of [`AudioLevelNode`].
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AudioLevelParams {
    /// RMS level (dBFS) below which audio is "low volume".
    #[serde(default = "default_low_volume")]
    #[schemars(range(min = -120.0, max = 0.0))]
    pub low_volume_threshold_db: f64,
    /// RMS level (dBFS) below which audio is silence.
    #[serde(default = "default_silence")]
    #[schemars(range(min = -120.0, max = 0.0))]
    pub silence_threshold_db: f64,
}

fn default_low_volume() -> f64 {
    -20.0
}
fn default_silence() -> f64 {
    -60.0
}

impl NodeKind for AudioLevelNode {
    const NODE_TYPE: &'static str = "AudioLevelNode";
    const DESCRIPTION: &'static str =
        "RMS/peak level per audio item, with low-volume and silence flags (JSON events).";
    const IO: Io = Io {
        accepts: &[DataKind::Audio],
        produces: &[DataKind::Json],
    };
    type Params = AudioLevelParams;

    fn check(p: &AudioLevelParams) -> Vec<ParamIssue> {
        if p.silence_threshold_db >= p.low_volume_threshold_db {
            return vec![ParamIssue::invalid(
                "silence_threshold_db",
                format!(
                    "silence_threshold_db ({}) must be below low_volume_threshold_db ({})",
                    p.silence_threshold_db, p.low_volume_threshold_db
                ),
            )];
        }
        Vec::new()
    }

    fn new(params: AudioLevelParams) -> Self {
        Self { params }
    }
}

impl Node for AudioLevelNode {
    fn process(&mut self, input: RuntimeData, out: &mut Outputs) -> Result<(), NodeError> {
        let audio = expect_audio(input)?;
        let rms_db = amplitude_db(rms(audio.samples.iter()));
        let peak_db = amplitude_db(peak(audio.samples.iter()));
        let p = &self.params;
        let health = ((rms_db - p.silence_threshold_db)
            / (p.low_volume_threshold_db - p.silence_threshold_db))
            .clamp(0.0, 1.0);
        out.push(RuntimeData::Json(json!({
            "_schema": "audio_level_event",
            "rms_db": round2(rms_db),
            "peak_db": round2(peak_db),
            "is_low_volume": rms_db < p.low_volume_threshold_db,
            "is_silence": rms_db < p.silence_threshold_db,
            "health": round2(health),
            "duration_ms": audio.duration_us() as f64 / 1000.0,
            "stream_id": audio.stream_id,
            "timestamp_us": audio.timestamp_us,
        })));
        Ok(())
    }
}
