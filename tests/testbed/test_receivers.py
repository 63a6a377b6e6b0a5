"""The loadtester and alert receiver speak the protocols a release uses."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from components.rehearse.testbed import AlertReceiver, LoadTester, LocalOnly
from components.rehearse.testbed.outside import ORIGINAL_URL_HEADER, shown
from components.rehearse.testbed.receivers import HEY_UNBOUNDED_QPS, parse_hey

pytestmark = pytest.mark.testbed


def _hook(metadata: dict[str, str] | None) -> dict[str, object]:
    payload: dict[str, object] = {"name": "podinfo", "namespace": "default", "phase": "Progressing",
                                  "checksum": "abc"}  # fmt: skip
    if metadata is not None:
        payload["metadata"] = metadata
    return payload


def test_loadtester_hooks_answer_as_flagger_loadtester_without_running_anything(
    tmp_path: Path,
) -> None:
    witness = tmp_path / "ran"
    with LoadTester() as tester:
        post = lambda body: httpx.post(tester.url + "/", json=body, timeout=10)  # noqa: E731
        assert post(_hook(None)).status_code == 400
        assert post(_hook({"cmd": f"touch {witness}"})).status_code == 202
        bash = post(_hook({"type": "bash", "cmd": f"touch {witness} && echo hello"}))
        assert (bash.status_code, bash.text) == (
            200,
            f"rehearsal: command not run: touch {witness} && echo hello",
        )
        assert post(_hook({"type": "bash", "cmd": "exit 3"})).status_code == 200
        time.sleep(0.3)  # flagger-loadtester runs a queued cmd within 100 ms
        assert not witness.exists()
        assert tester.commands == [
            f"touch {witness}",
            f"touch {witness} && echo hello",
            "exit 3",
        ]
        assert tester.requests[0].body["name"] == "podinfo"


def test_hey_becomes_traffic_once_while_it_lasts() -> None:
    sent: list[tuple[str, float, float]] = []
    with LoadTester(traffic=lambda *load: sent.append(load)) as tester:
        command = "hey -z 1m -q 10 -c 2 http://podinfo-canary.default:9898/"
        for _ in range(2):
            answer = httpx.post(tester.url + "/", json=_hook({"cmd": command}), timeout=10)
            assert answer.status_code == 202
        assert sent == [("podinfo-canary.default", 20.0, 60.0)]  # deduplicated, as queued
        assert [test.sent for test in tester.load_tests] == [True, False]


@pytest.mark.parametrize(
    ("command", "load"),
    [
        ("hey -z 1m -q 10 -c 2 http://podinfo-canary.default:9898/", (20.0, 60.0, 1200)),
        ("hey -z=30s -c 4 -q 5 http://podinfo.default:9898/", (20.0, 30.0, 600)),
        ("/usr/local/bin/hey -n 100 -c 1 -q 50 http://podinfo:9898/", (50.0, 2.0, 100)),
        ("hey -z 10s http://podinfo:9898/", (HEY_UNBOUNDED_QPS * 50, 10.0, 10_000)),
    ],
)
def test_hey_commands_are_read_as_rate_and_duration(
    command: str, load: tuple[float, float, int]
) -> None:
    run = parse_hey(command)
    assert run is not None
    assert (run.rps, run.seconds, run.requests) == load


@pytest.mark.parametrize(
    "command",
    ["curl -s http://podinfo-canary:9898/", "hey -z 1m", "hey -z soon http://x/", "hey 'a"],
)
def test_other_commands_are_not_load(command: str) -> None:
    assert parse_hey(command) is None


def test_loadtester_gates() -> None:
    with LoadTester() as tester:
        get = lambda path: httpx.post(tester.url + path, timeout=10).status_code  # noqa: E731
        assert (get("/gate/approve"), get("/gate/halt")) == (200, 403)
        assert get("/gate/check") == 200
        get("/gate/close")
        assert get("/gate/check") == 403
        assert get("/rollback/check") == 403
        get("/rollback/open")
        assert get("/rollback/check") == 200
        tester.set_rollback(False)
        assert get("/rollback/check") == 403


def test_loadtester_delay_and_forced_status() -> None:
    with LoadTester(delay=1.0) as tester:
        with pytest.raises(httpx.TimeoutException):
            httpx.post(tester.url + "/gate/approve", timeout=0.2)
        tester.delay = 0
        tester.forced_status = 500
        assert httpx.post(tester.url + "/gate/approve", timeout=5).status_code == 500


def test_alert_receiver_records_posts() -> None:
    with AlertReceiver() as alerts:
        response = httpx.post(alerts.url + "/slack", json={"text": "Canary failed"}, timeout=5)
        assert (response.status_code, response.text) == (200, "ok")
        assert [(r.path, r.body) for r in alerts.requests] == [
            ("/slack", {"text": "Canary failed"})
        ]


def test_outside_addresses_are_answered_by_the_receiver_and_remembered() -> None:
    said: list[str] = []
    with AlertReceiver() as receiver, LoadTester() as bed_server:
        local = LocalOnly(receiver.url, local=[bed_server.url], on_answered=said.append)
        with httpx.Client(transport=local.transport(True)) as client:
            for _ in range(2):
                answer = client.post(
                    "https://hooks.slack.com/services/T0/B0/S3CRET?x=1", json={"text": "hi"}
                )
                assert (answer.status_code, answer.text) == (200, "ok")
            assert client.post(bed_server.url + "/gate/check").status_code == 200
        (received,) = {(r.path, r.headers[ORIGINAL_URL_HEADER]) for r in receiver.requests}
        assert received == ("/services/T0/B0/S3CRET", "https://hooks.slack.com/...")
        assert receiver.requests[0].body == {"text": "hi"}
        assert [r.path for r in bed_server.requests] == ["/gate/check"]  # the bed's own passes
    assert said == ["https://hooks.slack.com/..."]  # once per address
    assert local.answered == {"https://hooks.slack.com/...": 2}


def test_a_hooks_path_is_never_shown() -> None:
    assert shown("https://hooks.slack.com/services/T/B/secret") == "https://hooks.slack.com/..."
    assert shown("http://alertmanager.monitoring:9093") == "http://alertmanager.monitoring:9093/"
