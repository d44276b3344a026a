# expect-fail: test_ping_pong_replies_in_order_from_one_child test_child_joined_and_exited
# The worker runs in a thread of the caller's process: every reply carries the caller's pid.
import os
import threading
from multiprocessing import Pipe


def echo_worker(conn):
    while True:
        message = conn.recv()
        if message is None:
            conn.close()
            return
        conn.send((os.getpid(), message))


def ping_pong(messages):
    parent_conn, child_conn = Pipe()
    worker = threading.Thread(target=echo_worker, args=(child_conn,))
    worker.start()
    replies = []
    for message in messages:
        parent_conn.send(message)
        replies.append(parent_conn.recv())
    parent_conn.send(None)
    worker.join()
    return replies
