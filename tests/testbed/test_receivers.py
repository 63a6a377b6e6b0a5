"""The loadtester and alert receiver speak the protocols a release uses."""

from __future__ import annotations

import httpx
import pytest

from components.rehearse.testbed import AlertReceiver, LoadTester

pytestmark = pytest.mark.testbed


def _hook(metadata: dict[str, str] | None) -> dict[str, object]:
    payload: dict[str, object] = {"name": "podinfo", "namespace": "default", "phase": "Progressing",
                                  "checksum": "abc"}  # fmt: skip
    if metadata is not None:
        payload["metadata"] = metadata
    return payload


def test_loadtester_hooks() -> None:
    with LoadTester() as tester:
        post = lambda body: httpx.post(tester.url + "/", json=body, timeout=10)  # noqa: E731
        assert post(_hook(None)).status_code == 400
        assert post(_hook({"cmd": "hey -z 1m http://podinfo"})).status_code == 202
        assert tester.commands == ["hey -z 1m http://podinfo"]
        ok = post(_hook({"type": "bash", "cmd": "echo hello"}))
        assert (ok.status_code, ok.text.strip()) == (200, "hello")
        assert post(_hook({"type": "bash", "cmd": "exit 3"})).status_code == 500
        assert tester.requests[0].body["name"] == "podinfo"


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
