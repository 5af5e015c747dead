"""``aggregate wandb=true``: the report as an offline W&B run of job type ``aggregate`` in the runs'
project and group, with the tables and plots, read back from its transaction log."""

from __future__ import annotations

from pathlib import Path

import wandb

from herexp.aggregate import aggregate
from herexp.aggregate.wandb_log import log_report
from herexp.wandb_records import read_offline_run
from tests.test_aggregate_load import write_fake_sweep


def test_report_logged_as_an_aggregate_run(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    write_fake_sweep(sweep, {"ent": [0.05, 0.1], "gamma": [0.95, 0.98]}, seeds=[0, 1])
    res = aggregate([sweep], reps=100)
    path = Path(log_report(res))
    wandb.teardown()  # wait until wandb-core has written the whole log
    assert path.parent == sweep / "aggregate" / "wandb" and path.name.startswith("offline-run-")
    r = read_offline_run(path)
    assert (r.project, r.group, r.job_type) == ("herexp", "test", "aggregate") and r.name.startswith("aggregate_")
    (row,) = r.history
    tables = {k: v for k, v in row.items() if k.startswith("tables/")}
    assert sorted(tables) == ["tables/configs", "tables/factor_spread", "tables/interactions", "tables/marginals"]
    assert all(v["_type"] == "table-file" for v in tables.values())
    assert tables["tables/configs"]["nrows"] == 4 and tables["tables/marginals"]["nrows"] == 4
    assert tables["tables/interactions"]["nrows"] == 4  # ent_coef x gamma cells
    plots = sorted(k for k in row if k.startswith("plots/"))
    assert "plots/learning_curves" in plots and all(row[k]["_type"] == "image-file" for k in plots)
    assert r.summary["best/config"] == res.report["configs"][0]["config"] and r.summary["n_runs"] == 8
    assert r.config["factors"] == ["ent_coef", "gamma"]
