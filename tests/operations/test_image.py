"""What the Dockerfile promises a container platform (no image is built here: no registry)."""

from tests.operations.harness import ROOT


def test_the_image_checks_liveness_on_healthz_never_readiness() -> None:
    # A restart on /readyz would restart every replica during the very outage they ride out.
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    check = next(i for i, line in enumerate(lines) if line.startswith("HEALTHCHECK"))
    command = " ".join(lines[check : check + 2])
    assert "/healthz" in command
    assert "/readyz" not in command
