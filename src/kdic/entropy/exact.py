"""Order-independent arithmetic for the entropy-parameter path (bitstream format 3).

A decoder recomputes every entropy parameter from already-decoded symbols; if its floats differ
from the encoder's by one bit, a parameter can land on the other side of a grid boundary and the
range decoder desynchronizes. Float sums depend on their order (thread count, SIMD width, BLAS
kernel, CPU generation), so kdic removes every order-dependent operation from that path:

* every reduction (convolution, matrix product, sum, mean) runs in float64 on operands snapped to
  fixed-point grids chosen so that each product and every partial sum is an integer multiple of
  the grid below 2**53: float64 addition of such values is exact, hence associative, and any
  summation order gives the same bits (integer accumulation carried in float64 registers);
* between reductions, only correctly rounded IEEE operations (+, -, *, /, sqrt, comparisons,
  rounding), which give the same bits on every conforming machine;
* the transcendentals (exp, log, erf, GELU, tanh, sigmoid, softplus, softmax) are built from those
  operations (range reduction and fixed polynomials), never taken from libm or SLEEF, whose last
  bits vary between libraries and instruction sets.

``exact_arithmetic()`` routes torch calls to these implementations with a ``TorchFunctionMode``.
An operation that is neither implemented here nor known to be exact raises ``NotImplementedError``,
so a new layer kind cannot silently break the guarantee: it registers its exact twin with
``register_exact`` instead. Snapping keeps 20 or more significant bits of every operand, so the
parameters differ from the float ones by far less than the coder's scale-table step.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.overrides import TorchFunctionMode

MANTISSA = 53  # float64 significand bits: integers below 2**53 add exactly
LN2_HI = 6.93147180369123816490e-01  # ln 2 split so that k * LN2_HI is exact for |k| < 2**20 (fdlibm)
LN2_LO = 1.90821492927058770002e-10
INV_LN2 = 1.44269504088896338700e00
SQRT_HALF = 0.7071067811865476
EXP_TERMS = tuple(1.0 / math.factorial(i) for i in range(14))  # Taylor coefficients, |r| <= ln2 / 2
ERFC_COEFFICIENTS = (
    -1.26551223,
    1.00002368,
    0.37409196,
    0.09678418,
    -0.18628806,
    0.27886807,
    -1.13520398,
    1.48851587,
    -0.82215223,
    0.17087277,
)  # Numerical Recipes erfcc: relative error < 1.2e-7


def _exponent(t: Tensor) -> int:
    """e with max|t| < 2**e (max and frexp are exact, so every machine agrees); 0 for an all-zero t."""
    peak = float(t.abs().max()) if t.numel() else 0.0
    if peak == 0.0 or not math.isfinite(peak):
        return 0
    return math.frexp(peak)[1]


def _sum_bits(terms: int) -> int:
    """Significant bits each summand may keep so that ``terms`` of them add exactly."""
    return MANTISSA - max(1, math.ceil(math.log2(max(terms, 2))))


def snap(t: Tensor, bits: int) -> Tensor:
    """``t`` in float64 on the grid 2**(e - bits), e the exponent of max|t|: at most ``bits`` bits."""
    t = t.double()
    shift = bits - _exponent(t)
    return torch.round(t * 2.0**shift) * 2.0**-shift


def snap_rows(weight: Tensor, bits: int, transposed: bool = False) -> Tensor:
    """``weight`` snapped per output channel (dim 0, or dim 1 of a transposed convolution's weight),
    each to its own ``bits``-bit grid; cached on the tensor until it changes (its version counter)."""
    key = (weight._version, bits, transposed)
    cached = getattr(weight, "_kdic_exact", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    rows = _snap_rows(weight.detach().transpose(0, 1) if transposed else weight.detach(), bits)
    rows = rows.transpose(0, 1).contiguous() if transposed else rows
    weight._kdic_exact = (key, rows)  # type: ignore[attr-defined]  # a cache on the tensor object itself
    return rows


def _snap_rows(weight: Tensor, bits: int) -> Tensor:
    w = weight.double()
    peaks = w.abs().flatten(1).amax(1)
    _, exponents = torch.frexp(peaks)
    exponents = torch.where(peaks > 0, exponents, torch.zeros_like(exponents)).to(torch.int64)
    scale = _power_of_two(bits - exponents).view(-1, *([1] * (w.dim() - 1)))
    return torch.round(w * scale) / scale


def _power_of_two(k: Tensor) -> Tensor:
    """2**k exactly, from the bits of a float64 (no pow, whose last bit may vary)."""
    return ((k.clamp(-1022, 1023) + 1023) << 52).view(torch.float64)


def _split_bits(terms: int) -> tuple[int, int]:
    total = _sum_bits(terms)
    return total // 2, total - total // 2


# -- reductions ---------------------------------------------------------------------------------
def exact_sum(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    x = x.double()
    count = x.numel() if dim is None else math.prod(x.shape[d] for d in ((dim,) if isinstance(dim, int) else dim))
    snapped = snap(x, _sum_bits(count))
    return snapped.sum() if dim is None else snapped.sum(dim, keepdim=keepdim)


def exact_mean(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    count = x.numel() if dim is None else math.prod(x.shape[d] for d in ((dim,) if isinstance(dim, int) else dim))
    return exact_sum(x, dim, keepdim) / count


def _conv(transposed: bool):
    def run(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, *args, **kwargs) -> Tensor:
        # weight: (out, in/groups, kh, kw), or (in, out/groups, kh, kw) when transposed
        terms = (weight.shape[0] if transposed else weight.shape[1]) * weight.shape[2] * weight.shape[3]
        activation_bits, weight_bits = _split_bits(terms)
        op = F.conv_transpose2d if transposed else F.conv2d
        out = op(
            snap(x, activation_bits), snap_rows(weight, weight_bits, transposed), None, stride, padding, *args, **kwargs
        )
        return out if bias is None else out + bias.double().view(1, -1, 1, 1)

    return run


def exact_linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    activation_bits, weight_bits = _split_bits(weight.shape[1])
    out = torch.matmul(snap(x, activation_bits), snap_rows(weight, weight_bits).t())
    return out if bias is None else out + bias.double()


def exact_matmul(a: Tensor, b: Tensor) -> Tensor:
    bits_a, bits_b = _split_bits(a.shape[-1])
    return torch.matmul(snap(a, bits_a), snap(b, bits_b))


# -- transcendentals from correctly rounded operations ------------------------------------------
def exact_exp(x: Tensor) -> Tensor:
    """exp by Cody-Waite range reduction x = k ln2 + r and a degree-13 Taylor polynomial in r."""
    x = x.double().clamp(-700.0, 709.0)
    k = torch.round(x * INV_LN2)
    r = (x - k * LN2_HI) - k * LN2_LO
    p = torch.full_like(r, EXP_TERMS[13])
    for c in reversed(EXP_TERMS[:13]):
        p = p * r + c
    return p * _power_of_two(k.to(torch.int64))


def exact_log(x: Tensor) -> Tensor:
    """log by x = m 2**e (m in [sqrt(1/2), sqrt(2))) and log m = 2 atanh((m - 1) / (m + 1)) as a series."""
    x = x.double()
    m, e = torch.frexp(x)
    low = m < SQRT_HALF
    m = torch.where(low, m * 2.0, m)
    e = (e - low.to(e.dtype)).double()
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    series = torch.full_like(s, 1.0 / 23)
    for n in range(21, 0, -2):
        series = series * s2 + 1.0 / n
    result = (e * LN2_HI + 2.0 * s * series) + e * LN2_LO
    return torch.where(x > 0, result, torch.where(x == 0, -math.inf, math.nan))


def exact_erfc(x: Tensor) -> Tensor:
    z = x.double().abs()
    t = 1.0 / (1.0 + 0.5 * z)
    poly = torch.full_like(t, ERFC_COEFFICIENTS[-1])
    for c in reversed(ERFC_COEFFICIENTS[:-1]):
        poly = poly * t + c
    ans = t * exact_exp(-z * z + poly)
    return torch.where(x >= 0, ans, 2.0 - ans)


def exact_tanh(x: Tensor) -> Tensor:
    x = x.double()
    magnitude = 1.0 - 2.0 / (exact_exp(2.0 * x.abs()) + 1.0)
    return torch.where(x < 0, -magnitude, magnitude)


def exact_gelu(x: Tensor, approximate: str = "none") -> Tensor:
    x = x.double()
    if approximate == "tanh":
        return 0.5 * x * (1.0 + exact_tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
    return 0.5 * x * (2.0 - exact_erfc(x * SQRT_HALF))


GELU_RANGE = 8.0  # beyond it GELU is x (or 0) to within 1e-14
GELU_STEPS = 1024  # table entries per unit: linear interpolation is then within 1e-7 (as the erfc)
_GELU_TABLE: list[tuple[Tensor, Tensor]] = []  # (values, slopes to the next entry), built once


def table_gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """GELU by linear interpolation in a table of ``exact_gelu`` (built once, identically everywhere):
    two lookups and a few correctly rounded operations per value instead of the ~50 of the erfc and
    exp polynomials. The slopes are the table's own differences, so precomputing them changes no bit;
    ``index_select`` gathers about twice as fast as advanced indexing."""
    if approximate != "none":
        return exact_gelu(x, approximate)
    if not _GELU_TABLE:
        grid = torch.arange(-GELU_RANGE * GELU_STEPS, GELU_RANGE * GELU_STEPS + 2, dtype=torch.float64) / GELU_STEPS
        values = exact_gelu(grid)
        _GELU_TABLE.append((values, values[1:] - values[:-1]))
    values, slopes = (t.to(x.device) for t in _GELU_TABLE[0])
    x = x.double()
    position = (x.clamp(-GELU_RANGE, GELU_RANGE) + GELU_RANGE) * GELU_STEPS
    index = position.floor()
    at = index.long().flatten()
    value = values.index_select(0, at).view(x.shape) + (position - index) * slopes.index_select(0, at).view(x.shape)
    return torch.where(x > GELU_RANGE, x, torch.where(x < -GELU_RANGE, 0.0, value))


def exact_sigmoid(x: Tensor) -> Tensor:
    return 1.0 / (1.0 + exact_exp(-x.double()))


def exact_softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    x = x.double()
    return torch.where(x * beta > threshold, x, exact_log(1.0 + exact_exp(x * beta)) / beta)


def exact_softmax(x: Tensor, dim: int, *args, **kwargs) -> Tensor:
    x = x.double()
    e = exact_exp(x - x.amax(dim, keepdim=True))
    return e / exact_sum(e, dim, keepdim=True)


def exact_layer_norm(
    x: Tensor, shape, weight: Tensor | None = None, bias: Tensor | None = None, eps: float = 1e-5
) -> Tensor:
    dims = tuple(range(-len(shape), 0))
    x = x.double()
    centred = x - exact_mean(x, dims, keepdim=True)
    out = centred / torch.sqrt(exact_mean(centred * centred, dims, keepdim=True) + eps)
    if weight is not None:
        out = out * weight.double()
    return out if bias is None else out + bias.double()


def exact_pow(x: Tensor, exponent) -> Tensor:
    if exponent == 2:
        return x * x
    if exponent == 0.5:
        return torch.sqrt(x)
    if exponent == 1:
        return x
    raise NotImplementedError(f"pow(x, {exponent}) has no exact implementation")


EXACT_OPS: dict[Callable, Callable] = {}  # torch function -> its exact twin


def register_exact(impl: Callable, *funcs: Callable) -> None:
    """Route ``funcs`` (torch functions and methods) to ``impl`` inside ``exact_arithmetic()``."""
    for func in funcs:
        if func in EXACT_OPS:
            raise ValueError(f"{func} already has an exact implementation")
        EXACT_OPS[func] = impl


for _funcs, _impl in (
    ((F.conv2d,), _conv(transposed=False)),
    ((F.conv_transpose2d,), _conv(transposed=True)),
    ((F.linear,), exact_linear),
    ((torch.matmul, Tensor.matmul, Tensor.__matmul__, torch.bmm, Tensor.bmm), exact_matmul),
    ((torch.sum, Tensor.sum), exact_sum),
    ((torch.mean, Tensor.mean), exact_mean),
    ((torch.exp, Tensor.exp), exact_exp),
    ((torch.log, Tensor.log), exact_log),
    ((torch.tanh, Tensor.tanh, F.tanh), exact_tanh),
    ((torch.sigmoid, Tensor.sigmoid, F.sigmoid), exact_sigmoid),
    ((F.gelu,), table_gelu),
    ((F.softplus,), exact_softplus),
    ((F.softmax, torch.softmax, Tensor.softmax), exact_softmax),
    ((F.layer_norm,), exact_layer_norm),
    ((torch.rsqrt, Tensor.rsqrt), lambda x: 1.0 / torch.sqrt(x)),
    ((torch.erfc, Tensor.erfc), exact_erfc),
    ((torch.erf, Tensor.erf), lambda x: 1.0 - exact_erfc(x)),
    ((torch.pow, Tensor.pow, Tensor.__pow__), exact_pow),
):
    register_exact(_impl, *_funcs)

# Operations whose result is the same on every machine: data movement, indexing, comparisons,
# rounding, and the correctly rounded arithmetic of IEEE 754.
EXACT_ANYWAY = frozenset(
    """
__get__ __getitem__ __setitem__ __len__ __bool__ __index__ __int__ __float__ __format__ __repr__
__add__ __radd__ __iadd__ __sub__ __rsub__ __isub__ __mul__ __rmul__ __imul__ __truediv__ __rtruediv__
__itruediv__ __neg__ __abs__ __and__ __or__ __invert__ __xor__ __eq__ __ne__ __lt__ __le__ __gt__ __ge__
add add_ sub sub_ mul mul_ div div_ true_divide neg abs abs_ sqrt sign round floor ceil trunc clamp clamp_ clamp_min
clamp_min_ clamp_max maximum minimum max min amax amin where masked_fill masked_fill_ relu relu_ leaky_relu
leaky_relu_ eq ne lt le gt ge logical_not logical_and logical_or isfinite isnan any all
cat concat stack chunk split unbind view view_as reshape permute transpose t contiguous expand expand_as flatten
unflatten squeeze unsqueeze flip roll narrow select index_select gather repeat clone detach detach_ to float double
int long bool type_as new_zeros new_ones new_full new_empty new_tensor zeros_like ones_like full_like empty_like
zeros ones full empty arange tensor as_tensor numel dim size stride is_floating_point is_contiguous
pad pixel_shuffle pixel_unshuffle dropout identity bucketize searchsorted numpy item tolist copy_ fill_ zero_
requires_grad_ data_ptr element_size nelement storage_offset untyped_storage frexp
remainder __mod__ fmod floor_divide __floordiv__ masked_select masked_scatter masked_scatter_ index_put index_put_
nonzero reciprocal square take
""".split()
)


class _ExactMode(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in EXACT_OPS:
            return EXACT_OPS[func](*args, **kwargs)
        if getattr(func, "__name__", None) not in EXACT_ANYWAY:
            raise NotImplementedError(
                f"{getattr(func, '__qualname__', func)} has no exact implementation; "
                "register one with kdic.entropy.exact.register_exact"
            )
        return func(*args, **kwargs)


@contextlib.contextmanager
def exact_arithmetic() -> Iterator[None]:
    """Run the enclosed torch code with order-independent arithmetic (see the module docstring);
    any thread count is safe inside it. cuDNN is off so that no FFT or Winograd kernel is chosen."""
    with torch.no_grad(), torch.backends.cudnn.flags(enabled=False), _ExactMode():
        yield
