//! Shared audio helpers for the built-in nodes: input checks and level arithmetic.

use crate::data::{AudioBuffer, RuntimeData};

use super::NodeError;

/// Level reported for digital silence, so JSON never holds `-inf`.
pub(crate) const FLOOR_DB: f64 = -120.0;

/// The audio inside `input`, checked for a usable format.
pub(crate) fn expect_audio(input: RuntimeData) -> Result<AudioBuffer, NodeError> {
    match input {
        RuntimeData::Audio(audio) => {
            audio.check_format().map_err(NodeError::InvalidInput)?;
            Ok(audio)
        }
        other => Err(NodeError::unsupported("audio", &other)),
    }
}

/// Amplitude (1.0 = full scale) to dBFS, floored at [`FLOOR_DB`].
pub(crate) fn amplitude_db(amplitude: f64) -> f64 {
    if amplitude <= 0.0 {
        FLOOR_DB
    } else {
        (20.0 * amplitude.log10()).max(FLOOR_DB)
    }
}

/// Root mean square of `samples` (0 for none).
pub(crate) fn rms<'a>(samples: impl IntoIterator<Item = &'a f32>) -> f64 {
    let (sum, n) = samples.into_iter().fold((0.0f64, 0usize), |(s, n), &x| {
        (s + f64::from(x) * f64::from(x), n + 1)
    });
    if n == 0 { 0.0 } else { (sum / n as f64).sqrt() }
}

/// Largest absolute sample value.
pub(crate) fn peak<'a>(samples: impl IntoIterator<Item = &'a f32>) -> f64 {
    samples
        .into_iter()
        .fold(0.0f64, |m, &x| m.max(f64::from(x.abs())))
}

/// Samples of one channel of interleaved audio.
pub(crate) fn channel(audio: &AudioBuffer, index: usize) -> impl Iterator<Item = &f32> {
    audio
        .samples
        .iter()
        .skip(index)
        .step_by(usize::from(audio.channels))
}

/// Rounds a level for JSON output (0.01 dB is below anything audible).
pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_scale_sine_is_minus_3_db_rms() {
        let sine: Vec<f32> = (0..48_000)
            .map(|i| (i as f32 * 2.0 * std::f32::consts::PI * 1000.0 / 48_000.0).sin())
            .collect();
        assert!((amplitude_db(rms(&sine)) - (-3.0103)).abs() < 0.01);
        assert!((amplitude_db(peak(&sine))).abs() < 0.01);
        assert_eq!(amplitude_db(0.0), FLOOR_DB);
    }
}
