"""On-device benchmark runners and the ``lce_benchmark_model`` output parser.

No Android phone or Raspberry Pi exists on the test machine. The runners are exercised with
*stand-in executables*: small Python scripts this file writes into a temporary folder put
first on ``PATH`` as ``adb``, ``ssh`` and ``scp``. They record every argument list they receive
(JSON lines) and answer like the real tools; the benchmark command prints output in the exact
format of ``lce_benchmark_model``. The parser is also tested on recorded output: the Raspberry
Pi 4B QuickNet run from LCE's getting-started guide, a TF 2.x ``benchmark_model`` run with
``INFO:`` prefixes, percentiles and memory lines, an Android logcat capture, a run whose warmup
mean is printed in scientific notation, and failing/malformed runs.
"""
import json
import os
import stat
import sys
import textwrap

import pytest

import lqbench  # noqa: F401
from lqbench.commands import bench as bench_command
from lqbench.tflite import device
from lqbench.tflite.device import (
    AdbRunner,
    DeviceError,
    SshRunner,
    benchmark_flags,
    parse_benchmark_output,
    result_from_output,
    runner_for,
)

# LCE docs, "Getting started" (QuickNet on a Raspberry Pi 4B, lce_benchmark_model).
RPI_QUICKNET = """\
STARTING!
Duplicate flags: num_threads
Min num runs: [50]
Min runs duration (seconds): [1]
Max runs duration (seconds): [150]
Inter-run delay (seconds): [-1]
Num threads: [1]
Loaded model quicknet.tflite
The input model file size (MB): 3.34914
Initialized session in 3.501ms.
Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
count=12 first=156677 curr=33205 min=32578 max=156677 avg=43268.1 std=34197

Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
count=50 first=33228 curr=33130 min=32687 max=33239 avg=33071.8 std=129

Inference timings in us: Init: 3501, First inference: 156677, Warmup (avg): 43268.1, Inference (avg): 33071.8
"""

# TF 2.x benchmark_model: INFO prefixes, percentiles, memory footprint and peak memory lines.
TF2_WITH_MEMORY = """\
INFO: STARTING!
INFO: Log parameter values verbosely: [0]
INFO: Graph: [mobilenet_quant_v1_224.tflite]
INFO: Loaded model mobilenet_quant_v1_224.tflite
INFO: Initialized session in 87.639ms.
INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
INFO: count=5 first=106436 curr=105948 min=105929 max=106436 avg=106065 std=193 p5=105929 median=105948 p95=106436

INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
INFO: count=50 first=106022 curr=105780 min=105416 max=106528 avg=105784 std=260 p5=105485 median=105718 p95=106281

INFO: Inference timings in us: Init: 87639, First inference: 106436, Warmup (avg): 106065, Inference (avg): 105784
INFO: Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your discretion.
INFO: Memory footprint delta from the start of the tool (MB): init=14.4414 overall=14.8164
INFO: Overall peak memory footprint (MB) via periodic monitoring: 93.2383
"""

# Android logcat capture (benchmark app), tags and pids before every line.
LOGCAT = """\
07-14 13:14:52.190 22838 22838 I tflite  : Initialized session in 92.318ms.
07-14 13:14:52.859 22838 22838 I tflite  : count=3 first=235158 curr=200386 min=199462 max=235158 avg=211669 std=16613 p5=199462 median=200386 p95=235158
07-14 13:14:56.520 22838 22838 I tflite  : count=25 first=187533 curr=140990 min=140071 max=195121 avg=145528 std=13583 p5=140545 median=141253 p95=187533
07-14 13:14:56.521 22838 22838 I tflite  : Inference timings in us: Init: 92318, First inference: 235158, Warmup (avg): 211669, Inference (avg): 145528
07-14 13:14:56.521 22838 22838 I tflite  : Memory footprint delta from the start of the tool (MB): init=54.2852 overall=73.4102
"""

SCIENTIFIC = """\
INFO: count=1 curr=1041765

INFO: count=50 first=977738 curr=964908 min=911877 max=1112273 avg=971535 std=39112

INFO: Inference timings in us: Init: 6418, First inference: 1041765, Warmup (avg): 1.04176e+06, Inference (avg): 971535
INFO: Memory footprint delta from the start of the tool (MB): init=6.14844 overall=109.848
"""

FAILED = """\
INFO: STARTING!
INFO: Loaded model /data/local/tmp/model.tflite
ERROR: Encountered unresolved custom op: LceBconv2d.
ERROR: Node number 3 (LceBconv2d) failed to prepare.
ERROR: Failed to allocate tensors!
Benchmarking failed.
"""


def test_parse_lce_docs_output():
    parsed = parse_benchmark_output(RPI_QUICKNET)
    assert parsed["init_us"] == 3501
    assert parsed["first_us"] == 156677
    assert parsed["warmup_avg_us"] == pytest.approx(43268.1)
    assert parsed["avg_us"] == pytest.approx(33071.8)
    # the statistics of the *timed* runs (the second count= line), not the warmup's
    assert parsed["count"] == 50
    assert parsed["min_us"] == 32687 and parsed["max_us"] == 33239 and parsed["std_us"] == 129
    assert "median_us" not in parsed and "memory_overall_mb" not in parsed


def test_parse_tf2_output_with_percentiles_and_memory():
    parsed = parse_benchmark_output(TF2_WITH_MEMORY)
    assert parsed["avg_us"] == 105784 and parsed["count"] == 50
    assert (parsed["p5_us"], parsed["median_us"], parsed["p95_us"]) == (105485, 105718, 106281)
    assert parsed["memory_init_mb"] == pytest.approx(14.4414)
    assert parsed["memory_overall_mb"] == pytest.approx(14.8164)
    assert parsed["peak_memory_mb"] == pytest.approx(93.2383)


def test_parse_logcat_and_scientific_notation():
    logcat = parse_benchmark_output(LOGCAT)
    assert logcat["avg_us"] == 145528 and logcat["count"] == 25 and logcat["median_us"] == 141253
    assert logcat["memory_overall_mb"] == pytest.approx(73.4102)
    sci = parse_benchmark_output(SCIENTIFIC)
    assert sci["warmup_avg_us"] == pytest.approx(1.04176e6)
    assert sci["avg_us"] == 971535 and sci["count"] == 50


@pytest.mark.parametrize(
    "text, match",
    [
        (FAILED, "unresolved custom op: LceBconv2d"),
        ("", "no 'Inference timings in us' line"),
        ("Inference timings in us: Init: 12, First inference: 3\n", "no 'Inference timings in us' line"),
        ("Inference timings in us: Init: x, First inference: 1, Warmup (avg): 1, Inference (avg): 1\n",
         "no 'Inference timings"),
    ],
)
def test_parse_rejects_failed_and_malformed_output(text, match):
    with pytest.raises(ValueError, match=match):
        parse_benchmark_output(text)


def test_result_from_output_converts_to_ms():
    result = result_from_output(TF2_WITH_MEMORY, "m.tflite", "adb:X", "indirect", 2, 50, 5, size_bytes=1234)
    assert result.mean_ms == pytest.approx(105.784)
    assert result.median_ms == pytest.approx(105.718) and result.latency_ms == pytest.approx(105.718)
    assert (result.low_ms, result.high_ms, result.spread) == (pytest.approx(105.485), pytest.approx(106.281), "p5-p95")
    assert result.init_ms == pytest.approx(87.639) and result.first_ms == pytest.approx(106.436)
    assert result.memory_delta_mb == pytest.approx(14.8164) and result.peak_memory_mb == pytest.approx(93.2383)
    assert (result.kernel, result.threads, result.size_bytes) == ("indirect", 2, 1234)
    docs = result_from_output(RPI_QUICKNET, "quicknet.tflite", "ssh:pi@rpi", "default", 1, 50, 5)
    assert docs.median_ms is None and docs.statistic == "mean" and docs.latency_ms == pytest.approx(33.0718)
    assert (docs.low_ms, docs.high_ms, docs.spread) == (pytest.approx(32.687), pytest.approx(33.239), "min-max")


def test_benchmark_flags():
    flags = benchmark_flags("/data/local/tmp/m.tflite", threads=4, runs=20, warmup=3, kernel="indirect")
    assert flags == [
        "--graph=/data/local/tmp/m.tflite",
        "--num_threads=4",
        "--num_runs=20",
        "--warmup_runs=3",
        "--use_xnnpack=true",
        "--use_reference_bconv=false",
        "--use_indirect_bgemm=true",
        "--report_peak_memory_footprint=true",
    ]
    assert "--use_reference_bconv=true" in benchmark_flags("m", kernel="reference", xnnpack=False)
    with pytest.raises(ValueError, match="unknown kernel 'fast'"):
        benchmark_flags("m", kernel="fast")
    with pytest.raises(ValueError, match="threads >= 1"):
        benchmark_flags("m", threads=0)


# --------------------------------------------------------------------------- stand-in tools

STAND_IN = r'''#!{python}
"""Stand-in for {name}: records its arguments, answers like the real tool (see test docstring)."""
import json, os, sys, time
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(["{name}", *args]) + "\n")
mode = os.environ.get("FAKE_MODE", "ok")
command = " ".join(args)
if mode == "nodevice":
    print("error: no devices/emulators found", file=sys.stderr)
    sys.exit(1)
if "get-state" in args:
    print("device")
    sys.exit(0)
if "lce_benchmark_model" in command and "--graph=" in command:
    if mode == "slow":
        time.sleep(5)
    if mode == "fail":
        sys.stdout.write({failed!r})
        sys.exit(1)
    if mode == "garbage":
        print("Segmentation fault")
        sys.exit(0)
    avg = {{"reference": 90000.5, "indirect": 50000.25}}.get(
        "reference" if "--use_reference_bconv=true" in command else
        "indirect" if "--use_indirect_bgemm=true" in command else "default", 30000.75)
    if mode == "noindirect" and "--use_indirect_bgemm=true" in command:
        print("ERROR: Node number 1 (LceBconv2d) failed to prepare.")
        print("Benchmarking failed.")
        sys.exit(1)
    print("INFO: STARTING!")
    print("INFO: count=5 first=41000 curr=40000 min=40000 max=41000 avg=40200 std=400")
    print("")
    print(f"INFO: count=50 first={{avg:.0f}} curr={{avg:.0f}} min=29000 max=52000 avg={{avg}} std=120 p5=29500 median={{avg - 100:.0f}} p95=51000")
    print("")
    print(f"INFO: Inference timings in us: Init: 2500, First inference: 41000, Warmup (avg): 40200, Inference (avg): {{avg}}")
    print("INFO: Memory footprint delta from the start of the tool (MB): init=1.5 overall=3.25")
    print("INFO: Overall peak memory footprint (MB) via periodic monitoring: 12.5")
'''


@pytest.fixture
def stand_ins(tmp_path, monkeypatch):
    """Put stand-in ``adb``, ``ssh`` and ``scp`` first on PATH; returns a reader of their calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("adb", "ssh", "scp"):
        script = bin_dir / name
        script.write_text(STAND_IN.format(python=sys.executable, name=name, failed=FAILED))
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.setenv("FAKE_MODE", "ok")
    model = tmp_path / "net.tflite"
    model.write_bytes(b"\0\0\0\0TFL3" + b"\0" * 100)
    binary = tmp_path / "lce_benchmark_model_aarch64"
    binary.write_bytes(b"\x7fELF")

    def calls():
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return {"calls": calls, "model": model, "binary": binary, "mode": lambda m: monkeypatch.setenv("FAKE_MODE", m)}


def test_adb_runner_pushes_runs_and_parses(stand_ins):
    runner = AdbRunner(stand_ins["binary"], serial="R58M123")
    result = runner.run(stand_ins["model"], threads=2, runs=50, warmup=5, kernel="indirect")
    assert result.where == "adb:R58M123" and result.kernel == "indirect" and result.threads == 2
    assert result.mean_ms == pytest.approx(50.00025) and result.median_ms == pytest.approx(49.9)
    assert result.memory_delta_mb == 3.25 and result.peak_memory_mb == 12.5
    assert result.size_bytes == stand_ins["model"].stat().st_size
    calls = stand_ins["calls"]()
    assert all(call[:3] == ["adb", "-s", "R58M123"] for call in calls)
    assert calls[0][3:] == ["get-state"]
    assert calls[1][3:] == ["push", str(stand_ins["binary"]), "/data/local/tmp/lce_benchmark_model"]
    assert calls[2][3:] == ["shell", "chmod +x /data/local/tmp/lce_benchmark_model"]
    assert calls[3][3:] == ["push", str(stand_ins["model"]), "/data/local/tmp/net.tflite"]
    shell = calls[4][3:]
    assert shell[0] == "shell" and len(shell) == 2
    assert shell[1].split() == ["/data/local/tmp/lce_benchmark_model", *benchmark_flags(
        "/data/local/tmp/net.tflite", threads=2, runs=50, warmup=5, kernel="indirect")]
    # the binary is pushed once per runner, the model every time
    runner.run(stand_ins["model"], kernel="default")
    pushes = [c for c in stand_ins["calls"]() if "push" in c]
    assert len(pushes) == 3


def test_adb_runner_auto_picks_fastest_kernel_and_skips_failing_ones(stand_ins):
    stand_ins["mode"]("noindirect")
    result = AdbRunner(stand_ins["binary"]).run(stand_ins["model"], runs=10, kernel="auto")
    assert result.kernel == "default" and result.mean_ms == pytest.approx(30.00075)
    assert "indirect" in result.skipped and "failed" in result.skipped["indirect"]
    assert "auto kernel: default 30.001 ms, reference 90.001 ms" in result.notes[0]
    assert all(call[1] != "-s" for call in stand_ins["calls"]())  # no serial given


@pytest.mark.parametrize(
    "mode, match",
    [
        ("nodevice", "no Android device .*no devices/emulators found"),
        ("fail", r"failed \(exit 1\): Benchmarking failed\.|unresolved custom op"),
        ("garbage", "no 'Inference timings in us' line"),
    ],
)
def test_adb_runner_errors_are_one_line(stand_ins, mode, match):
    stand_ins["mode"](mode)
    with pytest.raises(DeviceError, match=match) as error:
        AdbRunner(stand_ins["binary"], serial="S1").run(stand_ins["model"], runs=3)
    assert "\n" not in str(error.value)


def test_runner_missing_binary_tool_and_timeout(stand_ins, tmp_path, monkeypatch):
    with pytest.raises(DeviceError, match="lce_benchmark_model binary not found"):
        AdbRunner(tmp_path / "nope").run(stand_ins["model"])
    stand_ins["mode"]("slow")
    with pytest.raises(DeviceError, match="timed out after 1 s"):
        AdbRunner(stand_ins["binary"], timeout=1).run(stand_ins["model"], runs=3)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(DeviceError, match="adb not found on PATH"):
        AdbRunner(stand_ins["binary"]).run(stand_ins["model"])


def test_ssh_runner_copies_with_scp_and_runs(stand_ins):
    runner = runner_for("ssh:pi@raspberrypi.local", stand_ins["binary"])
    assert isinstance(runner, SshRunner)
    result = runner.run(stand_ins["model"], threads=1, runs=20, warmup=2, kernel="default")
    assert result.where == "ssh:pi@raspberrypi.local" and result.mean_ms == pytest.approx(30.00075)
    calls = stand_ins["calls"]()
    tools = [c[0] for c in calls]
    assert tools == ["ssh", "scp", "ssh", "scp", "ssh"]
    assert calls[0][-2:] == ["pi@raspberrypi.local", "mkdir -p /tmp/lqbench"]
    assert "BatchMode=yes" in calls[0]
    assert calls[1][-2:] == [str(stand_ins["binary"]), "pi@raspberrypi.local:/tmp/lqbench/lce_benchmark_model"]
    assert calls[3][-2:] == [str(stand_ins["model"]), "pi@raspberrypi.local:/tmp/lqbench/net.tflite"]
    assert calls[4][-1].split()[:3] == [
        "/tmp/lqbench/lce_benchmark_model", "--graph=/tmp/lqbench/net.tflite", "--num_threads=1"]


def test_runner_for_parses_device_specs():
    assert runner_for("adb", "b").serial is None
    assert runner_for("adb:emulator-5554", "b").serial == "emulator-5554"
    assert runner_for("ssh:me@host", "b").host == "me@host"
    for bad in ("usb", "ssh:", "adb-1"):
        with pytest.raises(ValueError, match="allowed: adb, adb:SERIAL, ssh:USER@HOST"):
            runner_for(bad, "b")


def test_bench_command_on_device(stand_ins, tmp_path, capsys):
    """``lqbench bench`` with --device: table, CSV and JSON from the stand-in adb."""
    from lqbench import cli

    float_model = tmp_path / "net_float.tflite"
    float_model.write_bytes(b"\0\0\0\0TFL3" + b"\0" * 900)
    out_csv, out_json = tmp_path / "o.csv", tmp_path / "o.json"
    code = cli.main([
        "bench", str(stand_ins["model"]), "--float-twin", str(float_model), "--threads", "1", "2",
        "--runs", "10", "--kernel", "indirect", "--device", "adb:S9", "--binary", str(stand_ins["binary"]),
        "--csv", str(out_csv), "--json", str(out_json),
    ])
    assert code == 0
    table = capsys.readouterr().out
    assert "adb:S9" in table and "indirect" in table
    rows = out_csv.read_text().splitlines()
    assert rows[0].split(",") == list(bench_command.COLUMNS) and len(rows) == 3
    payload = json.loads(out_json.read_text())
    assert [r["threads"] for r in payload["rows"]] == [1, 2]
    # the stand-in answers 49.9 ms median for the indirect kernel, for both models
    assert payload["rows"][0]["binary_ms"] == pytest.approx(49.9) and payload["rows"][0]["ratio"] == 1.0
    assert payload["rows"][0]["size_ratio"] == pytest.approx(908 / 108, abs=0.01)


def test_bench_command_errors(stand_ins, capsys):
    from lqbench import cli

    assert cli.main(["bench", str(stand_ins["model"]), "--device", "adb"]) == 2
    assert "--device needs --binary" in capsys.readouterr().err
    stand_ins["mode"]("nodevice")
    assert cli.main(["bench", str(stand_ins["model"]), "--device", "adb", "--binary", str(stand_ins["binary"])]) == 2
    assert "no Android device" in capsys.readouterr().err
    assert cli.main(["bench", str(stand_ins["model"]), "--float-twin", "auto"]) == 2
    assert "needs a saved Keras MODEL" in capsys.readouterr().err
