"""Every option of every group composes and validates; bad input fails naming the key."""

from __future__ import annotations

from typing import Any

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from herexp import algos, config, entropy, envs
from herexp.entropy import Adaptive, Auto, AutoFloor, Fixed, NoEntropy, Schedule
from tests.conftest import CONF, compose_cfg

GROUPS = ("env", "algo", "her", "entropy", "logger", "experiment", "arm")
# Options that are valid only next to another choice (entropy: none is TD3/DDPG's).
COMPANIONS = {("entropy", "none"): ["algo=td3"], ("arm", "clip5"): ["algo.normalize=true"]}


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in _options(g)])
def test_every_option_composes_and_validates(group: str, option: str) -> None:
    cfg = compose_cfg([f"{group}={option}", *COMPANIONS.get((group, option), [])])
    config.validate(cfg)
    assert cfg.name  # the run name resolves


@pytest.mark.parametrize("option,expected", [
    ("fixed", Fixed(value=0.05)),
    ("fixed_005", Fixed(value=0.05)),
    ("fixed_01", Fixed(value=0.1)),
    ("fixed_02", Fixed(value=0.2)),
    ("auto", Auto(target_entropy="auto", init=None)),
    ("auto_floor", AutoFloor(target_entropy="auto", init=None, min=0.01)),
    ("schedule", Schedule(max=0.3, min=0.01, warmup_frac=0.1)),
    ("adaptive", Adaptive(init=None, min=0.01, max=0.3, check_freq=1000, warmup_frac=0.05, target=0.2,
                          tolerance=0.05, rate=0.1, window=200, key="is_success")),
    ("none", NoEntropy()),
])
def test_entropy_option_builds_its_class(option: str, expected: entropy.EntropyOption) -> None:
    """entropy=<option> -> one class with the option's own keys (``_target_`` names it)."""
    built = entropy.option(compose_cfg([f"entropy={option}", *COMPANIONS.get(("entropy", option), [])]).entropy)
    assert type(built) is type(expected) and built == expected


ALGO_KEYS = ["batch_size", "buffer_size", "learning_starts", "learning_rate", "gamma", "tau", "train_freq",
             "gradient_steps", "net_arch", "normalize", "clip_obs", "random_action_prob"]


@pytest.mark.parametrize("option,cls,own", [
    ("sac_fast", algos.SacFast, {"overlap_envs": False, "parallel_critics": False}),
    ("sac", algos.Sac, {}),
    ("td3", algos.Td3, {"action_noise_std": 0.2, "policy_delay": 2, "target_policy_noise": 0.2,
                        "target_noise_clip": 0.5}),
    ("ddpg", algos.Ddpg, {"action_noise_std": 0.2}),
    ("tqc", algos.Tqc, {"n_quantiles": 25, "top_quantiles_to_drop_per_net": 2, "n_critics": 2}),
])
def test_algo_option_builds_its_class_with_its_own_keys(option: str, cls: type, own: dict[str, Any]) -> None:
    cfg = compose_cfg([f"algo={option}"])
    built = algos.option(cfg.algo)
    assert type(built) is cls and built.name == option
    assert list(cfg.algo) == [*ALGO_KEYS, *own, "_target_"] and cfg.algo._target_ == f"herexp.algos.{option}.{cls.__name__}"
    assert {k: getattr(built, k) for k in own} == own


def test_td3_and_ddpg_select_no_entropy_and_a_given_entropy_is_kept_to_be_refused() -> None:
    """algo=td3 picks entropy: none in its defaults list; the command line still wins (so that
    ``algo=td3 entropy=fixed_005`` is refused, not silently dropped), and so do presets."""
    for algo in ("td3", "ddpg"):
        cfg = compose_cfg([f"algo={algo}"])
        assert entropy.option(cfg.entropy) == NoEntropy() and cfg.name == f"push_{algo}_her_seed0"
        config.validate(cfg)
    given = compose_cfg(["algo=td3", "entropy=fixed_005"])
    assert entropy.option(given.entropy) == Fixed(0.05)
    with pytest.raises(ValueError, match=r"entropy='fixed' is invalid: must be none with algo=td3"):
        config.validate(given)
    with pytest.raises(ValueError, match=r"entropy='none' is invalid: must be an entropy option with algo=sac\b"):
        config.validate(compose_cfg(["algo=sac", "entropy=none"]))
    quick = compose_cfg(["experiment=reach_quickstart", "algo=td3"])  # the preset leaves entropy to the algo
    config.validate(quick)
    assert quick.name == "reach_td3_her_seed0" and quick.algo.learning_rate == 1e-3


def test_push_fast_preset_keys_stay_valid() -> None:
    """What main's experiment/push_fast.yaml sets (env, her, entropy, algo options; n_envs,
    algo.learning_rate / tau / normalize, eval.*, early_stop.*, total_steps)."""
    cfg = compose_cfg(["env=push", "her=on", "entropy=fixed_005", "algo=sac_fast", "n_envs=4",
                       "algo.learning_rate=1e-3", "algo.tau=0.05", "algo.normalize=true", "eval.freq=25000",
                       "eval.periodic_episodes=100", "early_stop.success=0.95", "early_stop.patience=2",
                       "total_steps=500000"])
    config.validate(cfg)
    assert cfg.name == "push_sac_fast_her_ent0.05_seed0"


def test_defaults_are_the_chapter_values() -> None:
    cfg = compose_cfg()
    assert (cfg.seed, cfg.total_steps, cfg.n_envs, cfg.device) == (0, 1_000_000, 8, "auto")
    a = cfg.algo
    assert (a.batch_size, a.buffer_size, a.learning_starts, a.learning_rate) == (256, 1_000_000, 1000, 3e-4)
    assert (a.gamma, a.tau, a.train_freq, a.gradient_steps, list(a.net_arch)) == (0.95, 0.005, 1, 1, [256, 256])
    # the fast path (same maths as SB3) on one core: sweeps pack one run per core
    assert algos.option(a) == algos.SacFast(overlap_envs=False, parallel_critics=False)
    assert entropy.option(cfg.entropy) == Auto()
    assert cfg.her.enabled and cfg.her.n_sampled_goal == 4 and cfg.her.goal_selection_strategy == "future"
    assert cfg.logger.wandb.mode == "offline" and cfg.logger.tensorboard
    assert cfg.eval.n_episodes == 100 and cfg.eval.deterministic
    assert 2_000_000 // cfg.eval.freq >= 40  # a 2 M run records >= 40 curve points


def test_chapter_command_composes() -> None:
    cfg = compose_cfg(["env=push", "her=on", "entropy=fixed_005"])
    assert cfg.env.id == "FetchPush-v4" and entropy.option(cfg.entropy) == Fixed(value=0.05)
    assert cfg.name == "push_sac_fast_her_ent0.05_seed0"


def test_env_ids() -> None:
    ids = {o: compose_cfg([f"env={o}"]).env.id for o in _options("env")}
    assert ids == {"reach": "FetchReach-v4", "push": "FetchPush-v4", "pick_and_place": "FetchPickAndPlace-v4",
                   "slide": "FetchSlide-v4", "reach_dense": "FetchReachDense-v4", "push_dense": "FetchPushDense-v4"}


def test_quickstart_preset() -> None:
    cfg = compose_cfg(["experiment=reach_quickstart"])
    assert cfg.env.id == "FetchReach-v4" and cfg.n_envs == 1 and cfg.algo.normalize
    assert list(cfg.algo.net_arch) == [64, 64] and cfg.total_steps == 5000


@pytest.mark.parametrize("override,key", [
    ("algo.gamma=1.5", "algo.gamma"),
    ("total_steps=-5", "total_steps"),
    ("her.n_sampled_goal=0", "her.n_sampled_goal"),
    ("n_envs=0", "n_envs"),
    ("algo.learning_rate=0", "algo.learning_rate"),
    ("her.goal_selection_strategy=futur", "her.goal_selection_strategy"),
    ("entropy=fixed_005 entropy.value=-1", "entropy.value"),
    ("entropy=auto entropy.init=0", "entropy.init"),
    ("entropy=auto_floor entropy.target_entropy=high", "entropy.target_entropy"),
    ("entropy=auto_floor entropy.min=0", "entropy.min"),
    ("entropy=schedule entropy.min=0.5 entropy.max=0.1", "entropy.min"),
    ("entropy=schedule entropy.warmup_frac=1", "entropy.warmup_frac"),
    ("entropy=adaptive entropy.init=0.5", "entropy.init"),
    ("entropy=adaptive entropy.check_freq=2000000", "entropy.check_freq"),
    ("entropy=adaptive entropy.rate=1", "entropy.rate"),
    ("entropy=adaptive entropy.window=0", "entropy.window"),
    ("entropy=adaptive entropy.target=2", "entropy.target"),
    ("entropy=adaptive entropy.tolerance=-0.1", "entropy.tolerance"),
    ("eval.n_episodes=0", "eval.n_episodes"),
    ("logger.wandb.mode=maybe", "logger.wandb.mode"),
    ("algo=td3 algo.policy_delay=0", "algo.policy_delay"),
    ("algo=td3 algo.target_noise_clip=-1", "algo.target_noise_clip"),
    ("algo=ddpg algo.action_noise_std=-0.1", "algo.action_noise_std"),
    ("algo=ddpg algo.gamma=0", "algo.gamma"),
    ("algo=tqc algo.top_quantiles_to_drop_per_net=25", "algo.top_quantiles_to_drop_per_net"),
    ("algo=tqc algo.n_quantiles=0", "algo.n_quantiles"),
    ("algo=td3 entropy=fixed_005", "entropy"),
])
def test_bad_values_fail_naming_the_key(override: str, key: str) -> None:
    cfg = compose_cfg(override.split())
    with pytest.raises(ValueError, match=key.replace(".", r"\.")) as err:
        config.validate(cfg)
    assert "Fix:" in str(err.value) and "\n" not in str(err.value)  # one clear line


@pytest.mark.parametrize("overrides,key", [
    (["entropy=schedule", "entropy.value=1"], "entropy.value"),  # value is a key of fixed only
    (["entropy.mode=fixed"], "entropy.mode"),  # the option decides, not a mode string
    (["algo=sac", "algo.parallel_critics=true"], "algo.parallel_critics"),  # fast SAC's keys only
    (["algo=sac", "algo.overlap_envs=true"], "algo.overlap_envs"),
    (["algo=td3", "algo.n_quantiles=5"], "algo.n_quantiles"),  # TQC's
    (["algo.fast=true"], "algo.fast"),  # algo=sac_fast is the option
])
def test_keys_of_other_options_are_unknown(overrides: list[str], key: str) -> None:
    with pytest.raises(ConfigCompositionException, match=key.replace(".", r"\.")):
        compose_cfg(overrides)


def test_seed_zero_is_valid() -> None:
    config.validate(compose_cfg(["seed=0"]))


def test_unknown_env_option_fails_in_hydra() -> None:
    with pytest.raises(ConfigCompositionException, match="nope"):
        compose_cfg(["env=nope"])


def test_typo_and_wrong_type_fail_at_compose() -> None:
    with pytest.raises((ConfigCompositionException, ConfigKeyError), match="n_sampled_gaol"):
        compose_cfg(["her.n_sampled_gaol=4"])
    with pytest.raises((ConfigCompositionException, ValidationError), match="seed"):
        compose_cfg(["seed=abc"])


def test_her_needs_dict_goals() -> None:
    cfg = compose_cfg(["env.id=Pendulum-v1", "env.sparse=false", "her=on"])
    with pytest.raises(ValueError, match=r"her\.enabled"):
        envs.check_env_compatible(cfg)
    envs.check_env_compatible(compose_cfg(["env.id=Pendulum-v1", "env.sparse=false", "her=off"]))


def test_unknown_env_id_names_the_key() -> None:
    with pytest.raises(ValueError, match=r"env\.id"):
        envs.check_env_compatible(compose_cfg(["env.id=FetchNope-v4"]))


def test_env_sparse_flag_checked_against_env() -> None:
    with pytest.raises(ValueError, match=r"env\.sparse"):
        envs.check_env_compatible(compose_cfg(["env=reach_dense", "env.sparse=true"]))
    info = envs.check_env_compatible(compose_cfg(["env=push"]))
    assert info.distance_threshold == 0.05 and info.max_episode_steps == 50 and info.reward_type == "sparse"


# Literal job counts: a grid that silently shrinks or grows fails here.
SWEEP_JOBS = {"ch04_push": 120, "ch04_push_fast": 120, "her_vs_noher": 6, "ablation_nsg": 3, "fast_vs_stock": 6,
              "algos": 30, "push_takeoff": 6}


@pytest.mark.parametrize("sweep", sorted(SWEEP_JOBS))
def test_every_sweep_composes_and_every_cell_validates(sweep: str) -> None:
    from herexp import preflight

    assert preflight.check_train_command(["--multirun", f"sweep={sweep}"]) == SWEEP_JOBS[sweep]


def test_slurm_launcher_preset_composes() -> None:
    cfg = compose_cfg(["hydra/launcher=slurm"], hydra_cfg=True)
    assert (cfg.hydra.launcher.max_num_timeout, cfg.hydra.launcher.cpus_per_task) == (3, 2)


def test_local_launcher_is_the_default() -> None:
    """herexp's joblib launcher, with the plugin's keys, each overridable."""
    cfg = compose_cfg(["hydra.launcher.n_jobs=3"], hydra_cfg=True)
    assert cfg.hydra.launcher._target_ == "hydra_plugins.herexp_launcher.joblib_launcher.JoblibLauncher"
    assert (cfg.hydra.launcher.n_jobs, cfg.hydra.launcher.prefer, cfg.hydra.launcher.batch_size) == (3, "processes", "auto")


def test_every_file_under_conf_is_composed_by_a_test() -> None:
    files = {p.relative_to(CONF).as_posix() for p in CONF.rglob("*.yaml")}
    covered = ({"config.yaml", "hydra/launcher/slurm.yaml", "hydra/launcher/local.yaml"} | {f"{g}/{o}.yaml" for g in GROUPS for o in _options(g)}
               | {f"sweep/{s}.yaml" for s in SWEEP_JOBS}
               | {"sweep/tune_push.yaml"})  # a search, not a grid: tests/test_search.py composes it
    assert files == covered  # a new config file needs a composition test (add its group above)


# --- defaults live once: in the schema ------------------------------------------------------------

def _leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        return {k: v for key, val in node.items() for k, v in _leaves(val, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): node}


def _schema_defaults(group: str, option: str) -> dict[str, Any]:
    """The defaults the option's file extends: its option class (algo, entropy) or the group's
    dataclass in herexp.config.Config, before the file's own values."""
    if group in ("algo", "entropy"):
        cfg = compose_cfg([f"{group}={option}", *COMPANIONS.get((group, option), [])])
        node_type = OmegaConf.get_type(cfg[group])
        return _leaves(OmegaConf.to_container(OmegaConf.structured(node_type)))
    node = OmegaConf.structured(config.Config)[group]
    return _leaves(OmegaConf.to_container(node, resolve=False, throw_on_missing=False))


def _own_values(path: str) -> dict[str, Any]:
    raw = OmegaConf.to_container(OmegaConf.load(CONF / path), resolve=False) or {}
    raw.pop("defaults", None)
    raw.pop("hydra", None)
    return _leaves(raw)


@pytest.mark.parametrize("path", ["config.yaml", *(f"{g}/{o}.yaml" for g in ("env", "algo", "her", "entropy", "logger")
                                                    for o in _options(g))])
def test_option_files_hold_only_what_differs_from_the_schema(path: str) -> None:
    if path == "config.yaml":
        defaults = _leaves(OmegaConf.to_container(OmegaConf.structured(config.Config), resolve=False,
                                                  throw_on_missing=False))
    else:
        group, option = path.removesuffix(".yaml").split("/")
        defaults = _schema_defaults(group, option)
    repeated = {k: v for k, v in _own_values(path).items() if k in defaults and defaults[k] == v}
    assert repeated == {}, f"{path} repeats schema defaults: {repeated}"


def test_defaults_the_files_no_longer_repeat() -> None:
    """What config.yaml, logger/default.yaml, her/on.yaml and env/*.yaml used to spell out is
    still what a run gets (from the schema)."""
    cfg = compose_cfg(["env=reach"])
    assert (cfg.seed, cfg.total_steps, cfg.n_envs, cfg.device, cfg.torch_threads, cfg.study) == \
        (0, 1_000_000, 8, "auto", 1, "default")
    assert (cfg.eval.n_episodes, cfg.eval.deterministic, cfg.eval.seed_offset, cfg.eval.freq,
            cfg.eval.periodic_episodes) == (100, True, 1_000_000, 50_000, 20)
    w = cfg.logger.wandb
    assert (w.mode, w.project, w.entity, w.group, w.job_type, list(w.tags)) == ("offline", "herexp", None, "default",
                                                                              None, [])
    assert (cfg.logger.tensorboard, cfg.logger.log_interval, cfg.logger.progress_every) == (True, 4, 0)
    assert cfg.env.sparse is True and compose_cfg(["env=push_dense"]).env.sparse is False
