"""Registers ``hydra/sweeper=optuna``: herexp's sweeper schema in Hydra's ConfigStore."""

from hydra.core.config_store import ConfigStore

from herexp.search.settings import SweeperConfig

ConfigStore.instance().store(group="hydra/sweeper", name="optuna", node=SweeperConfig, provider="herexp")
