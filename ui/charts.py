"""Insight charts for the Analysis page: plain data functions (tested directly) and altair chart builders.

Data in, ``pandas.DataFrame`` out; each ``*_chart`` takes that frame and returns an ``alt.Chart``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from itertools import combinations
from typing import Any

import altair as alt
import pandas as pd

from rag.entities import NUMERIC_LABELS, display_text, entity_key, entity_years  # noqa: F401 - numbers: noise in charts


def _get(obj: Any, key: str) -> Any:
    return obj[key] if isinstance(obj, dict) else getattr(obj, key)


def entity_frame(rows: Iterable[Any]) -> pd.DataFrame:
    """``EntityCount`` rows (or dicts) as a frame: label, text, count, documents, sources."""
    data = [{"label": _get(r, "label"), "text": _get(r, "text"), "count": int(_get(r, "count")),
             "documents": len(_get(r, "sources")), "sources": list(_get(r, "sources"))} for r in rows]
    return pd.DataFrame(data, columns=["label", "text", "count", "documents", "sources"])


def merge_entities(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Entity frames of several documents summed per (label, text)."""
    frames = [f for f in frames if not f.empty]
    if not frames:
        return entity_frame([])
    df = pd.concat(frames, ignore_index=True)
    out = df.groupby(["label", "text"], as_index=False).agg(
        count=("count", "sum"), sources=("sources", lambda s: sorted({x for xs in s for x in xs})))
    out["documents"] = out["sources"].map(len)
    return out.sort_values(["count", "label", "text"], ascending=[False, True, True], ignore_index=True)[
        ["label", "text", "count", "documents", "sources"]]


def label_counts(entities: pd.DataFrame) -> pd.DataFrame:
    """Mentions and distinct entities per label, most mentioned first."""
    if entities.empty:
        return pd.DataFrame(columns=["label", "mentions", "distinct"])
    out = entities.groupby("label", as_index=False).agg(mentions=("count", "sum"), distinct=("text", "nunique"))
    return out.sort_values("mentions", ascending=False, ignore_index=True)


def top_entities(entities: pd.DataFrame, n: int = 15) -> pd.DataFrame:
    return entities.sort_values("count", ascending=False).head(n).reset_index(drop=True)


def documents_frame(docs: list[dict[str, Any]]) -> pd.DataFrame:
    """Documents in long form for a grouped bar: file_name, measure (pages/chunks), value."""
    if not docs:
        return pd.DataFrame(columns=["file_name", "measure", "value"])
    df = pd.DataFrame(docs)[["file_name", "pages", "chunks"]]
    return df.melt(id_vars="file_name", var_name="measure", value_name="value")


def cooccurrence(chunk_entities: Iterable[list[dict[str, Any]]], top_n: int = 12) -> pd.DataFrame:
    """How often two of the ``top_n`` most frequent entities appear in the same chunk.

    :param chunk_entities: per chunk, its entity list (``Hit.entities``: dicts with ``label`` and ``text``).
    :returns: rows ``a, b, count`` (both orders, so the heatmap is symmetric), only pairs seen together.
    """
    shown: dict[str, str] = {}
    per_chunk = []
    for ents in chunk_entities:
        keys = set()
        for e in ents:
            if str(e.get("text", "")).strip():
                k = entity_key(e["label"], e["text"])
                shown.setdefault(k, f"{display_text(e['text'])} ({k.split(':', 1)[0]})")
                keys.add(k)
        per_chunk.append(keys)
    freq = Counter(k for keys in per_chunk for k in keys)
    keep = {k for k, _ in freq.most_common(top_n)}
    pairs: Counter = Counter()
    for keys in per_chunk:
        for a, b in combinations(sorted(keys & keep), 2):
            pairs[(a, b)] += 1
    rows = [{"a": shown[a], "b": shown[b], "count": c} for (a, b), c in pairs.items()]
    rows += [{"a": shown[b], "b": shown[a], "count": c} for (a, b), c in pairs.items()]
    return pd.DataFrame(rows, columns=["a", "b", "count"])


def date_timeline(entities: pd.DataFrame) -> pd.DataFrame:
    """Mentions of DATE entities per year: only real dates that write a year ('January 5, 2023'), parsed by
    ``rag.entities.entity_years``; sales figures and clock times tagged DATE are not years."""
    years: Counter = Counter()
    for row in entities[entities["label"] == "DATE"].itertuples() if not entities.empty else []:
        for y in entity_years(str(row.text)):
            years[y] += int(row.count)
    return pd.DataFrame(sorted(years.items()), columns=["year", "mentions"])


# --- charts --------------------------------------------------------------------------------------------
# counts: whole-number ticks and legend labels, never "0.2 mentions" or "1.000000 chunks"
WHOLE_NUMBERS = {"format": "d", "tickMinStep": 1}
COUNT_AXIS = alt.Axis(**WHOLE_NUMBERS)


def labels_chart(labels: pd.DataFrame) -> alt.Chart:
    return alt.Chart(labels, title="Entity types").mark_bar().encode(
        x=alt.X("mentions:Q", title="mentions", axis=COUNT_AXIS), y=alt.Y("label:N", sort="-x", title=None),
        color=alt.Color("label:N", legend=None), tooltip=["label", "mentions", "distinct"])


def top_entities_chart(top: pd.DataFrame) -> alt.Chart:
    return alt.Chart(top, title="Top entities").mark_bar().encode(
        x=alt.X("count:Q", title="mentions", axis=COUNT_AXIS),
        y=alt.Y("text:N", sort="-x", title=None, axis=alt.Axis(labelLimit=0)),
        color=alt.Color("label:N", title="type"), tooltip=["text", "label", "count", "documents"])


def documents_chart(docs: pd.DataFrame) -> alt.Chart:
    return alt.Chart(docs, title="Documents by pages and chunks").mark_bar().encode(
        x=alt.X("value:Q", title=None, axis=COUNT_AXIS),
        y=alt.Y("file_name:N", title=None, axis=alt.Axis(labelLimit=0)),
        yOffset="measure:N", color=alt.Color("measure:N", title=None),
        tooltip=["file_name", "measure", "value"])


def cooccurrence_chart(pairs: pd.DataFrame) -> alt.Chart:
    base = alt.Chart(pairs, title="Entities mentioned in the same chunk").encode(
        x=alt.X("a:N", title=None, axis=alt.Axis(labelAngle=-40, labelOverlap=False, labelLimit=180)),
        y=alt.Y("b:N", title=None, axis=alt.Axis(labelOverlap=False, labelLimit=220)))
    return base.mark_rect().encode(color=alt.Color("count:Q", title="chunks", scale=alt.Scale(scheme="oranges"),
                                                   legend=alt.Legend(**WHOLE_NUMBERS)),
                                   tooltip=["a", "b", "count"]) + \
        base.mark_text(fontSize=11).encode(text="count:Q")


def timeline_chart(timeline: pd.DataFrame) -> alt.Chart:
    return alt.Chart(timeline, title="DATE mentions by year").mark_bar().encode(
        x=alt.X("year:O", title=None), y=alt.Y("mentions:Q", axis=COUNT_AXIS), tooltip=["year", "mentions"])
