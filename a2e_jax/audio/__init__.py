"""Audio loading and validation; the SadTalker-compatible log-mel front end; MFCC for alignment."""
