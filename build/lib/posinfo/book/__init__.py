"""The book's machinery: parameters, results and verdicts, the chapter contract, generated pages,
figures, the explorer and the papers' tables."""
