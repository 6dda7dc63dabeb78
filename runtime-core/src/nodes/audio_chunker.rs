//! `AudioChunkerNode`: re-frames audio into fixed-size chunks.

use schemars::JsonSchema;
use serde::Deserialize;

use super::audio::expect_audio;
use super::{Io, Node, NodeError, NodeKind, Outputs};
use crate::data::{AudioBuffer, DataKind, RuntimeData, frames_to_us};

/// Emits audio in chunks of exactly `chunk_size` frames, keeping rate, channels, stream id and
/// (advancing) timestamps. A format or stream change, and the end of input, flush the frames
/// buffered so far as one shorter chunk, so no audio is lost or mixed across formats.
#[derive(Debug)]
pub struct AudioChunkerNode {
    chunk_frames: usize,
    pending: Vec<f32>,
    format: Option<Format>,
    /// Media time of the first pending frame.
    pending_start_us: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
struct Format {
    sample_rate: u32,
    channels: u16,
    stream_id: Option<String>,
}

/// Params of [`AudioChunkerNode`].
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AudioChunkerParams {
    /// Frames per chunk (samples per channel, not interleaved values).
    #[serde(default = "default_chunk_size")]
    #[schemars(range(min = 1, max = 1_048_576))]
    pub chunk_size: u32,
}

fn default_chunk_size() -> u32 {
    512
}

impl NodeKind for AudioChunkerNode {
    const NODE_TYPE: &'static str = "AudioChunkerNode";
    const DESCRIPTION: &'static str = "Re-frames audio into chunks of exactly chunk_size frames; flushes the tail at end of input.";
    const IO: Io = Io {
        accepts: &[DataKind::Audio],
        produces: &[DataKind::Audio],
    };
    type Params = AudioChunkerParams;
    const PARAM_ALIASES: &'static [(&'static str, &'static str)] = &[("chunkSize", "chunk_size")];

    fn new(params: AudioChunkerParams) -> Self {
        Self {
            chunk_frames: params.chunk_size as usize,
            pending: Vec::new(),
            format: None,
            pending_start_us: None,
        }
    }
}

impl AudioChunkerNode {
    fn emit(&mut self, frames: usize, out: &mut Outputs) {
        let Some(format) = &self.format else { return };
        let channels = usize::from(format.channels);
        let samples: Vec<f32> = self.pending.drain(..frames * channels).collect();
        let mut chunk = AudioBuffer::new(samples, format.sample_rate, format.channels);
        chunk.stream_id.clone_from(&format.stream_id);
        chunk.timestamp_us = self.pending_start_us;
        self.pending_start_us = self
            .pending_start_us
            .map(|t| t + frames_to_us(frames as u64, format.sample_rate));
        out.push(RuntimeData::Audio(chunk));
    }

    fn flush(&mut self, out: &mut Outputs) {
        if let Some(format) = &self.format {
            let frames = self.pending.len() / usize::from(format.channels);
            if frames > 0 {
                self.emit(frames, out);
            }
        }
    }
}

impl Node for AudioChunkerNode {
    fn process(&mut self, input: RuntimeData, out: &mut Outputs) -> Result<(), NodeError> {
        let audio = expect_audio(input)?;
        let format = Format {
            sample_rate: audio.sample_rate,
            channels: audio.channels,
            stream_id: audio.stream_id.clone(),
        };
        if self.format.as_ref() != Some(&format) {
            self.flush(out);
            self.format = Some(format);
        }
        if self.pending.is_empty() {
            self.pending_start_us = audio.timestamp_us;
        }
        self.pending.extend_from_slice(&audio.samples);
        let channels = usize::from(audio.channels);
        while self.pending.len() >= self.chunk_frames * channels {
            self.emit(self.chunk_frames, out);
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Outputs) -> Result<(), NodeError> {
        self.flush(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunker(chunk_size: u32) -> AudioChunkerNode {
        AudioChunkerNode::new(AudioChunkerParams { chunk_size })
    }

    fn audio_out(out: &mut Outputs) -> Vec<AudioBuffer> {
        out.drain()
            .map(|d| match d {
                RuntimeData::Audio(a) => a,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn stereo_chunks_are_counted_in_frames_and_tail_is_flushed() {
        let mut node = chunker(100);
        let mut out = Outputs::default();
        let input = AudioBuffer::new(vec![0.5; 2 * 250], 16_000, 2).with_timestamp_us(1_000);
        node.process(RuntimeData::Audio(input), &mut out).unwrap();
        let chunks = audio_out(&mut out);
        assert_eq!(
            chunks.iter().map(AudioBuffer::frames).collect::<Vec<_>>(),
            [100, 100]
        );
        assert_eq!(chunks[1].timestamp_us, Some(1_000 + 6_250));
        node.finish(&mut out).unwrap();
        let tail = audio_out(&mut out);
        assert_eq!(tail.len(), 1);
        assert_eq!(tail[0].frames(), 50);
        assert_eq!(tail[0].timestamp_us, Some(1_000 + 12_500));
    }

    #[test]
    fn format_change_flushes_before_switching() {
        let mut node = chunker(100);
        let mut out = Outputs::default();
        node.process(
            RuntimeData::Audio(AudioBuffer::new(vec![0.1; 30], 16_000, 1)),
            &mut out,
        )
        .unwrap();
        node.process(
            RuntimeData::Audio(AudioBuffer::new(vec![0.2; 100], 48_000, 1)),
            &mut out,
        )
        .unwrap();
        let chunks = audio_out(&mut out);
        assert_eq!(chunks.len(), 2);
        assert_eq!((chunks[0].sample_rate, chunks[0].frames()), (16_000, 30));
        assert_eq!((chunks[1].sample_rate, chunks[1].frames()), (48_000, 100));
    }

    #[test]
    fn non_audio_is_an_error() {
        let mut out = Outputs::default();
        assert!(
            chunker(10)
                .process(RuntimeData::text("x"), &mut out)
                .is_err()
        );
    }
}
