"""Evaluation: lip vertex error, FDD, emotion accuracy, blinks, identity, emotion swap; a2e eval."""
