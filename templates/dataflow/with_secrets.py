"""Export Secret Manager secrets as environment variables, then run a command.

Dataflow cannot set environment variables on worker containers, and qdrant-beam reads API keys
from the environment (``--qdrant-api-key-env``, ``providers.<name>.api_key_env``). This script
closes the gap without ever putting a key in a parameter, spec or image:

    QDRANT_BEAM_SECRETS="QDRANT_API_KEY=projects/P/secrets/qdrant-api-key/versions/latest,
                         OPENAI_API_KEY=projects/P/secrets/openai-api-key/versions/latest"

Each ``NAME=<secret version>`` is read with Beam's ``GcpSecret`` (the job's service account
needs ``roles/secretmanager.secretAccessor``) unless ``NAME`` is already set. ``main.py`` calls
:func:`load_secrets` on the launcher (which creates or checks the collection); workers get it
from a derived image whose entrypoint is this script in front of Beam's boot:

    ENTRYPOINT ["python", "/template/with_secrets.py", "/opt/apache/beam/boot"]
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, MutableMapping, Sequence

__all__ = ["SECRETS_ENV", "load_secrets", "main"]

SECRETS_ENV = "QDRANT_BEAM_SECRETS"


def _gcp_secret(version: str) -> bytes:
    from apache_beam.utils.secret import GcpSecret

    return bytes(GcpSecret(version).get_secret_bytes())


def load_secrets(
    environ: MutableMapping[str, str] | None = None,
    fetch: Callable[[str], bytes] = _gcp_secret,
) -> list[str]:
    """Set every variable named in ``$QDRANT_BEAM_SECRETS``; return the names set."""
    env = os.environ if environ is None else environ
    loaded = []
    for item in env.get(SECRETS_ENV, "").replace("\n", ",").split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, version = (part.strip() for part in item.partition("="))
        if not sep or not name.isidentifier() or not version.startswith("projects/"):
            raise SystemExit(
                f"{SECRETS_ENV}: expected NAME=projects/<p>/secrets/<s>/versions/<v>, got {item!r}"
            )
        if env.get(name):
            continue
        env[name] = fetch(version).decode("utf-8").strip()
        loaded.append(name)
    return loaded


def main(argv: Sequence[str]) -> None:
    if not argv:
        raise SystemExit("usage: with_secrets.py COMMAND [ARGS...]")
    names = load_secrets()
    if names:
        print(f"with_secrets: set {', '.join(names)}", file=sys.stderr)
    os.execv(argv[0], list(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
