"""Chat contracts shared by training, validation, evaluation and serving."""
