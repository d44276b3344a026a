# expect-fail: test_ping_pong_replies_in_order_from_one_child
# A new pipe and a new worker process for every message.
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
    replies = []
    for message in messages:
        parent_conn, child_conn = Pipe()
        worker = Process(target=echo_worker, args=(child_conn,))
        worker.start()
        parent_conn.send(message)
        replies.append(parent_conn.recv())
        parent_conn.send(None)
        worker.join()
    return replies
