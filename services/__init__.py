"""The core both sides import: settings, the event contract, domain rules, tokens, publisher, warehouse.

Nothing here imports FastAPI or faust, so the API, the stream workers and the sink share it.
"""
