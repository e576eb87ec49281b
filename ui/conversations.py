"""Conversations that persist: one JSON file per chat under ``<home>/conversations/<collection>/``.

Plain functions (no Streamlit), tested directly. A message is ``{"role": "user", "text"}`` or
``{"role": "assistant", "answer": Answer.to_dict() | None, "text", "stopped": bool}``; the chat page keeps the
conversation id in the URL (``?c=<id>``), so a reload opens the same chat again.

```python
conv = new_conversation()
conv["messages"].append({"role": "user", "text": "Who signed the memo?"})
save(home, "docrag", conv)
[c["title"] for c in list_conversations(home, "docrag")]   # ['Who signed the memo?']
to_markdown(load(home, "docrag", conv["id"]))
```
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from rag.api import Answer, Citation, Evidence, Hit
from rag.types import page_label

_ID = re.compile(r"^[a-f0-9]{12}$")


def folder(home: str | Path, collection: str) -> Path:
    return Path(home) / "conversations" / collection


def new_conversation() -> dict[str, Any]:
    now = time.time()
    return {"id": uuid.uuid4().hex[:12], "title": "", "created": now, "updated": now, "messages": []}


def valid_id(cid: str | None) -> bool:
    return bool(cid) and bool(_ID.match(str(cid)))


def title_of(conv: dict[str, Any]) -> str:
    first = next((m["text"] for m in conv.get("messages", []) if m.get("role") == "user"), "")
    return " ".join(first.split())[:80] or "New chat"


def save(home: str | Path, collection: str, conv: dict[str, Any]) -> Path:
    """Write the conversation atomically; answers are stored as their JSON contract (``Answer.to_dict()``)."""
    d = folder(home, collection)
    d.mkdir(parents=True, exist_ok=True)
    conv = {**conv, "title": title_of(conv), "updated": time.time(),
            "messages": [_message_to_json(m) for m in conv.get("messages", [])]}
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".conv-", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(conv, f, ensure_ascii=False)
        target = d / f"{conv['id']}.json"
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def load(home: str | Path, collection: str, cid: str) -> dict[str, Any] | None:
    """The conversation with its answers rebuilt as ``Answer`` objects, or None (unknown id, unreadable)."""
    if not valid_id(cid):
        return None
    p = folder(home, collection) / f"{cid}.json"
    try:
        conv = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    conv["messages"] = [_message_from_json(m) for m in conv.get("messages", [])]
    return conv


def list_conversations(home: str | Path, collection: str) -> list[dict[str, Any]]:
    """``{"id", "title", "updated", "messages": n}`` of every stored chat, most recent first."""
    out = []
    d = folder(home, collection)
    for p in d.glob("*.json") if d.is_dir() else []:
        try:
            conv = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        out.append({"id": conv.get("id", p.stem), "title": conv.get("title") or "New chat",
                    "updated": conv.get("updated", 0.0), "messages": len(conv.get("messages", []))})
    return sorted(out, key=lambda c: -c["updated"])


def delete(home: str | Path, collection: str, cid: str) -> bool:
    p = folder(home, collection) / f"{cid}.json"
    if valid_id(cid) and p.is_file():
        p.unlink()
        return True
    return False


def _message_to_json(m: dict[str, Any]) -> dict[str, Any]:
    a = m.get("answer")
    return {**m, "answer": a.to_dict() if isinstance(a, Answer) else a}


def answer_from_dict(d: dict[str, Any]) -> Answer:
    """An ``Answer`` back from its JSON contract (``Answer.to_dict()``)."""
    def pick(cls: type, row: dict[str, Any]) -> Any:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__ if k in row})

    return Answer(question=d.get("question", ""), text=d.get("answer", ""),
                  citations=[pick(Citation, c) for c in d.get("citations", [])],
                  documents=[pick(Hit, h) for h in d.get("documents", [])], entities=d.get("entities", []),
                  timings=d.get("timings", {}), declined=d.get("declined", False), grounded=d.get("grounded", True),
                  evidence=[pick(Evidence, e) for e in d.get("evidence", [])],
                  confidence=d.get("confidence", 0.0), mode=d.get("mode", "generated"))


def _message_from_json(m: dict[str, Any]) -> dict[str, Any]:
    a = m.get("answer")
    return {**m, "answer": answer_from_dict(a) if isinstance(a, dict) else None}


def to_json(conv: dict[str, Any]) -> str:
    return json.dumps({**conv, "messages": [_message_to_json(m) for m in conv.get("messages", [])]},
                      ensure_ascii=False, indent=2)


def to_markdown(conv: dict[str, Any]) -> str:
    """The chat as Markdown: questions, answers with confidence, and the cited passages as footnotes."""
    lines = [f"# {title_of(conv)}", ""]
    for m in conv.get("messages", []):
        if m.get("role") == "user":
            lines += [f"**You:** {m.get('text', '')}", ""]
            continue
        a: Answer | None = m.get("answer")
        if a is None:
            lines += [f"**docrag:** {m.get('text', '')} _(stopped)_", ""]
            continue
        state = "declined: not in the documents" if a.declined or a.mode == "declined" else \
            f"confidence {a.confidence:.0%}"
        lines += [f"**docrag** ({state}): {a.text}", ""]
        for c in a.citations:
            where = page_label(c.page, c.pages, c.source)
            lines.append(f"- [{c.ref}] {c.file_name}, {where}: “{' '.join(c.quote.split())}”")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
