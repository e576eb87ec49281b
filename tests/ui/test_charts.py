"""ui.charts: the data behind the Analysis charts, and that each chart builds a valid Vega-Lite spec."""

from __future__ import annotations

import pandas as pd

from rag.api import EntityCount
from ui import charts

ROWS = [EntityCount("ORG", "Acme", 5, ["a.pdf", "b.pdf"]), EntityCount("PERSON", "Ann", 3, ["a.pdf"]),
        EntityCount("DATE", "January 5, 2023", 2, ["a.pdf"]), EntityCount("DATE", "2021-2023", 1, ["b.pdf"]),
        EntityCount("DATE", "last week", 4, ["b.pdf"])]


class TestData:
    def test_entity_frame(self) -> None:
        df = charts.entity_frame(ROWS)
        assert list(df.columns) == ["label", "text", "count", "documents", "sources"]
        assert df.loc[0, "documents"] == 2

    def test_merge_entities_sums_per_label_and_text(self) -> None:
        a = charts.entity_frame([EntityCount("ORG", "Acme", 2, ["a"])])
        b = charts.entity_frame([EntityCount("ORG", "Acme", 3, ["b"]), EntityCount("GPE", "Oslo", 1, ["b"])])
        out = charts.merge_entities([a, b, charts.entity_frame([])])
        assert out.to_dict("records")[0] == {"label": "ORG", "text": "Acme", "count": 5, "documents": 2,
                                             "sources": ["a", "b"]}
        assert charts.merge_entities([]).empty

    def test_label_counts(self) -> None:
        out = charts.label_counts(charts.entity_frame(ROWS)).set_index("label")
        assert out.loc["DATE", "mentions"] == 7 and out.loc["DATE", "distinct"] == 3
        assert charts.label_counts(charts.entity_frame([])).empty

    def test_documents_frame_is_long(self) -> None:
        out = charts.documents_frame([{"file_name": "a.pdf", "pages": 2, "chunks": 5, "source": "/a.pdf"}])
        assert sorted(out["measure"]) == ["chunks", "pages"] and out["value"].sum() == 7

    def test_cooccurrence_counts_shared_chunks_symmetrically(self) -> None:
        chunks = [[{"label": "ORG", "text": "Acme"}, {"label": "PERSON", "text": "Ann"}],
                  [{"label": "ORG", "text": "Acme"}, {"label": "PERSON", "text": "Ann"}],
                  [{"label": "ORG", "text": "Acme"}], []]
        out = charts.cooccurrence(chunks)
        assert len(out) == 2 and set(out["count"]) == {2}
        assert set(out["a"]) == {"Acme (ORG)", "Ann (PERSON)"}
        assert charts.cooccurrence([[{"label": "ORG", "text": "Acme"}]]).empty

    def test_date_timeline_reads_years(self) -> None:
        out = charts.date_timeline(charts.entity_frame(ROWS))
        assert out.to_dict("records") == [{"year": 2021, "mentions": 1}, {"year": 2023, "mentions": 3}]
        assert charts.date_timeline(charts.entity_frame([])).empty


class TestCharts:
    def test_every_chart_builds(self) -> None:
        ents = charts.entity_frame(ROWS)
        pairs = pd.DataFrame([{"a": "x", "b": "y", "count": 1}])
        built = [charts.labels_chart(charts.label_counts(ents)),
                 charts.top_entities_chart(charts.top_entities(ents)),
                 charts.documents_chart(charts.documents_frame([{"file_name": "a", "pages": 1, "chunks": 2}])),
                 charts.cooccurrence_chart(pairs), charts.timeline_chart(charts.date_timeline(ents))]
        for chart in built:
            spec = chart.to_dict()
            assert "$schema" in spec

    def test_counts_are_shown_as_whole_numbers(self) -> None:
        """Axes and legends of counts tick in whole numbers (no "0.2 mentions", no "1.000000 chunks")."""
        ents = charts.entity_frame(ROWS)
        for chart, channel in [(charts.labels_chart(charts.label_counts(ents)), "x"),
                               (charts.top_entities_chart(charts.top_entities(ents)), "x"),
                               (charts.timeline_chart(charts.date_timeline(ents)), "y")]:
            axis = chart.to_dict()["encoding"][channel]["axis"]
            assert axis["format"] == "d" and axis["tickMinStep"] == 1
        heat = charts.cooccurrence_chart(pd.DataFrame([{"a": "x", "b": "y", "count": 1}])).to_dict()
        assert heat["layer"][0]["encoding"]["color"]["legend"] == {"format": "d", "tickMinStep": 1}
