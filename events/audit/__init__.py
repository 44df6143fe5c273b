"""The verifiable log: Merkle tree, signed checkpoints, leaf encoding, builder and verifiers.

May import `events.store` and `events.domain` (see `events/__init__.py`).
"""
