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
    p = Process(target=echo_worker, args=(child_conn,))
    p.start()
    replies = []
    for message in messages:
        parent_conn.send(message)
        replies.append(parent_conn.recv())
    parent_conn.send(None)
    p.join()
    return replies
