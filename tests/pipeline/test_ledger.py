from __future__ import annotations

import json

from admd_deploy.pipeline.ledger import Ledger, stable_hash


def test_stable_hash_ignores_key_order_and_sees_values():
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})


def test_a_finished_stage_is_current_only_for_the_same_key_and_survives_reload(tmp_path):
    led = Ledger(tmp_path)
    led.start("teacher", "k1")
    assert not led.is_current("teacher", "k1")  # running is not done
    led.finish("teacher", {"weights": "w.pt"})
    again = Ledger(tmp_path)
    assert again.is_current("teacher", "k1") and not again.is_current("teacher", "k2")
    assert again.outputs("teacher") == {"weights": "w.pt"}
    assert json.loads((tmp_path / "ledger.json").read_text())["stages"]["teacher"]["seconds"] >= 0


def test_a_failed_stage_records_why_and_keeps_earlier_results(tmp_path):
    led = Ledger(tmp_path)
    led.start("data", "d")
    led.finish("data", {"data_yaml": "x"})
    led.start("teacher", "t")
    led.fail("teacher", "RuntimeError: boom")
    again = Ledger(tmp_path)
    assert again.is_current("data", "d")
    assert again.records["teacher"].status == "failed" and "boom" in again.records["teacher"].error


def test_invalidate_marks_stages_stale_so_they_rerun(tmp_path):
    led = Ledger(tmp_path)
    for s in ("data", "export", "report"):
        led.start(s, s)
        led.finish(s, {})
    led.invalidate(["export", "report"])
    assert led.is_current("data", "data") and not led.is_current("export", "export")
