"""index_put_/index_put's arguments as PyTorch 2.13 checks them (issue 12): its parser
takes only a tuple or list of tensors and a values tensor of x's dtype, ATen counts the
indices as given (a mask one) against x's dims, "(got N)" in its message, so a 0-d mask
on a 0-d tensor is refused (x[mask] = v takes it); torch.index_put/index_put_ exist; a
0-d mask's node is IndexPutBackward0 as any other index_put_'s. Before: a 0-d mask
computed, the messages lacked "(got N)", a bare tensor or ints as indices were taken,
values were cast, and torch.index_put did not exist."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import remotegrad as rg


def _outcome(T, call):
    try:
        out = call(T)
    except Exception as e:  # noqa: BLE001 (the same error is the expected outcome)
        return type(e).__name__, str(e)
    return out.tolist(), type(out.grad_fn).__name__ if out.grad_fn is not None else None


def _leaf(T, *shape):
    return T.zeros(*shape, requires_grad=True).clone()


CALLS = {
    "0d mask on 0d": lambda T: T.tensor(1.0).index_put_((T.tensor(True),), T.tensor(5.0)),
    "0d False on 0d": lambda T: T.tensor(1.0).index_put_([T.tensor(False)], T.tensor(5.0)),
    "0d index on 0d": lambda T: T.tensor(1.0).index_put_((T.tensor(0),), T.tensor(5.0), True),
    "too many": lambda T: T.zeros(3, 2).index_put_((T.tensor([0]),) * 3, T.tensor(5.0)),
    "mask and index too many": lambda T: T.zeros(3).index_put_(
        (T.tensor([True, False, True]), T.tensor([0])), T.tensor(5.0)),
    "mask sizes": lambda T: T.zeros(2, 3).index_put_((T.ones(3, dtype=T.bool),),
                                                     T.tensor(5.0)),
    "mask second dim": lambda T: T.zeros(2, 3).index_put_((T.ones(2, 2, dtype=T.bool),),
                                                          T.tensor(5.0)),
    "mask past the dims": lambda T: T.zeros(3).index_put_((T.ones(3, 2, dtype=T.bool),),
                                                          T.tensor(5.0)),
    "float index": lambda T: T.zeros(3).index_put_((T.tensor([1.0]),), T.tensor(5.0)),
    "tensor as indices": lambda T: T.zeros(3).index_put_(T.tensor([1]), T.tensor(5.0)),
    "tensor as indices, index_put": lambda T: T.zeros(3).index_put(T.tensor([1]),
                                                                   T.tensor(5.0)),
    "int as indices": lambda T: T.zeros(3).index_put_(1, T.tensor(5.0)),
    "keyword indices": lambda T: T.zeros(3).index_put_(indices=3, values=T.tensor(1.0)),
    "ints in the tuple": lambda T: T.zeros(3).index_put_((1,), T.tensor(5.0)),
    "None in the tuple": lambda T: T.zeros(3).index_put_((T.tensor([0]), None),
                                                         T.tensor(5.0)),
    "number values": lambda T: T.zeros(3).index_put_((T.tensor([1]),), 5.0),
    "values of another dtype": lambda T: T.zeros(3).index_put_((T.tensor([1]),),
                                                               T.tensor(5)),
    "accumulate an int": lambda T: T.zeros(3).index_put_((T.tensor([0]),), T.tensor(1.0), 1),
    "no values": lambda T: T.zeros(3).index_put_((T.tensor([0]),)),
    "0d mask on 1d": lambda T: _leaf(T, 3).index_put_((T.tensor(True),), T.tensor(5.0)),
    "0d False on 1d": lambda T: _leaf(T, 3).index_put_((T.tensor(False),), T.tensor(5.0)),
    "list of tensors": lambda T: _leaf(T, 3).index_put_([T.tensor([1])], T.tensor(5.0)),
    "function": lambda T: T.index_put(_leaf(T, 3), (T.tensor([1, 1]),), T.tensor(5.0)),
    "function accumulate": lambda T: T.index_put(
        T.zeros(3), indices=(T.tensor([1, 1]),), values=T.tensor(5.0), accumulate=True),
    "function in place": lambda T: T.index_put_(T.zeros(3), (T.tensor([2]),), T.tensor(5.0)),
    "function 0d mask on 0d": lambda T: T.index_put(T.tensor(1.0), (T.tensor(True),),
                                                    T.tensor(5.0)),
    "function tensor as indices": lambda T: T.index_put(T.zeros(3), T.tensor([1]),
                                                        T.tensor(5.0)),
    "function ints in the tuple": lambda T: T.index_put(T.zeros(3), (1,), T.tensor(1.0)),
    "function number values": lambda T: T.index_put(T.zeros(3), (T.tensor([0]),), 1.0),
    "function no arguments": lambda T: T.index_put(),
    "values that do not broadcast": lambda T: T.zeros(3, 2).index_put_(
        (T.tensor([1, 2]),), T.ones(3)),
    "values with leading ones": lambda T: T.zeros(3).index_put_((T.tensor([1, 2]),),
                                                              T.ones(1, 2), True),
    # one mask and one value, not accumulated: ATen's masked_fill_ of value.item()
    "a mask and a value of another dtype": lambda T: _leaf(T, 3).index_put_(
        (T.tensor([True, False, True]),), T.tensor(5)),
    "a mask and one value of another shape": lambda T: T.zeros(3, 2).index_put_(
        (T.tensor([True, False, True]),), T.ones(1, 1, 1, dtype=T.float64)),
    "a mask and a value of another dtype, accumulated": lambda T: T.zeros(3).index_put_(
        (T.tensor([True, False, True]),), T.tensor(5), True),
    "a uint8 mask filled": lambda T: T.zeros(3).index_put_(
        (T.tensor([1, 0, 1], dtype=T.uint8),), T.tensor(5.0)),
    "no indices, one value": lambda T: T.zeros(3).index_put_((), T.tensor(5.0)),
    "no indices into 0d": lambda T: T.tensor(1.0).index_put_((), T.tensor(5.0)),
    "no indices, accumulated": lambda T: T.zeros(3).index_put_((), T.tensor(5.0), True),
    # ATen checks the values' shape against the region before their dtype
    "values of another dtype and shape": lambda T: T.zeros(3).index_put_(
        (T.tensor([0, 1]),), T.ones(3, dtype=T.float64)),
    "values of another dtype and shape, accumulated": lambda T: T.zeros(3).index_put_(
        (T.tensor([0, 1]),), T.ones(3, dtype=T.float64), True),
    "a mask and values of another dtype and shape": lambda T: T.zeros(3).index_put_(
        (T.tensor([True, False, True]),), T.ones(3, dtype=T.float64)),
    # the parser checks input's type before the others', and a keyword given twice
    "function number input and indices": lambda T: T.index_put(2, 3, T.tensor(1.0)),
    "indices twice": lambda T: T.zeros(3).index_put_((T.tensor([0]),), T.tensor(1.0),
                                                     accumulate=True, indices=2),
}


def _set(x, key, value):
    x[key] = value
    return x


# x[key] and x[key] = v: a bare int or slice on a 0-d tensor is PyTorch's select/slice,
# with their messages (before: "too many indices"); values that do not broadcast to a
# region of tensor indices: PyTorch's index_put_ message (before: expand's), after the
# value's leading 1s are stripped (setitem's, not index_put_'s)
KEYS = {
    "get 0 of 0d": lambda T: T.tensor(1.0)[0],
    "get -1 of 0d": lambda T: T.tensor(1.0)[-1],
    "get slice of 0d": lambda T: T.tensor(1.0)[:],
    "get (0,) of 0d": lambda T: T.tensor(1.0)[(0,)],
    "get a negative step of 0d": lambda T: T.tensor(1.0)[::-1],
    "get a zero step of 0d": lambda T: T.tensor(1.0)[::0],
    "set a negative step of 0d": lambda T: _set(T.tensor(1.0), slice(None, None, -1), 2.0),
    "get True of 0d": lambda T: T.tensor(1.0)[True],
    "set 0 of 0d": lambda T: _set(T.tensor(1.0), 0, 2.0),
    "set 1 of 0d": lambda T: _set(T.tensor(1.0), 1, 2.0),
    "set slice of 0d": lambda T: _set(T.tensor(1.0), slice(1, 2), 2.0),
    "set values that do not broadcast": lambda T: _set(T.zeros(3), T.tensor([1, 2]),
                                                       T.ones(3)),
    "set values with leading ones": lambda T: _set(T.zeros(3, 2), (T.tensor([1, 2]),),
                                                   T.ones(1, 1, 3)),
    "set values with leading ones that fit": lambda T: _set(T.zeros(3), T.tensor([1, 2]),
                                                            T.ones(1, 2)),
    # a tensor or a number only (a NumPy integer too), refused before the key is read
    "set a list": lambda T: _set(T.zeros(3), slice(None), [1.0, 2.0, 3.0]),
    "set a list by tensor indices": lambda T: _set(T.zeros(3), T.tensor([0, 1]), [1.0, 2.0]),
    "set a list into an expanded tensor": lambda T: _set(T.zeros(1).expand(3), slice(0, 1),
                                                         [1.0]),
    "set an array": lambda T: _set(T.zeros(3, dtype=T.int64), 0, np.array([2])),
    "set None at a bad key": lambda T: _set(T.tensor(1.0), 0, None),
    "set a NumPy float32": lambda T: _set(T.zeros(3), 1, np.float32(2.0)),
    "set a NumPy int": lambda T: _set(T.zeros(3), 1, np.int64(2)),
}


@pytest.mark.parametrize("case", KEYS)
def test_indexing_errors_as_pytorch(case):
    assert _outcome(rg, KEYS[case]) == _outcome(torch, KEYS[case])


def _byte(T):
    return T.tensor([1, 0, 1], dtype=T.uint8)


# a uint8 index is PyTorch's deprecated bool mask (with its warning; before: read as the
# indices 1, 0, 1), except where one value is filled through it (masked_fill_ refuses it)
BYTES = {
    "get": lambda T: T.arange(3.0)[_byte(T)],
    "get with an int": lambda T: T.arange(6.0).reshape(3, 2)[_byte(T), 1],
    "set one number": lambda T: _set(T.zeros(3), _byte(T), 5.0),
    "set one value": lambda T: _set(T.zeros(3), _byte(T), T.tensor(5.0)),
    "set one number with an int": lambda T: _set(T.zeros(3, 2), (_byte(T), 1), 5.0),
    "set values": lambda T: _set(T.zeros(3), _byte(T), T.tensor([5.0, 6.0])),
    "index_put_ values": lambda T: T.zeros(3).index_put_((_byte(T),), T.tensor([5.0, 6.0])),
    "index_put_ accumulated": lambda T: T.zeros(3).index_put_((_byte(T),), T.tensor(5.0),
                                                              True),
}


@pytest.mark.parametrize("case", BYTES)
def test_a_byte_index_is_a_mask(case):
    def run(T):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            out = _outcome(T, BYTES[case])
        # (PyTorch's C++ warnings name their source file after the message)
        return out, [str(w.message).split(" (Triggered internally")[0] for w in seen]
    assert run(rg) == run(torch)


@pytest.mark.parametrize("case", CALLS)
def test_index_put_arguments_as_pytorch(case):
    assert _outcome(rg, CALLS[case]) == _outcome(torch, CALLS[case])


def test_a_masked_fill_of_another_dtype_has_gradients():
    for T in (rg, torch):
        x, v = T.zeros(3, requires_grad=True), T.tensor(2.0, dtype=T.float64,
                                                        requires_grad=True)
        y = x.clone().index_put_((T.tensor([True, False, True]),), v)
        gx, gv = T.autograd.grad((y * T.tensor([1.0, 2.0, 3.0])).sum(), [x, v])
        assert (y.tolist(), gx.tolist(), gv.item(), gv.dtype) == (
            [2.0, 0.0, 2.0], [0.0, 2.0, 0.0], 4.0, T.float64)


def test_index_put_function_is_not_in_place_and_has_gradients():
    for T in (rg, torch):
        leaf = T.zeros(3, requires_grad=True)
        v = T.tensor([2.0, 3.0], requires_grad=True)
        out = T.index_put(leaf, (T.tensor([0, 2]),), v, True)
        out.backward(T.tensor([1.0, 2.0, 3.0]))
        assert leaf.tolist() == [0.0, 0.0, 0.0] and out.tolist() == [2.0, 0.0, 3.0]
        assert leaf.grad.tolist() == [1.0, 2.0, 3.0] and v.grad.tolist() == [1.0, 3.0]


def _setitem(dtype, key, value, shape=()):
    def call(T):
        x = T.zeros(shape, dtype=getattr(T, dtype)) if shape else T.tensor(3, dtype=getattr(
            T, dtype))
        x[key] = value
        return x
    return call


# x[key] = number: PyTorch converts (and checks) the number before it reads the key, so an
# integer 0-d tensor given inf at [0] says "cannot be converted", not "invalid index"
# (found by the differential tester, --ops all --seed 31); before, the key was refused
# first on a 0-d tensor.
SETITEM_ORDER = {
    "inf into int64 at 0": _setitem("int64", 0, float("inf")),
    "nan into int64 at :": _setitem("int64", slice(None), float("nan")),
    "1e20 into int32 at 0": _setitem("int32", 0, 1e20),
    "1.0 into int64 at 0": _setitem("int64", 0, 1.0),
    "inf into int64 at 5 of (3,)": _setitem("int64", 5, float("inf"), (3,)),
    "7e4 into float16 at 1 of (3,)": _setitem("float16", 1, 7e4, (3,)),
}


@pytest.mark.parametrize("name", sorted(SETITEM_ORDER))
def test_setitem_converts_the_number_before_it_reads_the_key(name):
    call = SETITEM_ORDER[name]
    assert _outcome(rg, call) == _outcome(torch, call)
