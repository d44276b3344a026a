# expect-fail: test_worker_replies_in_order_with_its_pid test_ping_pong_replies_in_order_from_one_child
# The worker stops at any false message (0, "", False), not only at None.
import os
from multiprocessing import Pipe, Process


def echo_worker(conn):
    while True:
        message = conn.recv()
        if not message:
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
