"""The generator benchmark's prompt set (course split only, evidence holds the answer) and one real run."""

from __future__ import annotations

import json
from pathlib import Path

from evals import generators


def _titles(path: Path) -> set[str]:
    return {a["title"].replace("_", " ") for a in json.loads(path.read_text(encoding="utf-8"))["data"]}


class TestEvidencePrompts:
    def test_course_split_only_and_answer_in_evidence(self, data_dir: Path) -> None:
        prompts = generators.evidence_prompts(30, seed=1, data_dir=data_dir)
        assert len(prompts) == 30
        course = _titles(data_dir / "squad" / "dev-v2.0.json")
        test_articles = _titles(data_dir / "squad" / "dev-v2.0-official.json") - course
        assert len(test_articles) == 19
        for p in prompts:
            assert p["title"] in course and p["title"] not in test_articles
            assert len(p["evidence"]) == 3 and p["answers"]
            assert any(a in s for s in p["evidence"] for a in p["answers"])
        assert generators.evidence_prompts(5, seed=1, data_dir=data_dir) == prompts[:5]  # seeded

    def test_one_generator_is_timed_and_scored(self, data_dir: Path) -> None:
        r = generators.bench_one("smollm2-135m", generators.evidence_prompts(1, data_dir=data_dir), warmup=0)
        assert r["architecture"] == "llama" and r["backend"] == "llama_cpp" and r["prompts"] == 1
        assert 0 < r["ttft_p50_s"] <= r["total_p50_s"] and r["load_s"] > 0 and r["rss_model_mb"] > 50
        assert 60 <= r["prompt_tokens_p50"] <= 400 and r["prompt_style"] == "evidence" and r["reply_tokens_p50"] >= 1
        assert 0.0 <= r["evidence_f1"] <= 1.0
        assert "|" in generators.table_row(r)
