"""Make realistic buggy versions of reference code by editing its source text, and prove that the
hidden tests' verdicts on them (and on the reference and correct variants) never depend on the seed."""
from __future__ import annotations

import contextlib
import copy
import inspect
import itertools
import linecache
import secrets
import textwrap

from autograder.hidden import seeded

# Fresh seeds every hidden test is run on, one at a time, by the seed sweep: the reference on each of
# SWEEP_SEEDS, every correct variant and every mutant on each of the first FEW_SEEDS (the tables hold
# several of each per exercise; sweeping all of them 200 times would cost minutes per DAY).
SWEEP_SEEDS = 200
FEW_SEEDS = 40

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


def exercise_tests(ref, exercises: dict, mutants: list, variants: list, seed_free: dict | None = None) -> dict:
    """The four standard tests of one DAY's checks, for ``globals().update(...)`` in its test module:

    - the reference passes the visible check and the hidden test of every exercise;
    - every mutant (grade_id, name, object to mutate, replacements, regex expected in the visible
      message) fails the visible check with that message, and fails the hidden test;
    - every exercise has at least two mutants;
    - every correct variant (grade_id, {name: object}) passes both.

    For a grade_id in ``seed_free`` (see :func:`seed_sweep_tests`), the reference and the variants run
    only the seeded part of the hidden test here: the sweep runs its fixed-seed part (a training run)
    on each of them once already.
    """
    import pytest

    seed_free = seed_free or {}

    def _hidden_for_correct_code(gid):
        return seed_free[gid][0] if gid in seed_free else exercises[gid][1]

    def _objects(gid, target=None, repl=None):
        objs = dict(exercises[gid][2])
        if target:
            objs[target] = mutate(getattr(ref, target), repl)
        return objs

    @pytest.mark.parametrize("gid", list(exercises))
    def test_reference_passes(gid):
        visible, _, objs = exercises[gid]
        visible(objs)
        _hidden_for_correct_code(gid)(objs)

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
        visible = exercises[gid][0]
        visible(objs)
        _hidden_for_correct_code(gid)(objs)

    return {f.__name__: f for f in (test_reference_passes, test_mutant_is_caught, test_every_exercise_has_two_mutants,
                                    test_correct_variant_passes)}


def seed_sweep(hidden_test, correct: dict[str, object], wrong: dict[str, object], seeds: int = SWEEP_SEEDS,
               few: int = FEW_SEEDS) -> None:
    """Run ``hidden_test`` on ``seeds`` fresh seeds, one seed per call (autograder.hidden.seeded): the
    first ``correct`` implementation (the reference) must pass on every seed; the other correct ones
    must pass, and every ``wrong`` one must fail, on each of the first ``few``. The seeds are new at each
    run; a failure names the seed, so it can be replayed."""
    __tracebackhide__ = True
    for number, seed in enumerate(secrets.randbelow(2**31) for _ in range(seeds)):
        if number == few:
            correct, wrong = dict(list(correct.items())[:1]), {}
        with seeded(seed):
            for label, objs in correct.items():
                try:
                    hidden_test(objs)
                except Exception as e:  # a crash too: name the seed, so it can be replayed
                    raise AssertionError(f"{label} fails the hidden test on seed {seed}: {type(e).__name__}: {e}") \
                        from None
            for label, objs in wrong.items():
                try:
                    hidden_test(objs)
                except AssertionError:
                    continue
                raise AssertionError(f"mutant '{label}' passes the hidden test on seed {seed}")


def seed_sweep_tests(ref, exercises: dict, mutants: list, variants: list, seed_free: dict | None = None) -> dict:
    """The seed-sweep test of one DAY, parametrized by grade_id: the reference and every correct variant
    pass the hidden test (the reference on each of :data:`SWEEP_SEEDS` fresh seeds, the variants on
    each of the first :data:`FEW_SEEDS`), and every mutant fails on each of the first :data:`FEW_SEEDS`.

    ``seed_free`` maps a grade_id whose hidden test is two parts, (seeded part, part with a fixed seed),
    to those two runners: the seeded part is swept, and the fixed-seed part (a training run) is run once
    per implementation with fresh seeds forbidden, which proves that its verdict is the same for every
    seed. A mutant must then fail the seeded part on every seed, or the fixed-seed part."""
    import pytest

    seed_free = seed_free or {}

    @pytest.mark.parametrize("gid", list(exercises))
    def test_no_verdict_depends_on_the_seed(gid):
        _, hidden_test, objs = exercises[gid]
        correct = {"the reference": objs} | {f"correct variant {i}": dict(objs, **v) for i, (g, v) in
                                            enumerate(variants) if g == gid}
        wrong = {name: dict(objs, **{target: mutate(getattr(ref, target), repl)})
                 for g, name, target, repl, _ in mutants if g == gid}
        if gid not in seed_free:
            seed_sweep(hidden_test, correct, wrong)
            return
        seeded_part, fixed_part = seed_free[gid]
        caught_by_seeded = {}
        for label, objs in wrong.items():
            with seeded(0):
                try:
                    seeded_part(objs)
                    caught_by_seeded[label] = False
                except AssertionError:
                    caught_by_seeded[label] = True
        seed_sweep(seeded_part, correct, {k: v for k, v in wrong.items() if caught_by_seeded[k]})
        with _fresh_seeds_forbidden():
            for label, objs in correct.items():
                fixed_part(objs)
            for label, objs in wrong.items():
                if not caught_by_seeded[label]:
                    with pytest.raises(AssertionError):
                        fixed_part(objs)

    return {"test_no_verdict_depends_on_the_seed": test_no_verdict_depends_on_the_seed}


@contextlib.contextmanager
def _fresh_seeds_forbidden():
    """Inside the block, drawing a fresh seed (autograder.hidden.fresh_seed) is an error."""
    import autograder.hidden as hidden

    def refuse():
        raise RuntimeError("this part of the hidden test drew a fresh seed, so its verdict may depend on it")

    before, hidden.fresh_seed = hidden.fresh_seed, refuse
    try:
        yield
    finally:
        hidden.fresh_seed = before


def doctored_observations_fail(honest: dict, doctored: list, *, seed: int, settings: dict | None = None) -> None:
    """The judge's verdicts decide on everything a pass rests on: each ``verdict`` passes the reference's
    honest observations ``honest[verdict]``, and fails, with a message matching ``message``, a copy of them
    changed by ``doctor`` as a hostile kernel could (``doctored``: (verdict, doctor, message) rows).
    ``settings`` gives a verdict's extra keyword arguments."""
    import pytest

    settings = settings or {}
    for verdict, observations in honest.items():
        verdict(observations, seed=seed, **settings.get(verdict, {}))
    for verdict, doctor, message in doctored:
        bad = copy.deepcopy(honest[verdict])
        doctor(bad)
        with pytest.raises(AssertionError, match=message):
            verdict(bad, seed=seed, **settings.get(verdict, {}))
