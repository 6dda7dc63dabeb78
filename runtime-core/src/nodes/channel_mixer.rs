//! `ChannelMixerNode`: down-mix to mono, or up-mix mono to several channels.

use schemars::JsonSchema;
use serde::Deserialize;

use super::audio::expect_audio;
use super::{Io, Node, NodeError, NodeKind, Outputs};
use crate::data::{AudioBuffer, DataKind, RuntimeData};

/// Converts audio to `output_channels`: any channel count to mono by averaging the channels,
/// mono to N channels by copying, and same-count audio unchanged. Other conversions (5.1 to
/// stereo) need a mixing matrix and are rejected per item with a clear error.
#[derive(Debug)]
pub struct ChannelMixerNode {
    output_channels: u16,
}

/// Params of [`ChannelMixerNode`].
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelMixerParams {
    /// Channels of the output.
    #[schemars(range(min = 1, max = 8))]
    pub output_channels: u16,
}

impl NodeKind for ChannelMixerNode {
    const NODE_TYPE: &'static str = "ChannelMixerNode";
    const DESCRIPTION: &'static str =
        "Mixes audio down to mono (average) or copies mono up to output_channels.";
    const IO: Io = Io {
        accepts: &[DataKind::Audio],
        produces: &[DataKind::Audio],
    };
    type Params = ChannelMixerParams;

    fn new(params: ChannelMixerParams) -> Self {
        Self {
            output_channels: params.output_channels,
        }
    }
}

impl Node for ChannelMixerNode {
    fn process(&mut self, input: RuntimeData, out: &mut Outputs) -> Result<(), NodeError> {
        let audio = expect_audio(input)?;
        let (from, to) = (
            usize::from(audio.channels),
            usize::from(self.output_channels),
        );
        let samples: Vec<f32> = if from == to {
            out.push(RuntimeData::Audio(audio));
            return Ok(());
        } else if to == 1 {
            let scale = 1.0 / from as f32;
            audio
                .samples
                .chunks_exact(from)
                .map(|frame| frame.iter().sum::<f32>() * scale)
                .collect()
        } else if from == 1 {
            audio
                .samples
                .iter()
                .flat_map(|&s| std::iter::repeat_n(s, to))
                .collect()
        } else {
            return Err(NodeError::InvalidInput(format!(
                "cannot mix {from} channels to {to}: only down-mix to mono and up-mix from mono are supported"
            )));
        };
        let mut mixed = AudioBuffer::new(samples, audio.sample_rate, self.output_channels);
        mixed.stream_id = audio.stream_id;
        mixed.timestamp_us = audio.timestamp_us;
        out.push(RuntimeData::Audio(mixed));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(to: u16, audio: AudioBuffer) -> Result<AudioBuffer, NodeError> {
        let mut out = Outputs::default();
        ChannelMixerNode::new(ChannelMixerParams {
            output_channels: to,
        })
        .process(RuntimeData::Audio(audio), &mut out)?;
        match out.drain().next() {
            Some(RuntimeData::Audio(a)) => Ok(a),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stereo_to_mono_and_back() {
        let stereo = AudioBuffer::new(vec![1.0, 0.0, 0.5, 0.5], 16_000, 2).with_timestamp_us(7);
        let mono = mix(1, stereo).unwrap();
        assert_eq!(&*mono.samples, &[0.5, 0.5]);
        assert_eq!((mono.channels, mono.timestamp_us), (1, Some(7)));
        let back = mix(2, mono).unwrap();
        assert_eq!(&*back.samples, &[0.5, 0.5, 0.5, 0.5]);
        assert_eq!(back.duration_us(), 125);
    }

    #[test]
    fn unsupported_matrix_is_an_error() {
        let six = AudioBuffer::new(vec![0.0; 12], 48_000, 6);
        assert!(mix(2, six).unwrap_err().to_string().contains("6 channels"));
    }
}
