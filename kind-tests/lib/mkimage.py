#!/usr/bin/env python3
"""Writes a one-layer container image as a docker-archive tarball, without Docker.

    mkimage.py ROOTFS NAME:TAG OUT.tar [--env K=V]... [--workdir DIR] -- ENTRYPOINT...

The layer holds ROOTFS as it is (files, directories, symlinks), owned by root, with mtime 0, so
the same inputs give the same image id. `ctr images import` (containerd) and `kind load
image-archive` both read this format: manifest.json, the config as <sha256>.json, and the
layer as <diff id>/layer.tar.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rootfs")
    parser.add_argument("name", help="NAME:TAG, e.g. localhost/remotemedia-grpc:0.1.0")
    parser.add_argument("out")
    parser.add_argument("--env", action="append", default=[])
    parser.add_argument("--workdir", default="/")
    parser.add_argument("entrypoint", nargs="+")
    args = parser.parse_args()
    if not os.path.isdir(args.rootfs):
        print(f"mkimage: {args.rootfs} is not a directory", file=sys.stderr)
        return 2
    if ":" not in args.name.rsplit("/", 1)[-1]:
        print(f"mkimage: {args.name} has no tag (NAME:TAG)", file=sys.stderr)
        return 2

    layer = layer_tar(args.rootfs)
    diff_id = hashlib.sha256(layer).hexdigest()
    env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", *args.env]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": args.entrypoint, "Env": env, "WorkingDir": args.workdir},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
            "history": [{"created_by": "kind-tests/lib/mkimage.py"}],
        },
        sort_keys=True,
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps(
        [{"Config": config_name, "RepoTags": [args.name], "Layers": [f"{diff_id}/layer.tar"]}]
    ).encode()

    tmp = args.out + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as out:
        for name, data in [
            (f"{diff_id}/layer.tar", layer),
            (config_name, config),
            ("manifest.json", manifest),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    os.replace(tmp, args.out)
    print(f"{args.name} -> {args.out} (layer {len(layer) >> 20} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
