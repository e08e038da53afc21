"""Seeing what a run does: peak-FLOP table, XLA's FLOP count, the per-step timing in metrics.jsonl, the
profiler window; and that toggling remat does not stop a run from resuming."""

import jax
import jax.numpy as jnp
import pytest
from conftest import REPO

from a2e_jax.core.config import load_config
from a2e_jax.train import perf, summary, trainer

STANDIN = str(REPO / "tests" / "train_standin.py")


@pytest.mark.parametrize("kind, dtype, peak", [
  ("NVIDIA H100 80GB HBM3", "bfloat16", 989e12),
  ("NVIDIA H100 PCIe", "bfloat16", 756e12),
  ("NVIDIA A100-SXM4-40GB", "float32", 156e12),
  ("TPU v5 lite", "bfloat16", 197e12),
  ("TPU v4", "float32", 275e12),
  ("cpu", "float32", None),
])  # fmt: skip
def test_peak_flops_of_known_devices_and_none_for_others(kind, dtype, peak):
  assert perf.peak_flops(kind, dtype) == peak


def test_step_flops_is_xlas_count_of_the_compiled_program():
  x = jnp.ones((64, 128), jnp.float32)
  y = jnp.ones((128, 32), jnp.float32)
  compiled = jax.jit(lambda a, b: a @ b).lower(x, y).compile()
  assert perf.step_flops(compiled) == pytest.approx(2 * 64 * 128 * 32, rel=0.05)


def test_metrics_record_step_time_data_wait_and_the_profiler_traces_its_window(tmp_path):
  config = load_config(STANDIN, ["--config.profile.start_step=3", "--config.profile.steps=2"])
  trainer.train_and_evaluate(config, tmp_path)
  timing = summary.read_metrics(tmp_path, split="perf")
  assert sorted(timing) == [2, 4, 6, 8]
  for record in timing.values():
    assert record["step_ms"] > 0 and 0 <= record["data_wait_ms"] and 0 <= record["data_wait_fraction"] <= 1
    assert record["examples_per_s"] == pytest.approx(8 * 1e3 / record["step_ms"])
    assert "mfu" not in record  # the CPU has no entry in the peak table
  assert len(list((tmp_path / "profile").glob("plugins/profile/*/*.xplane.pb"))) == 1
  # A run started without remat resumes with it: remat changes the compute, not the parameters.
  more = load_config(STANDIN, ["--config.model.remat=True", "--config.train.steps=10"])
  assert trainer.train_and_evaluate(more, tmp_path)["step"] == 10
