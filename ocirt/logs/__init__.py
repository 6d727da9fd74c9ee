"""Container logs in Docker's json-file format: the line format (jsonline, pure) and the
reader of json.log and its rotated files (reader, file I/O). The C monitor writes them."""
