"""Edited copies of real fixtures, for tests that need what Keras itself does not write.

Shared by tests/_io/test_io_reader.py and tests/cli/test_cli.py (importable from any test:
tests/ is on sys.path through conftest.py).
"""

import io
import json
import shutil
import zipfile

import h5py


def edit_keras(src, dst, config=None, h5=None, members=None):
    """Copy a .keras zip, editing config.json (`config(dict)`) and/or the weights (`h5(File)`)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "config.json" and config is not None:
                cfg = json.loads(data)
                config(cfg)
                data = json.dumps(cfg).encode()
            if info.filename == "model.weights.h5" and h5 is not None:
                bio = io.BytesIO(data)
                with h5py.File(bio, "r+") as f:
                    h5(f)
                data = bio.getvalue()
            zout.writestr(info, data)
        for name, data in (members or {}).items():
            zout.writestr(name, data)
    return dst


def edit_legacy(src, dst, fn):
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        fn(f)
    return dst


def set_model_config(f, fn):
    cfg = json.loads(f.attrs["model_config"])
    fn(cfg)
    f.attrs["model_config"] = json.dumps(cfg)


def layer_cfg(cfg, name):
    return [e for e in cfg["config"]["layers"] if e["config"].get("name") == name][0]
