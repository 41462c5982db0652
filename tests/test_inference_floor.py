"""benchmarks/inference.py's floor table: the arithmetic that turns counted operations and measured
rates into the floor of each case (the benchmark itself is not part of the suite)."""

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("inference_bench", os.path.join(ROOT, "benchmarks", "inference.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # its siblings import numpy at most; torch inside functions
    return module


def _row(stage, precision, rtf, encoder_gflop, decoder_gflop, packed=False):
    return {"stage": stage, "precision": precision, "rtf": rtf, "encoder_gflop": encoder_gflop,
            "decoder_gflop": decoder_gflop, "packed": packed, "packed_mb": 768.0 if packed else 0.0}


RATES = {"gemm_float32": 100.0, "gemm_bfloat16": 400.0, "stream_float32": 10.0, "stream_bfloat16": 10.0, "read": 40.0}


def test_floor_of_an_fp32_case(bench):
    # 200 GFLOP at 100 GFLOP/s = 2 s; 100 GFLOP of beam steps = 10 G weights read (5 rows, 2 FLOP
    # each) x 4 bytes = 40 GB: 4 s at 10 GB/s, 1 s at the 40 GB/s read rate; RTF (2 + 4) / 9
    table = bench.floors([_row("stage2", "fp32", 0.9, 200.0, 100.0)], RATES)
    row = [line for line in table.splitlines() if line.startswith("| stage 2")][0].split(" | ")
    assert row[2:8] == ["200", "2.00", "40.0", "4.00 / 1.00", f"{6 / 9:.3f}", "0.900 |"]


def test_packed_fp32_streams_at_the_packed_rate(bench):
    # the packed case reads the same 40 GB at the pre-packed rate (20 GB/s), the unpacked one at F.linear's (10)
    rates = dict(RATES, stream_float32=20.0, stream_float32_mkl=10.0)
    table = bench.floors([_row("stage2", "fp32", 0.5, 200.0, 100.0, packed=True),
                          _row("stage2", "fp32", 0.9, 200.0, 100.0)], rates)
    packed, plain = [line.split(" | ") for line in table.splitlines() if line.startswith("| stage 2")]
    assert packed[1] == "fp32, decoder weights pre-packed (+768 MiB)" and packed[5] == "2.00 / 1.00"
    assert plain[1] == "fp32, F.linear (--no-packed-weights)" and plain[5] == "4.00 / 1.00"
    assert "oneDNN pre-packed; F.linear 10.0" in table


def test_bf16_reads_half_the_bytes_at_the_bf16_rate(bench):
    table = bench.floors([_row("stage1", "bf16", 0.1, 200.0, 100.0)], RATES)
    row = [line for line in table.splitlines() if line.startswith("| stage 1")][0].split(" | ")
    assert row[2:7] == ["200", "0.50", "20.0", "2.00 / 0.50", f"{2.5 / 9:.3f}"]


def _measured(stage, rtf):
    return dict(_row(stage, "fp32", rtf, 200.0, 100.0), params_m=12.3, frames_in=250, frames_model=63,
                load_s=0.5, seconds=rtf * 10)


@pytest.mark.parametrize("stage", ["stage1", "stage2"])
def test_measured_table_marks_each_case_against_its_goal(bench, stage):
    goal = bench.GOALS[stage]
    table = bench.markdown([_measured(stage, goal), _measured(stage, goal + 0.001)])
    at_goal, above = [line.split(" | ") for line in table.splitlines() if line.startswith("| stage")]
    assert at_goal[-1] == f"<= {goal:.2f} met |"
    assert above[-1] == f"<= {goal:.2f} MISSED |"
