"""Read a W&B offline run (``<run>/wandb/offline-run-*/run-<id>.wandb``) without syncing it.

The installed wandb has no public reader of its transaction log, so this mirrors its format:
a 7-byte file header (``:W&B``, magic 0xBEE1, version 0), then a leveldb-style log of 32 KiB
blocks; each chunk has a 7-byte header (crc32 of type + data, length as uint16 LE, type: 1 full,
2 first, 3 middle, 4 last) and a block never starts a chunk header in its last 6 bytes. Chunks
join into ``wandb_internal_pb2.Record`` protobufs (run, config, history, summary, metric, exit).

    python -m herexp.wandb_records multirun/ch04_push/ent0.05_nsg4_ls1000_g0.95_seed0
"""

from __future__ import annotations

import json
import struct
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
BLOCK = 32 * 1024
CHUNK_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: str | Path) -> Iterator[Any]:
    """Every record of a ``.wandb`` file, in order; stops at a torn tail (a killed writer)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    if data[:4] != HEADER[:4]:
        raise ValueError(f"{path}: not a W&B transaction log (header {data[:7]!r})")
    pos, pending = len(HEADER), b""
    while pos + CHUNK_HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < CHUNK_HEADER:  # block tail padding
            pos += left
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos:pos + CHUNK_HEADER])
        chunk = data[pos + CHUNK_HEADER:pos + CHUNK_HEADER + length]
        if kind == 0 and length == 0:  # zero padding up to the block end
            pos += left
            continue
        if len(chunk) < length or zlib.crc32(chunk, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF != crc:
            return
        pos += CHUNK_HEADER + length
        if kind in (FULL, FIRST):
            pending = chunk
        else:
            pending += chunk
        if kind in (FULL, LAST):
            record = pb.Record()
            record.ParseFromString(pending)
            yield record


def _items(items: Any) -> dict[str, Any]:
    """Record items (``key`` or a ``nested_key`` path, JSON value) -> a nested dict."""
    out: dict[str, Any] = {}
    for item in items:
        path = [item.key] if item.key else list(item.nested_key)
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = json.loads(item.value_json) if item.value_json else None
    return out


def _merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = v


@dataclass
class OfflineRun:
    """What an offline run would upload: identity, command, config, history, summary, metrics."""

    path: Path
    id: str = ""
    name: str = ""
    project: str = ""
    group: str = ""
    job_type: str = ""
    tags: list[str] = field(default_factory=list)
    program: str = ""
    args: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)  # one dict per row, with _step
    summary: dict[str, Any] = field(default_factory=dict)
    step_metrics: dict[str, str] = field(default_factory=dict)  # define_metric: name or glob -> step metric
    exit_code: int | None = None


def _apply(run: OfflineRun, record: Any) -> None:
    kind = record.WhichOneof("record_type")
    if kind == "run":
        r = record.run
        run.id, run.name, run.project, run.group, run.job_type = (r.run_id, r.display_name, r.project,
                                                                  r.run_group, r.job_type)
        run.tags = list(r.tags)
        _merge(run.config, _items(r.config.update))
    elif kind == "config":
        _merge(run.config, _items(record.config.update))
    elif kind == "environment":
        e = record.environment
        run.program = e.program or run.program
        run.args = list(e.args) or run.args
    elif kind == "history":
        run.history.append(_items(record.history.item))
    elif kind == "summary":
        _merge(run.summary, _items(record.summary.update))
    elif kind == "metric" and record.metric.step_metric:
        run.step_metrics[record.metric.name or record.metric.glob_name] = record.metric.step_metric
    elif kind == "exit":
        run.exit_code = record.exit.exit_code


def read_offline_run(path: str | Path) -> OfflineRun:
    """An ``offline-run-*`` folder (or its ``.wandb`` file) -> :class:`OfflineRun`."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(path.glob("run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"no run-*.wandb in {path}")
    run = OfflineRun(path)
    for record in read_records(files[0]):
        _apply(run, record)
    run.config.pop("_wandb", None)
    return run


def offline_runs(folder: str | Path) -> list[Path]:
    """The offline-run folders below ``folder`` (a run folder, a sweep, or ``wandb/`` itself)."""
    return sorted(p for p in Path(folder).rglob("offline-run-*") if p.is_dir())


def main(argv: list[str] | None = None) -> int:
    """Print id, name, group, job type, tags, steps and summary of every offline run below the folders."""
    folders = sys.argv[1:] if argv is None else argv
    if not folders:
        print("usage: python -m herexp.wandb_records <run or sweep folder> ...", file=sys.stderr)
        return 2
    for folder in folders:
        for path in offline_runs(folder):
            r = read_offline_run(path)
            steps = [row["_step"] for row in r.history if "_step" in row]
            print(f"{path}\n  id {r.id}  name {r.name}  group {r.group}  job_type {r.job_type}  tags {r.tags}\n"
                  f"  {len(steps)} rows, steps {steps[:1]}..{steps[-1:]}  summary "
                  f"{ {k: v for k, v in r.summary.items() if not k.startswith('_')} }")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
