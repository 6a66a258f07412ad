"""`devicetrust ingest`: an ingest worker of the production data plane (Mosquitto).

Runs until interrupted (SIGINT/SIGTERM). Start several with distinct `--client-id`s to share
the load; run `--follow-revocations` (the default) on the broker's host only, since it
rewrites the broker's CRL and ACL files and signals it.
"""

from __future__ import annotations

import signal
import socket
import threading
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from devicetrust.cli import output
from devicetrust.cli.context import state
from devicetrust.domain.errors import ConfigurationError
from devicetrust.ingest import (
    BrokerFiles,
    DynsecControl,
    FeedbackQueue,
    MessageStore,
    RevocationFollower,
)
from devicetrust.ingest.broker_files import read_ingest_settings


def ingest(
    ctx: typer.Context,
    broker_dir: Annotated[
        Path,
        typer.Option(
            "--broker-dir", help="What `gateway mosquitto-config --out` wrote.", file_okay=False
        ),
    ],
    client_id: Annotated[
        str | None,
        typer.Option(help="Stable MQTT client id of this worker (default: from the host)."),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, max=1000, help="Messages per transaction.")] = 500,
    follow_revocations: Annotated[
        bool,
        typer.Option(help="Apply revocations to the broker (one worker, on its host)."),
    ] = True,
    poll: Annotated[
        float,
        typer.Option(min=0.01, max=60, help="Seconds between feedback/revocation polls."),
    ] = 0.1,
    ack_diagnostics: Annotated[
        bool, typer.Option(help="Answer each diagnostics report on the feedback topic.")
    ] = True,
) -> None:
    """Store devices' diagnostics and telemetry from the broker, publish feedback, and
    drop revoked devices' sessions."""
    # paho-mqtt is needed by this command only: imported here, so the rest of the CLI runs
    # without it.
    from devicetrust.ingest.connection import BrokerConnection
    from devicetrust.ingest.worker import IngestWorker

    cli = state(ctx)
    platform = cli.platform()
    files = BrokerFiles(broker_dir.resolve())
    settings = read_ingest_settings(files)
    prefix = str(settings.get("topic_prefix", "devices"))
    max_payload = settings.get("max_payload_bytes", 64 * 1024)
    store = MessageStore(platform.db, platform.clock, max_payload_bytes=int(str(max_payload)))

    def follower(control: DynsecControl) -> RevocationFollower:
        return RevocationFollower(
            platform.db,
            platform.clock,
            files,
            control,
            topic_prefix=prefix,
            settle=timedelta(minutes=10),
        )

    worker = IngestWorker(
        store,
        FeedbackQueue(platform.db, platform.clock),
        BrokerConnection.from_files(files, client_id or f"ingest-{socket.gethostname()}"),
        platform.clock,
        topic_prefix=prefix,
        batch_size=batch,
        ack_diagnostics=ack_diagnostics,
        housekeeping_seconds=poll,
        follower_factory=follower if follow_revocations else None,
    )
    done = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    worker.start()
    output.success("ingest running; Ctrl-C stops it")
    while not done.wait(0.5) and not worker.wait(0):
        pass
    worker.stop()
    stats = worker.stats
    output.note(
        f"stored {stats.stored}, duplicates {stats.duplicates}, refused {stats.refused}, "
        f"feedback published {stats.feedback_published}"
    )
    if worker.failure is not None:
        raise ConfigurationError(
            "ingest.worker_failed", f"the ingest worker stopped: {worker.failure!r}"
        )
