"""herexp's Optuna sweeper without training: the search space, the one-line errors before any
trial, trial folder names, the seeds' mean at the same env step, a trial's value from its
seeds' summaries, and sweep=tune_push composed."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from herexp import identity, jobs, train
from herexp import runfolder as rf
from herexp.cli import UsageError
from herexp.search import driver, is_search, space, storage
from herexp.search.reporter import PRUNED_AT, TrialReporter
from tests.conftest import compose_cfg

SEARCH = ["--multirun", "hydra/sweeper=optuna", "env=reach"]
GAMMA = "algo.gamma=choice(0.9,0.95)"


def test_space_in_hydras_grammar() -> None:
    sp = space.parse_space(["algo.gamma=0.9,0.95", "her.n_sampled_goal=range(2,9,2)", "algo.tau=interval(0.001,0.1)",
                            "entropy.value=tag(log, interval(0.01,0.3))", "algo.learning_starts=interval(1000,5000)",
                            "total_steps=300", "algo.gamma=choice(0.95,0.98)"],
                           {"algo.learning_starts": 1000}.get)
    assert sp.params == {"her.n_sampled_goal": IntDistribution(2, 8, step=2),
                         "algo.tau": FloatDistribution(0.001, 0.1),
                         "entropy.value": FloatDistribution(0.01, 0.3, log=True),
                         "algo.learning_starts": IntDistribution(1000, 5000),  # an int key samples integers
                         "algo.gamma": CategoricalDistribution([0.95, 0.98])}  # the later line wins
    assert sp.fixed == ["total_steps=300"]
    assert sp.overrides({"her.n_sampled_goal": 4, "algo.tau": 0.01, "entropy.value": 0.05,
                         "algo.learning_starts": 2000, "algo.gamma": 0.98}) == [
        "total_steps=300", "her.n_sampled_goal=4", "algo.tau=0.01", "entropy.value=0.05",
        "algo.learning_starts=2000", "algo.gamma=0.98"]
    grid = space.parse_space(["algo.gamma=choice(0.95,0.98)", "her.n_sampled_goal=range(4,9,4)"])
    assert grid.grid() == {"algo.gamma": [0.95, 0.98], "her.n_sampled_goal": [4, 8]} and grid.grid_size() == 4


BAD = [
    ([*SEARCH, "algo.gamma=uniform(0.9,0.99)"],
     "error: algo.gamma=uniform(0.9,0.99): unknown function uniform(); a search space takes choice(a,b,...), "
     "range(start,stop[,step]), interval(lo,hi) or tag(log, interval(lo,hi))"),
    ([*SEARCH, "algo.gamma=tag(lg, interval(0.9,0.99))"],
     "error: algo.gamma=tag(lg, interval(0.9,0.99)): unknown tag lg (did you mean log?); an interval takes "
     "tag(log, interval(lo,hi))"),
    ([*SEARCH, "algo.gama=choice(0.9,0.95)"],
     "error: unknown key algo.gama (did you mean algo.gamma?) (search space: algo.gama=choice(0.9,0.95))"),
    ([*SEARCH, "algo.gamma=choice()"],
     "error: algo.gamma=choice(): an empty choice. Fix: list the values, e.g. algo.gamma=choice(a,b)"),
    ([*SEARCH, "algo.gamma=interval(0.99,0.9)"],
     "error: algo.gamma=interval(0.99,0.9): interval lo 0.99 must be below hi 0.9. Fix: algo.gamma=interval(0.9,0.99)"),
    ([*SEARCH, "algo.tau=interval(0.1,0.1)"],
     "error: algo.tau=interval(0.1,0.1): interval lo 0.1 must be below hi 0.1. Fix: algo.tau=interval(0.1,0.2)"),
    ([*SEARCH, "hydra.sweeper.n_trials=0", GAMMA],
     "error: hydra.sweeper.n_trials=0 is invalid: must be >= 1. Fix: hydra.sweeper.n_trials=20"),
    ([*SEARCH, "hydra.sweeper.n_trials=-3", GAMMA],
     "error: hydra.sweeper.n_trials=-3 is invalid: must be >= 1. Fix: hydra.sweeper.n_trials=20"),
    ([*SEARCH, "hydra.sweeper.seeds_per_trial=3", "seed=choice(0,1)", GAMMA],
     "error: seed=choice(0,1): seed is in the search space and hydra.sweeper.seeds_per_trial=3 runs seeds "
     "seed..seed+2 per trial. Fix: drop seed= from the space (seed=N sets the first seed), or "
     "hydra.sweeper.seeds_per_trial=1"),
    ([*SEARCH, "algo.gamma=interval(0.9,1.5)"],
     "error: algo.gamma=1.5 is invalid: must be in (0, 1]. Fix: algo.gamma=0.95 (search space: "
     "algo.gamma=interval(0.9,1.5))"),
    ([*SEARCH, "hydra.sweeper.sampler=grid", "algo.gamma=interval(0.9,0.99)"],
     "error: algo.gamma=interval(0.9,0.99) is continuous: hydra.sweeper.sampler=grid needs a discrete space. "
     "Fix: algo.gamma=choice(...), or hydra.sweeper.sampler=tpe"),
    ([*SEARCH, "hydra.sweeper.pruner=medain", GAMMA],
     "error: hydra.sweeper.pruner=medain is not one of median, successive_halving, hyperband, none "
     "(did you mean median?)"),
    ([*SEARCH, "entropy=choice(fixed_005,fixd_01)"],
     "error: entropy=fixd_01 is not an option (did you mean fixed_01?): choose one of adaptive, auto, auto_floor, "
     "fixed, fixed_005, fixed_01, fixed_02, none, schedule (herexp/conf/entropy/)"),
    ([*SEARCH, "total_steps=300"],
     "error: the search space is empty: give hydra.sweeper.params in a sweep file or key=choice(...) on the "
     "command line (choice(a,b,...), range(start,stop[,step]), interval(lo,hi) or tag(log, interval(lo,hi)))"),
]


@pytest.mark.parametrize(("argv", "expected"), BAD, ids=[a[-1] for a, _ in BAD])
def test_bad_search_input_is_one_line_before_any_trial(argv: list[str], expected: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        train.cli_main(argv)
    assert exc.value.code == 2
    assert capsys.readouterr().err == expected + "\n"
    assert list(tmp_path.iterdir()) == []  # no multirun/ folder, no journal: nothing started


def test_tune_push_composes_with_the_sweeper() -> None:
    cfg = compose_cfg(["sweep=tune_push"], hydra_cfg=True)
    assert is_search(cfg) and cfg.study == "tune_push" and cfg.hydra.runtime.choices["hydra/sweeper"] == "optuna"
    # the push_fast base
    assert (cfg.env.id, cfg.total_steps, cfg.n_envs, cfg.algo.learning_rate, cfg.algo.tau, cfg.eval.freq) == (
        "FetchPush-v4", 500_000, 4, 1e-3, 0.05, 25_000)
    assert dict(cfg.hydra.sweeper.params) == {"entropy.value": "choice(0.05,0.1,0.2)", "her.n_sampled_goal": "choice(4,8)",
                                              "algo.learning_starts": "choice(1000,5000)",
                                              "algo.gamma": "choice(0.95,0.98)"}
    assert (cfg.hydra.sweeper.n_trials, cfg.hydra.sweeper.pruner, cfg.hydra.sweeper.sampler) == (24, "median", "tpe")
    s, sp = driver.plan(jobs.composer().base(["sweep=tune_push"]), ["sweep=tune_push"])
    assert s.n_trials == 24 and sp.grid_size() == 24 and sp.fixed == ["sweep=tune_push"]


def test_trial_folders_lead_with_the_trial_number() -> None:
    job = ["entropy.value=0.1", "algo.gamma=0.98", "trial.number=7", "trial.storage=/x/optuna.journal",
           "trial.params=[entropy.value,algo.gamma]", "seed=1"]
    cfg = jobs.composer().job(["experiment=push_fast", *job])
    assert identity.job_dir_name(cfg, job) == "trial007_ent0.1_g0.98_seed1"
    assert identity.trial_config(cfg, {}) == {"trial/number": 7, "trial/entropy.value": 0.1, "trial/algo.gamma": 0.98}
    assert "trial/number" not in identity.wandb_config({}, jobs.composer().job(["seed=1"]), ["seed=1"], {})


def _study(tmp_path: Path, pruner: str = "median") -> optuna.Study:
    meta = {"space": {}, "direction": "maximize", "seeds_per_trial": 2, "pruner": pruner,
            "pruner_kwargs": {"n_startup_trials": 0}}
    spec = storage.storage_spec(None, tmp_path)
    return storage.create_or_load(spec, "unit", meta, optuna.samplers.RandomSampler(seed=0),
                                  optuna.pruners.NopPruner())


class _Metrics:
    def __init__(self) -> None:
        self.eval_history: list[tuple[int, float]] = []


def _reporter(tmp_path: Path, seed: int, metrics: _Metrics) -> TrialReporter:
    cfg = OmegaConf.create({"study": "unit", "seed": seed, "trial": {
        "number": 0, "storage": storage.storage_spec(None, tmp_path), "params": []}})
    rep = TrialReporter(cfg, metrics)
    rep._on_training_start()
    return rep


def test_seeds_are_judged_on_their_mean_at_the_same_env_step(tmp_path: Path) -> None:
    study = _study(tmp_path)
    trial = study.ask()
    trial.set_user_attr("seeds", [0, 1])
    m0, m1 = _Metrics(), _Metrics()
    r0, r1 = _reporter(tmp_path, 0, m0), _reporter(tmp_path, 1, m1)
    m0.eval_history += [(100, 0.2), (200, 0.4)]  # seed 0 runs ahead: nothing is reported yet
    assert r0._on_step() and study.trials[0].intermediate_values == {}
    m1.eval_history.append((100, 0.6))  # seed 1 completes step 100
    assert r1._on_step() and study.trials[0].intermediate_values == {100: 0.4}
    m1.eval_history.append((200, 0.0))
    assert r1._on_step() and study.trials[0].intermediate_values == {100: 0.4, 200: 0.2}
    study._storage.set_trial_system_attr(study.trials[0]._trial_id, PRUNED_AT, 200)  # judged elsewhere
    m0.eval_history.append((300, 0.5))
    assert r0._on_step() is False and r0.judged_at == 200  # the other seed stops at its next evaluation


def _summary(run: Path, status: str, success: float | None = None) -> None:
    rf.write_summary(run, {"status": status, "success_rate": success, "pruned_at_step": 300})


def test_a_trials_value_is_the_mean_of_its_seeds_summaries(tmp_path: Path) -> None:
    study = _study(tmp_path)
    runner = driver.StudyRunner(study, space.Space(), OmegaConf.create(
        {"study": "unit", "seed": 0, "hydra": {"sweep": {"dir": str(tmp_path)}}}), None, "", 3, 2, 1)
    outcomes = [("completed", 0.5, "completed", 0.25), ("completed", 0.5, "pruned", None),
                ("completed", 0.5, "failed", None)]
    for i, (st0, v0, st1, v1) in enumerate(outcomes):
        study.ask()
        runs = [driver.Run(i, [], tmp_path / f"t{i}_seed{s}") for s in (0, 1)]
        _summary(runs[0].folder, st0, v0)
        _summary(runs[1].folder, st1, v1)
        runner._tell(driver.Trial(i, {}, runs, ended=2))
    assert [(t.state.name, t.value) for t in study.trials] == [("COMPLETE", 0.375), ("PRUNED", None),
                                                               ("FAIL", None)]
    assert driver.trial_counts(study) == {"completed": 1, "pruned": 1, "failed": 1, "running": 0}


def test_a_rerun_with_another_space_is_refused(tmp_path: Path) -> None:
    _study(tmp_path)
    other = {"space": {"algo.gamma": {}}, "direction": "maximize", "seeds_per_trial": 2}
    with pytest.raises(UsageError, match="study unit in .* was made with another space"):
        storage.create_or_load(storage.storage_spec(None, tmp_path), "unit", other, None, None)
