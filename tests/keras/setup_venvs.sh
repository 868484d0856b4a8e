#!/usr/bin/env bash
# Build the two Keras virtual environments used by weightshare's Keras tests.
#
#   tests/keras/setup_venvs.sh DIR            build DIR/keras3 and DIR/tf (skip those already built)
#   tests/keras/setup_venvs.sh --refreeze DIR rebuild both unpinned and rewrite the requirements files
#
#   DIR/keras3  Keras 3 + jax (CPU); scripts set KERAS_BACKEND=jax
#   DIR/tf      tensorflow-cpu + tf-keras: Keras 3 on the tensorflow backend (`import keras`,
#               KERAS_BACKEND=tensorflow) and Keras 2 (`TF_USE_LEGACY_KERAS=1`, `import tf_keras`)
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
        "$venv/bin/python" -m pip install --quiet --no-input -r "$req"
    else
        "$venv/bin/python" -m pip install --quiet --no-input "$@"
        {
            echo "# pip freeze of the '$name' Keras venv (tests/keras/setup_venvs.sh --refreeze)"
            echo "# python $("$venv/bin/python" -c 'import platform; print(platform.python_version())')"
            "$venv/bin/python" -m pip freeze --exclude-editable | grep -v '^-e '
        } > "$req"
    fi
    sha256sum "$req" | cut -d' ' -f1 > "$marker"
    echo "[$name] built in $((SECONDS - start)) s"
}

build keras3 "$HERE/requirements-keras3.txt" keras jax jaxlib numpy h5py scikit-learn
build tf "$HERE/requirements-tf.txt" tensorflow-cpu tf-keras h5py scikit-learn
