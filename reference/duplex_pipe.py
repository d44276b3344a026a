"""Reference solution: duplex_pipe."""

import os
from multiprocessing import Pipe, Process


def echo_worker(conn):
    while True:
        message = conn.recv()
        if message is None:
            conn.close()
            return
        conn.send((os.getpid(), message))


def ping_pong(messages):
    parent_end, child_end = Pipe()
    worker = Process(target=echo_worker, args=(child_end,))
    worker.start()
    child_end.close()  # the child has its own copy; this one is not needed here
    replies = []
    for message in messages:
        parent_end.send(message)
        replies.append(parent_end.recv())
    parent_end.send(None)
    worker.join()
    parent_end.close()
    return replies


if __name__ == "__main__":
    print(ping_pong(["ping", 2, (3, "three")]))
