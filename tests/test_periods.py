"""Period questions ("Q3 2022", "the latest quarterly report") resolved against stored document dates.

``TestPeriodAsk`` / ``TestChooseSources``: the pure parts of ``rag.periods``. ``TestPeriodRetrieval``: eight
dated filings of two companies (real store, packaged models, real chunking of Markdown files) whose text is
the same but for the date and the figures, so retrieval without the dates cannot tell them apart; the
retrieved chunks must all come from the filing the question's period names.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from rag.periods import PeriodAsk, choose_sources, family, period_ask, restrict


class TestPeriodAsk:
    @pytest.mark.parametrize("question, kind, iso", [
        ("What was the gross margin in Q3 2022?", "date", "2022-09-30"),
        ("Net sales for the quarter ended September 30, 2022?", "date", "2022-09-30"),
        ("Gross margin in the third quarter of 2022", "date", "2022-09-30"),
        ("Revenue in fiscal 2021", "year", "2021"),
        ("What did the 2021 results show?", "year", "2021"),
        ("Gross margin in the latest quarterly report of Acme?", "latest", ""),
        ("What were net sales last quarter?", "latest", ""),
        ("Net sales in the most recent filing", "latest", ""),
        ("Net sales in the previous quarter", "previous", ""),
        ("What did the earliest report say about risks?", "earliest", ""),
    ])
    def test_reads_the_period(self, question: str, kind: str, iso: str) -> None:
        ask = period_ask(question)
        assert ask is not None and (ask.kind, ask.iso) == (kind, iso)

    @pytest.mark.parametrize("question", [
        "What were the total current liabilities?",  # "current" is not a period
        "Revenue in the first quarter?",  # a quarter without a year: not the earliest filing
        "Who wrote the last chapter?",  # a relative word without a period noun
        "What is the capital of France?",
    ])
    def test_no_period(self, question: str) -> None:
        assert period_ask(question) is None


def _doc(source: str, date: str, author: str = "", title: str = "") -> dict:
    return {"source": source, "doc_date": date, "doc_author": author, "doc_title": title}


class TestChooseSources:
    CANDS: ClassVar[list[dict]] = [
        _doc("acme-q2", "2022-06-30", "Acme Corp"), _doc("globex-q1-23", "2023-03-31", "Globex"),
        _doc("acme-q4", "2022-12-31", "Acme Corp"), _doc("acme-q3", "2022-09-30", "Acme Corp"),
        _doc("acme-q4", "2022-12-31", "Acme Corp"), _doc("undated", "")]

    def test_latest_is_within_the_best_candidates_family(self) -> None:
        assert choose_sources(PeriodAsk("latest"), self.CANDS) == ["acme-q4"]  # not Globex's later filing

    def test_previous_and_earliest(self) -> None:
        assert choose_sources(PeriodAsk("previous"), self.CANDS) == ["acme-q3"]
        assert choose_sources(PeriodAsk("earliest"), self.CANDS) == ["acme-q2"]

    def test_explicit_date_and_year(self) -> None:
        assert choose_sources(PeriodAsk("date", "Q3 2022", "2022-09-30"), self.CANDS) == ["acme-q3"]
        assert choose_sources(PeriodAsk("year", "2022", "2022"), self.CANDS) == ["acme-q2", "acme-q4", "acme-q3"]

    def test_a_year_keeps_another_years_filing_whose_chunk_names_it(self) -> None:
        from haystack import Document

        h1_2023 = Document(content="Zone NA · January-June 2022: 1373 | January-June 2023: 1450",
                           meta=_doc("h1-2023.xlsx", "2023-06-30", title="Half-year 2023"))
        other = Document(content="Zone NA · January-June 2023: 1450", meta=_doc("h1-2023b.xlsx", "2023-06-30"))
        cands = [h1_2023, other, Document(content="cover page", meta=_doc("10k-2022.html", "2022-12-31"))]
        assert choose_sources(PeriodAsk("year", "2022", "2022"), cands) == ["h1-2023.xlsx", "10k-2022.html"]
        assert choose_sources(PeriodAsk("date", "Q4 2022", "2022-12-31"), cands) == ["10k-2022.html"]

    def test_undated_candidates_restrict_nothing(self) -> None:
        assert choose_sources(PeriodAsk("latest"), [_doc("a", ""), _doc("b", "")]) == []
        # a dataset record, or a document dated only by a bare year its text mentions, is not a dated filing
        record = {**_doc("squad#3", "2016-02-07", title="Super Bowl 50"), "file_type": "record"}
        year_only = {**_doc("essay.txt", "2015-12-31", title="Essay"), "doc_period": "2015"}
        assert choose_sources(PeriodAsk("earliest"), [record, year_only]) == []
        assert choose_sources(PeriodAsk("date", "February 7, 2016", "2016-02-07"), [record]) == []
        assert restrict({"field": "meta.file_type", "operator": "==", "value": "pdf"}, []) == {
            "field": "meta.file_type", "operator": "==", "value": "pdf"}

    def test_family_without_author_drops_the_period_words(self) -> None:
        assert family(_doc("x", "", title="Acme Corp Quarterly Report Q3 2022")) == family(
            _doc("y", "", title="Acme Corp Quarterly Report for the quarter ended June 30, 2022")) == "acme corp"


QUARTERS = [("2022-03-31", "March 31, 2022"), ("2022-06-30", "June 30, 2022"),
            ("2022-09-30", "September 30, 2022"), ("2022-12-31", "December 31, 2022")]


def _filing(folder: Path, company: str, qi: int, ended: str, margin: float) -> Path:
    path = folder / f"{company.split()[0].lower()}-report-{qi + 1}.md"
    path.write_text(
        f"# {company} Quarterly Report\n\nFor the quarter ended {ended}.\n\n"
        f"## Results of operations\n\n{company} reported net sales of {12000 + 250 * qi:,} thousand dollars and a "
        f"gross margin of {margin:.1f} percent for the quarter. Operating expenses were stable and the company "
        f"kept its guidance for the full year unchanged.\n\n## Risk factors\n\nDemand may change with the "
        f"economy, and supply costs may rise.\n")
    return path


@pytest.mark.integration
class TestPeriodRetrieval:
    @pytest.fixture(scope="class")
    def rag(self, tmp_path_factory: pytest.TempPathFactory):
        from rag import DocRAG

        folder = tmp_path_factory.mktemp("filings")
        files = {}
        for company, base in (("Acme Corp", 40.0), ("Globex Inc", 30.0)):
            for qi, (iso, ended) in enumerate(QUARTERS):
                files[(company, iso)] = _filing(folder, company, qi, ended, base + qi)
        d = DocRAG(home=tmp_path_factory.mktemp("home"), extract_entities=False)
        report = d.ingest([folder])
        assert len(report.ingested) == len(files)
        yield d, {k: str(v.resolve()) for k, v in files.items()}
        d.close()

    def test_chunks_know_their_dates(self, rag) -> None:
        d, files = rag
        dates = {doc.meta["source"]: doc.meta.get("doc_date") for doc in d.store.filter_documents()}
        assert {dates[src] for src in files.values()} == {iso for iso, _ in QUARTERS}
        assert all(dates[src] == iso for (_, iso), src in files.items())
        hits = d.search("Acme Corp gross margin", top_k=5)
        assert len({h.source for h in hits}) > 1  # without a period the filings are indistinguishable

    @pytest.mark.parametrize("question, want", [
        ("What was the gross margin in Acme Corp's latest quarterly report?", ("Acme Corp", "2022-12-31")),
        ("Globex Inc gross margin in the previous quarterly report", ("Globex Inc", "2022-09-30")),
        ("Net sales in the earliest Acme Corp report", ("Acme Corp", "2022-03-31")),
    ])
    def test_relative_period_keeps_one_filing(self, rag, question: str, want: tuple[str, str]) -> None:
        d, files = rag
        hits = d.search(question, top_k=5)
        assert hits and {h.source for h in hits} == {files[want]}

    @pytest.mark.parametrize("question, want", [
        ("What was the gross margin of Acme Corp in Q3 2022?", ("Acme Corp", "2022-09-30")),
        ("Gross margin of Globex Inc in the quarter ended June 30, 2022?", ("Globex Inc", "2022-06-30")),
    ])
    def test_explicit_period_keeps_the_filings_of_that_date(self, rag, question: str, want: tuple[str, str]) -> None:
        d, files = rag
        hits = d.search(question, top_k=4)
        dated = {src for (_, iso), src in files.items() if iso == want[1]}
        assert hits[0].source == files[want] and {h.source for h in hits} <= dated
