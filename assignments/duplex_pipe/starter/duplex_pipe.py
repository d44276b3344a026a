"""Ping-pong over a duplex Pipe: an echo worker in a child process (see README.md)."""

import os  # noqa: F401 - the worker tags each reply with os.getpid()
from multiprocessing import Pipe, Process  # noqa: F401


def echo_worker(conn):
    """Receive messages on `conn`; answer each with (os.getpid(), message); on None close `conn` and return."""
    raise NotImplementedError("write echo_worker(conn)")


def ping_pong(messages):
    """Run echo_worker in a child process; send each message and receive its reply before the next; return the replies."""
    raise NotImplementedError("write ping_pong(messages)")


if __name__ == "__main__":
    print(ping_pong(["ping", 2, (3, "three")]))
