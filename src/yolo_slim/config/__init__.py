"""The config contract of the apps: one schema per app and one place per shared value.

- `schema`: the typed dataclass tree of each app's config (`SCHEMAS`).
- `validate`: `validate_config(cfg, app)`, the check each task runs first.
- `command`: `check_command(app, argv)`, the same check on a command line (entry
  scripts, `dry_run=true`, the documentation tests).
- `devices`, `sizes`, `datasets`: the shared values `device=`, `img_size=` and `data=`
  and how each app uses them.
- `renamed`: the old spellings, each answered with the new one.
"""

from __future__ import annotations

from yolo_slim.config.schema import SCHEMAS
from yolo_slim.config.validate import validate_config

APPS: tuple[str, ...] = tuple(SCHEMAS)

__all__ = ["APPS", "SCHEMAS", "validate_config"]
