"""Control API: JSON over a Unix socket, the event stream, and the client library."""
