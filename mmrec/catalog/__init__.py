"""Finding items in a catalog folder or manifest, and decoding their media."""
