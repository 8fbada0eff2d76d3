"""Work coming in: a batch of photos and tasks checked and stored all or none, the image checks and
photo rows, Idempotency-Key bookkeeping, and the one intake function the CLI, the REST API and
the admin page share."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reelroute.models.core.lazy import load

if TYPE_CHECKING:
    from reelroute.models.intake import idempotency, tables
    from reelroute.models.intake.batches import MAX_BATCH, PhotoTask, Upload, add_batch, outlook
    from reelroute.models.intake.idempotency import KeyReused
    from reelroute.models.intake.photos import (
        PhotoData,
        add_stored_photo,
        normalise_stored,
        sha256_of,
        store_photo,
        store_photos,
        upright_bytes,
    )
    from reelroute.models.intake.submit import (
        Answer,
        Intake,
        Intaken,
        deadline_from_text,
        run_once,
        take_in,
    )

__all__ = [
    "MAX_BATCH",
    "Answer",
    "Intake",
    "Intaken",
    "KeyReused",
    "PhotoData",
    "PhotoTask",
    "Upload",
    "add_batch",
    "add_stored_photo",
    "deadline_from_text",
    "idempotency",
    "normalise_stored",
    "outlook",
    "run_once",
    "sha256_of",
    "store_photo",
    "store_photos",
    "tables",
    "take_in",
    "upright_bytes",
]

_WHERE = {
    "Answer": "reelroute.models.intake.submit",
    "Intake": "reelroute.models.intake.submit",
    "Intaken": "reelroute.models.intake.submit",
    "KeyReused": "reelroute.models.intake.idempotency",
    "MAX_BATCH": "reelroute.models.intake.batches",
    "PhotoData": "reelroute.models.intake.photos",
    "PhotoTask": "reelroute.models.intake.batches",
    "Upload": "reelroute.models.intake.batches",
    "add_batch": "reelroute.models.intake.batches",
    "add_stored_photo": "reelroute.models.intake.photos",
    "deadline_from_text": "reelroute.models.intake.submit",
    "idempotency": "reelroute.models.intake.idempotency",
    "normalise_stored": "reelroute.models.intake.photos",
    "outlook": "reelroute.models.intake.batches",
    "run_once": "reelroute.models.intake.submit",
    "sha256_of": "reelroute.models.intake.photos",
    "store_photo": "reelroute.models.intake.photos",
    "store_photos": "reelroute.models.intake.photos",
    "tables": "reelroute.models.intake.tables",
    "take_in": "reelroute.models.intake.submit",
    "upright_bytes": "reelroute.models.intake.photos",
}
"""Each public name's module, imported when the name is first used."""


def __getattr__(name: str) -> object:
    """A public name, loaded on first use (models.core.lazy)."""
    return load(__name__, _WHERE, name)
