//! `FastResampleNode`: streaming sample-rate conversion with rubato.
//!
//! Input is buffered into the resampler's fixed block size, so the output does not depend on
//! how the caller chunks the input (1 frame or 4096 frames at a time give identical samples).
//! The resampler's start-up delay is trimmed, so output is aligned with input and starts with
//! signal, not silence; at end of input the tail is flushed and the total output is cut to
//! `round(frames_in * target_rate / source_rate)`. An input that completes no block produces
//! no output item (never an empty one).

use rubato::audioadapter_buffers::direct::{InterleavedSlice, SequentialSlice};
use rubato::{
    Async, Fft, FixedAsync, FixedSync, Resampler, SincInterpolationParameters,
    SincInterpolationType, WindowFunction,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::audio::expect_audio;
use super::{Io, Node, NodeError, NodeKind, Outputs, ParamIssue};
use crate::data::{AudioBuffer, DataKind, RuntimeData, frames_to_us};

/// Largest reduced input block (`source_rate / gcd(source, target)`) for which the FFT
/// resampler is used; beyond it (e.g. 44101 -> 48000) a sinc resampler takes over, since an
/// FFT block would be seconds long.
const MAX_FFT_MIN_BLOCK: usize = 4096;

/// Trade-off between latency/CPU and filter sharpness.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ResampleQuality {
    /// Short FFT blocks (about 64 input frames): lowest latency.
    Low,
    /// About 256-frame blocks: the default.
    #[default]
    Medium,
    /// About 1024-frame blocks: sharpest anti-aliasing filter, most latency.
    High,
}

impl ResampleQuality {
    fn block_frames(self) -> usize {
        match self {
            Self::Low => 64,
            Self::Medium => 256,
            Self::High => 1024,
        }
    }

    fn sinc_len(self) -> usize {
        match self {
            Self::Low => 64,
            Self::Medium => 128,
            Self::High => 256,
        }
    }
}

/// Params of [`FastResampleNode`].
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FastResampleParams {
    /// Expected input rate in Hz. Omitted: taken from each input (any rate is converted).
    /// Given: input at another rate is an error item, never silently misconverted.
    #[serde(default)]
    #[schemars(range(min = 1, max = 768_000))]
    pub source_rate: Option<u32>,
    /// Output rate in Hz.
    #[schemars(range(min = 1, max = 768_000))]
    pub target_rate: u32,
    /// Filter quality.
    #[serde(default)]
    pub quality: ResampleQuality,
    /// Expected channel count. Omitted: any channel count is converted.
    #[serde(default)]
    #[schemars(range(min = 1, max = 64))]
    pub channels: Option<u16>,
}

/// Converts audio to `target_rate`, streaming, for any channel count.
pub struct FastResampleNode {
    params: FastResampleParams,
    stream: Option<StreamResampler>,
}

impl std::fmt::Debug for FastResampleNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastResampleNode")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl NodeKind for FastResampleNode {
    const NODE_TYPE: &'static str = "FastResampleNode";
    const DESCRIPTION: &'static str = "Streaming sample-rate conversion (rubato FFT/sinc); output aligned with input, tail flushed at end.";
    const IO: Io = Io {
        accepts: &[DataKind::Audio],
        produces: &[DataKind::Audio],
    };
    type Params = FastResampleParams;
    const PARAM_ALIASES: &'static [(&'static str, &'static str)] =
        &[("sourceRate", "source_rate"), ("targetRate", "target_rate")];

    fn check(params: &FastResampleParams) -> Vec<ParamIssue> {
        if params.source_rate == Some(params.target_rate) {
            // Not an error upstream, but a resampler that never resamples is a manifest mistake
            // worth a clear message rather than a silent pass-through.
            return vec![ParamIssue::invalid(
                "target_rate",
                format!(
                    "target_rate equals source_rate ({} Hz); remove the node",
                    params.target_rate
                ),
            )];
        }
        Vec::new()
    }

    fn new(params: FastResampleParams) -> Self {
        Self {
            params,
            stream: None,
        }
    }
}

impl Node for FastResampleNode {
    fn process(&mut self, input: RuntimeData, out: &mut Outputs) -> Result<(), NodeError> {
        let audio = expect_audio(input)?;
        if let Some(rate) = self.params.source_rate.filter(|r| *r != audio.sample_rate) {
            return Err(NodeError::InvalidInput(format!(
                "input is {} Hz but source_rate is {rate} Hz",
                audio.sample_rate
            )));
        }
        if let Some(ch) = self.params.channels.filter(|c| *c != audio.channels) {
            return Err(NodeError::InvalidInput(format!(
                "input has {} channels but channels is {ch}",
                audio.channels
            )));
        }
        let key = StreamKey {
            rate: audio.sample_rate,
            channels: audio.channels,
            stream_id: audio.stream_id.clone(),
        };
        if self.stream.as_ref().is_some_and(|s| s.key != key) {
            self.finish(out)?;
        }
        if audio.sample_rate == self.params.target_rate {
            out.push(RuntimeData::Audio(audio));
            return Ok(());
        }
        if self.stream.is_none() {
            self.stream = Some(StreamResampler::new(
                key,
                self.params.target_rate,
                self.params.quality,
                audio.timestamp_us,
            )?);
        }
        let stream = self.stream.as_mut().expect("created above");
        let samples = stream.push(&audio.samples)?;
        if let Some(item) = stream.wrap_output(samples) {
            out.push(item);
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Outputs) -> Result<(), NodeError> {
        if let Some(mut stream) = self.stream.take() {
            let samples = stream.flush()?;
            if let Some(item) = stream.wrap_output(samples) {
                out.push(item);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn smooth_numbers() {
        assert_eq!(super::smooth_at_least(342), 360);
        assert_eq!(super::smooth_at_least(86), 90);
        assert_eq!(super::smooth_at_least(0), 1);
        assert_eq!(super::smooth_at_least(7), 8);
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct StreamKey {
    rate: u32,
    channels: u16,
    stream_id: Option<String>,
}

/// One continuous stream through a rubato resampler.
struct StreamResampler {
    key: StreamKey,
    target_rate: u32,
    channels: usize,
    resampler: Box<dyn Resampler<f32>>,
    /// Interleaved input not yet consumed by the resampler.
    pending: Vec<f32>,
    /// Interleaved output scratch, `output_frames_max` frames.
    scratch: Vec<f32>,
    /// Output frames of start-up delay still to drop.
    delay_left: usize,
    frames_in: u64,
    frames_out: u64,
    start_us: Option<u64>,
}

impl StreamResampler {
    fn new(
        key: StreamKey,
        target_rate: u32,
        quality: ResampleQuality,
        start_us: Option<u64>,
    ) -> Result<Self, NodeError> {
        let channels = usize::from(key.channels);
        let (rin, rout) = (key.rate as usize, target_rate as usize);
        let min_block = rin / gcd(rin, rout);
        let built: Result<Box<dyn Resampler<f32>>, _> = if min_block <= MAX_FFT_MIN_BLOCK {
            // FFT lengths are multiples of the minimum blocks; a 5-smooth multiplier keeps both
            // lengths free of large prime factors, which FFTs are slow on (e.g. 1026 = 2*3^3*19
            // for 48 kHz -> 16 kHz becomes 1080 = 2^3*3^3*5).
            let blocks = smooth_at_least(quality.block_frames().div_ceil(min_block));
            Fft::<f32>::new_custom(
                rin,
                rout,
                blocks * min_block,
                1,
                channels,
                WindowFunction::BlackmanHarris2,
                FixedSync::Both,
            )
            .map(|r| Box::new(r) as Box<dyn Resampler<f32>>)
        } else {
            let sinc = SincInterpolationParameters::new(
                quality.sinc_len(),
                WindowFunction::BlackmanHarris2,
            )
            .interpolation(SincInterpolationType::Linear);
            Async::<f32>::new_sinc(
                rout as f64 / rin as f64,
                1.0,
                &sinc,
                quality.block_frames(),
                channels,
                FixedAsync::Input,
            )
            .map(|r| Box::new(r) as Box<dyn Resampler<f32>>)
        };
        let resampler = built.map_err(|e| {
            NodeError::Failed(format!("cannot build resampler {rin} -> {rout} Hz: {e}"))
        })?;
        let scratch = vec![0.0; resampler.output_frames_max() * channels];
        Ok(Self {
            delay_left: resampler.output_delay(),
            key,
            target_rate,
            channels,
            resampler,
            pending: Vec::new(),
            scratch,
            frames_in: 0,
            frames_out: 0,
            start_us,
        })
    }

    /// Adds input and returns the output frames that became available.
    fn push(&mut self, samples: &[f32]) -> Result<Vec<f32>, NodeError> {
        self.pending.extend_from_slice(samples);
        self.frames_in += (samples.len() / self.channels) as u64;
        let mut produced = Vec::new();
        self.drain_blocks(&mut produced)?;
        Ok(produced)
    }

    /// Pads the last partial block with silence and emits the remaining output, cut so the
    /// stream's total output is exactly `round(frames_in * ratio)`.
    fn flush(&mut self) -> Result<Vec<f32>, NodeError> {
        let expected = self.expected_total();
        let mut produced = Vec::new();
        // Each round emits at least one block of output once the delay is used up; the
        // bound only guards against a resampler that reports a zero-sized block.
        for _ in 0..1_000_000 {
            if self.frames_out + (produced.len() / self.channels) as u64 >= expected {
                break;
            }
            // After drain_blocks, less than one block is pending: complete it with silence.
            let need = self.resampler.input_frames_next() * self.channels;
            self.pending.resize(need.max(self.pending.len()), 0.0);
            self.drain_blocks(&mut produced)?;
        }
        let allowed = (expected - self.frames_out.min(expected)) as usize * self.channels;
        produced.truncate(allowed);
        self.pending.clear();
        Ok(produced)
    }

    fn expected_total(&self) -> u64 {
        let num = u128::from(self.frames_in) * u128::from(self.target_rate);
        let den = u128::from(self.key.rate);
        u64::try_from((num + den / 2) / den).unwrap_or(u64::MAX)
    }

    fn drain_blocks(&mut self, produced: &mut Vec<f32>) -> Result<(), NodeError> {
        let ch = self.channels;
        let mut offset = 0;
        loop {
            let need = self.resampler.input_frames_next();
            let available = (self.pending.len() - offset) / ch;
            if available < need {
                break;
            }
            let frames_max = self.scratch.len() / ch;
            let input = &self.pending[offset..];
            // Mono interleaved and sequential layouts are the same memory; the sequential
            // adapter copies whole slices where the interleaved one copies sample by sample.
            let result = if ch == 1 {
                let input = SequentialSlice::new(input, 1, available).map_err(adapter_error)?;
                let mut output = SequentialSlice::new_mut(&mut self.scratch, 1, frames_max)
                    .map_err(adapter_error)?;
                self.resampler
                    .process_into_buffer(&input, &mut output, None)
            } else {
                let input = InterleavedSlice::new(input, ch, available).map_err(adapter_error)?;
                let mut output = InterleavedSlice::new_mut(&mut self.scratch, ch, frames_max)
                    .map_err(adapter_error)?;
                self.resampler
                    .process_into_buffer(&input, &mut output, None)
            };
            let (consumed, written) =
                result.map_err(|e| NodeError::Failed(format!("resampling failed: {e}")))?;
            offset += consumed * ch;
            let skip = self.delay_left.min(written);
            self.delay_left -= skip;
            produced.extend_from_slice(&self.scratch[skip * ch..written * ch]);
        }
        self.pending.drain(..offset);
        Ok(())
    }

    /// Wraps produced samples as one audio item, or `None` when there are none.
    fn wrap_output(&mut self, samples: Vec<f32>) -> Option<RuntimeData> {
        if samples.is_empty() {
            return None;
        }
        let frames = (samples.len() / self.channels) as u64;
        let mut audio = AudioBuffer::new(samples, self.target_rate, self.key.channels);
        audio.stream_id.clone_from(&self.key.stream_id);
        audio.timestamp_us = self
            .start_us
            .map(|t| t + frames_to_us(self.frames_out, self.target_rate));
        self.frames_out += frames;
        Some(RuntimeData::Audio(audio))
    }
}

fn adapter_error(e: impl std::fmt::Display) -> NodeError {
    NodeError::Failed(format!("resampler buffer: {e}"))
}

/// The smallest number >= `n` whose only prime factors are 2, 3 and 5.
fn smooth_at_least(n: usize) -> usize {
    (n.max(1)..)
        .find(|&m| {
            let mut r = m;
            for p in [2, 3, 5] {
                while r % p == 0 {
                    r /= p;
                }
            }
            r == 1
        })
        .expect("5-smooth numbers are unbounded")
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}
