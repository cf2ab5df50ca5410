"""Make realistic buggy versions of reference code by editing its source text, and prove that the
hidden tests' verdicts on them (and on the reference and correct variants) never depend on the seed."""
from __future__ import annotations

import inspect
import itertools
import linecache
import secrets
import textwrap

from autograder.hidden import seeded

# Fresh seeds every hidden test is run on, one at a time, by the seed sweep.
SWEEP_SEEDS = 200

_counter = itertools.count()


def mutate(obj, replacements: list[tuple[str, str]]):
    """Return a copy of class/function ``obj`` with each ``old`` replaced by ``new`` once.

    The copy is compiled in the namespace of ``obj``'s module, so it behaves exactly like
    the reference apart from the planted bug.
    """
    src = textwrap.dedent(inspect.getsource(obj))
    for old, new in replacements:
        assert src.count(old) >= 1, f"mutation target {old!r} not found in {obj.__name__}"
        src = src.replace(old, new, 1)
    module = inspect.getmodule(obj)
    ns = dict(vars(module))
    filename = f"<mutant {next(_counter)} of {obj.__name__}>"
    linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)  # so inspect.getsource works
    exec(compile(src, filename, "exec"), ns)
    return ns[obj.__name__]


def exercise(check, hidden_test, names: list[str], ref):
    """One grade_id's entry: (run the visible check, run the hidden test, the reference objects).
    Both runners take a dict {name: object} and pass the objects in the order of ``names``."""
    return (lambda o: check(*(o[n] for n in names)), lambda o: hidden_test(*(o[n] for n in names)),
            {n: getattr(ref, n) for n in names})


def exercise_tests(ref, exercises: dict, mutants: list, variants: list) -> dict:
    """The four standard tests of one DAY's checks, for ``globals().update(...)`` in its test module:

    - the reference passes the visible check and the hidden test of every exercise;
    - every mutant (grade_id, name, object to mutate, replacements, regex expected in the visible
      message) fails the visible check with that message, and fails the hidden test;
    - every exercise has at least two mutants;
    - every correct variant (grade_id, {name: object}) passes both.
    """
    import pytest

    def _objects(gid, target=None, repl=None):
        objs = dict(exercises[gid][2])
        if target:
            objs[target] = mutate(getattr(ref, target), repl)
        return objs

    @pytest.mark.parametrize("gid", list(exercises))
    def test_reference_passes(gid):
        visible, hidden_test, objs = exercises[gid]
        visible(objs)
        hidden_test(objs)

    @pytest.mark.parametrize("gid,name,target,repl,hint", mutants, ids=[f"{m[0]}: {m[1]}" for m in mutants])
    def test_mutant_is_caught(gid, name, target, repl, hint):
        visible, hidden_test, _ = exercises[gid]
        objs = _objects(gid, target, repl)
        with pytest.raises(AssertionError, match=hint):
            visible(objs)
        with pytest.raises(AssertionError):
            hidden_test(objs)

    def test_every_exercise_has_two_mutants():
        counts = {gid: sum(m[0] == gid for m in mutants) for gid in exercises}
        assert min(counts.values()) >= 2, counts

    @pytest.mark.parametrize("gid,objs", variants, ids=[v[0] for v in variants])
    def test_correct_variant_passes(gid, objs):
        visible, hidden_test, _ = exercises[gid]
        visible(objs)
        hidden_test(objs)

    return {f.__name__: f for f in (test_reference_passes, test_mutant_is_caught, test_every_exercise_has_two_mutants,
                                    test_correct_variant_passes)}


def seed_sweep(hidden_test, correct: dict[str, object], wrong: dict[str, object], seeds: int = SWEEP_SEEDS) -> None:
    """Run ``hidden_test`` on ``seeds`` fresh seeds, one seed per call (autograder.hidden.seeded): every
    ``correct`` implementation must pass on every seed, every ``wrong`` one must fail on every seed.
    The seeds are new at each run; a failure names the seed, so it can be replayed."""
    __tracebackhide__ = True
    for seed in (secrets.randbelow(2**31) for _ in range(seeds)):
        with seeded(seed):
            for label, objs in correct.items():
                try:
                    hidden_test(objs)
                except AssertionError as e:
                    raise AssertionError(f"{label} fails the hidden test on seed {seed}: {e}") from None
            for label, objs in wrong.items():
                try:
                    hidden_test(objs)
                except AssertionError:
                    continue
                raise AssertionError(f"mutant '{label}' passes the hidden test on seed {seed}")


def seed_sweep_tests(ref, exercises: dict, mutants: list, variants: list, seeds: dict[str, int] | None = None) -> dict:
    """The seed-sweep test of one DAY, parametrized by grade_id: the reference and every correct variant
    pass the hidden test on each of :data:`SWEEP_SEEDS` fresh seeds, and every mutant fails on each.
    ``seeds`` lowers the count for the grade_ids named (hidden tests that train or sample at length)."""
    import pytest

    @pytest.mark.parametrize("gid", list(exercises))
    def test_no_verdict_depends_on_the_seed(gid):
        _, hidden_test, objs = exercises[gid]
        correct = {"the reference": objs} | {f"correct variant {i}": dict(objs, **v) for i, (g, v) in
                                            enumerate(variants) if g == gid}
        wrong = {name: dict(objs, **{target: mutate(getattr(ref, target), repl)})
                 for g, name, target, repl, _ in mutants if g == gid}
        seed_sweep(hidden_test, correct, wrong, (seeds or {}).get(gid, SWEEP_SEEDS))

    return {"test_no_verdict_depends_on_the_seed": test_no_verdict_depends_on_the_seed}
