"""Print the server's OpenAPI document (committed as docs/openapi.json; a test keeps it current):

    python -m engine.server.openapi > docs/openapi.json
"""

from __future__ import annotations

import json
import sys
import tempfile


def document() -> dict:
    from engine.app.config import Config

    from .app import create_app

    with tempfile.TemporaryDirectory() as folder:  # the document does not depend on the database
        app = create_app(Config.resolve({}, db=f"{folder}/incidents.db"))
        return app.openapi()


if __name__ == "__main__":
    json.dump(document(), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
