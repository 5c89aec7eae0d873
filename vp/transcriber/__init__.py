"""The LMA WebSocket transcriber protocol (contract 3): client, local server and engines."""
