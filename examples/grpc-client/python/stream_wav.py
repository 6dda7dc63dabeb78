"""Streams a WAV file through a RemoteMedia gRPC server in 20 ms frames and prints every
response as one JSON line.

    pip install grpcio==1.85.1 grpcio-tools==1.85.1 grpcio-health-checking==1.85.1 numpy
    python stream_wav.py --server 127.0.0.1:50051 --input speech.wav [--token-file F]

The protocol's Python code is generated at start from transports/grpc/proto with grpcio-tools
(no generated files to keep in step). The server's health is checked first; then one stream:
`open`, the frames (each with its sequence number), `end_input`, and every response until
`closed`. Exit status 0 when the session completed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
import wave
from pathlib import Path

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parents[3] / "transports" / "grpc" / "proto"
SERVICE = "remotemedia.v1.PipelineService"


def generated_modules():
    """Compiles pipeline.proto into temporary top-level modules and imports them.

    Top-level (`pipeline_pb2`), not `remotemedia.v1.pipeline_pb2`: the `remotemedia` Python
    package (transports/ffi) may be installed, and a regular package of that name would hide
    a generated `remotemedia.v1`. The protobuf package stays `remotemedia.v1` either way."""
    out = Path(tempfile.mkdtemp(prefix="remotemedia-pb-"))
    proto_dir = PROTO_ROOT / "remotemedia" / "v1"
    status = protoc.main(
        ["protoc", f"-I{proto_dir}", f"--python_out={out}", f"--grpc_python_out={out}", "pipeline.proto"]
    )
    if status != 0:
        raise SystemExit(f"protoc failed on {proto_dir / 'pipeline.proto'}")
    sys.path.insert(0, str(out))
    return importlib.import_module("pipeline_pb2"), importlib.import_module("pipeline_pb2_grpc")


def frames(path: Path, frame_ms: int):
    """(samples as float32 interleaved, rate, channels) per frame of a 16-bit PCM WAV."""
    with wave.open(str(path)) as wav:
        if wav.getsampwidth() != 2:
            raise SystemExit(f"{path}: only 16-bit PCM WAV is supported here")
        rate, channels = wav.getframerate(), wav.getnchannels()
        per_frame = rate * frame_ms // 1000
        while True:
            raw = wav.readframes(per_frame)
            if not raw:
                return
            yield np.frombuffer(raw, "<i2").astype("<f4") / 32768.0, rate, channels


def describe(pb, response) -> dict:
    kind = response.WhichOneof("kind")
    if kind == "ready":
        return {"ready": response.ready.session_id}
    if kind == "closed":
        return {"closed": response.closed.reason}
    if kind == "error":
        e = response.error
        return {"error": e.message, "node_id": e.node_id, "sequence": e.sequence if e.HasField("sequence") else None}
    item = response.result.item
    data = item.data
    which = data.WhichOneof("kind")
    line = {"node_id": response.result.node_id, "sequence": item.sequence if item.HasField("sequence") else None, "type": which}
    if which == "json":
        line["data"] = json.loads(data.json)
    elif which == "text":
        line["data"] = data.text
    elif which == "audio":
        line["samples"] = len(data.audio.samples_f32le) // 4
    return line


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--input", required=True, type=Path)
    parser.add_argument("--token-file", type=Path)
    parser.add_argument("--ca", type=Path, help="connect with TLS, trusting this CA certificate (PEM)")
    parser.add_argument("--frame-ms", type=int, default=20)
    args = parser.parse_args()
    pb, pb_grpc = generated_modules()
    metadata = []
    if args.token_file:
        metadata.append(("authorization", f"Bearer {args.token_file.read_text().split()[0]}"))

    if args.ca:
        credentials = grpc.ssl_channel_credentials(root_certificates=args.ca.read_bytes())
        channel = grpc.secure_channel(args.server, credentials)
    else:
        channel = grpc.insecure_channel(args.server)
    with channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=10)
        if health.status != health_pb2.HealthCheckResponse.SERVING:
            print(json.dumps({"health": health_pb2.HealthCheckResponse.ServingStatus.Name(health.status)}))
            return 1

        def requests():
            yield pb.StreamRequest(open=pb.Open())
            for sequence, (samples, rate, channels) in enumerate(frames(args.input, args.frame_ms)):
                audio = pb.Audio(samples_f32le=samples.tobytes(), sample_rate=rate, channels=channels)
                yield pb.StreamRequest(input=pb.Item(data=pb.Data(audio=audio), sequence=sequence))
            yield pb.StreamRequest(end_input=pb.EndInput())

        completed = False
        for response in pb_grpc.PipelineServiceStub(channel).Stream(requests(), metadata=metadata, timeout=120):
            line = describe(pb, response)
            print(json.dumps(line), flush=True)
            completed = line.get("closed") == "completed"
    return 0 if completed else 1


if __name__ == "__main__":
    sys.exit(main())
