# expect-fail: test_ping_pong_replies_in_order_from_one_child test_ping_pong_large_messages
# ping_pong puts each new reply at the front of the list.
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
        replies.insert(0, parent_conn.recv())
    parent_conn.send(None)
    worker.join()
    return replies
