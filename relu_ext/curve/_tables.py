"""The tables ``str(curve_summary(...))`` prints: statsmodels-like, the fit's
statistics, then a table of breakpoints and one of segments; for a batch, a
line per curve."""

import math

_RULE = 78


def count(n, noun):
    return f"{n} {noun}{'' if n == 1 else 's'}"


def number(value, digits=6):
    value = float(value)
    return "nan" if math.isnan(value) else f"{value:.{digits}g}"


def curve_tables(s):
    """statsmodels-like: the fit's statistics, then the breakpoints' and the segments' tables."""
    estimated = not s.fixed_breakpoints
    low_q, high_q = (1 - s.level) / 2, (1 + s.level) / 2
    bounds = f"{'[' + format(low_q, 'g'):>11} {format(high_q, 'g') + ']':>11}"
    pairs = [("Observations:", int(s.nobs)), ("Log-likelihood:", number(s.log_likelihood)),
             ("Parameters:", int(s.n_params)), ("AIC:", number(s.aic)),
             ("Residual dof:", int(s.dof)), ("BIC:", number(s.bic)),
             ("Residual std err:", number(s.sigma)), ("R-squared:", number(s.r_squared))]
    lines = [f"Piecewise-linear curve: {count(s.slopes.shape[0], 'segment')}, breakpoints "
             + ("estimated" if estimated else "fixed (treated as known)"), "=" * _RULE]
    for i in range(0, len(pairs), 2):
        (left, a), (right, b) = pairs[i], pairs[i + 1]
        lines.append(f"{left:<20}{a:>16}   {right:<20}{b:>16}")
    lines.append("=" * _RULE)
    intervals = s.conf_int()
    if s.breakpoints.shape[0]:
        if estimated:
            calibration = "bootstrap" if s.bootstrapped else "F test"
            lines.append(f"{'breakpoint':<12}{'estimate':>11} {'std err':>11} {bounds}  "
                         f"profile, {calibration}")
            low, high = intervals["breakpoints"]
            for k in range(s.breakpoints.shape[0]):
                lines.append(f"{k + 1:<12}" + " ".join(
                    f"{number(v):>11}" for v in (s.breakpoints[k], s.se_breakpoints[k],
                                                  low[k], high[k])))
        else:
            lines.append(f"{'breakpoint':<12}{'value':>11}  (fixed)")
            lines += [f"{k + 1:<12}{number(v):>11}" for k, v in enumerate(s.breakpoints)]
        lines.append("-" * _RULE)
    lines.append(f"{'segment':<12}{'slope':>11} {'std err':>11} {bounds} {'intercept':>11} "
                 f"{'std err':>11}")
    low, high = intervals["slopes"]
    for j in range(s.slopes.shape[0]):
        lines.append(f"{j + 1:<12}" + " ".join(
            f"{number(v):>11}" for v in (s.slopes[j], s.se_slopes[j], low[j], high[j],
                                          s.intercepts[j], s.se_intercepts[j])))
    lines.append("=" * _RULE)
    return "\n".join(lines)


def batch_table(s, shown=10):
    """One line per curve (the first and last few of many); summary[c] prints curve c's tables."""
    curves = len(s)
    state = "estimated" if not s.fixed_breakpoints else "fixed"
    lines = [f"CurveSummary of {count(curves, 'curve')}, breakpoints {state}: print "
             f"summary[c] for curve c's breakpoints and segments", "=" * _RULE,
             f"{'curve':>6} {'segments':>9} {'nobs':>8} {'dof':>8} {'sigma':>11} "
             f"{'R-squared':>11} {'AIC':>11}", "-" * _RULE]
    which = list(range(curves)) if curves <= shown else \
        list(range(shown // 2)) + [None] + list(range(curves - shown // 2, curves))
    for c in which:
        if c is None:
            lines.append(f"{'...':>6}")
            continue
        segments = int(s.slopes[c].isfinite().sum())
        lines.append(f"{c:>6} {segments:>9} {int(s.nobs[c]):>8} {int(s.dof[c]):>8} "
                     f"{number(s.sigma[c]):>11} {number(s.r_squared[c]):>11} "
                     f"{number(s.aic[c]):>11}")
    lines.append("=" * _RULE)
    return "\n".join(lines)
