"""Signal sources: everything that writes trade ideas into the signals table."""
