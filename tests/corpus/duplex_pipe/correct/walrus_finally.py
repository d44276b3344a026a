"""Walrus loop with `== None`, try/finally close, a helper that does one round trip."""
import multiprocessing as mp
import os


def echo_worker(conn):
    try:
        while (message := conn.recv()) != None:  # noqa: E711 - a student's style, still correct
            reply = (os.getpid(), message)
            conn.send(reply)
    finally:
        conn.close()


def _round_trip(conn, message):
    conn.send(message)
    return conn.recv()


def ping_pong(messages):
    a, b = mp.Pipe()
    worker = mp.Process(target=echo_worker, args=(b,), daemon=True)
    worker.start()
    replies = [_round_trip(a, message) for message in messages]
    a.send(None)
    worker.join(timeout=30)
    a.close()
    b.close()
    return replies
