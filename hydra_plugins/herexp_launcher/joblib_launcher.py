"""``hydra/launcher=local``: Hydra's joblib launcher whose jobs fail alone (:mod:`herexp.launcher`)."""

from __future__ import annotations

from collections.abc import Sequence

from hydra.core.utils import JobReturn
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher as PluginJoblibLauncher


class JoblibLauncher(PluginJoblibLauncher):
    """The joblib plugin's launcher (same keys), each job run by :func:`herexp.launcher.run_guarded`."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        """Run the jobs in parallel (loky) as the plugin does; one JobReturn per job, none raising."""
        from herexp import launcher

        return launcher.launch(self, job_overrides, initial_job_idx)
