"""tools/probe_emotion.py's transforms and its log-mel level/slope measure, on noise of known spectrum."""

import numpy as np
import pytest
from conftest import tool_module


@pytest.fixture(scope="module")
def probe():
  return tool_module("probe_emotion")


@pytest.fixture(scope="module")
def noise():
  return 0.05 * np.random.default_rng(0).standard_normal(2 * 16000)


def test_tilt_keeps_the_level_and_colours_by_the_slope(probe, noise):
  tilted = probe.tilt(noise, -6.0)
  assert np.sqrt(np.mean(tilted ** 2)) == pytest.approx(np.sqrt(np.mean(noise ** 2)), rel=1e-6)
  before, after = probe.spectrum_figures(noise), probe.spectrum_figures(tilted)
  assert after["slope_db_per_octave"] - before["slope_db_per_octave"] == pytest.approx(-6.0, abs=0.5)
  assert after["above_4k_minus_0.5_2k_db"] < before["above_4k_minus_0.5_2k_db"] - 10


def test_gain_moves_the_measured_level_only(probe, noise):
  before, after = probe.spectrum_figures(noise), probe.spectrum_figures(probe.gain(noise, -10.0))
  assert after["level_db"] - before["level_db"] == pytest.approx(-10.0, abs=0.2)
  assert after["slope_db_per_octave"] == pytest.approx(before["slope_db_per_octave"], abs=0.1)


def test_low_pass_and_shelf_cut_the_top(probe, noise):
  base = probe.spectrum_figures(noise)["above_4k_minus_0.5_2k_db"]
  assert probe.spectrum_figures(probe.low_pass(noise, 4000.0))["above_4k_minus_0.5_2k_db"] < base - 6
  shelved = probe.spectrum_figures(probe.high_shelf(noise, -6.0))["above_4k_minus_0.5_2k_db"]
  assert base - 6 < shelved < base - 3
