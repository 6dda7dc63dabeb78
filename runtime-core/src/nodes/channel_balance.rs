//! `ChannelBalanceNode`: left/right level balance and dead-channel detection for stereo.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::audio::{FLOOR_DB, amplitude_db, channel, expect_audio, rms, round2};
use super::{Io, Node, NodeError, NodeKind, Outputs};
use crate::data::{DataKind, RuntimeData};

/// Emits a `channel_balance_event` per item. For stereo: per-channel RMS, the imbalance
/// (left minus right, dB), whether it exceeds `imbalance_threshold_db`, and which channel (if
/// one) is dead (below `dead_channel_threshold_db` while the other is not). Other channel
/// counts give an event with `"applicable": false`, so a fan-out over mixed inputs keeps going.
#[derive(Debug)]
pub struct ChannelBalanceNode {
    params: ChannelBalanceParams,
}

/// Params of [`ChannelBalanceNode`].
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelBalanceParams {
    /// Level difference (dB) at which channels are imbalanced.
    #[serde(default = "default_imbalance")]
    #[schemars(range(min = 0.0, max = 120.0))]
    pub imbalance_threshold_db: f64,
    /// RMS level (dBFS) below which a channel is dead.
    #[serde(default = "default_dead")]
    #[schemars(range(min = -120.0, max = 0.0))]
    pub dead_channel_threshold_db: f64,
}

fn default_imbalance() -> f64 {
    10.0
}
fn default_dead() -> f64 {
    -60.0
}

impl NodeKind for ChannelBalanceNode {
    const NODE_TYPE: &'static str = "ChannelBalanceNode";
    const DESCRIPTION: &'static str =
        "Stereo left/right balance and dead-channel detection (JSON events).";
    const IO: Io = Io {
        accepts: &[DataKind::Audio],
        produces: &[DataKind::Json],
    };
    type Params = ChannelBalanceParams;

    fn new(params: ChannelBalanceParams) -> Self {
        Self { params }
    }
}

impl Node for ChannelBalanceNode {
    fn process(&mut self, input: RuntimeData, out: &mut Outputs) -> Result<(), NodeError> {
        let audio = expect_audio(input)?;
        let duration_ms = audio.duration_us() as f64 / 1000.0;
        if audio.channels != 2 {
            out.push(RuntimeData::Json(json!({
                "_schema": "channel_balance_event",
                "applicable": false,
                "channels": audio.channels,
                "duration_ms": duration_ms,
                "health": 1.0,
                "stream_id": audio.stream_id,
                "timestamp_us": audio.timestamp_us,
            })));
            return Ok(());
        }
        let p = &self.params;
        let left_db = amplitude_db(rms(channel(&audio, 0)));
        let right_db = amplitude_db(rms(channel(&audio, 1)));
        let imbalance_db = left_db - right_db;
        let left_dead = left_db < p.dead_channel_threshold_db;
        let right_dead = right_db < p.dead_channel_threshold_db;
        let dead_channel = match (left_dead, right_dead) {
            (true, false) => Some("left"),
            (false, true) => Some("right"),
            _ => None,
        };
        let both_silent = left_db <= FLOOR_DB && right_db <= FLOOR_DB;
        let is_imbalanced = !both_silent && imbalance_db.abs() >= p.imbalance_threshold_db;
        let health = if dead_channel.is_some() {
            0.0
        } else if is_imbalanced {
            0.5
        } else {
            1.0
        };
        out.push(RuntimeData::Json(json!({
            "_schema": "channel_balance_event",
            "applicable": true,
            "channels": 2,
            "left_rms_db": round2(left_db),
            "right_rms_db": round2(right_db),
            "imbalance_db": round2(imbalance_db),
            "is_imbalanced": is_imbalanced,
            "dead_channel": dead_channel,
            "health": health,
            "duration_ms": duration_ms,
            "stream_id": audio.stream_id,
            "timestamp_us": audio.timestamp_us,
        })));
        Ok(())
    }
}
