//! `ClippingDetectorNode`: saturated samples and crest factor per audio item.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::audio::{amplitude_db, expect_audio, peak, rms, round2};
use super::{Io, Node, NodeError, NodeKind, Outputs};
use crate::data::{DataKind, RuntimeData};

/// Emits a `clipping_event` per item: the percentage of samples at or above
/// `saturation_threshold`, the crest factor (peak/RMS in dB), `is_clipping` when the saturated
/// percentage reaches `saturation_ratio_threshold`, and `low_crest_factor` when the crest factor
/// is at or below `crest_factor_threshold_db`.
///
/// Unlike upstream, a low crest factor alone does not mean clipping: a clean full-scale square
/// wave (0 dB) or sine (3.01 dB) has a low crest factor and no clipped samples. It is reported
/// separately as a sign of heavy compression.
#[derive(Debug)]
pub struct ClippingDetectorNode {
    params: ClippingDetectorParams,
}

/// Params of [`ClippingDetectorNode`].
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClippingDetectorParams {
    /// Absolute sample value (full scale = 1.0) at or above which a sample is saturated.
    #[serde(default = "default_saturation")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub saturation_threshold: f64,
    /// Percentage of saturated samples at or above which the item is clipping.
    #[serde(default = "default_ratio")]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub saturation_ratio_threshold: f64,
    /// Crest factor (dB) at or below which `low_crest_factor` is set.
    #[serde(default = "default_crest")]
    #[schemars(range(min = 0.0, max = 60.0))]
    pub crest_factor_threshold_db: f64,
}

fn default_saturation() -> f64 {
    0.99
}
fn default_ratio() -> f64 {
    1.0
}
fn default_crest() -> f64 {
    3.0
}

impl NodeKind for ClippingDetectorNode {
    const NODE_TYPE: &'static str = "ClippingDetectorNode";
    const DESCRIPTION: &'static str =
        "Saturated-sample percentage and crest factor per audio item (JSON events).";
    const IO: Io = Io {
        accepts: &[DataKind::Audio],
        produces: &[DataKind::Json],
    };
    type Params = ClippingDetectorParams;

    fn new(params: ClippingDetectorParams) -> Self {
        Self { params }
    }
}

impl Node for ClippingDetectorNode {
    fn process(&mut self, input: RuntimeData, out: &mut Outputs) -> Result<(), NodeError> {
        let audio = expect_audio(input)?;
        let p = &self.params;
        let total = audio.samples.len().max(1);
        let saturated = audio
            .samples
            .iter()
            .filter(|s| f64::from(s.abs()) >= p.saturation_threshold)
            .count();
        let ratio_pct = 100.0 * saturated as f64 / total as f64;
        let rms_value = rms(audio.samples.iter());
        let crest_db = if rms_value > 0.0 {
            amplitude_db(peak(audio.samples.iter())) - amplitude_db(rms_value)
        } else {
            0.0
        };
        let is_clipping = saturated > 0 && ratio_pct >= p.saturation_ratio_threshold;
        let low_crest = rms_value > 0.0 && crest_db <= p.crest_factor_threshold_db;
        let health = if is_clipping {
            (1.0 - ratio_pct / 100.0).clamp(0.0, 1.0) * 0.5
        } else {
            1.0
        };
        out.push(RuntimeData::Json(json!({
            "_schema": "clipping_event",
            "saturation_ratio": round2(ratio_pct),
            "saturated_samples": saturated,
            "crest_factor_db": round2(crest_db),
            "is_clipping": is_clipping,
            "low_crest_factor": low_crest,
            "health": round2(health),
            "duration_ms": audio.duration_us() as f64 / 1000.0,
            "stream_id": audio.stream_id,
            "timestamp_us": audio.timestamp_us,
        })));
        Ok(())
    }
}
