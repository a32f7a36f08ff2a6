"""`forma3d user create/invite` and `forma3d apikey list/revoke`."""

from __future__ import annotations

import io
import uuid

import pytest

from forma3d.cli import main


@pytest.mark.db
def test_users_and_keys_from_the_cli(database_url: str, redis_url: str,
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    assert main(["tenant", "create", slug]) == 0
    capsys.readouterr()

    assert main(["user", "invite", "ana@example.com", "--tenant", slug, "--role", "admin"]) == 0
    token = capsys.readouterr().out.strip()
    assert len(token) > 30
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert main(["user", "create", "bo@example.com", "--tenant", slug]) == 0
    uuid.UUID(capsys.readouterr().out.strip())
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["user", "create", "cy@example.com", "--tenant", slug]) == 2
    assert "12 characters" in capsys.readouterr().err
    assert main(["user", "invite", "x@example.com", "--tenant", slug, "--role", "boss"]) == 2
    assert "built-in roles" in capsys.readouterr().err

    assert main(["apikey", "create", "--tenant", slug, "--name", "ci"]) == 0
    secret = capsys.readouterr().out.strip()
    assert main(["apikey", "list", "--tenant", slug]) == 0
    listed = capsys.readouterr().out
    assert secret not in listed and secret[:10] in listed and "live" in listed
    key_id = listed.split()[0]
    assert main(["apikey", "revoke", key_id]) == 0
    capsys.readouterr()
    assert main(["apikey", "list", "--tenant", slug]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["apikey", "revoke", key_id]) == 2
    assert "no live API key" in capsys.readouterr().err
