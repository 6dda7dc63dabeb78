"""A headless WHIP client on aiortc: streams a tone (or a WAV) into a remotemedia-webrtc
server, receives the pipeline's audio and events, ends the session with DELETE, and prints
one JSON summary line. The Rust tests and the benchmark run it; it also works by hand:

    python whip_client.py http://127.0.0.1:8080/whip --seconds 3

Summary fields: status (the POST's HTTP status), location, events (count), event_nodes
(node ids seen), errors (transport_error events), audio_frames and audio_rms (what came
back), delete_status, and with --measure-latency the round-trip latencies in ms of tone
bursts (send time of a burst to the time its echo crossed the threshold).

From outside a cluster: --ice-from-options asks the endpoint's OPTIONS for its ICE servers
(Link headers, credentials included with a valid --token), --relay-only gathers relay
candidates only, and --turn udp|tls picks which of the TURN URLs to use (aiortc uses one).
Then the summary also has ice_servers (the URLs given), offer_candidate_types and
connect_ms (from the first request to connected).
"""

import argparse
import asyncio
import fractions
import json
import math
import os
import re
import ssl
import sys
import time
import wave

import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)
from av import AudioFrame

RATE = 48_000
FRAME = 960  # 20 ms


class ToneTrack(MediaStreamTrack):
    """Mono 48 kHz audio, paced in real time: a 440 Hz tone, the samples of a WAV file, or
    (for latency) silence with a 100 ms burst every `burst_every` seconds."""

    kind = "audio"

    def __init__(self, samples=None, burst_every=None):
        super().__init__()
        self.samples = samples
        self.burst_every = burst_every
        self.sent = 0
        self.start = None
        self.burst_times = []  # wall-clock send time of each burst's first frame

    def _frame_samples(self):
        n = self.sent
        if self.samples is not None:
            chunk = self.samples[n % len(self.samples):][:FRAME]
            if len(chunk) < FRAME:
                chunk = np.concatenate([chunk, self.samples[: FRAME - len(chunk)]])
            return chunk
        t = (np.arange(n, n + FRAME) / RATE).astype(np.float64)
        tone = 0.5 * np.sin(2 * math.pi * 440 * t)
        if self.burst_every is None:
            return tone
        period = int(self.burst_every * RATE)
        phase = n % period
        if phase == 0:
            self.burst_times.append(time.monotonic())
        return tone if phase < RATE // 10 else np.zeros(FRAME)

    async def recv(self):
        if self.start is None:
            self.start = time.monotonic()
        due = self.start + self.sent / RATE
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        pcm = (np.clip(self._frame_samples(), -1, 1) * 32767).astype("<i2")
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self.sent
        frame.time_base = fractions.Fraction(1, RATE)
        self.sent += FRAME
        return frame


def read_wav(path):
    with wave.open(path) as w:
        if w.getsampwidth() != 2:
            sys.exit(f"{path}: only 16-bit WAV is supported")
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32)
        data = data.reshape(-1, w.getnchannels()).mean(axis=1) / 32768
        if w.getframerate() != RATE:
            sys.exit(f"{path}: give 48 kHz audio (it is {w.getframerate()} Hz)")
        return data


#: The CA certificate (PEM) an https:// WHIP endpoint is verified with (--ca), and the name
#: its certificate must hold when the URL's host is not it (--servername).
CA_FILE = None
SERVER_NAME = None


async def post(url, body, content_type="application/sdp", method="POST", token=None):
    """A minimal HTTP/1.1 client (the test venv has no HTTP library), over TLS for https://
    (verified against --ca): status, headers, body."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=CA_FILE)
        reader, writer = await asyncio.open_connection(
            parts.hostname,
            parts.port or 443,
            ssl=context,
            server_hostname=SERVER_NAME or parts.hostname,
        )
    else:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
    payload = body.encode() if isinstance(body, str) else body
    head = (
        f"{method} {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(payload)}\r\n"
        + (f"Authorization: Bearer {token}\r\n" if token else "")
        + "Connection: close\r\n\r\n"
    )
    writer.write(head.encode() + payload)
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {"link": []}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        if name == "link":
            headers["link"].append(value)
        else:
            headers.setdefault(name, value)
    return status, headers, rest.decode(errors="replace")


def ice_servers_from_links(links, turn):
    """RTCIceServers from `Link: <url>; rel="ice-server"; username=...; credential=...`
    headers (RFC 9725 section 4.4); of the TURN URLs only those over `turn` ("udp": turn:
    with transport=udp, "tls": turns:), since aiortc uses the first TURN server it is given."""
    servers = []
    for link in links:
        url = re.match(r"<([^>]+)>", link)
        if not url or 'rel="ice-server"' not in link:
            continue
        url = url.group(1)
        if url.startswith("turn:") and turn == "tls":
            continue
        if url.startswith("turns:") and turn == "udp":
            continue
        user = re.search(r'username="([^"]*)"', link)
        credential = re.search(r'credential="([^"]*)"', link)
        servers.append(
            RTCIceServer(
                urls=url,
                username=user.group(1) if user else None,
                credential=credential.group(1) if credential else None,
            )
        )
    return servers


def candidate_types(sdp):
    return sorted(set(re.findall(r"a=candidate:.* typ (\w+)", sdp)))


def gather_only(address):
    """Makes aiortc offer a single host candidate. aioice skips 127.0.0.1; a server under
    test on loopback needs it, since on a Kubernetes node kube-proxy drops packets sent to
    127.0.0.0/8 from the machine's other addresses (what Chromium's
    --allow-loopback-in-peer-connection does for the browser test)."""
    import aioice.ice

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [address]


async def run(args):
    if args.host_candidate:
        gather_only(args.host_candidate)
    samples = read_wav(args.wav) if args.wav else None
    track = ToneTrack(samples, burst_every=1.0 if args.measure_latency else None)
    summary = {"events": 0, "event_nodes": [], "errors": [], "audio_frames": 0}
    first_request = time.monotonic()
    config = RTCConfiguration()
    if args.ice_from_options:
        status, headers, _ = await post(args.url, "", method="OPTIONS", token=args.token)
        config.iceServers = ice_servers_from_links(headers["link"], args.turn)
        summary["ice_servers"] = [s.urls for s in config.iceServers]
    if args.relay_only:
        config.iceTransportPolicy = RTCIceTransportPolicy.RELAY
    pc = RTCPeerConnection(configuration=config)
    received = []
    arrivals = []  # (time, rms) of each received frame, for latency
    channel = pc.createDataChannel("events")

    @channel.on("message")
    def on_message(message):
        event = json.loads(message)
        summary["events"] += 1
        if event.get("kind") == "transport_error":
            summary["errors"].append(event.get("message"))
        node = event.get("node_id")
        if node and node not in summary["event_nodes"]:
            summary["event_nodes"].append(node)

    async def consume(remote):
        while True:
            try:
                frame = await remote.recv()
            except Exception:
                return
            pcm = frame.to_ndarray().astype(np.float32).reshape(-1) / 32768
            summary["audio_frames"] += 1
            rms = float(np.sqrt(np.mean(pcm * pcm))) if pcm.size else 0.0
            received.append(rms)
            arrivals.append((time.monotonic(), rms))

    consumers = []

    @pc.on("track")
    def on_track(remote):
        consumers.append(asyncio.ensure_future(consume(remote)))

    pc.addTransceiver(track, direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    summary["offer_candidate_types"] = candidate_types(pc.localDescription.sdp)
    if args.print_offer:
        # For tests that need a real offer but no connection.
        print(pc.localDescription.sdp, end="")
        await pc.close()
        return 0
    started = time.monotonic()
    try:
        status, headers, body = await post(args.url, pc.localDescription.sdp, token=args.token)
    except ssl.SSLError as e:
        # An untrusted certificate: said in the summary, as a refusal is.
        summary["status"] = 0
        summary["tls_error"] = str(e)
        await pc.close()
        print(json.dumps(summary))
        return 1
    summary["answer_ms"] = round((time.monotonic() - started) * 1000, 2)
    summary["status"] = status
    if status != 201:
        summary["body"] = body.strip()
        await pc.close()
        print(json.dumps(summary))
        return 1
    location = headers.get("location", "")
    summary["location"] = location
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))

    deadline = time.monotonic() + args.connect_timeout
    while pc.connectionState != "connected":
        if time.monotonic() > deadline or pc.connectionState == "failed":
            summary["connection"] = pc.connectionState
            await pc.close()
            print(json.dumps(summary))
            return 1
        await asyncio.sleep(0.02)
    summary["connection"] = "connected"
    summary["connect_ms"] = round((time.monotonic() - first_request) * 1000, 2)
    await asyncio.sleep(args.seconds)

    if args.measure_latency:
        summary["latency_ms"] = burst_latencies(track.burst_times, arrivals)
    if received:
        # The last half: past the codec's start-up and the jitter buffer's fill.
        tail = received[len(received) // 2:]
        summary["audio_rms"] = round(float(np.sqrt(np.mean(np.square(tail)))), 4)
    if args.vanish:
        # Leave without DELETE: the server must notice on its own.
        await pc.close()
        summary["delete_status"] = None
    else:
        base = args.url.rsplit("/whip", 1)[0]
        summary["delete_status"], _, _ = await post(
            base + location, "", method="DELETE", token=args.token
        )
        await pc.close()
    for c in consumers:
        c.cancel()
    print(json.dumps(summary))
    return 0


def burst_latencies(sent, arrivals, threshold=0.05):
    """For each burst sent, the delay until received audio first exceeds `threshold`."""
    out = []
    for i, t0 in enumerate(sent):
        t_end = sent[i + 1] if i + 1 < len(sent) else float("inf")
        hit = next((t for t, rms in arrivals if t0 <= t < t_end and rms > threshold), None)
        if hit is not None:
            out.append(round((hit - t0) * 1000, 2))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url", help="the WHIP endpoint, e.g. http://127.0.0.1:8080/whip")
    parser.add_argument("--wav", help="48 kHz 16-bit WAV to send (default: a 440 Hz tone)")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connect-timeout", type=float, default=10.0)
    parser.add_argument("--measure-latency", action="store_true")
    parser.add_argument("--vanish", action="store_true", help="leave without DELETE")
    parser.add_argument("--print-offer", action="store_true", help="print an offer and exit")
    parser.add_argument("--token", help="bearer token for a server started with --token-file")
    parser.add_argument("--ca", help="CA certificate (PEM) to verify an https:// endpoint with")
    parser.add_argument("--servername", help="the name the server's certificate must hold")
    parser.add_argument(
        "--host-candidate",
        metavar="IP",
        help="offer only this local address (127.0.0.1 for a server on loopback)",
    )
    parser.add_argument(
        "--ice-from-options",
        action="store_true",
        help="use the ICE servers the endpoint's OPTIONS names (Link headers)",
    )
    parser.add_argument("--relay-only", action="store_true", help="relay candidates only")
    parser.add_argument(
        "--turn", choices=["udp", "tls"], default="udp", help="which TURN URLs to use"
    )
    args = parser.parse_args()
    global CA_FILE, SERVER_NAME
    CA_FILE, SERVER_NAME = args.ca, args.servername
    if args.ca:
        # aioice's TURN over TLS verifies with the default context: trust --ca there too.
        os.environ["SSL_CERT_FILE"] = args.ca
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
