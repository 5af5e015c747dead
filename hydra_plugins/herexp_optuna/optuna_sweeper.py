"""The Hydra Sweeper of ``hydra/sweeper=optuna``: hands the study to :mod:`herexp.search.driver`."""

from __future__ import annotations

from typing import Any, List

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class HerexpOptunaSweeper(Sweeper):
    """Asks an Optuna study for trials and runs each as herexp runs through the configured launcher.

    The keyword arguments are the keys of :class:`herexp.search.settings.SweeperConfig`."""

    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        self.config: DictConfig | None = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        """Keep the sweep's config and build the launcher every trial's runs go through."""
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> Any:
        """Run the study: ``arguments`` are the command's overrides (search space and fixed ones)."""
        from herexp.search import driver

        assert self.config is not None, "setup() comes first"
        return driver.sweep(self.config, self.launcher, list(arguments))
