"""A Process subclass from an explicit spawn context; `with conn:` closes the worker's end."""
import multiprocessing
import os

CTX = multiprocessing.get_context("spawn")


def echo_worker(conn):
    with conn:
        for message in iter(conn.recv, None):
            conn.send((os.getpid(), message))


class EchoProcess(CTX.Process):
    def __init__(self, conn):
        super().__init__(name="echo")
        self.conn = conn

    def run(self):
        echo_worker(self.conn)


def ping_pong(messages):
    mine, theirs = CTX.Pipe(duplex=True)
    worker = EchoProcess(theirs)
    worker.start()
    theirs.close()
    with mine:
        replies = []
        for message in messages:
            mine.send(message)
            replies.append(mine.recv())
        mine.send(None)
        worker.join()
    return replies
