"""`interlock stack` without servers: the plan template, what a missing server program
does (names it, says how to install it, starts nothing), and the state file's secrecy."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from adapters.environment import build_adapters
from adapters.stack import stack as stk
from adapters.stack.process import ServerUnavailable
from core.clock import VirtualClock
from core.planload import parse_plan
from tui.cli.stack_cmd import main as stack_cli

ADDRESSES = {"STACK_UNLEASH_URL": "http://127.0.0.1:4242", "STACK_HAPROXY_ADMIN": "127.0.0.1:9999",
             "STACK_PROMETHEUS_URL": "http://127.0.0.1:9090"}


def test_the_template_renders_into_a_plan_the_real_adapters_accept() -> None:
    text = stk.render_plan(stk.TEMPLATE.read_text(encoding="utf-8"), ADDRESSES)
    assert not re.search(r"\$\{STACK_[A-Z_]+\}", text)
    assert '$service' in text and '$version' in text  # the query templates are left alone
    plan, source = parse_plan(text, "recsys-stack.yaml")
    env = plan.environment
    assert env.flags.url == "http://127.0.0.1:4242" and env.router.admin == "127.0.0.1:9999"
    assert env.flags.token_env == stk.TOKEN_ENV
    flags, router, metrics, close = build_adapters(plan, clock=VirtualClock(), source=source,
                                                   environ={stk.TOKEN_ENV: "*:*.secret"})
    assert "secret" not in repr(flags)
    assert set(metrics.queries) == {"error_rate", "latency_p99", "prediction_psi"}  # type: ignore[attr-defined]


def test_an_unknown_placeholder_is_an_error_naming_it() -> None:
    with pytest.raises(stk.StackError, match=r"\$\{STACK_NOPE\}; the stack provides STACK_HAPROXY_ADMIN"):
        stk.render_plan("url: ${STACK_NOPE}", ADDRESSES)


def test_missing_programs_are_named_with_how_to_install_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def no_haproxy(name: str, *dirs: str) -> str:
        if name == "haproxy":
            raise ServerUnavailable("haproxy is not installed; run `bash .ci/install-servers` (apt-get: ...)")
        return "/usr/bin/" + name

    monkeypatch.setattr(stk, "find_program", no_haproxy)
    problems = stk.missing_servers(node_dir=tmp_path / "empty")
    assert problems[0].startswith("haproxy is not installed; run `bash .ci/install-servers`")
    assert any(p.startswith(f"unleash-server is not installed in {tmp_path / 'empty'}; run `bash .ci/install-servers`")
               for p in problems)
    assert stk.missing_servers(node_dir=tmp_path / "empty", unleash=False) == problems[:1]


def test_stack_up_with_a_missing_server_says_so_and_starts_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "run"
    assert stack_cli(["stack", "up", "--dir", str(folder), "--node-dir", str(tmp_path / "no-node")]) == 1
    err = capsys.readouterr().err
    assert "cannot start the stack; nothing was started" in err
    assert f"unleash-server is not installed in {tmp_path / 'no-node'}; run `bash .ci/install-servers`" in err
    assert not folder.exists()


def test_down_and_status_of_a_stack_that_never_ran(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert stk.down(tmp_path) == [] and stk.status(tmp_path) == [] and stk.load_state(tmp_path) is None
    assert stack_cli(["stack", "down", "--dir", str(tmp_path)]) == 0
    assert "already down" in capsys.readouterr().out
    assert stack_cli(["stack", "status", "--dir", str(tmp_path)]) == 1
    assert stack_cli(["stack", "exec", "--dir", str(tmp_path), "--", "true"]) == 1


def test_the_state_file_is_private_and_round_trips(tmp_path: Path) -> None:
    stack = stk.Stack(dir=tmp_path, token="*:*.very-secret", plan=tmp_path / "p.yaml", urls={"sim": "x"},
                      frontends={}, listeners={}, processes={})
    stk._write_state(stack)
    path = tmp_path / stk.STATE_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stk.load_state(tmp_path) == stack
    assert "very-secret" not in repr(stack)
    assert stack.env({})[stk.TOKEN_ENV] == "*:*.very-secret"


def test_a_foreign_folder_is_never_wiped(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(stk.StackError, match="was not made by `interlock stack up`"):
        stk._fresh_folder(tmp_path)
    assert (tmp_path / "precious.txt").read_text() == "keep me"
