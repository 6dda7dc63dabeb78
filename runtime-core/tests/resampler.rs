//! FastResampleNode: length, pitch, continuity and chunking independence, through the same
//! node factory a manifest uses.

use remotemedia_runtime_core::nodes::{Node, NodeRegistry, Outputs};
use remotemedia_runtime_core::{AudioBuffer, RuntimeData};
use serde_json::json;

/// Chunk sizes (frames per input item) from 1 to 4096.
const CHUNKS: &[usize] = &[1, 7, 160, 441, 960, 1024, 4096];

fn sine(freq: f64, rate: u32, frames: usize, channels: u16) -> Vec<f32> {
    (0..frames)
        .flat_map(|i| {
            let v = (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin() * 0.5;
            // Right channel at a different phase, so channel mix-ups would show.
            (0..channels).map(move |c| if c == 0 { v as f32 } else { (v * 0.5) as f32 })
        })
        .collect()
}

fn resampler(params: &serde_json::Value) -> Box<dyn Node> {
    NodeRegistry::with_builtins()
        .get("FastResampleNode")
        .unwrap()
        .create(params)
        .unwrap()
        .into_local()
        .expect("FastResampleNode is in-process")
}

/// Streams `input` in `chunk`-frame items and returns the concatenated output.
fn stream(
    params: &serde_json::Value,
    input: &[f32],
    rate: u32,
    channels: u16,
    chunk: usize,
) -> (Vec<f32>, u32) {
    let mut node = resampler(params);
    let mut out = Outputs::default();
    let mut samples = Vec::new();
    let mut out_rate = 0;
    let mut collect = |out: &mut Outputs, samples: &mut Vec<f32>| {
        for item in out.drain() {
            let RuntimeData::Audio(a) = item else {
                panic!("non-audio output")
            };
            assert!(a.frames() > 0, "empty output item");
            assert_eq!(a.channels, channels);
            out_rate = a.sample_rate;
            samples.extend_from_slice(&a.samples);
        }
    };
    for piece in input.chunks(chunk * usize::from(channels)) {
        node.process(
            RuntimeData::Audio(AudioBuffer::new(piece.to_vec(), rate, channels)),
            &mut out,
        )
        .unwrap();
        collect(&mut out, &mut samples);
    }
    node.finish(&mut out).unwrap();
    collect(&mut out, &mut samples);
    (samples, out_rate)
}

/// Frequency of channel 0 from interpolated rising zero crossings over the middle half.
fn measured_freq(samples: &[f32], channels: u16, rate: u32) -> f64 {
    let ch0: Vec<f64> = samples
        .iter()
        .step_by(usize::from(channels))
        .map(|&s| f64::from(s))
        .collect();
    let (lo, hi) = (ch0.len() / 4, 3 * ch0.len() / 4);
    let crossings: Vec<f64> = (lo..hi)
        .filter(|&i| ch0[i - 1] < 0.0 && ch0[i] >= 0.0)
        .map(|i| (i - 1) as f64 + ch0[i - 1] / (ch0[i - 1] - ch0[i]))
        .collect();
    let periods = (crossings.len() - 1) as f64;
    periods * f64::from(rate) / (crossings[crossings.len() - 1] - crossings[0])
}

fn check_conversion(from: u32, to: u32, channels: u16, quality: &str) {
    let params = json!({"source_rate": from, "target_rate": to, "quality": quality});
    let frames = from as usize / 2; // half a second
    let freq = 440.0;
    let input = sine(freq, from, frames, channels);
    let expected_frames = (frames as f64 * f64::from(to) / f64::from(from)).round() as i64;

    let (reference, out_rate) = stream(&params, &input, from, channels, 4096);
    assert_eq!(out_rate, to);
    for &chunk in CHUNKS {
        let (out, _) = stream(&params, &input, from, channels, chunk);
        let out_frames = (out.len() / usize::from(channels)) as i64;
        assert!(
            (out_frames - expected_frames).abs() <= 1,
            "{from}->{to} x{channels} chunk {chunk}: {out_frames} frames, expected {expected_frames}"
        );
        // Chunking must not change a single sample: no gaps, no inserted silence.
        assert_eq!(
            out, reference,
            "{from}->{to} x{channels}: chunk {chunk} differs from chunk 4096"
        );
    }

    let measured = measured_freq(&reference, channels, to);
    assert!(
        (measured - freq).abs() / freq < 0.001,
        "{from}->{to}: pitch {measured} Hz, expected {freq}"
    );

    // Output is time-aligned with the input: compare against the ideal sine at the new rate,
    // away from the first and last 10 ms where the filter rings in and out.
    let ideal = sine(freq, to, expected_frames as usize, channels);
    let margin = (to as usize / 100) * usize::from(channels);
    let worst = reference[margin..reference.len() - margin]
        .iter()
        .zip(&ideal[margin..])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    // The resampler's delay is a whole number of output frames, so up to half a frame of
    // sub-sample offset remains: allow the error of a 0.6-frame phase shift of the 0.5-amplitude
    // sine. A gap or inserted silence would show an error near 0.5.
    let tolerance = (0.5 * 2.0 * std::f64::consts::PI * freq / f64::from(to) * 0.6 + 0.005) as f32;
    assert!(
        worst < tolerance,
        "{from}->{to} x{channels} {quality}: deviation from ideal sine {worst} > {tolerance}"
    );
}

#[test]
fn downsample_48k_to_16k_mono_and_stereo() {
    check_conversion(48_000, 16_000, 1, "Medium");
    check_conversion(48_000, 16_000, 2, "High");
}

#[test]
fn upsample_16k_to_48k_and_24k_to_48k() {
    check_conversion(16_000, 48_000, 1, "Low");
    check_conversion(24_000, 48_000, 2, "Medium");
}

#[test]
fn fractional_ratios_44k1_and_back() {
    check_conversion(44_100, 48_000, 2, "Medium");
    check_conversion(48_000, 44_100, 1, "High");
    check_conversion(8_000, 11_025, 1, "Medium");
}

#[test]
fn awkward_rates_use_the_sinc_path() {
    // gcd(44101, 48000) = 1: an FFT block would be a second long, so sinc is used.
    check_conversion(44_101, 48_000, 1, "Medium");
}

#[test]
fn short_input_is_flushed_at_end_not_lost() {
    let params = json!({"source_rate": 48_000, "target_rate": 16_000});
    let input = sine(440.0, 48_000, 30, 1); // less than one internal block
    let (out, _) = stream(&params, &input, 48_000, 1, 30);
    assert_eq!(out.len(), 10);
}

#[test]
fn wrong_input_rate_is_an_error_not_a_misconversion() {
    let mut node = resampler(&json!({"source_rate": 48_000, "target_rate": 16_000}));
    let mut out = Outputs::default();
    let err = node
        .process(
            RuntimeData::Audio(AudioBuffer::new(vec![0.0; 441], 44_100, 1)),
            &mut out,
        )
        .unwrap_err();
    assert!(err.to_string().contains("44100 Hz"), "{err}");
    assert!(out.is_empty());
}

#[test]
fn without_source_rate_each_stream_rate_is_adopted_and_timestamps_advance() {
    let mut node = resampler(&json!({"target_rate": 16_000}));
    let mut out = Outputs::default();
    let audio =
        AudioBuffer::new(sine(440.0, 48_000, 9600, 1), 48_000, 1).with_timestamp_us(1_000_000);
    node.process(RuntimeData::Audio(audio), &mut out).unwrap();
    node.finish(&mut out).unwrap();
    let items: Vec<AudioBuffer> = out
        .drain()
        .map(|d| match d {
            RuntimeData::Audio(a) => a,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(items.iter().map(AudioBuffer::frames).sum::<usize>(), 3200);
    assert_eq!(items[0].timestamp_us, Some(1_000_000));
    let second_ts = items.get(1).map(|a| a.timestamp_us.unwrap());
    if let Some(ts) = second_ts {
        assert_eq!(ts, 1_000_000 + items[0].duration_us());
    }
    // 16 kHz input to a 16 kHz target passes through unchanged.
    let same = AudioBuffer::new(vec![0.25; 160], 16_000, 1);
    node.process(RuntimeData::Audio(same.clone()), &mut out)
        .unwrap();
    assert_eq!(out.drain().next(), Some(RuntimeData::Audio(same)));
}
