"""Download (against a real local HTTP server) and convert (streaming, malformed input, best answer)."""
import http.server
import json
import threading
import time
from collections import Counter

import pytest

from conftest import source_element
from docbuilder import (ConvertStats, DownloadError, InputError, best_answer, download, iter_record_chunks,
                        resolve_input)

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class DumpServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), DumpHandler)
        self.mode = "ok"
        self.requests: list[dict] = []

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/dump.json"


class DumpHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        server: DumpServer = self.server
        server.requests.append({"range": self.headers.get("Range")})
        mode = server.mode
        if mode in ("404", "500"):
            self.send_response(int(mode))
            self.end_headers()
            return
        if mode == "slow":
            time.sleep(3)
        start = 0
        rng = self.headers.get("Range")
        if rng and mode != "ignore-range":
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "cut":
            server.mode = "ok"  # the next request succeeds
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    srv = DumpServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_complete_download_and_skip_when_present(server, tmp_path):
    dest = tmp_path / "raw" / "dump.json"
    assert download(server.url, dest, progress=False) == dest
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "raw" / "dump.json.part").exists()
    download(server.url, dest, progress=False)
    assert len(server.requests) == 1  # already complete: no second request


def test_resume_after_cut_connection(server, tmp_path):
    dest = tmp_path / "dump.json"
    server.mode = "cut"
    with pytest.raises(DownloadError, match="resume"):
        download(server.url, dest, progress=False)
    assert not dest.exists()
    part = tmp_path / "dump.json.part"
    have = part.stat().st_size
    assert 0 < have < len(PAYLOAD)
    download(server.url, dest, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests[-1]["range"] == f"bytes={have}-"


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    dest = tmp_path / "dump.json"
    (tmp_path / "dump.json.part").write_bytes(b"garbage that is not a prefix")
    server.mode = "ignore-range"
    download(server.url, dest, progress=False)
    assert dest.read_bytes() == PAYLOAD


@pytest.mark.parametrize("status", ["404", "500"])
def test_http_errors(server, tmp_path, status):
    server.mode = status
    with pytest.raises(DownloadError, match=f"HTTP {status}"):
        download(server.url, tmp_path / "d.json", progress=False)
    assert not (tmp_path / "d.json").exists()


def test_slow_server_times_out(server, tmp_path):
    server.mode = "slow"
    start = time.monotonic()
    with pytest.raises(DownloadError):
        download(server.url, tmp_path / "d.json", read_timeout=0.5, progress=False)
    assert time.monotonic() - start < 3


def test_unreachable_falls_back_to_sample_with_warning(tmp_path):
    warnings = []
    source = resolve_input(None, "http://127.0.0.1:9/nothing.json", tmp_path, fallback=True, warn=warnings.append,
                           progress=False)
    assert source["sample"] is True and source["origin"] == "sample"
    assert "bundled SAMPLE" in warnings[0] and "--input" in warnings[0]
    with pytest.raises(DownloadError):
        resolve_input(None, "http://127.0.0.1:9/nothing.json", tmp_path, fallback=False, warn=warnings.append,
                      progress=False)


def convert(path, chunk_rows=4096):
    stats = ConvertStats()
    chunks = list(iter_record_chunks(path, stats, chunk_rows, progress=False))
    return chunks, stats


def test_convert_streams_records_in_chunks(write_source):
    path = write_source([source_element(i) for i in range(1, 11)])
    chunks, stats = convert(path, chunk_rows=4)
    assert [len(c) for c in chunks] == [1, 2, 4, 3]  # a quarter, a half, then full chunks
    assert stats.elements == 10 and stats.records == 10
    first = chunks[0].iloc[0]
    assert first["id"] == first["source_id"] == "law-stackexchange-qa-1"
    assert first["tags"] == "civil-law,contract"
    assert first["file_name"] == "dump.json" and first["license"] == "CC BY-SA 4.0"
    assert first["link"].startswith("https://law.stackexchange.com/questions/1/")


def test_best_answer_highest_score_first_on_tie():
    answers = [{"body": "a", "score": 1}, {"body": "b", "score": 5}, {"body": "c", "score": 5}]
    assert best_answer(answers)["body"] == "b"


def test_malformed_and_unanswered_elements_are_counted(write_source):
    good = source_element(1)
    no_answer = source_element(2, answer_scores=())
    null_answers = {**source_element(3), "answers": None}
    bad_id = {**source_element(4), "question_id": "4"}
    missing_title = source_element(5)
    del missing_title["question_title"]
    bad_answer = source_element(6)
    bad_answer["answers"][0]["score"] = "high"
    duplicate = {**source_element(1), "question_title": "different content"}
    path = write_source([good, no_answer, null_answers, bad_id, missing_title, bad_answer, duplicate, 42])
    chunks, stats = convert(path)
    assert stats.elements == 8 and stats.records == 1
    assert stats.dropped == Counter({"no_answer": 2, "malformed:question_id": 1, "malformed:question_title": 1,
                                     "malformed:answers.score": 1, "duplicate_question_id": 1,
                                     "malformed:element": 1})
    assert chunks[0].iloc[0]["title"] == good["question_title"]


@pytest.mark.parametrize("content, message", [
    ("", "empty"),
    ('{"question_id": 1}', "expected a JSON array"),
    ("this is not json", "not a complete JSON array"),
])
def test_unreadable_files_raise_one_line(write_source, content, message):
    with pytest.raises(InputError, match=message) as err:
        convert(write_source(content))
    assert "\n" not in str(err.value)


def test_truncated_array_names_file_and_position(write_source):
    text = json.dumps([source_element(i) for i in range(1, 6)])
    path = write_source(text[: len(text) // 2])
    with pytest.raises(InputError) as err:
        convert(path)
    message = str(err.value)
    assert str(path) in message and "near byte" in message and "\n" not in message


def test_bom_is_accepted(write_source):
    path = write_source(b"\xef\xbb\xbf" + json.dumps([source_element(1)]).encode())
    chunks, stats = convert(path)
    assert stats.records == 1
