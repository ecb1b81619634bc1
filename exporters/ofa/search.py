"""Evolutionary search for the subnet that scores best within a latency budget.

Candidates are scored by an accuracy predictor the user supplies (``module:function``
called as ``function(config, resolution) -> float``), or, without one, by a documented
proxy: the subnet's multiply-accumulates. Along OFA's published accuracy/efficiency
fronts accuracy rises with MACs, so among subnets that fit the budget the one doing the
most work is the proxy's best guess; the output always says which scorer chose.

The loop follows the usual regularised evolution: a feasible random population, then per
generation the best quarter survives and the rest is refilled by mutation (each position
redrawn with a small probability) and uniform crossover of two survivors. Only candidates
whose predicted latency fits the budget enter the population.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgert.errors import ExportError
from edgert.exporters.ofa import latency, subnets, units

PROXY = "proxy: multiply-accumulates (no accuracy predictor given)"


@dataclass(frozen=True)
class SearchOptions:
    """Settings of one search.

    Args:
        budget_ms: the latency the chosen subnet must meet.
        population: candidates per generation.
        generations: rounds of selection.
        survivors: fraction kept as parents each generation.
        mutation_prob: chance that a position is redrawn in a mutation.
        seed: random seed (a search is reproducible).
        margin: fraction of the budget kept free for prediction error: candidates must be
            predicted within ``budget_ms * (1 - margin)``. A table predicts whole subnets to
            within a few percent (``benchmarks/ofa.py``), so a search that fills the budget
            exactly would miss it about half the time. 0 disables it.
    """

    budget_ms: float
    population: int = 64
    generations: int = 20
    survivors: float = 0.25
    mutation_prob: float = 0.15
    seed: int = 0
    margin: float = 0.1

    @property
    def limit_ms(self) -> float:
        """The predicted latency candidates must stay within."""
        return self.budget_ms * (1 - self.margin)


@dataclass(frozen=True)
class SearchResult:
    """The chosen config and how it was chosen."""

    config: dict[str, list[Any]]
    predicted_ms: float
    score: float
    scorer: str
    evaluated: int
    smallest_ms: float


Scorer = Callable[[dict[str, list[Any]], int], float]


def load_predictor(target: str) -> Scorer:
    """Import ``module:function`` (an accuracy predictor)."""
    module_name, _, attribute = target.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), attribute or "predict", None)
    except ModuleNotFoundError as exc:
        raise ExportError(f"cannot import accuracy predictor {target!r}: {exc}",
                          hint="pass --accuracy-predictor package.module:function") from exc  # fmt: skip
    if not callable(function):
        raise ExportError(f"accuracy predictor {target!r} is not a callable",
                          hint="it is called as function(config, resolution) -> float")  # fmt: skip
    return function


class Evaluator:
    """Predicted latency and score of configs, memoised (search revisits many)."""

    def __init__(self, net: Any, table: dict[str, Any], resolution: int,
                 predictor: Scorer | None) -> None:  # fmt: skip
        self.net, self.table, self.resolution, self.predictor = net, table, resolution, predictor
        self._cache: dict[str, tuple[float, float]] = {}

    def __call__(self, config: dict[str, list[Any]]) -> tuple[float, float]:
        """(predicted ms, score) of ``config``."""
        key = repr(sorted(config.items()))
        if key not in self._cache:
            net_config = units.active_net_config(self.net, config)
            keys = [u.key for u in units.units(net_config, self.resolution)]
            ms = latency.predict_keys(self.table, keys)
            score = (float(self.predictor(config, self.resolution)) if self.predictor
                     else float(latency.total_macs(self.table, keys)))  # fmt: skip
            self._cache[key] = (ms, score)
        return self._cache[key]

    @property
    def evaluated(self) -> int:
        """Distinct configs evaluated so far."""
        return len(self._cache)


def search(net: Any, evaluate: Evaluator, options: SearchOptions, scorer: str) -> SearchResult:
    """Run the evolution; raises when even the smallest subnet exceeds the budget."""
    rng = random.Random(options.seed)
    smallest = subnets.smallest_config(net)
    smallest_ms = evaluate(smallest)[0]
    if smallest_ms > options.limit_ms:
        needed = smallest_ms / (1 - options.margin)
        raise ExportError(
            f"latency budget {options.budget_ms:g} ms is below the smallest subnet's predicted "
            f"latency: the smallest achievable is {smallest_ms:.3f} ms on this target "
            f"({needed:.3f} ms with the {options.margin:.0%} margin kept for prediction error)",
            hint=f"raise --latency-budget to at least {needed:.3f}ms, lower --resolution, "
            "or choose a faster device profile",
        )
    space = subnets.choice_space(net)
    population = _initial(net, evaluate, options, rng, smallest)
    keep = max(2, int(options.population * options.survivors))
    for _ in range(options.generations):
        population.sort(key=lambda c: evaluate(c)[1], reverse=True)
        parents = population[:keep]
        children = []
        for attempt in range(options.population * 20):
            if len(parents) + len(children) >= options.population:
                break
            if attempt % 2:
                child = _mutate(rng.choice(parents), space, options.mutation_prob, rng)
            else:
                child = _cross(rng.choice(parents), rng.choice(parents), rng)
            if evaluate(child)[0] <= options.limit_ms:
                children.append(child)
        population = parents + children
    best = max(population, key=lambda c: evaluate(c)[1])
    ms, score = evaluate(best)
    return SearchResult(config=best, predicted_ms=ms, score=score, scorer=scorer,
                        evaluated=evaluate.evaluated, smallest_ms=smallest_ms)  # fmt: skip


def _initial(net: Any, evaluate: Evaluator, options: SearchOptions, rng: random.Random,
             smallest: dict[str, list[Any]]) -> list[dict[str, list[Any]]]:  # fmt: skip
    """Random feasible configs; under a tight budget, mutations of the smallest fill in."""
    space = subnets.choice_space(net)
    population = [smallest]
    for _ in range(options.population * 20):
        if len(population) >= options.population:
            break
        candidate = subnets.random_config(net, rng)
        if evaluate(candidate)[0] > options.limit_ms:
            candidate = _mutate(rng.choice(population), space, options.mutation_prob, rng)
        if evaluate(candidate)[0] <= options.limit_ms:
            population.append(candidate)
    return population


def _mutate(config: dict[str, list[Any]], space: tuple[subnets.Dimension, ...],
            prob: float, rng: random.Random) -> dict[str, list[Any]]:  # fmt: skip
    return {
        d.key: [rng.choice(d.choices) if rng.random() < prob else v for v in config[d.key]]
        for d in space
    }


def _cross(a: dict[str, list[Any]], b: dict[str, list[Any]],
           rng: random.Random) -> dict[str, list[Any]]:  # fmt: skip
    return {k: [x if rng.random() < 0.5 else y for x, y in zip(a[k], b[k], strict=True)] for k in a}
