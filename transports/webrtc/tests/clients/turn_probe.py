"""Asks a TURN server for an allocation with TURN REST credentials minted from a shared secret
(the scheme of coturn's use-auth-secret), valid until now + --expires-in seconds (negative:
already expired), over UDP or TLS. Prints one JSON line: {"allocated": bool, "relayed":
[host, port] or "error": why}. For tests of a relay's authentication:

    python turn_probe.py 10.0.0.5:3478 --secret-file secret --expires-in -60
"""

import argparse
import asyncio
import base64
import hmac
import json
import ssl
import sys
import time

from aioice import turn


def credential(secret, expires_at, user="probe"):
    username = f"{int(expires_at)}:{user}"
    password = base64.b64encode(hmac.new(secret, username.encode(), "sha1").digest()).decode()
    return username, password


async def probe(args):
    host, _, port = args.server.rpartition(":")
    with open(args.secret_file, "rb") as f:
        secret = f.read().strip()
    username, password = credential(secret, time.time() + args.expires_in)
    context = ssl.create_default_context(cafile=args.ca) if args.tls else None
    try:
        transport, _ = await asyncio.wait_for(
            turn.create_turn_endpoint(
                asyncio.DatagramProtocol,
                (host, int(port)),
                username,
                password,
                ssl=context,
                transport="tcp" if args.tls else "udp",
            ),
            args.timeout,
        )
    except Exception as e:  # the refusal is the result, whatever its kind
        return {"allocated": False, "error": f"{type(e).__name__}: {e}"}
    relayed = transport.get_extra_info("sockname")
    transport.close()
    return {"allocated": True, "relayed": list(relayed)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("server", help="HOST:PORT of the TURN server")
    parser.add_argument("--secret-file", required=True)
    parser.add_argument("--expires-in", type=float, default=600)
    parser.add_argument("--tls", action="store_true", help="TURN over TLS (turns:)")
    parser.add_argument("--ca", help="CA certificate (PEM) to verify the server with")
    parser.add_argument("--timeout", type=float, default=10)
    args = parser.parse_args()
    result = asyncio.run(probe(args))
    print(json.dumps(result))
    sys.exit(0)


if __name__ == "__main__":
    main()
