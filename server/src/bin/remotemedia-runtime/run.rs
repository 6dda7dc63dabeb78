//! `run`: stream a WAV file through a pipeline session in fixed frames.
//!
//! Audio from client-facing audio nodes goes to WAV files; every other output (and every
//! error item) is one JSON object per line on stdout; progress and the summary go to stderr.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use remotemedia_runtime_core::data::{DataKind, frames_to_us};
use remotemedia_runtime_core::graph::Graph;
use remotemedia_runtime_core::ipc::{ClientOptions, IpcRunner, LinkName};
use remotemedia_runtime_core::manifest::{Format, Manifest, check_document};
use remotemedia_runtime_core::nodes::NodeRegistry;
use remotemedia_runtime_core::{
    AudioBuffer, PipelineRunner, RuntimeData, SessionError, SessionOutput, StreamSession,
    TransportData,
};
use remotemedia_server::LinkFlags;
use serde_json::json;

/// Inputs longer than this get progress lines on stderr.
const PROGRESS_MIN_SECONDS: f64 = 10.0;

pub(crate) fn run(
    manifest_path: &Path,
    input: &Path,
    output: Option<&Path>,
    frame_ms: u32,
    registry: NodeRegistry,
) -> anyhow::Result<ExitCode> {
    let Some(manifest) = load_manifest(manifest_path, &registry)? else {
        return Ok(ExitCode::FAILURE);
    };
    let audio = read_wav(input)?;
    let sinks = audio_file_targets(&manifest, &registry, output)?;
    let runner = PipelineRunner::with_registry(registry);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let session = runner.create_stream_session(&manifest)?;
        stream(&session, audio, frame_ms, sinks).await
    })
}

/// `run --connect`: the same, through the worker serving `link` (its own pipeline, or
/// `manifest_path` when given).
pub(crate) fn run_connected(
    link: &str,
    link_flags: LinkFlags,
    manifest_path: Option<&Path>,
    input: &Path,
    output: Option<&Path>,
    frame_ms: u32,
    registry: &NodeRegistry,
) -> anyhow::Result<ExitCode> {
    let manifest = match manifest_path {
        Some(path) => match load_manifest(path, registry)? {
            Some(m) => Some(m),
            None => return Ok(ExitCode::FAILURE),
        },
        None => None,
    };
    let audio = read_wav(input)?;
    let link = LinkName::new(link)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let options = ClientOptions {
            spin: link_flags.spin(),
            ..ClientOptions::default()
        };
        let runner = IpcRunner::connect(link, options)?;
        let session = match &manifest {
            Some(m) => runner.stream_manifest(m).await?,
            None => runner.stream_served().await?,
        };
        let running = session
            .manifest()
            .context("the worker did not say which pipeline it runs")?;
        let sinks = audio_file_targets(running, registry, output)?;
        stream(&session, audio, frame_ms, sinks).await
    })
}

/// Reads and checks a manifest, printing every problem; `None` when it has errors.
pub(crate) fn load_manifest(
    manifest_path: &Path,
    registry: &NodeRegistry,
) -> anyhow::Result<Option<Manifest>> {
    let text = std::fs::read_to_string(manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let checked = check_document(
        &text,
        Format::detect(manifest_path.to_str(), &text),
        registry,
    );
    for p in &checked.report.problems {
        eprintln!("{}: {}", manifest_path.display(), p);
    }
    Ok(match checked.manifest {
        Some(m) if !checked.report.has_errors() => Some(m),
        _ => None,
    })
}

/// Maps each client-facing node that can produce audio to its output file.
fn audio_file_targets(
    manifest: &Manifest,
    registry: &NodeRegistry,
    output: Option<&Path>,
) -> anyhow::Result<HashMap<String, PathBuf>> {
    let Some(output) = output else {
        return Ok(HashMap::new());
    };
    let graph = Graph::from_manifest(manifest)?;
    let audio_nodes: Vec<&str> = (0..graph.len())
        .filter(|&i| graph.emits_to_client(i))
        .filter(|&i| {
            // A type this process does not know (the worker's own) may produce audio.
            registry
                .get(&manifest.nodes[i].node_type)
                .is_none_or(|f| f.io().produces.contains(&DataKind::Audio))
        })
        .map(|i| graph.id(i))
        .collect();
    if audio_nodes.is_empty() {
        bail!("--output was given, but no output node of this pipeline produces audio");
    }
    Ok(audio_nodes
        .iter()
        .map(|&id| {
            let path = if audio_nodes.len() == 1 {
                output.to_path_buf()
            } else {
                output.with_extension(format!("{id}.wav"))
            };
            (id.to_owned(), path)
        })
        .collect())
}

async fn stream(
    session: &impl StreamSession,
    audio: AudioBuffer,
    frame_ms: u32,
    targets: HashMap<String, PathBuf>,
) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let total_seconds = audio.duration_us() as f64 / 1e6;
    let feed = feed_frames(session, &audio, frame_ms, total_seconds);
    let drain = drain_outputs(session, targets);
    let (fed, summary) = tokio::try_join!(feed, drain)?;
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "done: {fed} frames ({total_seconds:.2} s of audio) in {elapsed:.2} s ({:.0}x real time); {} outputs, {} errors",
        total_seconds / elapsed.max(1e-9),
        summary.outputs,
        summary.errors
    );
    for (node, path) in &summary.files {
        eprintln!("wrote {} (audio from node '{node}')", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

async fn feed_frames(
    session: &impl StreamSession,
    audio: &AudioBuffer,
    frame_ms: u32,
    total_seconds: f64,
) -> anyhow::Result<u64> {
    let channels = usize::from(audio.channels);
    let frame_len = (audio.sample_rate as usize * frame_ms as usize / 1000).max(1);
    let mut next_progress = 0.1;
    let mut sent = 0u64;
    for (i, chunk) in audio.samples.chunks(frame_len * channels).enumerate() {
        let frame = AudioBuffer::new(chunk.to_vec(), audio.sample_rate, audio.channels)
            .with_timestamp_us(frames_to_us((i * frame_len) as u64, audio.sample_rate));
        match session
            .send_input(TransportData::new(RuntimeData::Audio(frame)).with_sequence(i as u64))
            .await
        {
            Ok(()) => {}
            // Closed by the output side (stdout reader gone): stop feeding.
            Err(SessionError::Closed { .. }) => return Ok(sent),
            Err(e) => return Err(e.into()),
        }
        sent += 1;
        let done = ((i + 1) * frame_len) as f64 / (audio.frames().max(1)) as f64;
        if total_seconds >= PROGRESS_MIN_SECONDS && done >= next_progress {
            eprintln!(
                "progress: {:.1} / {total_seconds:.1} s of audio sent ({:.0}%)",
                done.min(1.0) * total_seconds,
                done.min(1.0) * 100.0
            );
            next_progress += 0.1;
        }
    }
    session.end_input().await;
    Ok(sent)
}

#[derive(Default)]
struct Summary {
    outputs: u64,
    errors: u64,
    files: Vec<(String, PathBuf)>,
}

async fn drain_outputs(
    session: &impl StreamSession,
    targets: HashMap<String, PathBuf>,
) -> anyhow::Result<Summary> {
    let mut writers: HashMap<String, WavSink> = HashMap::new();
    let mut summary = Summary::default();
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    while let Some(item) = session.recv_output().await? {
        let line = match item {
            SessionOutput::Error(f) => {
                summary.errors += 1;
                json!({"node_id": f.node_id, "type": "error", "sequence": f.sequence, "message": f.message})
            }
            SessionOutput::Data { node_id, data } => {
                summary.outputs += 1;
                match (&data.data, targets.get(&node_id)) {
                    (RuntimeData::Audio(a), Some(path)) => {
                        let sink = match writers.entry(node_id.clone()) {
                            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                            std::collections::hash_map::Entry::Vacant(e) => {
                                e.insert(WavSink::create(path, a)?)
                            }
                        };
                        sink.write(a)
                            .with_context(|| format!("writing audio of node '{node_id}'"))?;
                        continue;
                    }
                    (RuntimeData::Audio(a), None) => json!({
                        "node_id": node_id, "type": "audio", "sequence": data.sequence,
                        "data": {"frames": a.frames(), "sample_rate": a.sample_rate, "channels": a.channels,
                                 "timestamp_us": a.timestamp_us, "stream_id": a.stream_id},
                    }),
                    (other, _) => {
                        let mut v = serde_json::to_value(other)?;
                        v["node_id"] = json!(node_id);
                        v["sequence"] = json!(data.sequence);
                        v
                    }
                }
            }
        };
        if let Err(e) = writeln!(out, "{line}") {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                // The reader is gone (`| head`): stop the session rather than fail.
                session.close().await;
                break;
            }
            return Err(e.into());
        }
    }
    let _ = out.flush();
    for (node, sink) in writers {
        summary.files.push((node, sink.path.clone()));
        sink.finish()?;
    }
    summary.files.sort();
    Ok(summary)
}

struct WavSink {
    path: PathBuf,
    spec: hound::WavSpec,
    writer: hound::WavWriter<BufWriter<File>>,
}

impl WavSink {
    fn create(path: &Path, first: &AudioBuffer) -> anyhow::Result<Self> {
        let spec = hound::WavSpec {
            channels: first.channels,
            sample_rate: first.sample_rate,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let writer = hound::WavWriter::create(path, spec)
            .with_context(|| format!("creating {}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            spec,
            writer,
        })
    }

    fn write(&mut self, audio: &AudioBuffer) -> anyhow::Result<()> {
        if (audio.sample_rate, audio.channels) != (self.spec.sample_rate, self.spec.channels) {
            bail!(
                "audio format changed from {} Hz/{} ch to {} Hz/{} ch; a WAV file holds one format",
                self.spec.sample_rate,
                self.spec.channels,
                audio.sample_rate,
                audio.channels
            );
        }
        for &s in audio.samples.iter() {
            self.writer.write_sample(s)?;
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        self.writer
            .finalize()
            .with_context(|| format!("finishing {}", self.path.display()))
    }
}

/// Reads a WAV file (8/16/24/32-bit integer or 32-bit float PCM) as interleaved f32.
fn read_wav(path: &Path) -> anyhow::Result<AudioBuffer> {
    let reader =
        hound::WavReader::open(path).with_context(|| format!("opening WAV {}", path.display()))?;
    let spec = reader.spec();
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.into_samples::<f32>().collect::<Result<_, _>>()?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()?
        }
    };
    let audio = AudioBuffer::new(samples, spec.sample_rate, spec.channels);
    audio
        .check_format()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(audio)
}
