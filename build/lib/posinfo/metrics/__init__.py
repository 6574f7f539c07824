"""Scores: position (SPC, MAE), dense tasks (F-measure, MAE, mIoU, region mIoU) and shift consistency."""
