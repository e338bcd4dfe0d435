"""The Student t distribution's CDF and quantile in float64, without scipy.

curve_summary's intervals need t quantiles: estimate ± t·se, and the F(1, dof)
critical value t² that bounds the profile intervals. relu_ext's runtime
dependencies are torch and numpy, neither of which has them
(``torch.distributions.StudentT`` has no cdf or icdf), and scipy is too heavy
a dependency for two functions. So they are computed here, in plain Python
floats, to about 1e-13 relative:

- the two-sided tail P(|T| > x) = I_z(ν/2, ½), z = ν/(ν + x²), and the
  centre P(|T| <= x) = I_{1-z}(½, ν/2), the regularized incomplete beta
  function, each computed directly on its own side of the mean (so neither
  is 1 minus the other where that would lose digits): by its continued
  fraction (modified Lentz) with the prefactor in logs (Stirling's series
  for lgamma(a) - lgamma(a + ½), which would otherwise cancel two huge
  numbers), and for the tail at ν >= 1000 by DiDonato and Morris's
  asymptotic expansion, which the continued fraction cannot match there;
- the quantile by Newton's method on the log of the smaller side in log x,
  safeguarded by bisection on a bracket that starts from the normal quantile
  (|t_p| >= |z_p| for every ν: t's tails are the heavier).
"""

import math
from functools import lru_cache
from statistics import NormalDist

_EPS = 2.0 ** -52
_TINY = 1e-300  # Lentz's stand-in for a zero denominator
# Stirling's series for log Γ(x) - ((x - ½)·log x - x + ½·log 2π):
# the coefficients B_2k / (2k(2k - 1)) of x^(1 - 2k).
_STIRLING = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188, -691 / 360360, 1 / 156)


def t_cdf(x, dof):
    """P(T <= x) for T ~ Student t with ``dof`` > 0 degrees of freedom (a float)."""
    x, dof = float(x), _checked_dof(dof)
    if math.isnan(x):
        return math.nan
    if x == 0:
        return 0.5
    if math.isinf(x):
        return 0.0 if x < 0 else 1.0
    tail, centre = _two_sided(math.log(abs(x)), dof)
    return tail / 2 if x < 0 else 0.5 + centre / 2


@lru_cache(maxsize=1024)
def t_quantile(p, dof):
    """The x with P(T <= x) = p for T ~ Student t with ``dof`` > 0 degrees of
    freedom; -inf and inf at p = 0 and 1. Cached: a summary asks for the same
    few (level, dof) pairs again and again."""
    p, dof = float(p), _checked_dof(dof)
    if not 0 <= p <= 1:
        raise ValueError(f"t_quantile(): p must be in [0, 1], but got {p!r}")
    if p in (0.0, 1.0):
        return math.inf if p else -math.inf
    if p == 0.5:
        return 0.0
    # 1 - p and the doubling are exact: s is the two-sided tail, to the last bit.
    s = 2 * min(p, 1 - p)
    magnitude = math.exp(_solve_log_magnitude(s, dof))
    return -magnitude if p < 0.5 else magnitude


def _checked_dof(dof):
    dof = float(dof)
    if not dof > 0:
        raise ValueError(f"the degrees of freedom must be > 0, but got {dof!r}")
    return dof


def _two_sided(log_x, dof):
    """(P(|T| > x), P(|T| <= x)) for x = exp(log_x) > 0, each to full relative precision."""
    a, b = dof / 2, 0.5
    # z = ν/(ν + x²) = 1/(1 + r) and 1 - z = r/(1 + r), r = x²/ν, in logs: exact for any r.
    log_r = 2 * log_x - math.log(dof)
    log1p_r = _log1p_exp(log_r)
    log_z, log_1mz = -log1p_r, log_r - log1p_r
    z = math.exp(log_z)
    if z < (a + 1) / (a + b + 2):
        tail = _tail_for_large_a(a, log_z) if a >= 500 else \
            _incomplete_beta(a, b, z, log_z, log_1mz)
        return tail, 1 - tail
    centre = _incomplete_beta(b, a, -math.expm1(log_z), log_1mz, log_z)
    return 1 - centre, centre


def _log1p_exp(v):
    """log(1 + e^v) without overflow."""
    return v + math.log1p(math.exp(-v)) if v > 0 else math.log1p(math.exp(v))


def _incomplete_beta(a, b, x, log_x, log_1mx):
    """I_x(a, b) for x below the mean (a + 1)/(a + b + 2), where its continued
    fraction converges fast (in O(√max(a, b)) terms at worst); log x and
    log(1 - x) are given, to keep their digits when x is near 0 or 1."""
    log_front = a * log_x + b * log_1mx - math.log(a) - _log_beta(a, b)
    return math.exp(log_front) * _beta_fraction(a, b, x)


def _beta_fraction(a, b, x):
    """The continued fraction of I_x(a, b) (Numerical Recipes' betacf: modified Lentz)."""
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > _TINY else _TINY)
    value = d
    for m in range(1, 100_000):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > _TINY else _TINY)
            c = 1 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            step = c * d
            value *= step
        if abs(step - 1) <= _EPS:
            return value
    raise ArithmeticError(f"the incomplete beta function's continued fraction did not converge "
                          f"for a={a}, b={b}, x={x}")


def _tail_for_large_a(a, log_x):
    """I_x(a, ½) for a >= 500 and x below the mean: DiDonato and Morris's
    asymptotic expansion in incomplete gamma functions (ACM TOMS 708, bgrat)
    at b = ½, where Q(½, z) = erfc(√z).

    The continued fraction, fed x rounded to float64, loses about a ulps
    here (I_x(a, ½) moves a times faster than x); this takes log x, which
    keeps every digit, and its terms fall like (log x / a)²."""
    nu = a - 0.25
    z = -nu * log_x
    q = math.erfc(math.sqrt(z))
    if q == 0:  # e^-z underflows: so does the tail
        return 0.0
    r = math.exp(-z + 0.5 * math.log(z / math.pi))  # e^-z z^½ / Γ(½)
    v, t2 = 0.25 / (nu * nu), 0.25 * log_x * log_x
    j, power, cn = q / r, 1.0, 1.0
    c, d, total = [], [], 0.0
    for n in range(1, 31):
        b2n = 2 * n - 1.5  # b + 2(n - 1)
        j = (b2n * (b2n + 1) * j + (z + b2n + 1) * power) * v
        power *= t2
        cn /= 2 * n * (2 * n + 1)
        c.append(cn)
        d.append(-0.5 * cn + sum((0.5 * i - n) * c[i - 1] * d[n - i - 1]
                                 for i in range(1, n)) / n)
        total += d[-1] * j
        if abs(d[-1] * j) <= _EPS * (q / r + total):
            break
    # Γ(a + ½) / (Γ(a)·ν^½)
    gamma_ratio = math.exp(-_log_gamma_ratio(a, 0.5) - 0.5 * math.log(nu))
    return gamma_ratio * (q + r * total)


def _log_beta(a, b):
    """log B(a, b) to a few ulps when the smaller argument is moderate (the t
    distribution's is ½): for a large one, lgamma(large) - lgamma(large + small)
    comes from Stirling's series instead of cancelling two huge numbers."""
    small, large = sorted((a, b))
    if large < 10:
        return math.lgamma(small) + math.lgamma(large) - math.lgamma(small + large)
    return math.lgamma(small) + _log_gamma_ratio(large, small)


def _log_gamma_ratio(large, small):
    """lgamma(large) - lgamma(large + small) for large >= 10, from Stirling's series."""
    both = small + large
    return (-(large - 0.5) * math.log1p(small / large) - small * math.log(both) + small
            + _stirling_rest(large) - _stirling_rest(both))


def _stirling_rest(x):
    """log Γ(x) - ((x - ½)·log x - x + ½·log 2π), for x >= 10 (to below 1e-16)."""
    inverse_square = 1 / (x * x)
    return sum(c * inverse_square ** k for k, c in enumerate(_STIRLING)) / x


def _solve_log_magnitude(s, dof):
    """log x with P(|T| > x) = s, 0 < s < 1: safeguarded Newton in u = log x.

    Where s <= ½ the equation is log P(|T| > x) = log s; above, log P(|T| <= x) =
    log(1 - s) (exact: 1 - s has no rounding there), so the small side keeps
    its digits. Both sides rise with u, h(u) = 0 at the root, and
    h'(u) = 2·pdf(x)·x / (the side's probability)."""
    use_tail = s <= 0.5
    target = math.log(s) if use_tail else math.log1p(-s)
    log_pdf_constant = -_log_beta(dof / 2, 0.5) - 0.5 * math.log(dof)

    def h_and_slope(u):
        tail, centre = _two_sided(u, dof)
        side = tail if use_tail else centre
        log_pdf = log_pdf_constant - (dof + 1) / 2 * _log1p_exp(2 * u - math.log(dof))
        slope = 2 * math.exp(log_pdf + u) / side
        return (target - math.log(tail) if use_tail else math.log(centre) - target), slope

    low = math.log(-NormalDist().inv_cdf(s / 2))
    while h_and_slope(low)[0] > 0:  # the normal bound, should rounding have broken it
        low -= 1
    width = 1.0
    while h_and_slope(low + width)[0] < 0:
        low, width = low + width, 2 * width
    high = low + width

    u = low
    for _ in range(200):
        h, slope = h_and_slope(u)
        if h == 0:
            return u
        if h < 0:
            low = u
        else:
            high = u
        newton = u - h / slope
        following = newton if low < newton < high else (low + high) / 2
        if abs(following - u) <= 4 * _EPS * max(1.0, abs(u)):
            return following
        u = following
    return u
