"""`python -m streams worker`: a faust worker process (scale out by starting more)."""

from streams.app import app

if __name__ == "__main__":
    app.main()
