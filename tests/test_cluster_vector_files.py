"""Issue 21: vector palettization on files, ``cluster_file(..., cluster_dim=)`` and
``weightshare cluster --cluster-dim`` (vectors along each kernel's output-channel axis)."""

import numpy as np
import pytest

import weightshare
from weightshare.cli import main
from weightshare._kmeans._vector import to_vectors

DIGITS = "examples/digits.keras"


def _kernels(path):
    return {r.name: r.value for r in weightshare.read_weights(path) if r.kind == "kernel"}


def test_each_kernel_holds_at_most_k_vectors_along_its_output_axis(tmp_path):
    out = tmp_path / "v.keras"
    rows = weightshare.cluster_file(DIGITS, out, 8, cluster_dim=2, random_state=0)
    before, after = _kernels(DIGITS), _kernels(out)
    assert [r.tensor for r in rows] == sorted(after) and len(rows) == 3
    for name, v in after.items():
        assert v.shape == before[name].shape and v.dtype == before[name].dtype
        assert np.unique(to_vectors(v, -1, 2), axis=0).shape[0] <= 8      # output axis: last
    by_name = {r.tensor: r for r in rows}
    for name, v in after.items():      # the SSE reported is that of the tensor written
        assert by_name[name].sse == pytest.approx(float(((before[name] - v) ** 2).sum()))


def test_a_kernel_whose_output_channels_cluster_dim_does_not_divide_is_named(tmp_path):
    # digits' out/kernel has 10 output channels
    with pytest.raises(ValueError, match=r"out/kernel: cluster_dim=4 must divide the length of "
                                         r"axis 1 \(10\)"):
        weightshare.cluster_file(DIGITS, tmp_path / "o.keras", 8, cluster_dim=4)
    assert not (tmp_path / "o.keras").exists()


@pytest.mark.parametrize("kwargs, match", [
    (dict(per_channel=True), r"cluster_dim=2 does not combine with per_channel=True"),
    (dict(group_size=4), r"cluster_dim=2 does not combine with group_size=4"),
    (dict(lut_dtype="int8"), r"cluster_dim=2 does not combine with lut_dtype='int8'"),
    (dict(method="optimal"), r"method='optimal' has no exact solver for vectors"),
])
def test_cluster_file_rejects_what_vectors_do_not_combine_with(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        weightshare.cluster_file(DIGITS, tmp_path / "o.keras", 4, cluster_dim=2, **kwargs)
    assert not (tmp_path / "o.keras").exists()


def test_cli_passes_cluster_dim_through(tmp_path):
    cli, api = tmp_path / "cli.keras", tmp_path / "api.keras"
    assert main(["cluster", DIGITS, "-o", str(cli), "-k", "6", "--cluster-dim", "2",
                 "--seed", "1", "--quiet"]) == 0
    weightshare.cluster_file(DIGITS, api, 6, cluster_dim=2, random_state=1)
    got = _kernels(cli)
    for name, v in _kernels(api).items():
        assert np.array_equal(got[name], v)


def test_cli_rejects_a_cluster_dim_below_one(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["cluster", DIGITS, "-o", str(tmp_path / "o.keras"), "-k", "4", "--cluster-dim", "0"])
    assert exc.value.code == 2
    assert "--cluster-dim: expected an integer >= 1; got '0'" in capsys.readouterr().err
    assert not (tmp_path / "o.keras").exists()
