"""Every option of every group composes and validates; bad input fails naming the key."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigKeyError, ValidationError

from herexp import config, envs
from tests.conftest import CONF, compose_cfg

GROUPS = ("env", "algo", "her", "entropy", "logger", "experiment")


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in _options(g)])
def test_every_option_composes_and_validates(group: str, option: str) -> None:
    cfg = compose_cfg([f"{group}={option}"])
    config.validate(cfg)
    assert cfg.name  # the run name resolves


def test_defaults_are_the_chapter_values() -> None:
    cfg = compose_cfg()
    assert (cfg.seed, cfg.total_steps, cfg.n_envs, cfg.device) == (0, 1_000_000, 8, "auto")
    a = cfg.algo
    assert (a.batch_size, a.buffer_size, a.learning_starts, a.learning_rate) == (256, 1_000_000, 1000, 3e-4)
    assert (a.gamma, a.tau, a.train_freq, a.gradient_steps, list(a.net_arch)) == (0.95, 0.005, 1, 1, [256, 256])
    # the fast path (same maths as SB3) on one core: sweeps pack one run per core
    assert a.fast and not a.overlap_envs and not a.parallel_critics
    assert cfg.her.enabled and cfg.her.n_sampled_goal == 4 and cfg.her.goal_selection_strategy == "future"
    assert cfg.logger.wandb.mode == "offline" and cfg.logger.tensorboard
    assert cfg.eval.n_episodes == 100 and cfg.eval.deterministic
    assert 2_000_000 // cfg.eval.freq >= 40  # a 2 M run records >= 40 curve points


def test_chapter_command_composes() -> None:
    cfg = compose_cfg(["env=push", "her=on", "entropy=fixed_005"])
    assert cfg.env.id == "FetchPush-v4" and cfg.entropy.mode == "fixed" and cfg.entropy.value == 0.05
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
    ("entropy.mode=sometimes", "entropy.mode"),
    ("entropy=fixed_005 entropy.value=-1", "entropy.value"),
    ("eval.n_episodes=0", "eval.n_episodes"),
    ("logger.wandb.mode=maybe", "logger.wandb.mode"),
    ("algo=sac algo.parallel_critics=true", "algo.parallel_critics"),
    ("algo=sac algo.overlap_envs=true", "algo.overlap_envs"),
])
def test_bad_values_fail_naming_the_key(override: str, key: str) -> None:
    cfg = compose_cfg(override.split())
    with pytest.raises(ValueError, match=key.replace(".", r"\.")) as err:
        config.validate(cfg)
    assert "Fix:" in str(err.value) and "\n" not in str(err.value)  # one clear line


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
SWEEP_JOBS = {"ch04_push": 120, "her_vs_noher": 6, "ablation_nsg": 3, "fast_vs_stock": 6}


@pytest.mark.parametrize("sweep", sorted(SWEEP_JOBS))
def test_every_sweep_composes_and_every_cell_validates(sweep: str) -> None:
    from herexp import preflight

    assert preflight.check_train_command(["--multirun", f"sweep={sweep}"]) == SWEEP_JOBS[sweep]


def test_slurm_launcher_preset_composes() -> None:
    cfg = compose_cfg(["hydra/launcher=slurm"], hydra_cfg=True)
    assert (cfg.hydra.launcher.max_num_timeout, cfg.hydra.launcher.cpus_per_task) == (3, 2)


def test_every_file_under_conf_is_composed_by_a_test() -> None:
    files = {p.relative_to(CONF).as_posix() for p in CONF.rglob("*.yaml")}
    covered = ({"config.yaml", "hydra/launcher/slurm.yaml"} | {f"{g}/{o}.yaml" for g in GROUPS for o in _options(g)}
               | {f"sweep/{s}.yaml" for s in SWEEP_JOBS})
    assert files == covered  # a new config file needs a composition test (add its group above)
