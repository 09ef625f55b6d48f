"""The start-here checks: the widget test view, zero crossings, the environment report."""

import numpy as np
import torch

from gfe_viz.viz.setup_check import PACKAGES, WIDGETS_EXTENSION, environment_report, widget_check_view, zero_crossings


def test_zero_crossings_counts_sign_changes():
    t = np.linspace(0.0, 2 * np.pi, 400, endpoint=False)
    assert [zero_crossings(np.sin(f * t)) for f in (1.0, 2.5, 4.0)] == [1, 4, 7]
    assert zero_crossings(np.array([1.0, 0.0, 2.0, -1.0, 0.0, -3.0])) == 1


def test_widget_check_view_redraws_the_wave():
    view = widget_check_view()
    assert view.summary == {"frequency": 1.0, "zero_crossings": 1}
    view.controls["frequency"].value = 2.5
    assert view.summary["zero_crossings"] == 4
    y = np.asarray(view.figure.data[0].y)
    assert np.allclose(y, np.sin(2.5 * np.asarray(view.figure.data[0].x)))
    assert view.figure.data[0].name == "sin(2.5 t)"


def test_environment_report_names_device_packages_and_extension():
    report = environment_report(torch.device("cpu"))
    assert report["device"] == "cpu" and report["cuda available"] == str(torch.cuda.is_available())
    assert torch.__version__.startswith(report["torch"])
    assert set(PACKAGES) <= set(report)
    assert report[WIDGETS_EXTENSION].startswith(("installed in", "not found"))


def test_report_says_how_to_fix_a_missing_extension(monkeypatch):
    import gfe_viz.viz.setup_check as setup_check

    monkeypatch.setattr(setup_check, "widgets_extension_folders", lambda: [])
    assert "install ipywidgets" in environment_report(torch.device("cpu"))[WIDGETS_EXTENSION]
