# Sourced by the .ci/install-*.sh scripts, which build their binary with Go:
# `require_go SCRIPT WHAT` puts Go on PATH where it is installed without
# being there (the official tarball's place), or exits saying that building
# WHAT needs it.
require_go() {
  if ! command -v go >/dev/null 2>&1; then
    for dir in /usr/local/go/bin "$HOME/go/bin" "$HOME/.local/go/bin"; do
      if [ -x "$dir/go" ]; then
        PATH="$dir:$PATH"
        break
      fi
    done
  fi
  if ! command -v go >/dev/null 2>&1; then
    echo "$1: Go is needed to build $2 and was not found (looked on PATH and in /usr/local/go/bin)" >&2
    exit 1
  fi
}
