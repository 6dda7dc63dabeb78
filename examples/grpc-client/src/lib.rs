//! Streams a WAV file through a RemoteMedia gRPC server with [`GrpcRunner`], the same
//! `StreamSession` API an in-process pipeline has: send frames from one task, read outputs
//! from another.

use std::path::Path;

use anyhow::Context;
use remotemedia_grpc::GrpcRunner;
use remotemedia_runtime_core::{
    AudioBuffer, RuntimeData, SessionOutput, StreamSession, TransportData,
};

/// Streams `wav` in `frame_ms` frames on the server's own pipeline and returns every output.
///
/// # Errors
/// The file is not a readable 16-bit or float WAV, or the session failed.
pub async fn stream_wav(
    runner: &GrpcRunner,
    wav: &Path,
    frame_ms: u32,
) -> anyhow::Result<Vec<SessionOutput>> {
    let frames = read_frames(wav, frame_ms)?;
    let session = runner.stream_served().await?;
    let send = async {
        for (i, frame) in frames.into_iter().enumerate() {
            let input = TransportData::new(RuntimeData::Audio(frame)).with_sequence(i as u64);
            session.send_input(input).await?;
        }
        session.end_input().await;
        anyhow::Ok(())
    };
    let receive = async {
        let mut outputs = Vec::new();
        while let Some(output) = session.recv_output().await? {
            outputs.push(output);
        }
        anyhow::Ok(outputs)
    };
    let ((), outputs) = tokio::try_join!(send, receive)?;
    Ok(outputs)
}

fn read_frames(path: &Path, frame_ms: u32) -> anyhow::Result<Vec<AudioBuffer>> {
    let mut reader =
        hound::WavReader::open(path).with_context(|| format!("opening {}", path.display()))?;
    let spec = reader.spec();
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>()?,
        hound::SampleFormat::Int => reader
            .samples::<i16>()
            .map(|s| s.map(|s| f32::from(s) / 32_768.0))
            .collect::<Result<_, _>>()?,
    };
    let per_frame = (spec.sample_rate * frame_ms / 1000) as usize * usize::from(spec.channels);
    anyhow::ensure!(per_frame > 0, "{frame_ms} ms is shorter than one sample");
    Ok(samples
        .chunks(per_frame)
        .map(|chunk| AudioBuffer::new(chunk.to_vec(), spec.sample_rate, spec.channels))
        .collect())
}
