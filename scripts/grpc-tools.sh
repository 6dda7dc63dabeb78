#!/usr/bin/env bash
# Third-party gRPC clients the tests drive: grpcurl, built once from the Go module proxy into
# a versioned cache outside the repo. Prints grpcurl's path.
set -euo pipefail

GRPCURL_VERSION=v1.9.4
bin=${HOME}/.cache/remotemedia/go-bin-${GRPCURL_VERSION}
if [ ! -x "$bin/grpcurl" ]; then
  command -v go >/dev/null || { echo "go is needed to build grpcurl" >&2; exit 1; }
  GOBIN=$bin go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@${GRPCURL_VERSION}" >&2
fi
echo "$bin/grpcurl"
