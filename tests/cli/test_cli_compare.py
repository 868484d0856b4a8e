"""``weightshare compare``: the bundled digits model against a clustered copy, JSON, errors."""

import json
import os

import numpy as np
import pytest

import weightshare
from weightshare.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIGITS = os.path.join(ROOT, "examples", "digits.keras")
TEST = os.path.join(ROOT, "examples", "digits_test.npz")
FIX = os.path.join(ROOT, "tests", "fixtures", "keras")


@pytest.fixture(scope="module")
def clustered(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("cmp") / "digits-k4.keras")
    weightshare.cluster_file(DIGITS, out, 4)
    return out


def test_table_with_labels(clustered, capsys):
    assert main(["compare", DIGITS, clustered, "--inputs", TEST, "--labels", TEST]) == 0
    out = dict(line.split(":", 1) for line in capsys.readouterr().out.splitlines())
    out = {k.strip(): v.strip() for k, v in out.items()}
    assert out["predictions"].startswith("360 ")
    assert out["accuracy original"] == "0.9750"          # the bundled model's test accuracy
    assert float(out["top-1 agreement"].split()[0]) > 0.8


def test_json_equals_the_api(clustered, capsys):
    assert main(["compare", DIGITS, clustered, "--inputs", TEST, "--labels", TEST, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    test = np.load(TEST)
    want = weightshare.compare_models(DIGITS, clustered, test["X_test"], labels=test["y_test"])
    assert got == json.loads(json.dumps(dict(want._asdict(), output_shape=list(want.output_shape))))


def test_a_model_against_itself(capsys):
    assert main(["compare", DIGITS, DIGITS, "--inputs", TEST, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["top1_agreement"] == 1.0 and got["max_abs_diff"] == 0.0
    assert got["accuracy_original"] is None


def test_weights_only_file_borrows_the_other_architecture(capsys):
    io = os.path.join(FIX, "k3_cnn_io.npz")
    assert main(["compare", os.path.join(FIX, "k3_cnn.keras"), os.path.join(FIX, "k3_cnn.weights.h5"),
                 "--inputs", io, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["max_abs_diff"] == 0.0


@pytest.mark.parametrize("argv, match", [
    (["{digits}", "{digits}", "--inputs", "missing.npy"], "No such file"),
    (["{fix}/k3_mlp.weights.h5", "{fix}/k3_cnn.weights.h5", "--inputs", "{test}"],
     "weights-only file holds no architecture"),
    (["{fix}/k3_rnn.keras", "{fix}/k3_rnn.keras", "--inputs", "{test}"],   # checked before the run
     r"inputs must have shape \(batch, 6, 4\) .*; got \(360, 64\)"),
    (["{digits}", "{digits}", "--inputs", "{test}", "--labels", "{fix}/k3_mlp_io.npz"],
     "labels must have shape"),
    (["{digits}", "{fix}/k2_mlp.weights.h5", "--inputs", "{test}"], "stores no layer names"),
])
def test_errors_are_one_line_and_exit_2(argv, match, capsys):
    argv = ["compare"] + [a.format(digits=DIGITS, test=TEST, fix=FIX) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("weightshare compare: error:")
    assert __import__("re").search(match, err), err


def test_unsupported_layer_is_named(tmp_path, capsys):
    import zipfile
    src = os.path.join(FIX, "k3_mlp.keras")
    bad = tmp_path / "lambda.keras"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(bad, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                cfg = json.loads(data)
                cfg["config"]["layers"].append({"class_name": "Lambda", "config": {"name": "f"}})
                data = json.dumps(cfg).encode()
            zout.writestr(item, data)
    io = os.path.join(FIX, "k3_mlp_io.npz")
    assert main(["compare", src, str(bad), "--inputs", io]) == 2
    assert "does not support 1 layer(s) of this model: f (Lambda)" in capsys.readouterr().err
