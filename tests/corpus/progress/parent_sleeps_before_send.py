# The child blocks in recv() while its parent sleeps 3 s before it sends; then the parent waits for
# the reply.
import time
from multiprocessing import Pipe, Process


def echo(conn):
    conn.send(conn.recv())


def main():
    parent, child = Pipe()
    proc = Process(target=echo, args=(child,))
    proc.start()
    time.sleep(3)
    parent.send("done")
    reply = parent.recv()
    proc.join()
    return reply
