"""`python -m streams worker`: a faust worker process (scale out by starting more)."""

from services.settings import InsecureSecrets, require_secrets
from streams.app import app, settings

if __name__ == "__main__":
    # The worker signs nothing today, but it shares the deployment's environment: refusing here
    # too means no process of a deployment runs on the public development secrets.
    try:
        require_secrets(settings)
    except InsecureSecrets as exc:
        raise SystemExit(f"worker: {exc}") from None
    app.main()
