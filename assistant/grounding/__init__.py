"""Grounding: what an answer may say is what its evidence states (atoms, question constraints, verification)."""
