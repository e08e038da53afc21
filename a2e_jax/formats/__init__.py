"""Coefficient files: `CoeffSequence` and its readers and writers (SadTalker, PIRenderer/DreamTalk, our npz,
Live Link Face CSV, glTF)."""
