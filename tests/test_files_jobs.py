"""cluster_file on several cores: ``jobs=`` and ``executor=`` (weightshare._base._parallel).

The promise: whatever runs the tensors (this process, a pool of processes, a thread
pool, a Dask cluster) and in whatever order they finish, the output file is identical
byte for byte to ``jobs=1`` and the rows are the same (but for their wall times).
"""

import concurrent.futures as cf
import os
import pathlib
import sys

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given

import weightshare
from weightshare._base import _parallel
from weightshare.errors import FileFormatError, TensorArgumentError

FIX = pathlib.Path(__file__).resolve().parent / "fixtures" / "keras"
ST = pathlib.Path(__file__).resolve().parent / "fixtures" / "safetensors"
ALL = sorted(p.name for p in FIX.iterdir() if p.suffix in (".keras", ".h5"))
_SUFFIXES = (".keras", ".weights.h5", ".h5", ".weights_only.h5")
_MODELS = sorted({n.split(".")[0] for n in ALL if "_rm_" not in n})
#: every model of the fixtures once (bfloat16, float16, pruned, RNN, attention, shared and
#: nested layers), from the producers and in the Keras formats in turn
FILES = [next(m + s for s in _SUFFIXES[i % 4:] + _SUFFIXES if m + s in ALL)
         for i, m in enumerate(sorted({m.split("_", 1)[1] for m in _MODELS}))
         for m in [next((p + "_" + m for p in ("k3tf", "k3", "k2")[i % 3:] + ("k3", "k2")
                         if p + "_" + m in _MODELS))]]


def _rows(rows):
    """The rows without their wall times."""
    return [r._replace(seconds=None) for r in rows]


def _out(tmp_path, name, tag):
    return str(tmp_path / f"{tag}-{name}")


@pytest.fixture
def every_process(monkeypatch):
    """A pool of 2 processes for every file, however small (the size rule switched off)."""
    monkeypatch.setattr(_parallel, "PARALLEL_MIN_ENTRIES", 0)


@pytest.mark.slow
def test_two_processes_write_the_same_bytes_as_one(tmp_path, every_process):
    """jobs=2 (a real process pool) over every Keras fixture: the same file, the same rows."""
    for name in FILES:
        src = FIX / name
        seeded = {"random_state": 3, "method": "lloyd", "init": "kmeans++"} \
            if len(name) % 2 else {}
        if True:
            one = weightshare.cluster_file(src, _out(tmp_path, name, "1"), 4, jobs=1, **seeded)
            two = weightshare.cluster_file(src, _out(tmp_path, name, "2"), 4, jobs=2, **seeded)
            assert pathlib.Path(_out(tmp_path, name, "1")).read_bytes() == \
                pathlib.Path(_out(tmp_path, name, "2")).read_bytes(), name
            assert _rows(one) == _rows(two), name


def test_long_tensors_give_the_same_rows_in_workers_with_one_blas_thread(tmp_path):
    """Tensors long enough that OpenBLAS would split a dot product over its threads: the
    workers run with one BLAS thread (``_one_blas_thread``), this process with its default,
    and the SSEs are still the same bits (``weightshare._kmeans._dot``)."""
    import h5py
    src = tmp_path / "long.weights.h5"
    rng = np.random.default_rng(5)
    with h5py.File(src, "w") as f:
        for i in range(3):
            f.create_dataset(f"layers/dense_{i}/vars/0",
                             data=rng.laplace(size=(700, 512)).astype(np.float32))
    assert 3 * 700 * 512 >= _parallel.PARALLEL_MIN_ENTRIES      # a real pool, by the rule
    one = weightshare.cluster_file(src, tmp_path / "one.weights.h5", 16, jobs=1)
    two = weightshare.cluster_file(src, tmp_path / "two.weights.h5", 16, jobs=2)
    assert _rows(one) == _rows(two)
    assert (tmp_path / "one.weights.h5").read_bytes() == (tmp_path / "two.weights.h5").read_bytes()


def test_a_thread_pool_is_accepted_and_gives_the_same_file(tmp_path):
    """A user's Executor is used whatever the file's size, and left running."""
    seen = []

    class Counting(cf.ThreadPoolExecutor):
        def submit(self, fn, *args, **kwargs):
            seen.append(getattr(args[0], "name", None))
            return super().submit(fn, *args, **kwargs)

    for name in ("k3_mixed.keras", "k2_cnn.h5", "k3_bf16.keras"):
        if not (FIX / name).exists():
            continue
        one = weightshare.cluster_file(FIX / name, _out(tmp_path, name, "1"), 8, jobs=1)
        with Counting(max_workers=3) as pool:
            many = weightshare.cluster_file(FIX / name, _out(tmp_path, name, "t"), 8,
                                            executor=pool, jobs=2)
            assert pool.submit(int, "7").result() == 7      # not shut down by the job
        assert pathlib.Path(_out(tmp_path, name, "1")).read_bytes() == \
            pathlib.Path(_out(tmp_path, name, "t")).read_bytes()
        assert _rows(one) == _rows(many)
    assert any(seen), "the executor was never used"


def test_safetensors_and_dry_run_through_an_executor(tmp_path):
    src = ST / "tiny_llama_bf16" / "model.safetensors"
    if not src.exists():
        src = next(ST.glob("**/*.safetensors"))
    one = weightshare.cluster_file(src, None, 4, dry_run=True, jobs=1)
    with cf.ThreadPoolExecutor(2) as pool:
        dry = weightshare.cluster_file(src, None, 4, dry_run=True, executor=pool)
        real = weightshare.cluster_file(src, tmp_path / src.name, 4, executor=pool)
    assert _rows(one) == _rows(dry) == _rows(real)
    assert len(one) > 0


def test_each_tensor_has_its_own_stream_from_the_seed():
    """A tensor's random init depends on the seed and its name, not on what else runs."""
    src = weightshare.examples.path("digits.keras")
    kw = dict(method="lloyd", init="random", dry_run=True)
    all3 = weightshare.cluster_file(src, None, 8, random_state=5, **kw)
    one = weightshare.cluster_file(src, None, 8, random_state=5, layers=["fc2"], **kw)
    assert _rows(one) == [r._replace(seconds=None) for r in all3 if r.layer == "fc2"]
    again = weightshare.cluster_file(src, None, 8, random_state=np.random.default_rng(5), **kw)
    assert _rows(again) == _rows(weightshare.cluster_file(
        src, None, 8, random_state=np.random.default_rng(5), **kw))
    s1, s2 = _parallel.tensor_seed(5, "fc1/kernel"), _parallel.tensor_seed(5, "fc2/kernel")
    assert s1 != s2 and s1 == _parallel.tensor_seed(5, "fc1/kernel")


@pytest.mark.parametrize("jobs, kind, text", [
    (0, ValueError, "jobs must be >= 1; got jobs=0"),
    (-2, ValueError, "jobs=-2"),
    (1.5, TypeError, "jobs must be an integer >= 1; got 1.5"),
    (True, TypeError, "jobs must be an integer"),
    ("2", TypeError, "jobs must be an integer"),
])
def test_a_bad_jobs_value_names_the_parameter(tmp_path, jobs, kind, text):
    with pytest.raises(kind, match=text):
        weightshare.cluster_file(weightshare.examples.path("digits.keras"), None, 8,
                                 dry_run=True, jobs=jobs)


def test_an_executor_without_submit_is_refused():
    with pytest.raises(TypeError, match="executor must be None or a concurrent.futures"):
        weightshare.cluster_file(weightshare.examples.path("digits.keras"), None, 8,
                                 dry_run=True, executor=object())


def test_a_worker_error_is_the_serial_one_line_error(tmp_path, every_process):
    """k=1 on a tensor holding zeros: the same TensorArgumentError from a worker process,
    and nothing written."""
    name = "k2_pruned.h5"
    errors = []
    for jobs in (1, 2):
        out = tmp_path / f"{jobs}-{name}"
        with pytest.raises(TensorArgumentError) as info:
            weightshare.cluster_file(FIX / name, out, 1, jobs=jobs)
        errors.append(str(info.value))
        assert not out.exists() and os.listdir(tmp_path) == []
    assert errors[0] == errors[1] and "\n" not in errors[0]


def test_nan_in_a_worker_is_the_files_fault(tmp_path):
    """NaN in a tensor: FileFormatError naming the file and dataset, through an executor."""
    src = tmp_path / "nan.npz"
    np.savez(src, a=np.ones((64, 64), np.float32), b=np.full((8, 8), np.nan, np.float32))
    got = []
    for kw in ({"jobs": 1}, {"executor": cf.ThreadPoolExecutor(2)}):
        with pytest.raises(FileFormatError) as info:
            weightshare.cluster_file(src, tmp_path / "out.npz", 4, roles="all", **kw)
        got.append(str(info.value))
    assert got[0] == got[1] and "nan.npz" in got[0]
    assert not (tmp_path / "out.npz").exists()


def test_small_workloads_stay_in_this_process():
    """The documented rule: a pool only for >= 2 tensors and >= 2**20 entries, jobs > 1."""
    assert not _parallel.use_processes(2, [1 << 19, (1 << 19) - 1])
    assert _parallel.use_processes(2, [1 << 19, 1 << 19])
    assert not _parallel.use_processes(2, [1 << 24])
    assert not _parallel.use_processes(1, [1 << 20] * 4)


def test_the_window_is_bounded_and_results_come_in_any_asked_order():
    """Never more than `window` keys or `budget` bytes in flight (one key always allowed);
    a key asked out of the predicted order is computed all the same."""
    inflight, peak = set(), [0, 0]

    class Recorder(cf.ThreadPoolExecutor):
        def submit(self, fn, *args):
            inflight.add(args[0])
            peak[0] = max(peak[0], len(inflight))
            return super().submit(fn, *args)

    sizes = {0: 10, 1: 10, 2: 100, 3: 10, 4: 10, 5: 10}

    def size_of(k):
        return sizes[k]

    with Recorder(4) as pool:
        ahead = _parallel.Lookahead(lambda k: k * k, list(sizes), lambda k: (k,), size_of,
                                    pool, window=3, budget=30)
        for key in (0, 1, 2, 4, 3, 5):            # 4 before 3: not the predicted order
            assert ahead.result(key, key) == key * key
            inflight.discard(key)
            assert len(ahead.flight) <= 3 and (ahead.bytes <= 30 or len(ahead.flight) == 1)
        ahead.close()
    assert peak[0] <= 4


@pytest.mark.slow
def test_a_dask_local_cluster_runs_the_tensors(tmp_path):
    """dask.distributed's executor (client.get_executor()) over worker processes.

    Skipped when dask is not installed, except in CI (WEIGHTSHARE_REQUIRE_DASK=1, set by
    .ci/run), where it must run."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        if os.environ.get("WEIGHTSHARE_REQUIRE_DASK") == "1":
            pytest.fail("dask.distributed is not importable but WEIGHTSHARE_REQUIRE_DASK=1")
        pytest.skip("dask.distributed is not installed (pip install 'weightshare[dask]')")
    src = FIX / "k3_mixed.keras" if (FIX / "k3_mixed.keras").exists() else FIX / FILES[0]
    one = weightshare.cluster_file(src, tmp_path / ("1" + src.name), 8, jobs=1)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      worker_dashboard_address=None) as cluster, Client(cluster) as client:
        rows = weightshare.cluster_file(src, tmp_path / ("d" + src.name), 8,
                                        executor=client.get_executor())
        ran_on = client.run(lambda: "weightshare" in sys.modules)
    assert (tmp_path / ("1" + src.name)).read_bytes() == (tmp_path / ("d" + src.name)).read_bytes()
    assert _rows(one) == _rows(rows)
    assert any(ran_on.values()), "no Dask worker imported weightshare: nothing ran there"


@given(hnp.arrays(st.sampled_from([np.float16, np.float32, np.float64]), st.integers(1, 300),
                  elements=st.sampled_from([0.0, -0.0, 1.0, -1.5, 2.25, 1e-3, 7.0, 65504.0])
                  | st.floats(-4, 4, width=16)),
       st.integers(2, 9), st.booleans())
def test_the_solvers_distinct_count_is_np_unique(x, k, keep_zeros):
    """distinct_before of cluster_file comes from ClusterResult.n_distinct: np.unique's count."""
    res = weightshare.cluster(x, k, keep_zeros=keep_zeros)
    assert res.n_distinct == np.unique(x.astype(np.float64)).size
