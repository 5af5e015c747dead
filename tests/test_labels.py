"""Injective labels: different composed values give different folder names; ordinary values keep
the labels they always had. Expected labels are written literally."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from herexp import identity, jobs, labels
from tests.conftest import compose_cfg


@pytest.mark.parametrize("value,label", [
    (0.95, "0.95"), (0.05, "0.05"), (3e-4, "0.0003"), (0.0003, "0.0003"), (1e-5, "1e-05"), (1000.0, "1000"),
    (0.9, "0.9"), (0.90000001, "0.90000001"), (123456789.0, "123456789.0"), (0.1 + 0.2, "0.30000000000000004"),
    (1000, "1000"), (-3, "-3"), (True, "True"), (None, "None"),
    ([64, 64], "64-64"), ([0.5, 0.25], "0.5-0.25"), ([-1, 2], "1-2+62a10d"),
    ("future", "future"), ("FetchPush-v4", "FetchPush-v4"),
    ("a b", "a-b+7dbde9"), ("a/b", "a-b+3ec69c"), ("is_success", "is-success+c7842b"), ("1.5", "1.5+aa8f28"),
    ("true", "true+5ffe53"),
])
def test_value_labels(value: object, label: str) -> None:
    assert labels.value(value) == label


@pytest.mark.parametrize("overrides,folder", [
    (["algo.gamma=0.9", "seed=0"], "g0.9_seed0"),
    (["algo.gamma=0.90000001", "seed=0"], "g0.90000001_seed0"),
    (["algo.learning_rate=3e-4", "seed=0"], "learning_rate0.0003_seed0"),
    (["algo.learning_rate=0.0003", "seed=0"], "learning_rate0.0003_seed0"),  # one value, one folder
    (["entropy=fixed", "entropy.value=0.0500001"], "ent0.0500001"),
    (["entropy.init=0.1234567"], "entauto0.1234567"),
    (["entropy=fixed_005", "her.n_sampled_goal=4", "algo.learning_starts=1000", "algo.gamma=0.95", "seed=0"],
     "ent0.05_nsg4_ls1000_g0.95_seed0"),
    (["entropy=adaptive", "entropy.key=is_success"], "entadaptive_keyis-success+c7842b"),
    (["entropy=adaptive", "entropy.key=is-success"], "entadaptive_keyis-success"),
])
def test_folder_labels(overrides: list[str], folder: str) -> None:
    assert identity.job_dir_name(compose_cfg(overrides), overrides) == folder


def _near(x: float, digits: int) -> float:
    """A float close to ``x``: equal in its first ``digits`` significant digits, or the next float."""
    return math.nextafter(x, math.inf) if digits > 16 else x * (1 + 10.0 ** -digits)


@st.composite
def _near_floats(draw: st.DrawFn, low: float = -1e300, high: float = 1e300) -> tuple[float, float]:
    x = draw(st.floats(low, high, allow_nan=False, allow_infinity=False))
    return x, _near(x, draw(st.integers(6, 17)))


def _typed_pairs() -> st.SearchStrategy[tuple[object, object]]:
    kinds = [st.floats(allow_nan=False), st.integers(), st.text(max_size=12),
             st.lists(st.integers(-300, 300), min_size=1, max_size=4),
             st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=3)]
    return st.one_of(_near_floats(), *(st.tuples(k, k) for k in kinds))


@settings(max_examples=300, deadline=None)
@given(_typed_pairs())
def test_distinct_values_have_distinct_labels(pair: tuple[object, object]) -> None:
    a, b = pair
    if a == b:
        assert labels.value(a) == labels.value(b)
    else:
        assert labels.value(a) != labels.value(b)


_GAMMA = st.floats(1e-6, 1.0, allow_nan=False)
_JOB = st.fixed_dictionaries({
    "algo.gamma": _GAMMA,
    "algo.learning_rate": st.floats(1e-7, 1.0),
    "entropy.value": st.floats(1e-6, 10.0),
    "her.n_sampled_goal": st.integers(1, 16),
    "algo.net_arch": st.lists(st.integers(1, 512), min_size=1, max_size=3),
    "her.goal_selection_strategy": st.sampled_from(["future", "final", "episode"]),
    "seed": st.integers(0, 10_000),
})


def _folder(values: dict[str, object]) -> str:
    overrides = ["entropy=fixed"] + [f"{k}={v!r}".replace(" ", "").replace("'", "") for k, v in values.items()]
    return identity.job_dir_name(jobs.composer().job(overrides), overrides)


@st.composite
def _job_pairs(draw: st.DrawFn) -> tuple[dict[str, object], dict[str, object]]:
    """Two jobs of one grid: independent draws, or one value nudged in a late significant digit."""
    a = draw(_JOB)
    if draw(st.booleans()):
        return a, draw(_JOB)
    key = draw(st.sampled_from(["algo.gamma", "algo.learning_rate", "entropy.value"]))
    return a, {**a, key: _near(float(a[key]), draw(st.integers(6, 17)))}  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_job_pairs())
def test_distinct_jobs_have_distinct_folders(pair: tuple[dict[str, object], dict[str, object]]) -> None:
    """Two jobs of one grid (the same keys overridden) share a folder only when every value is equal."""
    a, b = pair
    if a == b:
        assert _folder(a) == _folder(b)
    else:
        assert _folder(a) != _folder(b)
