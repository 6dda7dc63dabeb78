"""Command line the runtime uses: ``describe`` lists node types as JSON; ``serve`` runs one node.

``python -m remotemedia_nodes describe`` is also the way to check, by hand, which node types an
installation provides.
"""

from __future__ import annotations

import argparse
import json
import sys

from .node import PluginError, load_plugins


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m remotemedia_nodes")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("describe", help="print every node type as JSON")
    serve = commands.add_parser("serve", help="run one node instance for the runtime (spawned by it)")
    serve.add_argument("--node-type", required=True, help="registered name, without 'python:'")
    serve.add_argument("--params", default="{}", help="params as a JSON object")
    serve.add_argument("--services", required=True, help="iceoryx2 service name prefix")
    serve.add_argument("--depth", type=int, default=8, help="queue depth of the input pipe")
    serve.add_argument("--spin-us", type=int, default=200, help="spin before sleeping on an event")
    args = parser.parse_args(argv)

    try:
        registry = load_plugins()
    except PluginError as e:
        print(e, file=sys.stderr)
        return 2
    if args.command == "describe":
        from .host import describe

        json.dump(describe(registry), sys.stdout)
        sys.stdout.write("\n")
        return 0

    node_type = registry.get(args.node_type)
    if node_type is None:
        print(f"no Python node type {args.node_type!r}; registered: {', '.join(sorted(registry)) or 'none'}", file=sys.stderr)
        return 2
    params = json.loads(args.params)
    if not isinstance(params, dict):
        print(f"--params must be a JSON object, got {args.params!r}", file=sys.stderr)
        return 2
    from .host import serve as serve_node

    return serve_node(node_type, params, args.services, args.depth, args.spin_us / 1e6)


if __name__ == "__main__":
    sys.exit(main())
