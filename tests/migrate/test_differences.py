"""What `--from-cluster` counts as a change: a declared field the live object lacks or holds
differently. Fields only the live object has stay as they are under a server-side apply."""

from __future__ import annotations

from components.migrate._live import differences


def test_fields_only_the_live_object_has_are_not_changes() -> None:
    live = {"spec": {"replicas": 2, "revisionHistoryLimit": 10}, "status": {"ready": 2}}
    assert differences({"spec": {"replicas": 2}}, live) == []


def test_a_declared_field_missing_or_different_live_is_a_change() -> None:
    declared = {"metadata": {"labels": {"app": "podinfo", "team": "web"}}, "spec": {"port": 80}}
    live = {"metadata": {"labels": {"app": "podinfo"}}, "spec": {"port": 8080}}
    assert differences(declared, live) == [
        "metadata.labels.team: not set live, 'web' declared",
        "spec.port: 8080 live, 80 declared",
    ]


def test_lists_compare_item_by_item_and_by_length() -> None:
    declared = {"containers": [{"name": "app", "image": "b"}]}
    assert differences(declared, {"containers": [{"name": "app", "image": "a", "tty": False}]}) == [
        "containers[0].image: 'a' live, 'b' declared"
    ]
    assert differences(declared, {"containers": []}) == [
        "containers: [] live, [{'name': 'app', 'image': 'b'}] declared"
    ]


def test_long_values_are_cut() -> None:
    (change,) = differences({"query": "x" * 200}, {"query": "y"})
    assert change == f"query: 'y' live, '{'x' * 76}... declared"
