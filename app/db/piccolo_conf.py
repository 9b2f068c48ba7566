"""What Piccolo's own tooling looks for (`PICCOLO_CONF=app.db.piccolo_conf`): the engine and
the app registry, so `piccolo migrations ...` and our runner agree on where migrations live."""

from piccolo.conf.apps import AppConfig, AppRegistry

from app.db.engine import DB
from app.db.migrate import MIGRATIONS_DIR

APP_CONFIG = AppConfig(
    app_name="dispatch",
    migrations_folder_path=str(MIGRATIONS_DIR),
    table_classes=[],
)

APP_REGISTRY = AppRegistry(apps=["app.db.piccolo_conf"])

__all__ = ["APP_CONFIG", "APP_REGISTRY", "DB"]
