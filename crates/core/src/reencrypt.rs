//! Rewriting stored objects so they are encrypted with the current key (the `kubectl reencrypt` verb).
