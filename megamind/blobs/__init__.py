"""Bytes too big for the database: tasks' results and customers' input files.

``BlobStore`` is what the API uses; ``LocalBlobStore`` keeps blobs as files in one
folder.  Shared storage for several API replicas only has to offer the same methods.
"""

from megamind.blobs.base import BlobInfo, BlobNotFound, BlobReader, BlobStore
from megamind.blobs.local import LocalBlobStore

__all__ = ["BlobInfo", "BlobNotFound", "BlobReader", "BlobStore", "LocalBlobStore"]
