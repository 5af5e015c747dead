"""herexp's Optuna sweeper as a Hydra plugin: ``--multirun hydra/sweeper=optuna``.

A thin shell over :mod:`herexp.search`: :mod:`.config` registers the sweeper's schema
(:class:`herexp.search.settings.SweeperConfig`) as ``hydra/sweeper=optuna`` and
:mod:`.optuna_sweeper` is the :class:`hydra.plugins.sweeper.Sweeper` Hydra instantiates.
"""
