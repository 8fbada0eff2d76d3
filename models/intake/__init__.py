"""Work coming in: a batch of photos and tasks checked and stored all or none, the image checks and
photo rows, Idempotency-Key bookkeeping, and the one intake function the CLI, the REST API and
the admin page share."""

from __future__ import annotations

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
