# expect-fail: test_worker_returns_and_closes_on_none
# The worker returns on None without closing its end of the pipe.
import os
from multiprocessing import Pipe, Process


def echo_worker(conn):
    while True:
        message = conn.recv()
        if message is None:
            return
        conn.send((os.getpid(), message))


def ping_pong(messages):
    parent_conn, child_conn = Pipe()
    worker = Process(target=echo_worker, args=(child_conn,))
    worker.start()
    replies = []
    for message in messages:
        parent_conn.send(message)
        replies.append(parent_conn.recv())
    parent_conn.send(None)
    worker.join()
    return replies
