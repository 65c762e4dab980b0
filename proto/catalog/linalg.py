"""Linear algebra: matmul (1-D, 2-D and batched, with batch broadcasting), mm, bmm, dot,
outer and einsum. PyTorch does not promote here: both operands must share a dtype."""

from __future__ import annotations

from . import _batching as _batch
from ._registry import REQUIRED, define
from ._samples import F, I, S
from ._types import Meta, OpError, broadcast_shapes, numel, promote_types, torch_dtype_name


# c10's C++ names of the dtypes, in "expected m1 and m2 to have the same dtype" messages
_CPP = {"float32": "float", "float64": "double", "float16": "c10::Half",
        "bfloat16": "c10::BFloat16", "int64": "long int", "int32": "int", "int16": "short int",
        "int8": "signed char", "uint8": "unsigned char", "bool": "bool"}


def mm_dtype_error(a: str, b: str) -> OpError:
    return OpError("expected m1 and m2 to have the same dtype, but got: "
                   f"{_CPP.get(a, a)} != {_CPP.get(b, b)}")


def _same_dtype(a: Meta, b: Meta) -> str:
    """PyTorch does not promote: the message is that of the kernel matmul picks."""
    if a.dtype == b.dtype:
        return a.dtype
    na, nb = torch_dtype_name(a.dtype), torch_dtype_name(b.dtype)
    if len(a.shape) == 1 and len(b.shape) == 1:
        raise OpError(f"dot : expected both vectors to have same dtype, but found {na} and {nb}")
    if len(b.shape) == 1:  # a of 2 or more dims: matmul folds a's batch into mv's rows
        raise OpError(f"addmv input tensors must have the same dtype, but got {nb}, {na}, "
                      f"and {nb}")
    if len(b.shape) >= 3:
        # bmm's kernel is picked by a's dtype before the dtypes are compared: a bool a
        # (with something to multiply) is refused for its dtype first
        if a.dtype == "bool" and numel(a.shape) and numel(b.shape):
            _no_bool("bmm")
        raise OpError(f"expected scalar type {na} but found {nb}")
    raise mm_dtype_error(a.dtype, b.dtype)


def _mat_error(a, b):
    ra = f"{a[-2] if len(a) > 1 else 1}x{a[-1]}"
    rb = f"{b[-2]}x{b[-1]}" if len(b) > 1 else f"{b[0]}x1"
    return OpError(f"mat1 and mat2 shapes cannot be multiplied ({ra} and {rb})")


def _infer_matmul(metas):
    a, b = metas
    dtype = _same_dtype(a, b)
    sa, sb = a.shape, b.shape
    if not sa or not sb:
        raise OpError("both arguments to matmul need to be at least 1D, but they are "
                      f"{len(sa)}D and {len(sb)}D")
    if len(sa) == 1 and len(sb) == 1:
        if sa != sb:
            raise OpError(f"inconsistent tensor size, expected tensor [{sa[0]}] and src "
                          f"[{sb[0]}] to have the same number of elements, but got {sa[0]} "
                          f"and {sb[0]} elements respectively")
        if dtype == "bool":
            _no_bool("dot")
        return Meta((), dtype)
    k_b = sb[0] if len(sb) == 1 else sb[-2]
    if sa[-1] != k_b:
        raise _mat_error(sa, sb)
    batch = broadcast_shapes(sa[:-2], sb[:-2])
    rows = (sa[-2],) if len(sa) > 1 else ()
    cols = (sb[-1],) if len(sb) > 1 else ()
    shape = batch + rows + cols
    # PyTorch has no bool kernel (the message names the one it picked), but with nothing
    # to multiply (an empty result, or no inner dim: all False) it runs none
    if dtype == "bool" and numel(shape) and k_b:
        _no_bool({1: "addmv_impl_cpu", 2: "addmm_impl_cpu_"}.get(len(sb), "bmm"))
    return Meta(shape, dtype)


def _no_bool(kernel: str) -> None:
    raise OpError(f'"{kernel}" not implemented for \'Bool\'')


def _mT(x):
    return x.transpose(dim0=-1, dim1=-2)


def _matmul_a(g, a, b, out):
    if a.ndim == 1 and b.ndim == 1:
        return g * b
    if a.ndim == 1:      # (k,) @ (..., k, n): treat a as (1, k); the engine sums batch dims
        return g.unsqueeze(dim=-2).matmul(_mT(b))
    if b.ndim == 1 and a.ndim > 2:
        # PyTorch folds (..., m, k) @ (k,) into one mv over a viewed as (rows, k): the
        # outer product of g's rows with b, viewed back (its gradient ends ViewBackward0)
        rows = numel(g.shape)
        return (g.reshape(shape=(rows, 1)) * b).reshape(shape=a.shape)
    if b.ndim == 1:      # (m, k) @ (k,): treat b as (k, 1)
        return g.unsqueeze(dim=-1).matmul(b.unsqueeze(dim=0))
    return g.matmul(_mT(b))


def _matmul_b(g, a, b, out):
    if a.ndim == 1 and b.ndim == 1:
        return g * a
    if a.ndim == 1:
        return a.unsqueeze(dim=-1).matmul(g.unsqueeze(dim=-2))
    if b.ndim == 1:
        return _mT(a).matmul(g.unsqueeze(dim=-1)).squeeze(dim=-1)
    return _mT(a).matmul(g)


define("matmul",
       batch=_batch.matmul,
       nin=2, infer=_infer_matmul, forward=lambda xp, a, b: xp.matmul(a, b),
       vjp=(_matmul_a, _matmul_b), fresh=True,
       samples=(S(F(3, 4), F(4, 5)), S(F(4), F(4)), S(F(4), F(4, 5)), S(F(3, 4), F(4)),
                S(F(2, 3, 4), F(4, 5)), S(F(2, 1, 3, 4), F(5, 4, 2)), S(F(4), F(2, 4, 3)),
                S(F(2, 3, 4), F(4)), S(F(0, 4), F(4, 3)), S(F(3, 0), F(0, 2))))


def _rank_message(name: str, ra: int, rb: int) -> str:
    """PyTorch's message for an operand of mm/bmm/dot/outer of the wrong rank."""
    if name == "dot":
        return f"1D tensors expected, but got {ra}D and {rb}D tensors"
    if name == "outer":
        bad, r = ("self", ra) if ra != 1 else ("vec2", rb)
        return f"outer: Expected 1-D argument {bad}, but got {r}-D"
    want = 2 if name == "mm" else 3
    first, second = ("self", "mat2") if name == "mm" else ("batch1", "batch2")
    what = "a matrix" if name == "mm" else "a 3D tensor"
    return f"{first if ra != want else second} must be {what}"


def _infer_fixed(name, nd_a, nd_b):
    def infer(metas):
        a, b = metas
        if len(a.shape) != nd_a or len(b.shape) != nd_b:
            raise OpError(_rank_message(name, len(a.shape), len(b.shape)))
        if name == "bmm" and a.shape[0] != b.shape[0]:
            raise OpError(f"Expected size for first two dimensions of batch2 tensor to be: "
                          f"[{a.shape[0]}, {a.shape[2]}] but got: [{b.shape[0]}, {b.shape[1]}].")
        if name == "outer":  # PyTorch's is a broadcast mul: its dtypes promote
            return Meta(a.shape + b.shape, promote_types(a.dtype, b.dtype))
        return _infer_matmul(metas)
    return infer


define("mm",
       batch=_batch.matmul,
       nin=2, infer=_infer_fixed("mm", 2, 2), forward=lambda xp, a, b: xp.matmul(a, b),
       vjp=(lambda g, a, b, out: g.mm(b.transpose(dim0=0, dim1=1)),
            lambda g, a, b, out: a.transpose(dim0=0, dim1=1).mm(g)), fresh=True,
       samples=(S(F(3, 4), F(4, 5)), S(F(0, 4), F(4, 2)), S(F(1, 1), F(1, 3))))
define("bmm",
       batch=_batch.matmul,
       nin=2, infer=_infer_fixed("bmm", 3, 3), forward=lambda xp, a, b: xp.matmul(a, b),
       vjp=(lambda g, a, b, out: g.bmm(b.transpose(dim0=1, dim1=2)),
            lambda g, a, b, out: a.transpose(dim0=1, dim1=2).bmm(g)), fresh=True,
       samples=(S(F(2, 3, 4), F(2, 4, 5)), S(F(0, 3, 4), F(0, 4, 2))))
define("dot",
       batch=_batch.matmul,
       nin=2, infer=_infer_fixed("dot", 1, 1), forward=lambda xp, a, b: xp.dot(a, b),
       vjp=(lambda g, a, b, out: g * b, lambda g, a, b, out: g * a),
       samples=(S(F(4), F(4)), S(F(0), F(0))))
def _like(v, g):
    """v in g's dtype (an operand that was promoted in the forward)."""
    return v if v.dtype == g.dtype else v.cast(dtype=g.dtype)


define("outer", batch=_batch.outer, nin=2, infer=_infer_fixed("outer", 1, 1),
       forward=lambda xp, a, b: xp.outer(a, b),
       vjp=(lambda g, a, b, out: g.matmul(_like(b, g)),
            lambda g, a, b, out: _like(a, g).matmul(g)), promote=True,
       samples=(S(F(3), F(4)), S(F(0), F(2)), S(F(3), I((2,), 5))))


# --- einsum -------------------------------------------------------------------------------
def parse_einsum(equation: str, ndims: list[int]) -> tuple[list[str], str]:
    """Operand and output subscripts, letters only: an ellipsis becomes fresh capital
    letters, aligned from the right across operands (its dims broadcast). Implicit output:
    the ellipsis dims, then the letters seen once, sorted (numpy's and PyTorch's rule)."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    subs = lhs.split(",")
    if len(subs) != len(ndims):
        raise OpError("einsum(): more operands were provided than specified in the equation"
                      if len(ndims) > len(subs) else
                      "einsum(): fewer operands were provided than specified in the equation")
    for part in subs + [rhs]:
        body = part.replace("...", "", 1)
        if not (body.isalpha() or body == "") or "." in body:
            raise OpError(f"einsum(): invalid subscript given in equation {equation!r}")
    spare = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in eq]
    lengths = [n - (len(sub) - 3) if "..." in sub else 0 for sub, n in zip(subs, ndims)]
    if any(n < 0 for n in lengths):
        raise OpError("einsum(): the number of subscripts in the equation is more than the "
                      "number of dimensions of an operand")
    ell = "".join(spare[:max(lengths, default=0)])
    subs = [sub.replace("...", ell[len(ell) - k:] if k else "") for sub, k in zip(subs, lengths)]
    if arrow:
        rhs = rhs.replace("...", ell)
    else:
        letters = "".join(subs)
        rhs = ell + "".join(sorted(c for c in set(letters) - set(ell)
                                   if letters.count(c) == 1))
    return subs, rhs


def _infer_einsum(metas, equation):
    subs, rhs = parse_einsum(equation, [len(m.shape) for m in metas])
    sizes: dict[str, int] = {}
    for i, (s, m) in enumerate(zip(subs, metas)):
        if len(s) != len(m.shape):
            raise OpError(f"einsum(): the number of subscripts in the equation ({len(s)}) does "
                          f"not match the number of dimensions ({len(m.shape)}) for operand "
                          f"{i} and no ellipsis was given")
        for c, n in zip(s, m.shape):
            if sizes.setdefault(c, n) != n and 1 not in (n, sizes[c]):
                raise OpError(f"einsum(): subscript {c} has size {n} for operand {i} which does "
                              f"not broadcast with previously seen size {sizes[c]}")
            sizes[c] = max(sizes[c], n) if 0 not in (n, sizes[c]) else 0
    for c in rhs:
        if c not in sizes:
            raise OpError(f"einsum(): output subscript {c} does not appear in the equation "
                          "for any input operand")
    dtype = metas[0].dtype
    for m in metas[1:]:
        dtype = _same_dtype(Meta((), dtype), m)
    return Meta(tuple(sizes[c] for c in rhs), dtype)


def _einsum_vjp(g, *ops, out, index, equation):
    subs, rhs = parse_einsum(equation, [o.ndim for o in ops])
    mine = subs[index]
    if len(set(mine)) != len(mine):
        return _einsum_diagonal_vjp(g, ops, index, subs, rhs)
    others = [s for j, s in enumerate(subs) if j != index]
    seen = set(rhs).union(*others)
    kept_letters = "".join(c for c in mine if c in seen)
    eq = ",".join([rhs, *others]) + "->" + kept_letters
    res = g.einsum(*(o for j, o in enumerate(ops) if j != index), equation=eq)
    # Letters only this operand has were summed out: the gradient is constant along them
    # (size 1 here, expanded by the engine); letters it broadcast come back summed.
    size = dict(zip(kept_letters, res.shape))
    return res.reshape(shape=tuple(size.get(c, 1) for c in mine))


def _einsum_diagonal_vjp(g, ops, index, subs, rhs):
    """An operand with one repeated subscript ("ii->", "iji->j") is read on a diagonal:
    its gradient is the reduced gradient written onto that diagonal (index_backward with
    an arange at each repeated position), zero elsewhere."""
    mine, x = subs[index], ops[index]
    repeated = [c for c in dict.fromkeys(mine) if mine.count(c) > 1]
    if len(repeated) > 1:
        raise OpError("einsum: derivative with more than one repeated subscript in one "
                      "operand is not implemented")
    c = repeated[0]
    where = [k for k, d in enumerate(mine) if d == c]
    rest = "".join(d for d in mine if d != c)
    # x[ar, ..., ar] puts the diagonal dim in place if its positions are adjacent, else first.
    adjacent = where == list(range(where[0], where[-1] + 1))
    diag = (rest[:where[0]] + c + rest[where[0]:]) if adjacent else c + rest
    others = [s for j, s in enumerate(subs) if j != index]
    seen = set(rhs).union(*others)
    kept_letters = "".join(d for d in diag if d in seen)
    res = g.einsum(*(o for j, o in enumerate(ops) if j != index),
                   equation=",".join([rhs, *others]) + "->" + kept_letters)
    size = dict(zip(kept_letters, res.shape))
    sizes = dict(zip(mine, x.shape))
    res = res.reshape(shape=tuple(size.get(d, 1) for d in diag))
    res = res.expand(shape=tuple(sizes[d] for d in diag))
    ar = g.source("arange", end=sizes[c])
    key = ",".join("T" if d == c else ":" for d in mine)
    return res.index_backward(*([ar] * len(where)), key=key, shape=x.shape)


def _einsum_forward(xp, *ops, equation):
    # Contracted pairwise in a greedy order, as PyTorch does (opt_einsum's path): the naive
    # loop over every letter at once makes "a,b,c,d,e,f->" over six 40-vectors 40^6 work,
    # in one call nothing can interrupt. worker/engine/cost.py counts the same path.
    return xp.einsum(equation, *ops, optimize="greedy")


define("einsum",
       batch=_batch.einsum,
       nin=-1, infer=_infer_einsum, forward=_einsum_forward, variadic_rule=_einsum_vjp,
       attrs={"equation": ("str", REQUIRED)},
       samples=(S(F(3, 4), F(4, 5), equation="ij,jk->ik"),
                S(F(2, 3, 4), F(2, 4, 5), equation="bij,bjk->bik"),
                S(F(3, 4), equation="ij->"), S(F(3), F(4), equation="i,j->ij"),
                S(F(3, 4), F(3, 4), equation="ij,ij"),
                S(F(2, 3), F(3, 4), F(4), equation="ab,bc,c->a"),
                S(F(2, 1, 3, 4), F(5, 4, 2), equation="...ij,...jk"),
                S(F(3, 4, 5), equation="i...->..."),
                S(F(1, 3), F(2, 3), equation="ij,ij->ij"),
                S(F(2, 3, 4), F(4), equation="...j,j->..."),
                S(F(3, 3), equation="ii->"), S(F(3, 3), equation="ii->i"),
                S(F(3, 2, 3), equation="iji->j"), S(F(2, 3, 3), F(3), equation="jii,i->j")))

