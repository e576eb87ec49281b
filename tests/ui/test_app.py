"""AppTest tests of each page on a real embedded store with the packaged models (one ingest per module)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from uitest import APP, TIMEOUT, app_env

from ui.common import get_rag

pytestmark = pytest.mark.integration


@pytest.fixture
def app(ui_home: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    app_env(monkeypatch, ui_home)
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
    return "\n".join(str(p) for p in parts)


def charts(at: AppTest) -> list:
    return at.get("vega_lite_chart")


class TestChatPage:
    def test_opens_on_chat_with_settings(self, app: AppTest) -> None:
        at = app.run()
        no_errors(at)
        assert at.title[0].value == "Ask your documents"
        assert {s.label for s in at.slider} >= {"Passages (top-k)", "Temperature"}
        assert at.toggle(key="rerank") is not None
        assert at.selectbox(key="model").options[0] == "SmolLM2-135M-Instruct (packaged default)"
        assert {"fake-memo.pdf", "handbook-1p.docx"} <= set(at.multiselect(key="doc_filter").options)
        assert len(at.chat_input) == 1

    def test_ask_streams_answer_and_opens_cited_chunk(self, app: AppTest, docs_dir: Path) -> None:
        at = app.run()
        at.multiselect(key="doc_filter").select(str((docs_dir / "fake-memo.pdf").resolve()))
        at.chat_input[0].set_value("How many bottles of water were delivered?").run()
        no_errors(at)
        assert [m.name for m in at.chat_message] == ["user", "assistant"]
        answer = at.chat_message[1]
        assert answer.markdown[0].value.strip(), "empty answer"
        assert any("Answered in" in c.value for c in answer.caption)
        # the filter kept every passage in the memo; open the first cited or read passage
        passages = [b for b in answer.button if b.key.startswith(("cite-", "hit-"))]
        assert passages and all("fake-memo.pdf" in b.label for b in passages)
        passages[0].click().run()
        no_errors(at)
        assert any(s.value.startswith("Cited passage") for s in at.subheader)
        bodies = [h.proto.body for h in at.get("html")]
        chunk = next(b for b in bodies if "docrag-chunk" in b)
        assert "water" in chunk.lower()
        assert any('class="docrag-page"' in b and "data:image/png;base64," in b for b in bodies)  # the PDF page
        assert "fake-memo.pdf" in texts(at) and "page 1" in texts(at)
        assert "uploads" not in texts(at)

        # the conversation is saved and in the URL: a new session (a reload) opens it again
        cid = at.query_params["c"][0] if isinstance(at.query_params["c"], list) else at.query_params["c"]
        again = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
        again.query_params["c"] = cid
        again.run()
        no_errors(again)
        assert [m.name for m in again.chat_message] == ["user", "assistant"]
        assert "bottles of water" in again.chat_message[0].markdown[0].value
        assert any(b.key == f"conv-{cid}" for b in again.sidebar.button)

        # a follow-up is made standalone before retrieval, and shows what was searched
        at.chat_input[0].set_value("Who signed it?").run()
        no_errors(at)
        assert len(at.chat_message) == 4
        assert any(c.value.startswith("Searched for: Who signed it? (") for c in at.chat_message[3].caption)
        # edit the first question: the chat is cut there and the new question asked
        at.button(key="editbtn-0").click().run()
        at.text_area(key="edit-0").input("How many laptops were delivered?").run()
        at.button(key="send-0").click().run()
        no_errors(at)
        assert len(at.chat_message) == 2 and "laptops" in at.chat_message[0].markdown[0].value

    def test_settings_are_per_session(self, app: AppTest, ui_home: Path) -> None:
        one = app.run()
        two = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
        one.slider(key="temperature").set_value(1.2).run()
        two.run()
        assert one.slider(key="temperature").value == 1.2 and two.slider(key="temperature").value == 0.0
        assert get_rag(str(ui_home)).settings.temperature == 0.0  # the shared service is untouched
        assert any("Model: **SmolLM2-135M-Instruct" in c.value for c in one.sidebar.caption)

    def test_chat_is_served_at_slash_chat_and_input_is_limited(self, app: AppTest) -> None:
        at = app.run()
        no_errors(at)
        assert at.title[0].value == "Ask your documents"
        assert at.chat_input[0].proto.max_chars == 2000

    def test_long_question_from_the_url_is_refused(self, app: AppTest) -> None:
        app.query_params["q"] = "why " * 600
        at = app.run()
        assert not at.exception
        assert any("limit is 2,000" in e.value for e in at.error)

    def test_declined_answer_is_shown_as_no_answer(self) -> None:
        def page() -> None:
            from rag.api import Answer
            from ui.answer import render_answer

            render_answer(0, Answer(question="q", text="The documents do not say.", citations=[], documents=[],
                                    declined=True, grounded=False, timings={"total_s": 0.5}))

        at = AppTest.from_function(page, default_timeout=TIMEOUT).run()
        assert not at.exception
        assert "Not in the documents" in at.info[0].value
        assert not at.button

    def test_low_confidence_is_not_sure_and_high_is_shown_plainly(self) -> None:
        def page() -> None:
            from rag.api import Answer, Citation, Evidence, Hit
            from ui.answer import render_answer

            hit = Hit(chunk_id="c1", source="/d/memo.pdf", file_name="memo.pdf", page=1, pages=[1], score=1.0,
                      text="There were 20,000 bottles of water delivered.")
            cite = Citation(ref=1, source=hit.source, file_name="memo.pdf", page=1, pages=[1], chunk_id="c1",
                            quote="20,000 bottles of water", start=11, end=34)
            ev = Evidence(text="20,000", chunk_id="c1", start=11, end=17, score=0.3)
            render_answer(0, Answer(question="q", text="20,000 bottles.", citations=[cite], documents=[hit],
                                    evidence=[ev], confidence=0.3))
            render_answer(1, Answer(question="q", text="20,000 bottles [1].", citations=[cite], documents=[hit],
                                    evidence=[ev], confidence=0.92, mode="extractive"))

        at = AppTest.from_function(page, default_timeout=TIMEOUT).run()
        assert not at.exception
        assert "Not sure" in at.warning[0].value and "30%" in at.warning[0].value
        assert any("Confidence 92%" in c.value for c in at.caption)
        md = [m.value for m in at.markdown]
        # the [1] of the button is in the text (added when the model gave none), linked to the citation
        assert "20,000 bottles. [\\[1\\]](#cite-0-1)" in md and "20,000 bottles [\\[1\\]](#cite-1-1)." in md
        at.button(key="cite-1-0").click().run()
        assert at.session_state["open_chunk"]["spans"] == [(11, 34), (11, 17)]

    def test_stopped_answer_is_kept_and_can_be_regenerated(self, ui_home: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
        from ui import conversations as convs

        app_env(monkeypatch, ui_home)
        conv = convs.new_conversation()
        conv["messages"] += [{"role": "user", "text": "What does the memo say?"},
                             {"role": "assistant", "answer": None, "text": "There were", "stopped": True}]
        convs.save(ui_home, "docrag", conv)
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
        at.query_params["c"] = conv["id"]
        at.run()
        no_errors(at)
        assert any("Stopped before the answer was finished" in c.value for c in at.caption)
        assert at.button(key="regen-1") is not None
        assert any(b.label == "Markdown" for b in at.get("download_button"))


    def test_empty_answer_is_flagged(self) -> None:
        def page() -> None:
            from rag.api import Answer
            from ui.answer import render_answer

            render_answer(0, Answer(question="q", text=" ", citations=[], documents=[], grounded=False))

        at = AppTest.from_function(page, default_timeout=TIMEOUT).run()
        assert not at.exception
        assert "empty answer" in at.warning[0].value


    def test_repeated_citation_is_one_button_that_opens_the_chunk(self) -> None:
        def page() -> None:
            from rag.api import Answer, Citation, Hit
            from ui.answer import render_answer

            hit = Hit(chunk_id="c1", source="/d/memo.pdf", file_name="memo.pdf", page=1, pages=[1], score=1.0,
                      text="There were 20,000 bottles of water delivered.")
            cite = Citation(ref=1, source=hit.source, file_name=hit.file_name, page=1, pages=[1], chunk_id="c1",
                            quote="20,000 bottles of water")
            render_answer(0, Answer(question="q", text="20,000 bottles [1][1].", citations=[cite, cite],
                                    documents=[hit]))

        at = AppTest.from_function(page, default_timeout=TIMEOUT).run()
        assert not at.exception
        cites = [b for b in at.button if b.key.startswith("cite-")]
        assert [b.label for b in cites] == ["[1] memo.pdf · page 1"]
        cites[0].click().run()
        assert at.session_state["open_chunk"]["quote"] == "20,000 bottles of water"


class TestAddPage:
    def test_upload_ingests_valid_files_and_refuses_others(self, app: AppTest, ui_home: Path,
                                                          docs_dir: Path) -> None:
        at = app.run()
        at.switch_page("views/add.py").run()
        no_errors(at)
        text = (docs_dir / "norwich-city.txt").read_bytes()
        at.file_uploader[0].set_value([
            ("../../evil/norwich city.txt", text, "text/plain"),
            ("tool.exe", b"MZ\x90\x00", "application/octet-stream"),
            ("empty.pdf", b"", "application/pdf"),
        ]).run()
        at.button(key="ingest_uploads").click().run()
        assert not at.exception
        rows = at.dataframe[0].value.set_index("status")
        assert rows.loc["ingested", "file"] == "../../evil/norwich city.txt"
        assert rows.loc["ingested", "chunks"] >= 1
        refused = at.dataframe[0].value.query("status == 'refused'")
        assert set(refused["file"]) == {"tool.exe", "empty.pdf"}
        assert any("not supported" in d for d in refused["details"])
        assert any("empty" in d for d in refused["details"])
        assert any("tool.exe" in e.value for e in at.error)
        uploads = ui_home / "uploads"
        assert [p.name for p in uploads.iterdir()] == ["norwich city.txt"]
        assert not (ui_home.parent / "evil").exists()
        assert any(d["file_name"] == "norwich city.txt" for d in get_rag(str(ui_home)).list_documents())

    def test_encrypted_pdf_fails_in_red_and_points_at_the_password_field(self, app: AppTest,
                                                                         docs_dir: Path) -> None:
        at = app.run()
        at.switch_page("views/add.py").run()
        assert at.text_input(key="upload_password").proto.type == 1  # PASSWORD
        assert any("from a URL is out of scope" in c.value for c in at.caption)
        at.file_uploader[0].set_value([("password.pdf", (docs_dir / "bad" / "password.pdf").read_bytes(),
                                        "application/pdf")]).run()
        at.button(key="ingest_uploads").click().run()
        assert not at.exception
        errors = [e.value for e in at.error]
        assert any("password.pdf · failed" in e and "Password for encrypted PDFs" in e for e in errors)
        assert not any("--password" in e for e in errors)
        row = at.dataframe[0].value.iloc[0]
        assert row["status"] == "failed" and "Password for encrypted PDFs" in row["details"]
        assert "None" not in at.dataframe[0].value.astype(str).to_numpy().ravel().tolist()

    def test_folder_path_ingest_and_missing_path(self, app: AppTest, tmp_path: Path, docs_dir: Path) -> None:
        folder = tmp_path / "folder"
        folder.mkdir()
        shutil.copy(docs_dir / "simple-table.md", folder / "simple-table.md")
        at = app.run()
        at.switch_page("views/add.py").run()
        at.text_input(key="ingest_path").input(str(tmp_path / "nope")).run()
        at.button(key="ingest_path_button").click().run()
        assert "does not exist" in at.error[0].value

        at.text_input(key="ingest_path").input(str(folder)).run()
        at.button(key="ingest_path_button").click().run()
        no_errors(at)
        df = at.dataframe[0].value
        assert list(df["file"]) == ["simple-table.md"] and list(df["status"]) == ["ingested"]
        assert "1 ingested" in at.success[0].value
        # the same folder again is unchanged
        at.button(key="ingest_path_button").click().run()
        assert list(at.dataframe[0].value["status"]) == ["unchanged"]


class TestLibraryPage:
    def test_search_reingest_and_delete_with_confirmation(self, app: AppTest, ui_home: Path, tmp_path: Path,
                                                         docs_dir: Path) -> None:
        victim = tmp_path / "to-delete.md"
        shutil.copy(docs_dir / "simple-table.md", victim)
        d = get_rag(str(ui_home))
        assert not d.ingest([victim]).failed

        at = app.run()
        at.switch_page("views/library.py").run()
        no_errors(at)
        names = set(at.dataframe[0].value["file_name"])
        assert {"fake-memo.pdf", "handbook-1p.docx", "to-delete.md"} <= names

        at.text_input(key="library_search").input("to-del").run()
        assert list(at.dataframe[0].value["file_name"]) == ["to-delete.md"]
        assert at.selectbox(key="library_doc").value == str(victim.resolve())

        at.button(key="reingest").click().run()
        no_errors(at)
        assert "Re-ingested to-delete.md" in at.success[0].value

        at.button(key="delete").click().run()
        assert "Delete **to-delete.md**" in at.warning[0].value
        at.button(key="confirm_delete_no").click().run()
        assert not at.warning and any(s["source"] == str(victim.resolve()) for s in d.list_documents())

        at.button(key="delete").click().run()
        at.button(key="confirm_delete_yes").click().run()
        no_errors(at)
        assert "Deleted to-delete.md" in at.success[0].value
        assert all(s["file_name"] != "to-delete.md" for s in d.list_documents())
        assert victim.exists()  # the file on disk is kept

    def test_uploads_show_no_internal_path_and_delete_removes_the_copy(self, app: AppTest, ui_home: Path,
                                                                      docs_dir: Path) -> None:
        at = app.run()
        at.switch_page("views/add.py").run()
        at.file_uploader[0].set_value([("stanley.csv", (docs_dir / "stanley-cups.csv").read_bytes(),
                                        "text/csv")]).run()
        at.button(key="ingest_uploads").click().run()
        copy = ui_home / "uploads" / "stanley.csv"
        assert copy.is_file()
        at.switch_page("views/library.py").run()
        no_errors(at)
        table = at.dataframe[0].value
        row = table[table["file_name"] == "stanley.csv"].iloc[0]
        assert row["location"] == "uploaded" and row["length"].endswith(("sheet", "sheets"))
        assert not any("uploads" in str(v) for v in table.to_numpy().ravel())
        at.text_input(key="library_search").input("stanley").run()
        assert "uploads" not in at.selectbox(key="library_doc").format_func(at.selectbox(key="library_doc").value)
        at.button(key="delete").click().run()
        assert "uploaded copy is removed too" in at.warning[0].value
        at.button(key="confirm_delete_yes").click().run()
        no_errors(at)
        assert not copy.exists()


class TestAnalysisPage:
    def test_entity_table_filters_and_charts(self, app: AppTest, docs_dir: Path) -> None:
        at = app.run()
        at.switch_page("views/analysis.py").run()
        no_errors(at)
        ents = at.dataframe[0].value
        assert len(ents) > 3 and list(ents.columns) == ["label", "text", "count", "documents"]
        names = ents[ents["label"].isin(["PERSON", "ORG", "GPE", "LOC", "MISC", "NORP", "FAC", "PRODUCT"])]["text"]
        assert len(names) and not any(len(t.replace(".", "")) < 2 or t.replace(",", "").isdigit() for t in names)
        assert ents["count"].is_monotonic_decreasing
        assert len(charts(at)) >= 3  # entity types, top entities, documents (+ co-occurrence, timeline)

        label = ents["label"].iloc[0]
        at.multiselect(key="entity_labels").select(label).run()
        no_errors(at)
        assert set(at.dataframe[0].value["label"]) == {label}

        at.multiselect(key="analysis_docs").set_value([str((docs_dir / "fake-memo.pdf").resolve())]).run()
        no_errors(at)
        assert "Summarize 1 document" in [b.label for b in at.button]


    def test_summary_of_one_document(self, app: AppTest, docs_dir: Path) -> None:
        at = app.run()
        at.switch_page("views/analysis.py").run()
        at.multiselect(key="analysis_docs").set_value([str((docs_dir / "fake-memo.pdf").resolve())]).run()
        at.button(key="summarize").click().run()
        no_errors(at)
        assert "#### fake-memo.pdf" in [m.value for m in at.markdown]
        summary = at.markdown[[m.value for m in at.markdown].index("#### fake-memo.pdf") + 1].value
        assert summary.startswith("- ") and "(page 1)" in summary  # the document's own sentences, with pages
        assert any(c.value.startswith("extractive ·") for c in at.caption)
        assert not at.warning  # nothing unsupported in an extractive summary


class TestErrors:
    def test_store_unavailable_is_a_message_not_a_traceback(self, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
        app_env(monkeypatch, tmp_path.resolve())
        monkeypatch.setenv("DOCRAG_QDRANT_URL", "http://127.0.0.1:9")  # discard port: nothing listens
        monkeypatch.setenv("DOCRAG_QDRANT_TIMEOUT", "2")
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
        assert not at.exception
        assert "document store is unavailable" in at.error[0].value
        assert "Traceback" not in at.error[0].value
        at.switch_page("views/library.py").run()
        assert not at.exception and "document store is unavailable" in at.error[0].value

    def test_missing_model_is_a_message_not_a_traceback(self, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
        app_env(monkeypatch, tmp_path.resolve())
        monkeypatch.setenv("DOCRAG_GENERATOR", str(tmp_path / "missing.gguf"))
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
        at.chat_input[0].set_value("Anything?").run()
        assert not at.exception
        assert "A model is unavailable" in at.error[0].value and "missing.gguf" in at.error[0].value


class TestCollections:
    def test_a_new_collection_is_its_own_library(self, app: AppTest, ui_home: Path) -> None:
        at = app.run()
        at.text_input(key="new_collection").input("bad name!").run()
        at.button(key="create_collection").click().run()
        assert any("letters, digits" in e.value for e in at.error)
        at.text_input(key="new_collection").input("work").run()
        at.button(key="create_collection").click().run()
        assert not at.exception
        assert at.session_state["collection"] == "work" and (ui_home / "collections" / "work").is_dir()
        assert "work" in at.selectbox(key="collection_choice").options
        assert any("library is empty" in i.value for i in at.info)  # the default collection's documents stay apart
        at.selectbox(key="collection_choice").select("docrag").run()
        no_errors(at)
        assert not any("library is empty" in i.value for i in at.info)
        get_rag(str(ui_home), "work").close()


class TestModelsPage:
    def test_install_with_progress_then_use_in_this_tab_only(self, app: AppTest, ui_home: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
        import hashlib

        from test_model_registry import _gguf, _wheel

        from rag import model_registry as reg

        blob = _gguf("llama")
        _wheel(tmp_path, "docrag-uifake-part1", "0.1.0", {"docrag_uifake_part1/data/part01.bin": blob[:1000]})
        _wheel(tmp_path, "docrag-uifake-part2", "0.1.0", {"docrag_uifake_part2/data/part02.bin": blob[1000:]})
        monkeypatch.setitem(reg.REGISTRY, "uifake", reg.GeneratorModel(
            name="uifake", title="UI fake GGUF", file_name="uifake.gguf", size=len(blob),
            sha256=hashlib.sha256(blob).hexdigest(), architecture="llama",
            packages=("docrag-uifake-part1==0.1.0", "docrag-uifake-part2==0.1.0")))
        at = app.run()
        at.switch_page("views/models.py").run()
        no_errors(at)
        assert at.title[0].value == "Models"
        assert at.button(key="install-uifake") is not None and at.button(key="install-qwen2.5-coder-0.5b")
        assert at.button(key="use-smollm2-135m").disabled  # the packaged default is in use
        at.text_input(key="model_wheels").input(str(tmp_path)).run()
        at.button(key="install-uifake").click().run()
        no_errors(at)
        bar = at.get("progress")[-1].proto
        assert bar.value == 100 and "installed and verified" in bar.text
        assert (ui_home / "cache" / "models" / "generators" / "uifake.gguf").read_bytes() == blob
        at.run()
        at.button(key="use-uifake").click().run()
        assert at.button(key="use-uifake").disabled and any("**uifake**" in c.value for c in at.caption)
        at.switch_page("views/chat.py").run()
        no_errors(at)
        assert at.selectbox(key="model").value == "uifake"
        assert any("Model: **UI fake GGUF**" in c.value for c in at.sidebar.caption)
        other = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()  # another tab keeps the default
        assert other.selectbox(key="model").value == ""
        assert get_rag(str(ui_home)).settings.generator == ""

    def test_failed_install_is_one_line_and_loaded_models_are_listed(self, app: AppTest, tmp_path: Path) -> None:
        at = app.run()
        at.switch_page("views/models.py").run()
        at.text_input(key="model_wheels").input(str(tmp_path)).run()  # an empty wheel folder
        at.button(key="install-gemma3-270m").click().run()
        assert not at.exception
        assert len(at.error) == 1 and "Installing gemma3-270m failed" in at.error[0].value
        assert "Traceback" not in at.error[0].value
        loaded = at.dataframe[0].value  # the module's ingest loaded the embedder and the NER model
        assert {"SentenceTransformersDocumentEmbedder", "DocumentEntityExtractor"} <= set(loaded["component"])


def test_answer_shows_where_its_time_went() -> None:
    def page() -> None:
        from rag.api import Answer
        from ui.answer import render_answer

        render_answer(0, Answer(question="q", text="Yes.", citations=[], documents=[], timings={
            "embed_s": 0.02, "retrieve_s": 0.31, "rerank_s": 0.5, "read_s": 0.7, "generate_s": 2.0,
            "first_token_s": 1.6, "wait_s": 3.0, "total_s": 6.6}))

    at = AppTest.from_function(page, default_timeout=TIMEOUT).run()
    assert not at.exception
    captions = [c.value for c in at.caption]
    assert "Answered in 6.6 s · first token 1.6 s · 3.0 s of it waiting for another answer" in captions
    assert ("waiting for another answer 3.00 s · embed 0.02 s · retrieve 0.31 s · rerank 0.50 s · read 0.70 s · "
            "generate 2.00 s · first token at 1.60 s · total 6.60 s") in captions
