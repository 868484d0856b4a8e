"""Tests of weightshare.sparsity_schedule: TFMOT's polynomial-decay and constant schedules.

Formulas (TFMOT ``PolynomialDecay`` / ``ConstantSparsity``)::

    p        = clip((step - begin) / (end - begin), 0, 1)
    sparsity = final + (initial - final) * (1 - p) ** power
    prune at step  <=>  begin <= step <= end  and  (step - begin) % frequency == 0
"""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weightshare import sparsity_schedule

# =========================================================================== hand-computed values

# initial 0.5, final 0.8, steps [0, 100], power 3:  0.8 - 0.3 * (1 - step/100)**3
POLY = dict(initial=0.5, final=0.8, begin_step=0, end_step=100)


@pytest.mark.parametrize("step, expected", [
    (0, 0.5),
    (25, 0.8 - 0.3 * 0.421875),     # (3/4)^3 = 27/64
    (50, 0.8 - 0.3 * 0.125),        # (1/2)^3
    (75, 0.8 - 0.3 * 0.015625),     # (1/4)^3
    (90, 0.8 - 0.3 * 0.001),
    (100, 0.8),
    (1000, 0.8),                    # clipped after end_step
])
def test_polynomial_hand_computed(step, expected):
    assert sparsity_schedule("polynomial", **POLY)(step) == pytest.approx(expected, abs=1e-15)


def test_polynomial_before_begin_is_initial_and_offset_steps():
    s = sparsity_schedule("polynomial", initial=0.2, final=0.6, begin_step=1000, end_step=3000,
                          power=2, frequency=500)
    assert s(0) == pytest.approx(0.2) and s(999) == pytest.approx(0.2)
    assert s(2000) == pytest.approx(0.6 - 0.4 * 0.25)          # p = 1/2, (1/2)^2
    assert s(1500) == pytest.approx(0.6 - 0.4 * 0.5625)        # p = 1/4, (3/4)^2
    assert [st for st in range(0, 4001, 250) if s.should_prune(st)] == [1000, 1500, 2000, 2500, 3000]


def test_polynomial_power_one_is_linear_and_decreasing_targets_allowed():
    s = sparsity_schedule("polynomial", initial=0.0, final=0.5, begin_step=0, end_step=10, power=1)
    assert [s(i) for i in (0, 2, 5, 10)] == pytest.approx([0.0, 0.1, 0.25, 0.5])
    down = sparsity_schedule("polynomial", initial=0.9, final=0.5, begin_step=0, end_step=4, power=1)
    assert down(1) == pytest.approx(0.8)


def test_polynomial_should_prune_every_frequency_steps_within_range():
    s = sparsity_schedule("polynomial", **POLY, frequency=10)
    assert [st for st in range(0, 131) if s.should_prune(st)] == list(range(0, 101, 10))
    assert sparsity_schedule("polynomial", **POLY).should_prune(100)      # default frequency 100
    assert not sparsity_schedule("polynomial", **POLY).should_prune(50)


def test_polynomial_end_not_on_the_frequency_grid():
    s = sparsity_schedule("polynomial", initial=0.0, final=0.5, begin_step=3, end_step=20,
                          frequency=7)
    assert [st for st in range(40) if s.should_prune(st)] == [3, 10, 17]


def test_constant_schedule():
    c = sparsity_schedule("constant", target=0.9)
    assert c(0) == c(10**9) == 0.9
    assert [st for st in range(0, 350) if c.should_prune(st)] == [0, 100, 200, 300]
    later = sparsity_schedule("constant", target=0.5, begin_step=5, end_step=30, frequency=10)
    assert [st for st in range(60) if later.should_prune(st)] == [5, 15, 25]
    assert later(0) == 0.5                    # the sparsity is the target at every step


def test_schedule_attributes():
    s = sparsity_schedule("polynomial", **POLY)
    assert (s.kind, s.initial, s.final, s.begin_step, s.end_step, s.power, s.frequency) == \
        ("polynomial", 0.5, 0.8, 0, 100, 3.0, 100)
    c = sparsity_schedule("constant", target=0.25)
    assert (c.kind, c.final, c.begin_step, c.end_step, c.frequency) == ("constant", 0.25, 0, None, 100)


# =========================================================================== bad parameters

BAD = [
    (("linear",), {}, ValueError, "kind must be one of 'polynomial', 'constant'; got 'linear'"),
    (("polynomial",), dict(initial=0.1, final=0.5, begin_step=0), ValueError,
     "sparsity_schedule('polynomial') needs end_step"),
    (("polynomial",), dict(final=0.5, end_step=3), ValueError,
     "sparsity_schedule('polynomial') needs initial, begin_step"),
    (("polynomial",), dict(POLY, initial=1.0), ValueError, "initial must be in [0, 1); got initial=1.0"),
    (("polynomial",), dict(POLY, final=-0.5), ValueError, "final must be in [0, 1); got final=-0.5"),
    (("polynomial",), dict(POLY, end_step=0), ValueError,
     "end_step must be > begin_step; got begin_step=0, end_step=0"),
    (("polynomial",), dict(POLY, begin_step=-1), ValueError, "begin_step must be >= 0; got begin_step=-1"),
    (("polynomial",), dict(POLY, begin_step=1.5), TypeError, "begin_step must be an integer >= 0; got 1.5"),
    (("polynomial",), dict(POLY, power=0), ValueError, "power must be a finite number > 0; got power=0"),
    (("polynomial",), dict(POLY, power=float("inf")), ValueError, "power must be a finite number > 0"),
    (("polynomial",), dict(POLY, frequency=0), ValueError, "frequency must be >= 1; got frequency=0"),
    (("polynomial",), dict(POLY, target=0.5), ValueError, "target is for sparsity_schedule('constant')"),
    (("constant",), {}, ValueError, "sparsity_schedule('constant') needs target"),
    (("constant",), dict(target=1.0), ValueError, "target must be in [0, 1); got target=1.0"),
    (("constant",), dict(target=0.5, power=2), ValueError, "power is for sparsity_schedule('polynomial')"),
    (("constant",), dict(target=0.5, initial=0.1, final=0.2), ValueError,
     "initial, final are for sparsity_schedule('polynomial')"),
    (("constant",), dict(target=0.5, begin_step=10, end_step=5), ValueError,
     "end_step must be >= begin_step; got begin_step=10, end_step=5"),
    (("constant",), dict(target=0.5, frequency=True), TypeError, "frequency must be an integer >= 1"),
]


@pytest.mark.parametrize("args, kwargs, exc, match", BAD)
def test_schedule_rejects_bad_parameters(args, kwargs, exc, match):
    with pytest.raises(exc, match=re.escape(match)):
        sparsity_schedule(*args, **kwargs)


@pytest.mark.parametrize("step, exc, match", [
    (-1, ValueError, "step must be >= 0; got step=-1"),
    (1.0, TypeError, "step must be an integer >= 0; got 1.0 of type float"),
    ("3", TypeError, "step must be an integer >= 0; got '3'"),
])
def test_schedule_rejects_bad_steps(step, exc, match):
    s = sparsity_schedule("polynomial", **POLY)
    with pytest.raises(exc, match=re.escape(match)):
        s(step)
    with pytest.raises(exc, match=re.escape(match)):
        s.should_prune(step)


# =========================================================================== properties

sparsities = st.floats(0.0, 1.0, exclude_max=True)


@st.composite
def polynomial_schedules(draw):
    begin = draw(st.integers(0, 1000))
    return sparsity_schedule("polynomial", initial=draw(sparsities), final=draw(sparsities),
                             begin_step=begin, end_step=begin + draw(st.integers(1, 1000)),
                             power=draw(st.floats(0.1, 6.0)), frequency=draw(st.integers(1, 200)))


@given(s=polynomial_schedules(), a=st.integers(0, 3000), b=st.integers(0, 3000))
def test_polynomial_moves_monotonically_from_initial_to_final_hypo(s, a, b):
    lo, hi = sorted((a, b))
    if s.final >= s.initial:
        assert s(lo) <= s(hi) + 1e-15
    else:
        assert s(lo) >= s(hi) - 1e-15


@given(s=polynomial_schedules(), step=st.integers(0, 3000))
def test_polynomial_stays_between_initial_and_final_hypo(s, step):
    lo, hi = sorted((s.initial, s.final))
    assert lo - 1e-15 <= s(step) <= hi + 1e-15 and 0.0 <= s(step) < 1.0


@given(s=polynomial_schedules(), step=st.integers(0, 3000))
def test_should_prune_matches_the_tfmot_rule_hypo(s, step):
    expected = s.begin_step <= step <= s.end_step and (step - s.begin_step) % s.frequency == 0
    assert s.should_prune(step) == expected
