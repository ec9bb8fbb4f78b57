"""`python -m api`: serve the API (and, with embedded ClickHouse, the sink beside it)."""

import uvicorn

from api.main import SERVER_OPTIONS, create_app
from services.logging import configure as configure_logging
from services.logging import uvicorn_log_config
from services.settings import get_settings


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_format)
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level="info",
        log_config=uvicorn_log_config(settings.log_format),
        **SERVER_OPTIONS,
    )


if __name__ == "__main__":
    main()
