"""A long fuzz campaign (not collected by pytest): the numbers in docs/reliability.md come from it.

    nice -n 19 python tests/fuzz_campaign.py --grammar 5000 --mutation-rounds 2 --out campaign.json

Sources: hypothesmith grammar programs (each linted as is and with a torch import in front, so
the engine parses and interprets it), mutations of every fixture (``test_fuzz._mutations``:
lines deleted, duplicated, moved, swapped, shuffled, dedented), and the model-shaped generators
of test_fuzz. Per program it checks:

* no exception and no GRD902 (internal error) -- a crash;
* no lint over ``--hang`` seconds of CPU time (default 10) -- a hang (a wall-clock SIGALRM at 60x
  ends a real one); CPU time, so that a busy machine does not count as a slow lint;
* the same diagnostics twice -- determinism;
* no finding lost to a budget: when a program draws GRD903, it is linted again with every
  extraction budget x10; a finding of that run that the normal run lacks is a loss;
* a fix in the JSON applies: every ``fix`` the normal run carries is applied by the fixer.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import test_fuzz  # noqa: E402 -- the harness's mutations and generators

from gradlint.engine import LintConfig, Selection, lint_source  # noqa: E402

CONFIG = LintConfig(selection=Selection(("ALL",)))


class Hang(Exception):
    pass


@contextmanager
def alarm(seconds: float):  # type: ignore[no-untyped-def]
    def fire(signum: int, frame: object) -> None:
        raise Hang()

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@contextmanager
def big_budgets(factor: int = 10):  # type: ignore[no-untyped-def]
    import gradlint.extract as extraction

    names = ("STATEMENT_BUDGET", "PROBE_BUDGET", "PER_ROOT_BUDGET", "FILE_BUDGET", "FILE_CPU_SECONDS")
    saved = {n: getattr(extraction, n) for n in names}
    for n in names:
        setattr(extraction, n, saved[n] * factor)
    try:
        yield
    finally:
        for n, v in saved.items():
            setattr(extraction, n, v)


def findings(text: str) -> list[dict[str, Any]]:
    return [d.to_json() for d in lint_source(text, "fuzzed.py", CONFIG).diagnostics]


class Campaign:
    def __init__(self, hang_seconds: float) -> None:
        self.hang = hang_seconds
        self.stats: dict[str, Any] = {"programs": {}, "crashes": [], "hangs": [], "nondeterministic": [],
                                      "budget_notes": 0, "budget_losses": [], "fix_failures": [],
                                      "slowest": [], "seconds": 0.0}

    save: Any = None  # called every 200 programs (a capped run still leaves its numbers)

    def check(self, source: str, text: str) -> None:
        counts = self.stats["programs"]
        counts[source] = counts.get(source, 0) + 1
        if self.save is not None and sum(counts.values()) % 200 == 0:
            self.save()
        started = time.process_time()  # CPU time: what the lint costs, whatever else the machine runs
        try:
            with alarm(self.hang * 60):  # wall clock, only to end a real hang
                first = findings(text)
        except Hang:
            self.stats["hangs"].append({"source": source, "seconds": self.hang * 60, "text": text[:4000]})
            return
        except Exception:  # noqa: BLE001 -- a crash is what we look for
            self.stats["crashes"].append({"source": source, "error": traceback.format_exc()[-2000:],
                                          "text": text[:4000]})
            return
        elapsed = time.process_time() - started
        slowest = self.stats["slowest"]
        slowest.append((round(elapsed, 3), source))
        slowest.sort(reverse=True)
        del slowest[10:]
        if elapsed > self.hang:
            self.stats["hangs"].append({"source": source, "seconds": round(elapsed, 2), "text": text[:4000]})
        internal = [d for d in first if d["code"] == "GRD902"]
        if internal:
            self.stats["crashes"].append({"source": source, "error": internal[0]["message"], "text": text[:4000]})
        if findings(text) != first:
            self.stats["nondeterministic"].append({"source": source, "text": text[:4000]})
        if any(d["code"] == "GRD903" for d in first):
            self.stats["budget_notes"] += 1
            with big_budgets(), alarm(self.hang * 60):
                try:
                    large = findings(text)
                except (Hang, Exception):  # noqa: BLE001 -- only the normal run is judged
                    large = []
            key = lambda d: (d["code"], d["line"], d["column"])  # noqa: E731
            normal = {key(d) for d in first}
            lost = [d for d in large if d["code"] != "GRD903" and key(d) not in normal]
            if lost:
                self.stats["budget_losses"].append({"source": source,
                                                    "lost": [f"{d['line']}:{d['code']}" for d in lost],
                                                    "notes": [d["message"] for d in first if d["code"] == "GRD903"],
                                                    "text": text[:4000]})
        if any(d.get("fix") for d in first):
            self._check_fixes(source, text, first)

    def _check_fixes(self, source: str, text: str, first: list[dict[str, Any]]) -> None:
        from gradlint.fixes import plan_fixes

        result = lint_source(text, "fuzzed.py", CONFIG)
        fixes = [d.fix for d in result.diagnostics if d.fix is not None]
        plan = plan_fixes(text.encode(), fixes)  # type: ignore[arg-type]
        if plan is None or len(plan.applied) != len(fixes):
            self.stats["fix_failures"].append({"source": source, "advertised": len(fixes),
                                               "applied": 0 if plan is None else len(plan.applied),
                                               "text": text[:4000]})


def run_grammar(campaign: Campaign, examples: int, seed: int) -> None:
    import hypothesmith
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck),
              derandomize=False)
    @given(hypothesmith.from_grammar(), st.randoms(use_true_random=False))
    def one(text: str, _rng: random.Random) -> None:
        campaign.check("grammar", text)
        campaign.check("grammar+torch", "import torch.nn as nn\n" + text)

    random.seed(seed)
    one()


def run_mutations(campaign: Campaign, rounds: int) -> None:
    for fixture in test_fuzz.FIXTURES:
        lines = fixture.read_text(encoding="utf-8").splitlines(keepends=True)
        for seed in range(rounds):
            rng = random.Random(f"campaign:{fixture.name}:{seed}")
            for mutated in test_fuzz._mutations(lines, rng):
                campaign.check("mutation", "".join(mutated))


def run_generators(campaign: Campaign, examples: int) -> None:
    from hypothesis import HealthCheck, given, settings

    def make(name: str, strategy: Any) -> Any:
        @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(strategy)
        def one(text: str) -> None:
            campaign.check(name, text)

        return one

    for name, strategy in (("torch-generator", test_fuzz.torch_programs()),
                           ("keras-generator", test_fuzz.keras_programs())):
        make(name, strategy)()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grammar", type=int, default=5000, help="hypothesmith programs (each linted twice)")
    parser.add_argument("--mutation-rounds", type=int, default=2, help="mutation rounds per fixture (~14 each)")
    parser.add_argument("--generated", type=int, default=500, help="model-shaped programs per framework")
    parser.add_argument("--hang", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="fuzz_campaign.json")
    args = parser.parse_args()
    campaign = Campaign(args.hang)
    started = time.monotonic()

    def save() -> None:
        campaign.stats["seconds"] = round(time.monotonic() - started, 1)
        Path(args.out).write_text(json.dumps(campaign.stats, indent=1))

    campaign.save = save
    for phase, action in (("mutations", lambda: run_mutations(campaign, args.mutation_rounds)),
                          ("grammar", lambda: run_grammar(campaign, args.grammar, args.seed)),
                          ("generators", lambda: run_generators(campaign, args.generated))):
        print(f"[{time.monotonic() - started:7.0f} s] {phase} ...", flush=True)
        action()
        save()
        print(f"[{time.monotonic() - started:7.0f} s] {phase} done: {campaign.stats['programs']}", flush=True)
    s = campaign.stats
    print(json.dumps({k: (len(v) if isinstance(v, list) else v) for k, v in s.items() if k != "slowest"}))
    print("slowest", s["slowest"][:5])


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
