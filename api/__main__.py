"""`python -m api`: serve the API (and, with embedded ClickHouse, the sink beside it)."""

import logging

import uvicorn

from api.main import create_app
from services.settings import get_settings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    settings = get_settings()
    uvicorn.run(
        create_app(settings), host=settings.api_host, port=settings.api_port, log_level="info"
    )


if __name__ == "__main__":
    main()
