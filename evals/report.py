"""One report format for every eval: a dict written as JSON and Markdown under ``evals/reports/``.

```
{"run_id", "started", "argv", "profile", "machine", "models", "settings",
 "datasets": {name: {"split", "cases", "files": {path: sha256}}},
 "sections": [{"task", "dataset", "n", "seconds", "configs": {config: {metric: value}}, "skipped", "notes",
               "params"}],
 "gate": {"passed", "failures": [...], "checked": n}, "durations": {...}}
```
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPORTS = Path(__file__).resolve().parent / "reports"
_HASHES: dict[tuple[str, float], str] = {}


def sha256_file(path: str | Path) -> str:
    p = Path(path)
    key = (str(p.resolve()), p.stat().st_mtime)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def machine() -> dict[str, Any]:
    """CPU model and its bf16 unit (which picks the CPU runtime), cores, RAM, GPU (if torch sees one), Python and
    platform, and the load when the run started."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from rag.models import cpu_bf16

    info: dict[str, Any] = {"cpu": cpu, "cpu_bf16": cpu_bf16(), "cores": os.cpu_count(),
                            "platform": platform.platform(), "python": platform.python_version()}
    try:
        import psutil

        info["ram_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
        info["physical_cores"] = psutil.cpu_count(logical=False)
    except ImportError:  # pragma: no cover - psutil is a dependency
        pass
    try:
        info["load_avg_1m"] = round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover
        pass
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:  # pragma: no cover
        pass
    return info


@dataclass
class Section:
    """The result of one task on one dataset: metrics per configuration."""

    task: str
    dataset: str
    n: int
    configs: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def dataset_entry(evalset: Any, n_cases: int) -> dict[str, Any]:
    return {"split": evalset.split, "cases": n_cases,
            "files": {str(f): sha256_file(f) for f in evalset.files}}


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def sections_markdown(sections: list[dict[str, Any]]) -> str:
    """One table per section (rows = configs, columns = metrics), then skipped configs and notes."""
    out: list[str] = []
    for s in sections:
        out.append(f"### {s['task']} / {s['dataset']} (n={s['n']}, {s['seconds']:.0f} s)")
        configs = s["configs"]
        metrics: list[str] = []
        for m in configs.values():
            metrics += [k for k in m if k not in metrics]
        if configs:
            out.append("")
            out.append("| config | " + " | ".join(metrics) + " |")
            out.append("|---|" + "---|" * len(metrics))
            for name, m in configs.items():
                out.append(f"| {name} | " + " | ".join(_fmt(m.get(k, "")) for k in metrics) + " |")
        for name, why in s.get("skipped", {}).items():
            out.append(f"\n- skipped `{name}`: {why}")
        for note in s.get("notes", []):
            out.append(f"- {note}")
        out.append("")
    return "\n".join(out)


def gate_markdown(gate: dict[str, Any] | None) -> str:
    if not gate:
        return ""
    lines = [f"## Gate: {'PASSED' if gate['passed'] else 'FAILED'} ({gate['checked']} thresholds checked)", ""]
    for f in gate["failures"]:
        lines.append(f"- FAIL {f['key']}: {f['value']:.4f} < threshold {f['threshold']:.4f}")
    for m in gate.get("missing", []):
        lines.append(f"- not run: {m}")
    return "\n".join(lines) + "\n"


def to_markdown(report: dict[str, Any]) -> str:
    mach = report["machine"]
    lines = [f"# docrag eval {report['run_id']}", "",
             f"- started: {report['started']} — profile `{report['profile']}` — total {report['seconds']:.0f} s",
             f"- machine: {mach.get('cpu')} (bf16: {mach.get('cpu_bf16') or 'none'}) — {mach.get('cores')} cores — "
             f"{mach.get('ram_gb')} GB RAM — load {mach.get('load_avg_1m')} at start",
             "- models: " + ", ".join(f"{k}=`{v}`" for k, v in report["models"].items()),
             "- datasets: " + "; ".join(f"{n} ({d['split']}, {d['cases']} cases)"
                                       for n, d in report["datasets"].items()), ""]
    lines.append(sections_markdown(report["sections"]))
    lines.append(gate_markdown(report.get("gate")))
    lines.append("Dataset files (sha256):\n")
    for d in report["datasets"].values():
        for f, h in d["files"].items():
            lines.append(f"- `{f}` {h}")
    return "\n".join(lines) + "\n"


def write(report: dict[str, Any], out_dir: str | Path | None = None) -> tuple[Path, Path]:
    """Write ``<run_id>.json`` and ``<run_id>.md`` (and ``latest.*`` copies); returns the two paths."""
    out = Path(out_dir) if out_dir else REPORTS
    out.mkdir(parents=True, exist_ok=True)
    j, m = out / f"{report['run_id']}.json", out / f"{report['run_id']}.md"
    text, md = json.dumps(report, indent=2, default=str), to_markdown(report)
    for path, body in ((j, text), (m, md), (out / "latest.json", text), (out / "latest.md", md)):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(body, encoding="utf-8")
        tmp.replace(path)
    return j, m
