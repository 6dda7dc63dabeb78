//! `stream-wav --server http://127.0.0.1:50051 --input in.wav [--token T]`: prints each output
//! of the server's pipeline as one JSON line.

use std::path::PathBuf;

use clap::Parser;
use remotemedia_grpc::GrpcRunner;

#[derive(Debug, Parser)]
struct Args {
    /// Server address, e.g. http://127.0.0.1:50051.
    #[arg(long)]
    server: String,
    /// WAV file to stream.
    #[arg(long)]
    input: PathBuf,
    /// Bearer token, if the server requires one.
    #[arg(long)]
    token: Option<String>,
    /// Frame length in milliseconds.
    #[arg(long, default_value_t = 20)]
    frame_ms: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let channel = tonic::transport::Channel::from_shared(args.server)?
        .connect()
        .await?;
    let mut runner = GrpcRunner::new(channel);
    if let Some(token) = &args.token {
        runner = runner.with_token(token);
    }
    for output in
        remotemedia_grpc_client_example::stream_wav(&runner, &args.input, args.frame_ms).await?
    {
        println!("{}", serde_json::to_string(&output)?);
    }
    Ok(())
}
