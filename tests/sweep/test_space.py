"""The trials a sweep asks for: grid, random with a seed, Optuna's ask-and-tell."""

from __future__ import annotations

from kmlc.config.spec import SweepParam, SweepSpec
from kmlc.sweep.space import params_command, search_for


def _all(sweep: SweepSpec) -> list:
    search = search_for(sweep)
    out = []
    while (trial := search.ask()) is not None:
        out.append(trial)
        search.tell(trial, float(len(out)))
    return out


def test_grid_crosses_candidates_with_their_own_parameters() -> None:
    sweep = SweepSpec("r2", "maximize", parameters=(
        SweepParam("split.seed", values=(1, 2)),
        SweepParam("ridge.alpha", values=(0.1, 1.0), candidate="ridge"),
        SweepParam("forest.depth", values=(3,), candidate="forest"),
    ), candidates=("ridge", "forest"))
    trials = _all(sweep)
    assert [(t.candidate, dict(t.values)) for t in trials] == [
        ("ridge", {"split.seed": 1, "ridge.alpha": 0.1}),
        ("ridge", {"split.seed": 1, "ridge.alpha": 1.0}),
        ("ridge", {"split.seed": 2, "ridge.alpha": 0.1}),
        ("ridge", {"split.seed": 2, "ridge.alpha": 1.0}),
        ("forest", {"split.seed": 1, "forest.depth": 3}),
        ("forest", {"split.seed": 2, "forest.depth": 3}),
    ]
    assert search_for(sweep).total == 6
    assert [t.number for t in trials] == [1, 2, 3, 4, 5, 6]


def test_random_is_reproducible_and_stays_in_its_ranges() -> None:
    sweep = SweepSpec("r2", "maximize", method="random", trials=50, seed=11, parameters=(
        SweepParam("a", low=0.001, high=10.0, log=True),
        SweepParam("n", low=2, high=5, type="int"),
        SweepParam("k", values=("x", "y")),
    ))
    first, second = _all(sweep), _all(sweep)
    assert [t.values for t in first] == [t.values for t in second]
    assert len(first) == 50
    assert all(0.001 <= t.values["a"] <= 10.0 for t in first)
    assert {t.values["n"] for t in first} == {2, 3, 4, 5}
    assert {t.values["k"] for t in first} == {"x", "y"}
    assert sum(t.values["a"] < 0.1 for t in first) > 10  # log scale: small values drawn
    other = _all(SweepSpec("r2", "maximize", method="random", trials=50, seed=12,
                           parameters=sweep.parameters))
    assert [t.values for t in other] != [t.values for t in first]


def test_optuna_asks_and_learns_from_what_it_is_told() -> None:
    sweep = SweepSpec("loss", "minimize", method="optuna", trials=30, seed=1, parameters=(
        SweepParam("x", low=-10.0, high=10.0),
        SweepParam("choice", values=("a", "b")),
    ))
    search = search_for(sweep)
    seen = []
    while (trial := search.ask()) is not None:
        loss = (trial.values["x"] - 3) ** 2 + (0 if trial.values["choice"] == "b" else 5)
        seen.append(loss)
        search.tell(trial, None if trial.number == 2 else loss)  # one failed trial
    assert len(seen) == 30
    study = search.study  # type: ignore[attr-defined]
    assert [t.state.name for t in study.trials].count("FAIL") == 1
    assert study.best_params["choice"] == "b"
    assert min(seen[20:]) < min(seen[:10])  # the sampler learnt from the first trials


def test_the_command_that_reproduces_a_trial() -> None:
    sweep = SweepSpec("r2", "maximize", parameters=(SweepParam("model.kind", values=("a b",)),
                                                   SweepParam("model.c", values=(0.5,))))
    (trial,) = _all(sweep)
    assert params_command("training", trial) == (
        "kmlc run training --params 'model.kind=a b' --params model.c=0.5")
    assert params_command("training", trial, "x/mlproject.yml").startswith(
        "kmlc run training -f x/mlproject.yml ")


def test_the_command_that_reproduces_a_candidate_trial_runs_that_candidate() -> None:
    sweep = SweepSpec("r2", "maximize", candidates=("ridge", "forest"),
                      parameters=(SweepParam("forest.depth", values=(4,), candidate="forest"),))
    trials = _all(sweep)
    assert [params_command("training", t) for t in trials] == [
        "kmlc run training --candidate ridge",
        "kmlc run training --candidate forest --params forest.depth=4"]
