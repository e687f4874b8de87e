"""The metrics every evaluation task shares, each defined exactly in its docstring.

Plain Python (no torch): a task turns its model outputs into strings or id lists, scores each
example with these functions and summarises the scores with ``rate_with_interval`` (a share
of successes with its Wilson 95% interval) or ``mean_interval`` (a mean with its t interval).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Z_95 = 1.959963984540054  # the standard normal's 0.975 quantile

# t_{0.975, df} for df = 1..30 (two-sided 95%), from the t distribution's inverse CDF.
_T_975 = (
    12.706204736174698, 4.302652729749464, 3.182446305284263, 2.7764451051977934, 2.5705818356363146,
    2.4469118511449692, 2.3646242515927844, 2.3060041352041662, 2.2621571628540993, 2.2281388519649385,
    2.2009851600916384, 2.1788128296634177, 2.1603686564610127, 2.1447866879169273, 2.131449545559323,
    2.1199052992210112, 2.1098155778331806, 2.100922040241036, 2.0930240544083096, 2.0859634472658364,
    2.079613844727662, 2.0738730679040147, 2.0686576104190406, 2.0638985616280205, 2.059538552753294,
    2.055529438642871, 2.0518305164802833, 2.048407141795244, 2.0452296421327034, 2.0422724563012373,
)


def normalize_answer(text: str, eos_text: str | None = None) -> str:
    """``text`` cut at the first occurrence of ``eos_text`` (when given and non-empty), then
    stripped of surrounding whitespace (``str.strip()``). Nothing else changes: case, inner
    whitespace and indentation of later lines are kept, since they matter in code."""
    if eos_text and eos_text in text:
        text = text[: text.index(eos_text)]
    return text.strip()


def exact_match(prediction: str, reference: str) -> float:
    """1.0 if ``normalize_answer(prediction) == normalize_answer(reference)``, else 0.0.

    An empty prediction matches only an empty reference."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def levenshtein(a: Sequence, b: Sequence) -> int:
    """The edit distance between ``a`` and ``b``: the least number of single-item insertions,
    deletions and substitutions (each of cost 1) that turn ``a`` into ``b``. For strings the
    items are Unicode code points. The textbook O(len(a)·len(b)) dynamic programme, after
    dropping the common prefix and suffix (which never changes the distance)."""
    start = 0
    while start < len(a) and start < len(b) and a[start] == b[start]:
        start += 1
    end_a, end_b = len(a), len(b)
    while end_a > start and end_b > start and a[end_a - 1] == b[end_b - 1]:
        end_a, end_b = end_a - 1, end_b - 1
    a, b = a[start:end_a], b[start:end_b]
    if len(a) < len(b):
        a, b = b, a  # the row runs over the shorter one
    previous = list(range(len(b) + 1))
    for i, item in enumerate(a, 1):
        current = [i]
        for j, other in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (item != other)))
        previous = current
    return previous[-1]


def edit_similarity(prediction: str, reference: str) -> float:
    """``1 - levenshtein(prediction, reference) / max(len(prediction), len(reference))``.

    In [0, 1]: 1.0 for identical strings (so both empty gives 1.0), 0.0 when one is empty and
    the other is not, or when no character can be kept. Always on the FULL reference: a
    prediction is never compared with the reference cut to its own length (that made an empty
    prediction score 1.0). No normalisation here: callers pass ``normalize_answer`` output.
    ``difflib.SequenceMatcher.ratio`` is not used: it is 2·matches / total length of a
    heuristic matching block search, not an edit distance."""
    longest = max(len(prediction), len(reference))
    if longest == 0:
        return 1.0
    return 1.0 - levenshtein(prediction, reference) / longest


def binomial_interval(successes: float, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval (95% for the default ``z``) of a share ``p = successes / n``:

        centre = (p + z²/(2n)) / (1 + z²/n)
        half   = z / (1 + z²/n) · sqrt(p(1-p)/n + z²/(4n²))
        (low, high) = (centre - half, centre + half)

    Wilson rather than the normal (Wald) interval ``p ± z·sqrt(p(1-p)/n)``: Wilson always stays
    inside [0, 1], and at 0 or n successes it still has width (0/10 gives (0, 0.278)), where
    Wald collapses to the single point 0 or 1; it also keeps close to 95% coverage at the small
    ``n`` (tens of examples) these tasks use. ``successes`` may be fractional (a sum of shares,
    e.g. split credit for ties), read as ``p·n``."""
    if n <= 0:
        raise ValueError(f"binomial_interval: n={n} must be >= 1")
    if not 0 <= successes <= n:
        raise ValueError(f"binomial_interval: successes={successes} must lie in [0, n={n}]")
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the ends: no rounding past them
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def t_quantile_975(df: int) -> float:
    """t_{0.975, df}, the two-sided 95% quantile of Student's t with ``df`` degrees of freedom:
    tabulated for df <= 30, beyond it the Cornish-Fisher expansion in 1/df (Abramowitz and
    Stegun 26.7.5, error below 1e-6 there)."""
    if df < 1:
        raise ValueError(f"t_quantile_975: df={df} must be >= 1")
    if df <= len(_T_975):
        return _T_975[df - 1]
    z = Z_95
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def mean_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high): the mean of ``values`` (e.g. one score per seed) with its t-based 95%
    interval ``mean ± t_{0.975, n-1} · s / sqrt(n)``, ``s`` the sample standard deviation
    (divisor n - 1). One value has no spread to estimate: (value, nan, nan). Identical values
    give a zero-width interval. The interval is not clipped to the metric's range."""
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        raise ValueError("mean_interval: no values")
    mean = math.fsum(values) / n
    if n == 1:
        return mean, math.nan, math.nan
    s = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile_975(n - 1) * s / math.sqrt(n)
    return mean, mean - half, mean + half


def repetition_rate(sequence: str | Sequence, n: int = 4) -> float:
    """The share of repeated n-grams: ``1 - distinct n-grams / total n-grams``.

    A string is split into whitespace-separated words (``str.split()``); any other sequence
    (e.g. token ids) is used item by item. A sequence of L items has L - n + 1 n-grams
    (contiguous, overlapping). Fewer than ``n`` items have no n-gram: 0.0. 0.0 means no
    n-gram occurs twice; a generation stuck in a loop approaches 1.0."""
    if n < 1:
        raise ValueError(f"repetition_rate: n={n} must be >= 1")
    items = sequence.split() if isinstance(sequence, str) else list(sequence)
    grams = [tuple(items[i : i + n]) for i in range(len(items) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def rate_with_interval(name: str, successes: float, n: int) -> dict[str, float]:
    """``{name: successes / n, name_low: ..., name_high: ...}`` with the Wilson 95% interval."""
    low, high = binomial_interval(successes, n)
    return {name: successes / n, f"{name}_low": low, f"{name}_high": high}


def clip_to_unit(value: float) -> float | None:
    """``value`` clipped to [0, 1] (an interval bound of a metric that cannot leave it), or None
    for nan (e.g. ``mean_interval`` of one value), so results.json stays valid JSON."""
    return None if math.isnan(value) else min(max(value, 0.0), 1.0)
