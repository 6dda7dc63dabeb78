//! The example against a real server on loopback: a WAV through `resample-chain`.

use std::sync::Arc;

use remotemedia_grpc::{GrpcRunner, GrpcService, ServiceOptions};
use remotemedia_runtime_core::manifest::{Format, Manifest};
use remotemedia_runtime_core::{PipelineRunner, RuntimeData, SessionOutput};
use tokio_stream::wrappers::TcpListenerStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wav_streams_through_the_servers_pipeline() {
    let text = include_str!("../../pipelines/resample-chain.yaml");
    let manifest =
        Manifest::from_text(text, Format::Yaml, PipelineRunner::new().registry()).unwrap();
    let service = GrpcService::new(
        Arc::new(PipelineRunner::new().serving(manifest).expect("plans")),
        ServiceOptions::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service.into_server(4 << 20))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );

    // One second of 48 kHz stereo.
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("in.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&wav, spec).unwrap();
    for i in 0..48_000 {
        let s = ((i as f32 * 0.05).sin() * 8_000.0) as i16;
        writer.write_sample(s).unwrap();
        writer.write_sample(s).unwrap();
    }
    writer.finalize().unwrap();

    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let outputs = remotemedia_grpc_client_example::stream_wav(&GrpcRunner::new(channel), &wav, 20)
        .await
        .unwrap();
    // resample-chain: mono, 16 kHz, 320-frame chunks: one second is 50 of them.
    let chunks: Vec<usize> = outputs
        .iter()
        .map(|o| match o {
            SessionOutput::Data { data, .. } => match &data.data {
                RuntimeData::Audio(a) => {
                    assert_eq!((a.sample_rate, a.channels), (16_000, 1));
                    a.samples.len()
                }
                other => panic!("audio expected, got {other:?}"),
            },
            SessionOutput::Error(e) => panic!("{e:?}"),
        })
        .collect();
    assert_eq!(chunks.iter().sum::<usize>(), 16_000, "{chunks:?}");
    assert!(chunks.iter().all(|&c| c == 320), "{chunks:?}");
}
