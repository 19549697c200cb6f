"""LiveProof's side of the chain: compile, devnet, deploy, typed clients, EIP-712, Merkle trees,
events and the auditor's checks. No web or database code.

Importing ``py_ecc`` (through web3 and eth-account) raises Python's recursion limit to 100,000
for the whole process; the C JSON decoder then recurses into hostile, deeply nested input until
the C stack overflows and the process dies (a segmentation fault, not a RecursionError). So
``py_ecc`` is imported here first and the limit brought back to :data:`RECURSION_LIMIT`, where
such input raises RecursionError, which every parser of outside input turns into a clear
refusal. Nothing LiveProof calls in py_ecc recurses that deep.
"""

from __future__ import annotations

import sys as _sys
from typing import Final

import py_ecc as _py_ecc  # noqa: F401  # raises the recursion limit: imported once, here

#: The process's recursion limit once ``chain`` is imported.
RECURSION_LIMIT: Final = 10_000

_sys.setrecursionlimit(min(_sys.getrecursionlimit(), RECURSION_LIMIT))
