"""Sharded evaluation: the clip metrics computed by 2 processes x 4 CPU devices, each reading its rows,
equal those of 1 process x 8 devices."""

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO, free_port

WORKER = str(REPO / "tests" / "eval_worker.py")


@pytest.mark.slow
def test_two_processes_give_the_one_process_metrics(tmp_path):
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  port = free_port()

  def worker(num, process, name):
    return subprocess.Popen([sys.executable, WORKER, str(num), str(process), str(port), str(tmp_path / name)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

  runs = {"two": [worker(2, i, "two.json") for i in range(2)], "one": [worker(1, 0, "one.json")]}
  for processes in runs.values():
    for process in processes:
      log = process.communicate(timeout=600)[0]
      assert process.returncode == 0, log[-3000:]
  one, two = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("one", "two"))
  assert one["clips"] == two["clips"] == 6 and set(one) == set(two)
  for key, value in one.items():
    assert two[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
