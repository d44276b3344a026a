# expect-fail: test_no_side_effects_at_import
# The module prints a greeting when imported (and so in every spawned child).
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

print("duplex_pipe ready")
