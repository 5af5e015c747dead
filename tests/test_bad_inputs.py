"""Every input mistake: exit status 2, one ``error:`` line naming the key, no traceback, and
nothing started (no run or sweep folder). Add a row when a user finds a new one."""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import pytest

from herexp import cli, evaluate, sweep, train, video
from herexp.aggregate import __main__ as aggregate_cli
from herexp.bench import cli as bench_cli
from herexp.her import lab
from herexp.video import cli as video_cli
from tests.conftest import TINY, run_cli

# (argv, substrings the message must contain)
TRAIN = [
    (["--multirun", "sweep=ch04"], ["sweep=ch04 is not an option", "did you mean ch04_push?", "her_vs_noher"]),
    (["sweep=ch04"], ["sweep=ch04 is not an option"]),
    (["experiment=reach_quikstart", "--cfg", "job"], ["experiment=reach_quikstart", "reach_quickstart"]),
    (["sweep=ch04_push"], ["sweep=ch04_push is a grid", "add --multirun"]),
    (["seed=0,1"], ["seed=0,1", "add --multirun"]),
    (["algo.gamma=1.5"], ["algo.gamma=1.5", "(0, 1]", "Fix: algo.gamma=0.95"]),
    (["algo.buffer_size=0"], ["algo.buffer_size=0"]),
    (["algo.learning_rate=-1"], ["algo.learning_rate=-1"]),
    (["her.n_sampled_goal=-1"], ["her.n_sampled_goal=-1"]),
    (["entropy=fixed_005", "entropy.value=-0.1"], ["entropy.value=-0.1"]),
    (["eval.n_episodes=0"], ["eval.n_episodes=0"]),
    (["n_envs=-2"], ["n_envs=-2"]),
    (["logger.wandb.mode=onlin"], ["logger.wandb.mode='onlin'", "offline, online or disabled"]),
    (["logger.wandb.init_timeout=0"], ["logger.wandb.init_timeout=0"]),
    (["algo.gama=0.9"], ["unknown key algo.gama (did you mean algo.gamma?)"]),
    (["+algo.gama=0.9"], ["unknown key algo.gama (did you mean algo.gamma?)"]),
    (["eval.n_episode=5"], ["unknown key eval.n_episode (did you mean eval.n_episodes?)"]),
    (["seed=abc"], ["seed", "could not be converted to Integer"]),
    (["env=nope"], ["env=nope is not an option", "pick_and_place, push, push_dense, reach, reach_dense, slide"]),
    (["entropy=fixd_005"], ["entropy=fixd_005 is not an option", "did you mean fixed_005?"]),
    (["algo=sac_fats"], ["algo=sac_fats is not an option", "did you mean sac_fast?"]),
    (["env=push", "her=on", "n_envs=8", "algo.learning_starts=200"],
     ["algo.learning_starts=200", "8 x 50 = 400", "Fix: algo.learning_starts=400"]),
    (["total_steps=-5"], ["total_steps=-5"]),
    (["algo=sac", "algo.overlap_envs=true"],
     ["unknown key algo.overlap_envs (algo=sac has no overlap_envs; it is a key of algo=sac_fast)"]),
    (["entropy=schedule", "entropy.value=1"],
     ["unknown key entropy.value (entropy=schedule has no value; it is a key of entropy=fixed, fixed_005"]),
    (["algo=td3", "entropy=fixed_005"],
     ["entropy='fixed' is invalid: must be none with algo=td3", "entropy options apply to algo=sac_fast, sac, tqc",
      "Fix: leave out entropy= (algo=td3 selects entropy=none)"]),
    (["algo=sac", "entropy=none"], ["entropy='none' is invalid", "algo=sac", "Fix: entropy=auto"]),
    (["algo=td3", "algo.policy_delai=3"], ["unknown key algo.policy_delai (did you mean algo.policy_delay?)"]),
    (["algo=tqc", "algo.top_quantiles_to_drop_per_net=30"], ["algo.top_quantiles_to_drop_per_net=30",
                                                             "in [0, algo.n_quantiles=25)"]),
    (["her.goal_selection_strategy=past"], ["her.goal_selection_strategy='past'"]),
    (["algo.net_arch=[0]"], ["algo.net_arch=[0]"]),
    (["algo.random_action_prob=1.5"], ["algo.random_action_prob=1.5 is invalid: must be in [0, 1)"]),
    (["algo.clip_obs=5"], ["algo.clip_obs=5.0 is invalid", "Fix: algo.normalize=true"]),
    (["arm=rand03"], ["arm=rand03 is not an option", "did you mean rand0.3?"]),
    (["env.id=Nope-v0"], ["env.id='Nope-v0' is not a registered Gymnasium env"]),
    (["env.id=Pendulum-v1"], ["her.enabled=true needs a goal-conditioned env", "Fix: her=off"]),
    (["device=tpu"], ["device='tpu'"]),
    (["eval.freq=-1"], ["eval.freq=-1"]),
    (["entropy.mode=bogus"], ["unknown key entropy.mode"]),
    (["algo=tdd3"], ["algo=tdd3 is not an option", "did you mean td3?", "ddpg, sac, sac_fast, td3, tqc"]),
    (["torch_threads=0"], ["torch_threads=0"]),
    (["early_stop.success=1.5"], ["early_stop.success=1.5", "in (0, 1]"]),
    (["early_stop.success=0.9", "eval.freq=0"], ["early_stop.success=0.9", "eval.freq > 0"]),
    (["--multirun", "seed=0,1", "algo.gamma=0.95,1.5"],
     ["algo.gamma=1.5", "2 of 4 sweep jobs are invalid; no job was started", "g1.5_seed0"]),
    (["--multirun", "her=on,of"], ["her=of is not an option", "choose one of off, on"]),
    (["--multirun", "sweep=ch04_push", "entropy.value=-1"], ["entropy.value=-1", "120 of 120 sweep jobs"]),
    # Hydra checks a multirun's plain overrides against the default option of a swept group
    (["--multirun", "algo=td3,ddpg", "algo.action_noise_std=0.1"],
     ["algo.action_noise_std is not a key of the default algo=sac_fast", "Fix: ++algo.action_noise_std=0.1"]),
    # a study or a run name is one folder: it cannot climb out of multirun/ or outputs/
    (["--multirun", "seed=0", "study=../../escaped"],
     ["study='../../escaped' is invalid: must be a folder name: letters, digits and . _ - = , + only, not '.' and "
      "no '..'. Fix: study=escaped", "1 of 1 sweep jobs are invalid"]),
    (["study=/tmp/abs"], ["study='/tmp/abs' is invalid", "Fix: study=tmp-abs"]),
    (["name=a/b"], ["name='a/b' is invalid", "Fix: name=a-b"]),
    (["study=.."], ["study='..' is invalid", "Fix: study=default"]),
    (["--multirun", "algo=td3,sac", "++algo.action_noise_std=0.1"],
     ["unknown key algo.action_noise_std: algo=sac has no action_noise_std", "1 of 2 sweep jobs are invalid"]),
]


@pytest.mark.parametrize(("argv", "expected"), TRAIN, ids=[" ".join(a) for a, _ in TRAIN])
def test_train_rejects(argv: list[str], expected: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        train.cli_main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.startswith("error: ") and "Traceback" not in err
    for text in expected:
        assert text in err, (text, err)
    assert list(tmp_path.iterdir()) == []  # no outputs/ or multirun/ folder: nothing started


SWEEP_LIST = [
    (["list", "sweep=ch04"], ["sweep=ch04 is not an option"]),
    (["list", "sweep=her_vs_noher", "algo.gamma=2"], ["algo.gamma=2", "6 of 6 sweep jobs"]),
]


@pytest.mark.parametrize(("argv", "expected"), SWEEP_LIST, ids=[" ".join(a) for a, _ in SWEEP_LIST])
def test_sweep_list_rejects(argv: list[str], expected: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert sweep.main(argv) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and captured.out == ""
    for text in expected:
        assert text in captured.err


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An interrupted run (no model), a folder that is not a run, and a corrupt checkpoint."""
    root = tmp_path_factory.mktemp("folders")
    interrupted = root / "interrupted"
    (interrupted / ".hydra").mkdir(parents=True)
    (interrupted / ".hydra" / "config.yaml").write_text("env: {id: FetchReach-v4}\n")
    (interrupted / "summary.json").write_text(json.dumps(
        {"status": "interrupted", "interrupted_at_step": 1200, "name": "reach_her_auto_seed0"}))
    (root / "not_a_run").mkdir()
    corrupt = root / "corrupt" / "model.zip"
    corrupt.parent.mkdir()
    with zipfile.ZipFile(corrupt, "w") as z:
        z.writestr("data", "not an SB3 checkpoint")
    return {"interrupted": interrupted, "not_a_run": root / "not_a_run", "corrupt": corrupt, "root": root}


TOOLS = [
    ("evaluate", ["run_dir={root}/nope"], ["run_dir=", "nope: folder not found"]),
    ("evaluate", ["run_dir={interrupted}"], ["has no model.zip", "interrupted at 1200 env steps"]),
    ("evaluate", ["run_dir={not_a_run}"], ["is not a run folder"]),
    ("evaluate", ["run_dir={interrupted}", "n_episode=3"], ["unknown key n_episode (did you mean n_episodes?)"]),
    ("evaluate", ["run_dir={interrupted}", "n_episodes=abc"], ["n_episodes", "Integer"]),
    ("evaluate", ["checkpoint={root}/missing.zip", "env=FetchReach-v4"], ["checkpoint=", "file not found"]),
    ("evaluate", ["checkpoint={corrupt}", "env=FetchReach-v4"], ["cannot read checkpoint", "model.zip"]),
    ("evaluate", [], ["give run_dir="]),
    ("evaluate", ["--run_dir", "x"], ["unexpected argument '--run_dir'"]),
    ("video", ["run_dir={root}/nope"], ["nope: folder not found"]),
    ("video", ["run_dir={interrupted}"], ["interrupted at 1200 env steps"]),
    ("video", ["run_dir={interrupted}", "episods=2"], ["unknown key episods (did you mean episodes?)"]),
    ("video", ["sweep_dir={root}/nope"], ["sweep_dir=", "folder not found"]),
    ("video", [], ["give exactly one of run_dir"]),
    ("aggregate", ["{root}/nope"], ["path not found: ", "nope"]),
    ("aggregate", ["raw={root}/nope.json"], ["path not found: ", "nope.json"]),
    ("aggregate", ["{root}", "metric=succes_rate"], ["metric=succes_rate is not one of success_rate, return_mean, "
                                                     "final_distance_mean (did you mean success_rate?)"]),
    ("aggregate", ["{root}", "rep=10"], ["unknown key rep (did you mean reps?)"]),
    ("aggregate", ["{not_a_run}"], ["no completed run with a finite success_rate in [", "not_a_run"]),
    ("aggregate", [], ["give one or more folders, or raw=<file.json>"]),
    ("aggregate", ["--raw", "x.json"], ["unexpected argument '--raw'"]),
    ("bench", ["presets=push9"], ["presets=push9 is not one of push8, push1, reach1 (did you mean push8?)"]),
    ("bench", ["variants=stock,fats"], ["variants=fats is not one of", "(did you mean fast?)"]),
    ("bench", ["repeat=3"], ["unknown key repeat (did you mean repeats?)"]),
    ("bench", ["repeats=0"], ["repeats=0 is invalid: must be >= 1"]),
    ("bench", ["presets=reach1", "overrides=[algo.gama=0.9]"], ["unknown key algo.gama (did you mean algo.gamma?)"]),
    ("bench", ["presets=reach1", "overrides=[algo.gamma=1.5]"], ["algo.gamma=1.5 is invalid", "Fix: algo.gamma=0.95"]),
    ("bench", ["--presets", "push8"], ["unexpected argument '--presets'"]),
    ("lab", [], ["give a mode"]),
    ("lab", ["verfy"], ["mode=verfy is not one of verify, demo, compare_sb3 (did you mean verify?)"]),
    ("lab", ["verify", "seed=x"], ["seed", "Integer"]),
    ("lab", ["verify", "demo"], ["unexpected argument 'demo': give one mode"]),
    ("lab", ["--verify"], ["unexpected argument '--verify'"]),
]
MAINS = {"evaluate": evaluate.main, "video": video.main, "aggregate": aggregate_cli.main, "bench": bench_cli.main,
         "lab": lab.main}


@pytest.mark.parametrize(("tool", "argv", "expected"), TOOLS, ids=[f"{t} {' '.join(a)}" for t, a, _ in TOOLS])
def test_tools_reject(tool: str, argv: list[str], expected: list[str], folders: dict[str, Path],
                      capsys: pytest.CaptureFixture[str]) -> None:
    args = [a.format(**folders) for a in argv]
    before = sorted(folders["root"].rglob("*"))
    assert cli.run(MAINS[tool], args) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith("error: ") and "Traceback" not in err and len(err.strip().splitlines()) == 1
    for text in expected:
        assert text in err
    assert sorted(folders["root"].rglob("*")) == before  # nothing written (no report, eval, video)


@pytest.mark.parametrize("tool", sorted(MAINS))
def test_tools_print_help(tool: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``--help`` prints the usage line and every key with its default; exit status 0."""
    assert cli.run(MAINS[tool], ["--help"]) == 0
    out = capsys.readouterr().out
    prog = {"lab": "herexp.her.lab"}.get(tool, f"herexp.{tool}")
    assert out.startswith(f"usage: python -m {prog} ")
    schema = {"evaluate": evaluate.EvaluateArgs, "video": video_cli.VideoArgs, "aggregate": aggregate_cli.AggregateArgs,
              "bench": bench_cli.BenchArgs, "lab": lab.LabArgs}[tool]
    for f in dataclasses.fields(schema):
        assert f"\n  {f.name}=" in out, f.name


# --- the real command line (subprocesses: exit status, stderr, folders) ------------------------

def test_cli_bad_input_exits_2_without_traceback_or_folder(tmp_path: Path) -> None:
    proc = run_cli("herexp.train", ["algo.gamma=1.5"], cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "error: algo.gamma=1.5 is invalid" in proc.stderr
    assert "Adroit" not in proc.stderr  # the gymnasium-robotics note about envs herexp never uses
    assert list(tmp_path.iterdir()) == []


def test_multirun_with_invalid_cell_starts_nothing(tmp_path: Path) -> None:
    proc = run_cli("herexp.train", ["--multirun", *TINY, "seed=0,1", "algo.gamma=0.9,1.5"], cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "2 of 4 sweep jobs are invalid; no job was started" in proc.stderr
    assert not (tmp_path / "multirun").exists()


@pytest.mark.parametrize(("module", "argv", "message"), [
    ("herexp.aggregate", ["nope/"], "error: path not found: nope/\n"),
    ("herexp.bench", ["presets=push9"], "error: presets=push9 is not one of push8, push1, reach1 (did you mean push8?)\n"),
    ("herexp.her.lab", ["verfy"], "error: mode=verfy is not one of verify, demo, compare_sb3 (did you mean verify?)\n"),
])
def test_tool_command_lines_exit_2_with_one_line(module: str, argv: list[str], message: str, tmp_path: Path) -> None:
    proc = run_cli(module, argv, cwd=tmp_path, timeout=120)
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", message)
    assert list(tmp_path.iterdir()) == []
