"""Speed benchmark: stock SB3 vs herexp's fast path on the same config (``make bench``).

Every model the benchmark times is a training config: a preset's Hydra overrides plus a
variant's (``["env=push", "her=on", "n_envs=8"]`` + ``["algo=sac"]`` vs ``["algo=sac_fast"]``),
checked by :mod:`herexp.preflight`, composed from ``herexp/conf/`` and built by
:mod:`herexp.envs` and :func:`herexp.agent.build_model` — exactly what ``python -m herexp.train``
would train with those overrides.

* :mod:`herexp.bench.presets` — the presets and variants as override lists, and composing them;
* :mod:`herexp.bench.runs` — building a variant, warming it up, timing it A/B alternately;
* :mod:`herexp.bench.ablation` — ms per update, adding one fast-path lever at a time;
* :mod:`herexp.bench.pack` — sweep packing: N concurrent runs in separate processes;
* :mod:`herexp.bench.cli` — ``python -m herexp.bench`` (typed ``key=value`` arguments).

Nothing is imported here on purpose: ``python -m herexp.bench`` runs ``__main__`` without the
package having imported its modules first.
"""
