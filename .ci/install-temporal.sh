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

# Go may be installed without being on PATH (the official tarball's place).
if ! command -v go >/dev/null 2>&1; then
  for dir in /usr/local/go/bin "$HOME/go/bin" "$HOME/.local/go/bin"; do
    if [ -x "$dir/go" ]; then
      PATH="$dir:$PATH"
      break
    fi
  done
fi
if ! command -v go >/dev/null 2>&1; then
  echo "install-temporal: Go is needed to build the Temporal CLI and was not found (looked on PATH and in /usr/local/go/bin)" >&2
  exit 1
fi

mkdir -p "$bindir"
echo "install-temporal: building github.com/temporalio/cli/cmd/temporal@$version with $(go version)" >&2
GOBIN="$bindir" go install "github.com/temporalio/cli/cmd/temporal@$version" >&2
"$binary" --version >&2
echo "$binary"
