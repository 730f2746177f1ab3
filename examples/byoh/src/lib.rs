//! Placeholder: the BYOH example provider lands in a later commit.
