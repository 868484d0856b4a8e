#!/usr/bin/env bash
# Build the virtual environments used by weightshare's compatibility tests.
#
#   tests/keras/setup_venvs.sh DIR            build DIR/keras3, DIR/tf and DIR/st (skip those built)
#   tests/keras/setup_venvs.sh --refreeze DIR rebuild all unpinned and rewrite the requirements files
#
#   DIR/keras3  Keras 3 + jax (CPU); scripts set KERAS_BACKEND=jax
#   DIR/tf      tensorflow-cpu + tf-keras: Keras 3 on the tensorflow backend (`import keras`,
#               KERAS_BACKEND=tensorflow) and Keras 2 (`TF_USE_LEGACY_KERAS=1`, `import tf_keras`)
#   DIR/st      torch (the CPU build, from the wheel in $TORCH_WHEELS, default /opt/wheels: plain
#               `torch` from the index is a multi-GB CUDA build) + safetensors + transformers, for
#               the safetensors fixtures (tests/safetensors/) and their round-trip tests
#
# Each venv installs exactly the versions frozen in tests/keras/requirements-<name>.txt, so CI gets
# what the fixtures were generated with. A venv counts as built when DIR/<name>/.weightshare-ok exists
# and holds the sha256 of its requirements file; otherwise it is (re)built from scratch.
# The interpreter is $PYTHON (default: python3). Nothing here is imported by weightshare.
set -euo pipefail

refreeze=0
if [[ "${1:-}" == "--refreeze" ]]; then refreeze=1; shift; fi
if [[ $# -ne 1 ]]; then
    echo "usage: $0 [--refreeze] DIR" >&2
    exit 2
fi
DIR=$1
PY=${PYTHON:-python3}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

# build NAME REQFILE PACKAGE...
build() {
    local name=$1 req=$2
    shift 2
    local venv="$DIR/$name" marker="$DIR/$name/.weightshare-ok" start=$SECONDS
    if [[ $refreeze -eq 0 && -f "$marker" && -f "$req" ]] \
        && [[ "$(cat "$marker")" == "$(sha256sum "$req" | cut -d' ' -f1)" ]]; then
        echo "[$name] up to date ($venv)"
        return 0
    fi
    echo "[$name] building $venv"
    rm -rf "$venv"
    "$PY" -m venv "$venv"
    if [[ $refreeze -eq 0 && -f "$req" ]]; then
        "$venv/bin/python" -m pip install --quiet --no-input ${PIP_EXTRA:-} -r "$req"
    else
        "$venv/bin/python" -m pip install --quiet --no-input ${PIP_EXTRA:-} "$@"
        {
            echo "# pip freeze of the '$name' venv (tests/keras/setup_venvs.sh --refreeze)"
            echo "# python $("$venv/bin/python" -c 'import platform; print(platform.python_version())')"
            "$venv/bin/python" -m pip freeze --exclude-editable | grep -v '^-e '
        } > "$req"
    fi
    sha256sum "$req" | cut -d' ' -f1 > "$marker"
    echo "[$name] built in $((SECONDS - start)) s"
}

build keras3 "$HERE/requirements-keras3.txt" keras jax jaxlib numpy h5py scikit-learn
build tf "$HERE/requirements-tf.txt" tensorflow-cpu tf-keras h5py scikit-learn
TORCH_WHEELS=${TORCH_WHEELS:-/opt/wheels}
PIP_EXTRA="--find-links $TORCH_WHEELS" build st "$HERE/requirements-st.txt" "torch==2.13.0+cpu" \
    safetensors transformers numpy
