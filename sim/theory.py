"""Exact queueing results the model is validated against.

* Erlang C: the probability that an arrival waits in M/M/c, and the mean
  wait ``Wq = C(c, a) / (c mu - lambda)`` with ``a = lambda / mu``.
* Cobham (1954): non-preemptive priority classes sharing c servers with the
  same exponential service rate; class k (1 = highest) waits on average
  ``W_k = C(c, a) / (c mu) / ((1 - sigma_{k-1}) (1 - sigma_k))`` where
  ``sigma_k`` is the load of classes 1..k, ``sum lambda_i / (c mu)``.
* DLQ with heartbeats off: a receive fails when service exceeds the
  visibility timeout, and a job reaches the DLQ after ``max_receive_count``
  failed receives, each with an independent service draw: ``P(S > VT)^m``.
* Saturated throughput: c busy workers finish ``c * 3600 / E[S]`` jobs an hour.
"""

from __future__ import annotations

import math
from typing import Sequence


def erlang_c(c: int, a: float) -> float:
    """Probability of waiting in M/M/c with offered load ``a`` Erlangs (a < c)."""
    if not 0 <= a < c:
        raise ValueError(f"M/M/c needs 0 <= a < c, got a={a}, c={c}")
    term, total = 1.0, 1.0  # a^k / k!, running sum for k < c
    for k in range(1, c):
        term *= a / k
        total += term
    last = term * a / c * c / (c - a)  # a^c / c! * c / (c - a)
    return last / (total + last)


def mmc_wait(lam: float, mu: float, c: int) -> float:
    """Mean time in queue of M/M/c."""
    return erlang_c(c, lam / mu) / (c * mu - lam)


def cobham_waits(lams: Sequence[float], mu: float, c: int) -> list[float]:
    """Mean queueing time per class, highest priority first (non-preemptive, M/M/c)."""
    lam = sum(lams)
    w0 = erlang_c(c, lam / mu) / (c * mu)
    out, sigma = [], 0.0
    for lk in lams:
        prev = sigma
        sigma += lk / (c * mu)
        out.append(w0 / ((1 - prev) * (1 - sigma)))
    return out


def dlq_probability(p_exceed: float, max_receive_count: int) -> float:
    """Share of jobs dead-lettered when each receive fails independently with ``p_exceed``."""
    return p_exceed ** max_receive_count


def exp_exceed(mean_s: float, timeout_s: float) -> float:
    """P(S > timeout) for exponential service."""
    return math.exp(-timeout_s / mean_s)


def saturated_throughput_per_hour(workers: int, mean_service_s: float) -> float:
    return workers * 3600.0 / mean_service_s
