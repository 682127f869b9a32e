#!/usr/bin/env bash
# Installs the Jaeger v2 binary (the real client of tracegres's Jaeger remote
# storage, and a peer in the benchmarks) into the tracegres cache outside
# git, so CI on one machine builds it once (about 5-6 minutes on 2 cores).
# Prints the binary's path on stdout; progress goes to stderr.
#
#   JAEGER_BINARY_PATH="$(.ci/install-jaeger.sh)"
#
# Tag v1.76.0 of github.com/jaegertracing/jaeger is Jaeger 2.13.
set -euo pipefail

version=v1.76.0
bindir="${TRACEGRES_CACHE:-$HOME/.cache/tracegres}/bin"
binary="$bindir/jaeger-$version"

if [ -x "$binary" ]; then
  echo "$binary"
  exit 0
fi

. "$(dirname "$0")/find-go.sh"
require_go install-jaeger "Jaeger"

# `go install pkg@version` refuses the module's replace directives, so the
# command is built as a tool of a scratch module.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$bindir"
echo "install-jaeger: building github.com/jaegertracing/jaeger/cmd/jaeger@$version with $(go version)" >&2
(
  cd "$scratch"
  go mod init tracegres-jaeger-build >&2
  go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$version" >&2
  go build -o "$binary.tmp" github.com/jaegertracing/jaeger/cmd/jaeger >&2
)
mv "$binary.tmp" "$binary"
echo "$binary"
