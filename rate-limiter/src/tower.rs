//! A tower `Layer`/`Service` that limits requests by key.
