#!/usr/bin/env python3
"""Writes a container image as a docker-archive tarball, without Docker.

    mkimage.py ROOTFS NAME:TAG OUT.tar [--env K=V]... [--workdir DIR] -- ENTRYPOINT...
    mkimage.py ROOTFS NAME:TAG OUT.tar --base BASE.tar [--env K=V]... [-- ENTRYPOINT...]

The (top) layer holds ROOTFS as it is (files, directories, symlinks, `.wh.` whiteouts), owned
by root, with mtime 0, so the same inputs give the same image id. With --base, the image is
BASE.tar's layers plus this one, and inherits its entrypoint, env and working directory (what
`FROM` does); --env adds to or replaces the base's variables. `ctr images import` (containerd)
and `kind load image-archive` both read this format: manifest.json, the config as
<sha256>.json, and each layer as <diff id>/layer.tar.
"""

import argparse
import hashlib
import io
import json
import os
import sys
import tarfile


def layer_tar(rootfs: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(rootfs):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                path = os.path.join(dirpath, name)
                info = tar.gettarinfo(path, arcname=os.path.relpath(path, rootfs))
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = 0
                if info.isfile():
                    with open(path, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
    return buf.getvalue()


def read_base(path: str):
    """The base image's layers (name -> bytes, in order) and its config."""
    with tarfile.open(path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        if len(manifest) != 1:
            raise ValueError(f"{path}: holds {len(manifest)} images, expected one")
        config = json.load(tar.extractfile(manifest[0]["Config"]))
        layers = [(name, tar.extractfile(name).read()) for name in manifest[0]["Layers"]]
    return layers, config


def merge_env(base: list, extra: list) -> list:
    names = {e.split("=", 1)[0] for e in extra}
    return [e for e in base if e.split("=", 1)[0] not in names] + extra


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rootfs")
    parser.add_argument("name", help="NAME:TAG, e.g. localhost/remotemedia-grpc:0.1.0")
    parser.add_argument("out")
    parser.add_argument("--env", action="append", default=[])
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--base", help="a docker-archive this image adds a layer to")
    parser.add_argument("entrypoint", nargs="*")
    argv = sys.argv[1:]
    # Everything after "--" is the entrypoint, even when options come between it and the
    # positionals (argparse would not take a `--` there).
    entrypoint = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    args.entrypoint = args.entrypoint or entrypoint
    if not os.path.isdir(args.rootfs):
        print(f"mkimage: {args.rootfs} is not a directory", file=sys.stderr)
        return 2
    if ":" not in args.name.rsplit("/", 1)[-1]:
        print(f"mkimage: {args.name} has no tag (NAME:TAG)", file=sys.stderr)
        return 2

    if args.base:
        layers, base_config = read_base(args.base)
        base = base_config["config"]
        diff_ids = list(base_config["rootfs"]["diff_ids"])
        history = list(base_config.get("history", []))
    else:
        layers, base, diff_ids, history = [], {}, [], []
    entrypoint = args.entrypoint or base.get("Entrypoint")
    if not entrypoint:
        print("mkimage: no entrypoint given and none inherited from --base", file=sys.stderr)
        return 2

    layer = layer_tar(args.rootfs)
    diff_id = hashlib.sha256(layer).hexdigest()
    layers.append((f"{diff_id}/layer.tar", layer))
    env = merge_env(
        base.get("Env", ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]),
        args.env,
    )
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Entrypoint": entrypoint,
                "Env": env,
                "WorkingDir": args.workdir or base.get("WorkingDir", "/"),
            },
            "rootfs": {"type": "layers", "diff_ids": [*diff_ids, f"sha256:{diff_id}"]},
            "history": [*history, {"created_by": "kind-tests/lib/mkimage.py"}],
        },
        sort_keys=True,
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps(
        [{"Config": config_name, "RepoTags": [args.name], "Layers": [n for n, _ in layers]}]
    ).encode()

    tmp = args.out + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as out:
        for name, data in [*layers, (config_name, config), ("manifest.json", manifest)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    os.replace(tmp, args.out)
    total = sum(len(data) for _, data in layers)
    print(f"{args.name} -> {args.out} (top layer {len(layer) >> 20} MiB, {total >> 20} MiB in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
