#!/usr/bin/env bash
# Regenerate every real-Keras fixture and the manifest from scratch.
#
#   tests/keras/generate_all.sh [VENVS_DIR] [OUT_DIR]
#
# VENVS_DIR (default /work/venvs) holds the venvs made by tests/keras/setup_venvs.sh;
# OUT_DIR defaults to tests/fixtures/keras. Afterwards run tests/keras/verify_fixtures.py.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VENVS=${1:-/work/venvs}
OUT=${2:-$HERE/../fixtures/keras}
GEN=$HERE/generate_fixtures.py
mkdir -p "$OUT"
# Start clean: the manifest and the shared digits test split are rebuilt by the runs below.
rm -f "$OUT/manifest.json" "$OUT/digits_test.npz"

# run PRODUCER COMMAND...: the C++ start-up chatter of TensorFlow/XLA is filtered from stderr.
run() {
    local producer=$1 start=$SECONDS
    shift
    "$@" "$GEN" --producer "$producer" --out "$OUT" \
        2> >(grep -v -E '^(I|W|E)0000 |absl::InitializeLog' >&2)
    echo "== $producer done in $((SECONDS - start)) s" >&2
}
run k3 env KERAS_BACKEND=jax "$VENVS/keras3/bin/python"
run k3tf env KERAS_BACKEND=tensorflow "$VENVS/tf/bin/python"
run k2 env TF_USE_LEGACY_KERAS=1 "$VENVS/tf/bin/python"
