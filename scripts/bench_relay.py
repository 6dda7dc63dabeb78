"""The orchestration of `make bench-relay` (scripts/bench-relay.sh sets up the namespace and
the relay's files): starts coturn and the WebRTC server, then runs aiortc sessions direct to
the server's address and through the relay (TURN over UDP, and over TLS), interleaved, and
prints each figure with its ratio to direct."""

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import socket
import ssl
import os
import statistics
import subprocess
import sys
import time

HOST, POD = "10.215.0.1", "10.215.0.2"
CLIENTS = os.path.join(os.path.dirname(__file__), "..", "transports", "webrtc", "tests", "clients")


def start(command, ready, what, pids):
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with open(pids, "a") as f:
        f.write(f"{process.pid}\n")
    deadline = time.monotonic() + 30
    for line in process.stdout:
        if ready in line:
            return process
        if time.monotonic() > deadline:
            break
    sys.exit(f"{what} did not start")


def session(url, mode, ca, seconds):
    command = [sys.executable, os.path.join(CLIENTS, "whip_client.py"), url,
               "--measure-latency", "--seconds", str(seconds), "--connect-timeout", "20"]
    if mode != "direct":
        command += ["--ice-from-options", "--relay-only", "--turn", mode.split("-")[1], "--ca", ca]
    out = subprocess.run(command, capture_output=True, text=True, check=False)
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    if summary.get("connection") != "connected":
        sys.exit(f"{mode}: {summary} {out.stderr[-2000:]}")
    return summary


ECHO = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.215.0.2", 9999))
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(data, peer)
"""


class Collector(asyncio.DatagramProtocol):
    def __init__(self):
        self.queue = asyncio.Queue()

    def datagram_received(self, data, addr):
        self.queue.put_nowait(data)


async def datagram_rtts(mode, secret, ca, count=500):
    """Round trips of 160-byte datagrams (a 20 ms Opus packet's size) to a UDP echo in the
    pod's namespace: direct, or through a TURN allocation over UDP or TLS."""
    from aioice import turn

    loop = asyncio.get_running_loop()
    if mode == "direct":
        transport, collector = await loop.create_datagram_endpoint(
            Collector, remote_addr=(POD, 9999))
        send = lambda data: transport.sendto(data)
    else:
        username = f"{int(time.time()) + 600}:bench"
        password = base64.b64encode(
            hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()
        tls = mode == "relay-tls"
        transport, collector = await turn.create_turn_endpoint(
            Collector, (HOST, 5349 if tls else 3478), username, password,
            ssl=ssl.create_default_context(cafile=ca) if tls else None,
            transport="tcp" if tls else "udp")
        send = lambda data: transport.sendto(data, (POD, 9999))
    rtts = []
    payload = bytes(160)
    for i in range(count + 20):
        started = time.perf_counter()
        send(payload)
        await asyncio.wait_for(collector.queue.get(), 2)
        if i >= 20:  # the first ones set up the permission and channel
            rtts.append((time.perf_counter() - started) * 1000)
    transport.close()
    return rtts


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", required=True)
    parser.add_argument("--netns", required=True)
    parser.add_argument("--server", required=True)
    parser.add_argument("--relay-root", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=6)
    args = parser.parse_args()
    pids = os.path.join(args.work, "pids")
    secret = os.urandom(16).hex()
    secret_file = os.path.join(args.work, "secret")
    with open(secret_file, "w") as f:
        f.write(secret)
    manifest = os.path.join(args.work, "echo.yaml")
    with open(manifest, "w") as f:
        f.write("version: v1\nmetadata: { name: echo }\n"
                "nodes:\n  - { id: echo, node_type: PassThrough }\n")

    start(["chroot", "--userspec=65532:65532", args.relay_root, "/usr/bin/turnserver",
           "--log-file=stdout", "--simple-log", "--no-cli", "--pidfile=/tmp/turn.pid",
           "--userdb=/tmp/turndb", "--realm=remotemedia", "--fingerprint",
           f"--listening-ip={HOST}", f"--relay-ip={HOST}", "--listening-port=3478",
           "--tls-listening-port=5349", "--cert=/certs/tls.crt", "--pkey=/certs/tls.key",
           "--use-auth-secret", f"--static-auth-secret={secret}", "--no-dtls",
           "--denied-peer-ip=0.0.0.0-255.255.255.255", f"--allowed-peer-ip={POD}"],
          "turn server id=", "coturn", pids)
    ice = json.dumps({
        "urls": [f"turn:{HOST}:3478?transport=udp", f"turns:{HOST}:5349?transport=tcp"],
        "credentials": {"ephemeral": {"secretFile": secret_file, "ttlSeconds": 600}},
    })
    start(["ip", "netns", "exec", args.netns, args.server, "--manifest", manifest,
           "--listen", f"{POD}:8080", "--udp-port", "40000", "--advertise", POD,
           "--ice-server", ice], "serving WHIP", "remotemedia-webrtc", pids)
    start(["ip", "netns", "exec", args.netns, sys.executable, "-u", "-c",
           "print('echo ready', flush=True)\n" + ECHO], "echo ready", "UDP echo", pids)
    url = f"http://{POD}:8080/whip"
    ca = os.path.join(args.relay_root, "certs", "tls.crt")

    modes = ["direct", "relay-udp", "relay-tls"]
    results = {m: {"answer": [], "connect": [], "rtt": []} for m in modes}
    session(url, "relay-udp", ca, 1)  # warm-up: the relay's first allocation, imports
    for _ in range(args.rounds):
        for mode in modes:
            s = session(url, mode, ca, args.seconds)
            results[mode]["answer"].append(s["answer_ms"])
            results[mode]["connect"].append(s["connect_ms"])
            results[mode]["rtt"] += s.get("latency_ms", [])
            if mode != "direct" and s["offer_candidate_types"] != ["relay"]:
                sys.exit(f"{mode} offered {s['offer_candidate_types']}")

    p50 = lambda xs: statistics.median(xs) if xs else float("nan")
    base = {k: p50(v) for k, v in results["direct"].items()}
    print(f"WebRTC through the TURN relay (coturn) vs direct, {args.rounds} sessions each, "
          f"{args.seconds:g} s of tone bursts per session, interleaved\n")
    print(f"{'':44}{'direct':>10}{'relay UDP':>12}{'relay TLS':>12}")
    rows = [("WHIP offer-to-answer (POST to 201) p50, ms", "answer"),
            ("first request to connected p50, ms", "connect"),
            ("audio round trip (burst to echo) p50, ms", "rtt")]
    for label, key in rows:
        values = [p50(results[m][key]) for m in modes]
        print(f"{label:44}" + "".join(f"{v:10.1f}  " for v in values))
        print(f"{'  ratio to direct':44}" + "".join(f"{v / base[key]:9.2f}x  " for v in values))
    samples = {m: len(results[m]["rtt"]) for m in modes}
    print(f"  (round-trip samples: {samples})")

    hops = {m: [] for m in modes}
    for _ in range(3):
        for mode in modes:
            hops[mode] += asyncio.run(datagram_rtts(mode, secret, ca))
    label = "160-byte datagram round trip p50, ms"
    values = [p50(hops[m]) for m in modes]
    print(f"{label:44}" + "".join(f"{v:10.3f}  " for v in values))
    print(f"{'  ratio to direct':44}" + "".join(f"{v / values[0]:9.2f}x  " for v in values))
    values = [statistics.quantiles(hops[m], n=100)[98] for m in modes]
    print(f"{'  p99, ms':44}" + "".join(f"{v:10.3f}  " for v in values))
    print(f"  ({len(hops['direct'])} datagrams each, one at a time)")


if __name__ == "__main__":
    main()
