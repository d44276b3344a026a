# expect-fail: test_ping_pong_replies_in_order_from_one_child test_ping_pong_large_messages test_child_joined_and_exited
# Pipe(duplex=False) gives a receive-only and a send-only end: the worker cannot answer on its end.
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
    child_conn, parent_conn = Pipe(duplex=False)
    worker = Process(target=echo_worker, args=(child_conn,))
    worker.start()
    replies = []
    for message in messages:
        parent_conn.send(message)
        replies.append(parent_conn.recv())
    parent_conn.send(None)
    worker.join()
    return replies
