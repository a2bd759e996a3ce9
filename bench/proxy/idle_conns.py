#!/usr/bin/env python3
"""Opens N idle TCP connections to 127.0.0.1:PORT, waits until told to stop.

Prints "ready" once all are open, then sleeps until stdin closes. Used to
measure a proxy's memory for idle client connections.
"""
import socket
import sys

port, count = int(sys.argv[1]), int(sys.argv[2])
socks = []
for _ in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    socks.append(s)
print("ready", flush=True)
sys.stdin.read()
