"""`make run`'s own secrets (issue 17): generated once into DATA_DIR (0600), reused on every
later start, refused when others may read them; the environment wins; the admin token is never
printed. Calls infra.run_local's helper directly: no broker, no fixed ports, no network."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra import run_local
from services import local_secrets
from services.settings import get_settings, secret_problems


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    d = tmp_path / "data"
    monkeypatch.setenv("DATA_DIR", str(d))
    # Set, then removed: monkeypatch records the value they had (perhaps none) and restores it,
    # so whatever the helper puts into the environment is gone after the test. (A bare
    # `delenv(raising=False)` of an unset name records nothing.)
    for name in ("SECRET_KEY", "ADMIN_TOKEN", "ALLOW_DEV_SECRETS"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no `.env` of the developer's
    get_settings.cache_clear()
    yield d
    get_settings.cache_clear()


def test_first_start_generates_a_private_file_and_later_starts_reuse_it(data_dir: Path) -> None:
    settings, path, taken = run_local.prepare_secrets()
    assert path == data_dir / "secrets.env" and taken == ["SECRET_KEY", "ADMIN_TOKEN"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Real secrets: what every other start-up requires, without the development switch.
    assert not settings.allow_dev_secrets and secret_problems(settings) == []
    assert (os.environ["SECRET_KEY"], os.environ["ADMIN_TOKEN"]) == (
        settings.secret_key,
        settings.admin_token,
    )
    # No temporary file left beside it.
    assert sorted(p.name for p in data_dir.iterdir()) == ["secrets.env"]

    del os.environ["SECRET_KEY"], os.environ["ADMIN_TOKEN"]
    again, _, _ = run_local.prepare_secrets()
    assert (again.secret_key, again.admin_token) == (settings.secret_key, settings.admin_token)


def test_two_deployments_get_different_secrets(tmp_path: Path) -> None:
    _, a = local_secrets.ensure(tmp_path / "a")
    _, b = local_secrets.ensure(tmp_path / "b")
    assert a["SECRET_KEY"] != b["SECRET_KEY"] and a["ADMIN_TOKEN"] != b["ADMIN_TOKEN"]
    assert a["SECRET_KEY"] != a["ADMIN_TOKEN"]


def test_starts_racing_on_an_empty_folder_agree_on_one_file(tmp_path: Path) -> None:
    seen: list[dict[str, str]] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        seen.append(local_secrets.ensure(tmp_path)[1])

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 8 and all(s == seen[0] for s in seen)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secrets.env"]


def test_a_secret_set_in_the_environment_wins(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = "admin-token-chosen-by-the-operator-0123456789"
    monkeypatch.setenv("ADMIN_TOKEN", mine)
    settings, path, taken = run_local.prepare_secrets()
    assert taken == ["SECRET_KEY"] and settings.admin_token == mine
    assert local_secrets.read(path)["ADMIN_TOKEN"] != mine  # generated, kept, unused
    where, shell = run_local.admin_token_hint(settings)
    assert mine not in where and shell == "$ADMIN_TOKEN"


def test_the_admin_token_is_never_printed_only_where_it_is(data_dir: Path) -> None:
    settings, path, _ = run_local.prepare_secrets()
    where, shell = run_local.admin_token_hint(settings)
    assert str(path) in where and settings.admin_token not in where + shell
    assert shell == f"$(sed -n 's/^ADMIN_TOKEN=//p' {path})"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_file_others_may_read_is_refused(data_dir: Path, mode: int) -> None:
    _, path, _ = run_local.prepare_secrets()
    before = path.read_text()
    path.chmod(mode)
    del os.environ["SECRET_KEY"], os.environ["ADMIN_TOKEN"]
    with pytest.raises(local_secrets.UnsafeSecretsFile, match=f"mode {mode:o}.*chmod 600"):
        run_local.prepare_secrets()
    assert path.read_text() == before  # refused, not silently replaced
    assert "SECRET_KEY" not in os.environ
    # `make run` says so and stops.
    assert run_local.main() == 1


def test_a_symlink_or_a_broken_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("SECRET_KEY=x\nADMIN_TOKEN=y\n")
    target.chmod(0o600)
    d = tmp_path / "d"
    d.mkdir()
    (d / "secrets.env").symlink_to(target)
    with pytest.raises(local_secrets.UnsafeSecretsFile, match="cannot be opened"):
        local_secrets.ensure(d)
    (d / "secrets.env").unlink()
    (d / "secrets.env").write_text("SECRET_KEY=only-this\n")
    (d / "secrets.env").chmod(0o600)
    with pytest.raises(local_secrets.UnsafeSecretsFile, match="lacks ADMIN_TOKEN"):
        local_secrets.ensure(d)


def test_reading_without_creating_takes_nothing_from_a_missing_file(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env: dict[str, str] = {}
    path, taken = local_secrets.apply(get_settings(), env, create=False)
    assert taken == [] and env == {} and not path.exists()
