#!/usr/bin/env bash
# Installs the Temporal CLI (its dev server runs the Temporal tests) into the
# tracegres cache outside git, so CI on one machine builds it once.
# Prints the binary's path on stdout; progress goes to stderr.
#
#   TEMPORAL_CLI_PATH="$(.ci/install-temporal.sh)"
#
# v1.5.1 is the newest tag `go install` can build: later tags' go.mod carry a
# `replace` directive, which `go install pkg@version` refuses.
set -euo pipefail

version=v1.5.1
bindir="${TRACEGRES_CACHE:-$HOME/.cache/tracegres}/bin"
binary="$bindir/temporal"

if [ -x "$binary" ]; then
  echo "$binary"
  exit 0
fi

. "$(dirname "$0")/find-go.sh"
require_go install-temporal "the Temporal CLI"

mkdir -p "$bindir"
echo "install-temporal: building github.com/temporalio/cli/cmd/temporal@$version with $(go version)" >&2
GOBIN="$bindir" go install "github.com/temporalio/cli/cmd/temporal@$version" >&2
"$binary" --version >&2
echo "$binary"
