"""The report's text, from a report dict (no training)."""

from __future__ import annotations

from pathlib import Path

import pytest

from admd_deploy.pipeline.report import markdown


def _report(**changes):
    model = {"map50": 0.9, "map50_95": 0.7, "params": 2.6e6, "cpu_latency_ms": 10.0}
    return {"name": "r", "task": "obb", "method": "admd", "protocol": "p", "note": "n", "passed": True, "gates": [],
            "exports": {}, "models": {"teacher": model, "baseline": model, "student": model},
            "gap_closed_map50_95": None, "kd_note": None, "stages": {}, **changes}


@pytest.mark.parametrize(("count", "shown"), [(900, True), (None, False)])
def test_the_report_says_when_the_kd_term_ran_on_unlabelled_images(count, shown):
    text = markdown(_report(unlabelled_images=count), {}, Path("/run"))
    assert ("The KD term also ran on 900 unlabelled images" in text) is shown
    assert "unlabelled" not in markdown(_report(), {}, Path("/run"))  # reports written before the field existed


def test_the_report_says_when_the_unlabelled_images_were_pseudo_labelled_by_the_teacher():
    text = markdown(_report(unlabelled_images=900, pseudo_conf=0.5), {}, Path("/run"))
    assert "The teacher pseudo-labelled 900 unlabelled images (`data.unlabelled`, its detections with confidence " \
           ">= 0.5) and they joined the distilled student's training" in text
    assert "The KD term also ran on" not in text
