"""Erlang C against table values, each checked here by an independent computation (exact fractions,
the textbook formula with powers and factorials)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from appliance.reports.erlang import agents_needed, erlang_b, erlang_c, service_level


def textbook_c(n: int, a: int) -> float:
    """P(wait) = (a^n/n! * n/(n-a)) / (sum_{k<n} a^k/k! + a^n/n! * n/(n-a)), in exact fractions."""
    top = Fraction(a ** n, math.factorial(n)) * Fraction(n, n - a)
    return float(top / (sum(Fraction(a ** k, math.factorial(k)) for k in range(n)) + top))


# (traffic in Erlangs, agents, P(wait) to four places): the figures of published Erlang C tables.
TABLE = [(10, 14, 0.1741), (10, 11, 0.6821), (10, 12, 0.4494), (2, 3, 0.4444)]


@pytest.mark.parametrize("a, n, p", TABLE)
def test_probability_of_waiting_matches_the_table_and_the_textbook_formula(a, n, p):
    assert textbook_c(n, a) == pytest.approx(p, abs=5e-5)
    assert erlang_c(n, a) == pytest.approx(textbook_c(n, a), rel=1e-12)


def test_erlang_b_recursion_matches_the_formula():
    a, n = 10, 14
    exact = Fraction(a ** n, math.factorial(n)) / sum(Fraction(a ** k, math.factorial(k)) for k in range(n + 1))
    assert erlang_b(n, a) == pytest.approx(float(exact), rel=1e-12)


def test_stable_where_factorials_overflow_a_float():
    # a^n / n! overflows a float beyond n ~ 170; the recursion does not.
    p = erlang_c(500, 480.0)
    assert 0 < p < 1
    assert erlang_c(10, 10) == 1.0 and erlang_c(5, 10) == 1.0


def test_service_level_and_agents_needed():
    # 100 calls an hour of 180 s is 5 Erlangs; 80 % within 20 s.
    sl = {n: service_level(n, 5.0, 180, 20) for n in range(6, 10)}
    assert sl[7] < 0.8 <= sl[8] or sl[6] < 0.8 <= sl[7]
    needed = agents_needed(100, 180, 0.8, 20)
    assert service_level(needed, 5.0, 180, 20) >= 0.8 > service_level(needed - 1, 5.0, 180, 20)
    # The service level by its definition: 1 - C * exp(-(n - a) t / aht).
    assert sl[8] == pytest.approx(1 - textbook_c(8, 5) * math.exp(-(8 - 5) * 20 / 180))
    assert agents_needed(0, 180, 0.8, 20) == 0
