"""Where job ids come from: the watch file and the SQLite intake queue."""
