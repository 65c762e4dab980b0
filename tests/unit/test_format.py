"""remotegrad._format must print exactly like PyTorch; torch is the reference."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from remotegrad import _format
from remotegrad._format import format_scalar, set_printoptions, tensor_repr

FLOAT_DTYPES = ["float32", "float64", "float16"]
INT_DTYPES = ["int64", "int32", "int16", "int8", "uint8"]
SHAPES = [
    (),
    (0,),
    (0, 3),
    (4,),
    (3, 3),
    (2, 3, 4),
    (100,),
    (2000,),
    (40, 40),
    (3, 1000),
    (1, 1, 5),
]
SCALES = [1e-6, 1e-3, 1.0, 1e3, 1e9]


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _float_tensor(kind: str, shape: tuple[int, ...], dtype: torch.dtype, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(shape, generator=g, dtype=torch.float64)
    if kind == "intvals":
        base = (base * 50).round()
    elif kind == "special":
        # Sprinkle nan, +-inf and -0. among ordinary values.
        flat = base.reshape(-1)
        specials = [float("nan"), float("inf"), -0.0, float("-inf")]
        for j, i in enumerate(range(0, flat.numel(), 3)):
            flat[i] = specials[j % len(specials)]
        base = flat.reshape(shape)
    elif kind == "intspecial":
        base = (base * 10).round().reshape(-1)
        base[::4] = float("nan")
        base[1::5] = -0.0
        base = base.reshape(shape)
    else:
        base = base * float(kind)
    return base.to(dtype)


def _int_tensor(kind: str, shape: tuple[int, ...], dtype: torch.dtype, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=g).bool()
    info = torch.iinfo(dtype)
    lo, hi = (-5, 6) if kind == "small" else (info.min, info.max)
    lo = max(lo, info.min)
    return torch.randint(lo, hi, shape, generator=g, dtype=dtype)


def _cases() -> Iterator[pytest.param]:
    seed = 0
    for shape in SHAPES:
        for dt in FLOAT_DTYPES:
            for kind in [*map(str, SCALES), "intvals", "special", "intspecial"]:
                seed += 1
                yield pytest.param("f", kind, shape, dt, seed, id=f"{dt}-{kind}-{shape}")
        for dt in [*INT_DTYPES, "bool"]:
            for kind in ["small", "full"] if dt != "bool" else ["bool"]:
                seed += 1
                yield pytest.param("i", kind, shape, dt, seed, id=f"{dt}-{kind}-{shape}")


def _make(family: str, kind: str, shape: tuple[int, ...], dt: str, seed: int) -> torch.Tensor:
    dtype = getattr(torch, dt)
    maker = _float_tensor if family == "f" else _int_tensor
    return maker(kind, shape, dtype, seed)


def _check(t: torch.Tensor, suffixes: list[str] | None = None) -> None:
    got = tensor_repr(t.detach().numpy(), dtype=_name(t.dtype), suffixes=suffixes or [])
    assert got == repr(t)


@pytest.mark.parametrize(("family", "kind", "shape", "dt", "seed"), list(_cases()))
def test_repr_matches_torch(
    family: str, kind: str, shape: tuple[int, ...], dt: str, seed: int
) -> None:
    _check(_make(family, kind, shape, dt, seed))


@pytest.mark.parametrize(
    "values",
    [
        [0.0],
        [-0.0],
        [-0.0, 1.0],
        [float("nan")],
        [float("inf"), float("-inf")],
        [float("nan"), 1.5],
        [1e-30, 1e30],
        [1e300, 1e-300],
        [1e8, 1.0],
        [1.0001e8],
        [123456789.0],
        [0.0001],
        [0.00009],
        [1.0, 1000.0],
        [1.0, 1001.0],
        [1e-5, 0.0],
        [3.4e38, -3.4e38],
        [65504.0],
        [1e-45],
        [0.5, -2.0],
    ],
)
@pytest.mark.parametrize("dt", FLOAT_DTYPES)
def test_edge_values(values: list[float], dt: str) -> None:
    t = torch.tensor(values, dtype=getattr(torch, dt))  # may overflow to inf: fine
    _check(t)
    _check(t[0])
    _check(t.reshape(-1, 1))


@pytest.mark.parametrize("dt", [*FLOAT_DTYPES, *INT_DTYPES, "bool"])
@pytest.mark.parametrize("shape", [(0,), (0, 3), (2, 0), (1, 0, 2)])
def test_empty(dt: str, shape: tuple[int, ...]) -> None:
    _check(torch.zeros(shape, dtype=getattr(torch, dt)))


def _grad_suffix(t: torch.Tensor) -> list[str]:
    if t.grad_fn is not None:
        return [f"grad_fn=<{type(t.grad_fn).__name__}>"]
    return ["requires_grad=True"] if t.requires_grad else []


def _grad_tensors() -> Iterator[torch.Tensor]:
    yield torch.ones(3, requires_grad=True)
    yield torch.ones(2, 2, dtype=torch.float64, requires_grad=True) * 2
    yield torch.tensor(1.5, requires_grad=True)
    yield torch.tensor(2.0, dtype=torch.float64, requires_grad=True).exp()
    yield torch.zeros(0, 3, requires_grad=True)
    yield torch.zeros(0, dtype=torch.float64, requires_grad=True) + 1
    yield torch.randn(2000, requires_grad=True).sum(0, keepdim=True)
    yield torch.randn(40, 40, dtype=torch.float64, requires_grad=True) * 3
    # Lengths chosen so the suffix sometimes fits and sometimes must wrap.
    for n in range(1, 25):
        yield torch.arange(n, dtype=torch.float64).mul(1.25).requires_grad_() * 2
        yield torch.linspace(-1, 1, n, requires_grad=True) + 1
        yield torch.arange(n * 3, dtype=torch.float16).reshape(n, 3).requires_grad_()


@pytest.mark.parametrize("t", list(_grad_tensors()), ids=lambda t: f"{tuple(t.shape)}-{t.dtype}")
def test_suffixes_match_torch(t: torch.Tensor) -> None:
    _check(t, _grad_suffix(t))


SCALAR_VALUES = {
    "float32": [11.427954, -0.0, 1e-8, 3.0, float("nan"), float("inf"), -123456.789],
    "float64": [11.427954, -0.0, 1e-8, 3.0, float("nan"), float("-inf"), 1e300],
    "int64": [0, -7, 123456789, 2**62],
    "bool": [True, False],
}


@pytest.mark.parametrize("spec", ["", ".2f", "e", ">10"])
@pytest.mark.parametrize(
    ("dt", "value"), [(dt, v) for dt, vals in SCALAR_VALUES.items() for v in vals]
)
def test_format_scalar(dt: str, value: object, spec: str) -> None:
    t = torch.tensor(value, dtype=getattr(torch, dt))
    arr = t.numpy()
    expected = format(t, spec)
    assert format_scalar(arr, spec) == expected
    assert format_scalar(arr[()], spec) == expected  # numpy scalar works too


def test_format_scalar_rejects_non_scalar() -> None:
    with pytest.raises(ValueError):
        format_scalar(np.zeros(2), "")


@pytest.fixture
def restore_printoptions() -> Iterator[None]:
    yield
    torch.set_printoptions(profile="default")
    set_printoptions(profile="default")


@pytest.mark.parametrize(
    "opts",
    [
        {"precision": 2},
        {"precision": 0},
        {"precision": 8},
        {"sci_mode": True},
        {"sci_mode": False},
        {"linewidth": 40},
        {"threshold": 10, "edgeitems": 2},
        {"threshold": 5, "edgeitems": 0},
        {"profile": "short"},
        {"profile": "full"},
        {"profile": "short", "precision": 6},
    ],
    ids=str,
)
def test_printoptions_match_torch(opts: dict, restore_printoptions: None) -> None:
    torch.set_printoptions(**opts)
    set_printoptions(**opts)
    g = torch.Generator().manual_seed(7)
    tensors = [
        torch.randn(5, generator=g),
        torch.randn(4, 6, generator=g, dtype=torch.float64) * 1e5,
        torch.tensor([1e-6, 1.0, float("nan")]),
        torch.arange(12.0).reshape(3, 4),
        torch.arange(30).reshape(2, 3, 5),
        torch.randn(2000, generator=g),
        torch.tensor(3.14159265),
        torch.tensor([True, False, True]),
    ]
    for t in tensors:
        _check(t)
    assert _format.get_printoptions() == torch._tensor_str.get_printoptions()


def test_printoptions_reset_by_profile(restore_printoptions: None) -> None:
    set_printoptions(precision=2, sci_mode=True)
    set_printoptions(profile="default")
    assert (
        tensor_repr(np.array([1.123456], dtype=np.float32), dtype="float32") == "tensor([1.1235])"
    )
    with pytest.raises(ValueError):
        set_printoptions(profile="nope")


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([np.float16, np.float32, np.float64]).flatmap(
        lambda dt: hnp.arrays(
            dt,
            hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
            elements=st.floats(width=np.finfo(dt).bits, allow_nan=True, allow_infinity=True),
        )
    )
)
def test_random_float_arrays(arr: np.ndarray) -> None:
    t = torch.from_numpy(arr.copy())
    assert tensor_repr(arr, dtype=_name(t.dtype)) == repr(t)


@settings(max_examples=100, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=12),
        elements=st.sampled_from(
            [0.0, -0.0, 1.0, -3.0, 0.5, 1e-7, 2e9, float("nan"), float("inf")]
        ),
    )
)
def test_random_mixed_magnitudes(arr: np.ndarray) -> None:
    for dt in ("float32", "float64"):
        t = torch.from_numpy(arr.astype(dt))
        assert tensor_repr(t.numpy(), dtype=dt) == repr(t)


def test_module_does_not_import_torch() -> None:
    code = "import sys, remotegrad._format; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
