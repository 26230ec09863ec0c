"""``micronetwork sim``: clear errors, results written."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from micronetwork.cli import sim as cli_sim


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="micronetwork")
    sub = parser.add_subparsers(dest="command")
    cli_sim.add_parser(sub)
    args = parser.parse_args(["sim", *argv])
    return args.run(args)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "argv, words",
    [
        (["nosuch"], "unknown scenario"),
        (["lookup", "--nodes", "1"], "--nodes"),
        (["lookup", "--nodes", "10", "--supers", "10"], "--supers"),
        (["lookup", "--supers", "2", "--bootstrap-contacts", "3"], "--bootstrap-contacts"),
        (["lookup", "--latency", "pareto:3"], "--latency"),
        (["lookup", "--topology", "/no/such/file.graphml"], "topology file not found"),
        (["lookup", "--topology", "regular:5:3"], "topology"),
        (["adversarial", "--attackers", "1.5"], "--attackers"),
    ],
)
def test_bad_input_is_a_one_line_error(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(argv) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_bad_topology_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "t.gml"
    bad.write_text("graph [ node [ id")
    assert _run(["lookup", "--topology", str(bad)]) == 2
    assert "cannot read topology file" in capsys.readouterr().err


def test_run_writes_results_and_plots(tmp_path: Path) -> None:
    out = tmp_path / "r"
    rc = _run(["lookup", "--nodes", "40", "--seed", "3", "--lookups", "15", "--out", str(out),
               "--quiet"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["figures"]["lookup"]["success"] == 1.0
    assert summary["params"]["nodes"] == 40
    load = summary["figures"]["super_load"]  # the super nodes' load, per phase
    assert list(load["phases"]) == ["join", "refresh", "lookup"]
    assert load["watched"] == 4 and load["phases"]["join"]["requests"] > 0
    assert load["all"]["timeouts"] == 0 and load["all"]["backlog_max"] < 1.0
    assert summary["series"]["super_backlog_s"]
    assert (out / "lookups.csv").read_text().count(",lookup,") == 15
    assert (out / "latency_cdf.png").stat().st_size > 1000


def test_sweep_of_seeds_and_sizes_is_one_command(tmp_path: Path) -> None:
    rc = _run(["ideal", "--nodes", "30", "--seeds", "1,2", "--lookups", "10", "--out",
               str(tmp_path), "--jobs", "2", "--quiet", "--no-plots"])
    assert rc == 0
    sweep = json.loads((tmp_path / "sweep.json").read_text())
    assert sorted((r["nodes"], r["seed"]) for r in sweep) == [(30, 1), (30, 2)]


def test_a_network_too_big_for_the_memory_is_refused_with_the_way_out(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from micronetwork.sim import scenarios

    monkeypatch.setattr(scenarios, "_total_memory", lambda: 16.0)
    assert _run(["ideal", "--nodes", "1000000"]) == 2
    err = capsys.readouterr().err
    assert "1,000,000 nodes need about" in err and "--compact-tables about" in err
    assert "Traceback" not in err
    # Compact tables fit; two such runs at once do not.
    scenarios.RunParams(nodes=1_000_000, compact_tables=True).check_memory()
    with pytest.raises(scenarios.ScenarioError, match="2 runs at once"):
        scenarios.RunParams(nodes=1_000_000, compact_tables=True).check_memory(2)


def test_compact_tables_run_from_the_command_line(tmp_path: Path) -> None:
    assert _run(["ideal", "--nodes", "300", "--lookups", "50", "--compact-tables", "--quiet",
                 "--no-plots", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["figures"]["ideal"]["success"] == 1.0
